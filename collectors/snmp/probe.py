"""One SNMP poll of one device: learn its tables once, then one exact GET per cycle.

Discovery (first poll, after a reboot, or when an index vanishes) walks the
tables with GETBULK to learn which rows exist: interfaces (ifName and ifAlias —
the leased line's circuit id), processors, storage areas. Every regular cycle
then GETs exactly the instances that change — sysUpTime, eight IF-MIB columns
per interface, processor load, storage use — in one request for most devices
(chunked for a core router's hundred ports). No GETBULK overshoot, a third of
the bytes, one round trip. Ports without ifXTable are polled through ifTable's
32-bit counters and ifSpeed; an object a device leaves out is skipped, and only
a vanished row means the tables must be learnt again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from collectors.snmp.client import SnmpClient, SnmpError
from collectors.snmp.walk import walk_columns
from monitor.snmp.ber import Oid
from monitor.snmp.message import Missing, Value

SYS_UPTIME: Oid = (1, 3, 6, 1, 2, 1, 1, 3, 0)
_IF = (1, 3, 6, 1, 2, 1, 2, 2, 1)
_IFX = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
_HR_STORAGE = (1, 3, 6, 1, 2, 1, 25, 2, 3, 1)
HR_PROCESSOR_LOAD: Oid = (1, 3, 6, 1, 2, 1, 25, 3, 3, 1, 2)

_IF_COMMON: dict[str, Oid] = {
    "oper_status": _IF + (8,),
    "in_discards": _IF + (13,),
    "in_errors": _IF + (14,),
    "out_discards": _IF + (19,),
    "out_errors": _IF + (20,),
}
# Octets from the 64-bit ifXTable counters where the port has them, else ifTable's 32-bit ones;
# speed from ifHighSpeed (Mbps) where the port is in ifXTable, else ifSpeed (bit/s, saturates at 2^32-1).
OCTETS_HC: dict[str, Oid] = {"in_octets": _IFX + (6,), "out_octets": _IFX + (10,)}
OCTETS_32: dict[str, Oid] = {"in_octets": _IF + (10,), "out_octets": _IF + (16,)}
SPEED_HIGH: dict[str, Oid] = {"speed_mbps": _IFX + (15,)}
SPEED_LEGACY: dict[str, Oid] = {"speed_bps": _IF + (5,)}
SPEED_UNKNOWN = 2**32 - 1
IF_DESCR: Oid = _IF + (2,)
IF_HC_IN_OCTETS: Oid = _IFX + (6,)
NAME_COLUMNS: dict[str, Oid] = {"name": _IFX + (1,), "alias": _IFX + (18,)}
STORAGE_COLUMNS: dict[str, Oid] = {"units": _HR_STORAGE + (4,), "size": _HR_STORAGE + (5,),
                                   "used": _HR_STORAGE + (6,)}
STORAGE_DESCR: Oid = _HR_STORAGE + (3,)
MAX_REPETITIONS = 25
MAX_VARBINDS_PER_GET = 64  # keeps every answer well inside one UDP datagram


class TablesChanged(SnmpError):
    """An instance we poll no longer exists (reconfiguration, reboot): learn the tables again."""


@dataclass
class DeviceTables:
    """Which rows a device has, and their names; refreshed after a reboot or a change."""

    interfaces: dict[int, tuple[str, str]] = field(default_factory=dict)  # ifIndex → (name, ifAlias)
    storages: dict[int, str] = field(default_factory=dict)  # hrStorageIndex → descr
    processors: list[int] = field(default_factory=list)  # hrDeviceIndex of each CPU
    hc_counters: set[int] = field(default_factory=set)  # ifIndexes with 64-bit octet counters
    in_ifx: set[int] = field(default_factory=set)  # ifIndexes present in ifXTable (ifHighSpeed)
    plan: list[tuple[Oid, str, int, str]] = field(default_factory=list)  # (oid, table, index, column)

    def build_plan(self) -> None:
        plan: list[tuple[Oid, str, int, str]] = [(SYS_UPTIME, "system", 0, "uptime")]
        for index in sorted(self.interfaces):
            columns = {**_IF_COMMON, **(OCTETS_HC if index in self.hc_counters else OCTETS_32),
                       **(SPEED_HIGH if index in self.in_ifx else SPEED_LEGACY)}
            plan += [(column + (index,), "interface", index, name) for name, column in columns.items()]
        plan += [(HR_PROCESSOR_LOAD + (index,), "processor", index, "load") for index in self.processors]
        for index in sorted(self.storages):
            plan += [(column + (index,), "storage", index, name) for name, column in STORAGE_COLUMNS.items()]
        self.plan = plan


@dataclass
class RawPoll:
    uptime_ticks: int
    rtt_ms: float
    interfaces: dict[int, dict[str, Value]]
    processors: list[int]
    storages: dict[int, dict[str, Value]]


def _text(value: Value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return "" if value is None or isinstance(value, Missing) else str(value)


async def learn_tables(client: SnmpClient, address: str, port: int) -> DeviceTables:
    columns = [IF_DESCR, *NAME_COLUMNS.values(), IF_HC_IN_OCTETS, STORAGE_DESCR, HR_PROCESSOR_LOAD]
    _, rows = await walk_columns(client, address, port, columns, max_repetitions=MAX_REPETITIONS)
    descrs, names, aliases = rows[IF_DESCR], rows[NAME_COLUMNS["name"]], rows[NAME_COLUMNS["alias"]]
    hc = {i for i, v in rows[IF_HC_IN_OCTETS].items() if isinstance(v, int)}
    tables = DeviceTables(
        {i: (_text(names.get(i)) or _text(descrs.get(i)), _text(aliases.get(i)))
         for i in sorted(set(descrs) | set(names))},
        {i: _text(v) for i, v in rows[STORAGE_DESCR].items()},
        sorted(rows[HR_PROCESSOR_LOAD]),
        hc,
        set(names),
    )
    tables.build_plan()
    return tables


def _round_trip_ms(client: SnmpClient, address: str, port: int, began: float) -> float:
    """The client's own measure (send to the kernel's receipt: no queueing in this process) when it has one."""
    measured = client.round_trip_ms(address, port)
    return measured if measured is not None else (time.perf_counter() - began) * 1000


async def poll_device(client: SnmpClient, address: str, port: int, tables: DeviceTables) -> RawPoll:
    """Raises SnmpTimeout / SnmpAuthError / TablesChanged / SnmpError."""
    plan = tables.plan
    began = time.perf_counter()
    rtt_ms: float | None = None
    values: list[Value] = []
    for start in range(0, len(plan), MAX_VARBINDS_PER_GET):
        chunk = plan[start:start + MAX_VARBINDS_PER_GET]
        varbinds = await client.get(address, port, [entry[0] for entry in chunk])
        if rtt_ms is None:  # one round trip: a big device's 40 GETs in a row are not its latency
            rtt_ms = _round_trip_ms(client, address, port, began)
        if len(varbinds) != len(chunk):
            raise SnmpError(f"asked {len(chunk)} objects, got {len(varbinds)}")
        values += [value for _, value in varbinds]
    assert rtt_ms is not None  # the plan always holds sysUpTime
    uptime = values[0]
    if not isinstance(uptime, int):
        raise SnmpError(f"sysUpTime missing or not a number: {uptime!r}")
    interfaces: dict[int, dict[str, Value]] = {i: {} for i in tables.interfaces}
    storages: dict[int, dict[str, Value]] = {i: {} for i in tables.storages}
    processors: list[int] = []
    for (_, table, index, column), value in zip(plan[1:], values[1:], strict=True):
        if isinstance(value, Missing):
            continue  # real agents leave out single objects (a stack port's counters): measure the rest
        if table == "interface":
            interfaces[index][column] = value
        elif table == "storage":
            storages[index][column] = value
        elif isinstance(value, int):
            processors.append(value)
    vanished = [f"ifIndex {i}" for i, row in interfaces.items() if "oper_status" not in row]
    vanished += [f"hrStorageIndex {i}" for i, row in storages.items() if not row]
    if vanished:  # a whole row gone: the device was reconfigured or renumbered
        raise TablesChanged(f"{', '.join(vanished[:3])} gone")
    for index, row in interfaces.items():
        row["counter_bits"] = 64 if index in tables.hc_counters else 32
        speed_bps = row.pop("speed_bps", None)
        if isinstance(speed_bps, int) and speed_bps < SPEED_UNKNOWN:
            row["speed_mbps"] = speed_bps // 1_000_000
    return RawPoll(uptime, rtt_ms, interfaces, processors, storages)
