"""One SNMP poll of one device: two GETBULKs per cycle, one more for names after (re)boot.

Request 1: sysUpTime (non-repeater) + the IF-MIB columns that change.
Request 2: HOST-RESOURCES processor load and storage use.
Names (ifName, ifAlias — the leased line's circuit id —, hrStorageDescr) change
only with configuration, so they are fetched on the first poll and after a reboot.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from collectors.snmp.client import SnmpClient, SnmpError
from monitor.snmp.ber import Oid
from monitor.snmp.message import Missing, Value
from collectors.snmp.walk import walk_columns

SYS_UPTIME_OBJECT: Oid = (1, 3, 6, 1, 2, 1, 1, 3)  # asked as a GETBULK non-repeater: GETNEXT gives .0
SYS_UPTIME: Oid = SYS_UPTIME_OBJECT + (0,)
_IF = (1, 3, 6, 1, 2, 1, 2, 2, 1)
_IFX = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
_HR_STORAGE = (1, 3, 6, 1, 2, 1, 25, 2, 3, 1)
_HR_PROCESSOR_LOAD = (1, 3, 6, 1, 2, 1, 25, 3, 3, 1, 2)

INTERFACE_COLUMNS: dict[str, Oid] = {
    "oper_status": _IF + (8,),
    "in_discards": _IF + (13,),
    "in_errors": _IF + (14,),
    "out_discards": _IF + (19,),
    "out_errors": _IF + (20,),
    "in_octets": _IFX + (6,),  # ifHCInOctets (64-bit)
    "out_octets": _IFX + (10,),  # ifHCOutOctets
    "speed_mbps": _IFX + (15,),  # ifHighSpeed
}
NAME_COLUMNS: dict[str, Oid] = {"name": _IFX + (1,), "alias": _IFX + (18,)}
STORAGE_COLUMNS: dict[str, Oid] = {"units": _HR_STORAGE + (4,), "size": _HR_STORAGE + (5,),
                                   "used": _HR_STORAGE + (6,)}
STORAGE_DESCR: Oid = _HR_STORAGE + (3,)
MAX_REPETITIONS = 25


@dataclass
class DeviceNames:
    """Names that change only with configuration: fetched once, again after a reboot."""

    interfaces: dict[int, tuple[str, str]] = field(default_factory=dict)  # ifIndex → (ifName, ifAlias)
    storages: dict[int, str] = field(default_factory=dict)  # hrStorageIndex → descr


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


def _pivot(rows: dict[Oid, dict[int, Value]], columns: dict[str, Oid]) -> dict[int, dict[str, Value]]:
    table: dict[int, dict[str, Value]] = {}
    for name, column in columns.items():
        for index, value in rows.get(column, {}).items():
            table.setdefault(index, {})[name] = value
    return table


async def fetch_names(client: SnmpClient, address: str, port: int) -> DeviceNames:
    _, rows = await walk_columns(client, address, port, [*NAME_COLUMNS.values(), STORAGE_DESCR],
                                 max_repetitions=MAX_REPETITIONS)
    table = _pivot(rows, NAME_COLUMNS)
    return DeviceNames(
        {i: (_text(r.get("name")), _text(r.get("alias"))) for i, r in table.items()},
        {i: _text(v) for i, v in rows[STORAGE_DESCR].items()},
    )


async def poll_device(client: SnmpClient, address: str, port: int, *, expected_interfaces: int = 8) -> RawPoll:
    """Raises SnmpTimeout / SnmpAuthError / SnmpError; the caller turns them into a failed poll."""
    began = time.perf_counter()
    scalars, if_rows = await walk_columns(
        client, address, port, list(INTERFACE_COLUMNS.values()), scalars=[SYS_UPTIME_OBJECT],
        max_repetitions=min(MAX_REPETITIONS, expected_interfaces + 1))
    rtt_ms = (time.perf_counter() - began) * 1000
    uptime = scalars.get(SYS_UPTIME)
    if not isinstance(uptime, int):
        raise SnmpError(f"sysUpTime missing or not a number: {uptime!r}")
    _, hr_rows = await walk_columns(client, address, port, [_HR_PROCESSOR_LOAD, *STORAGE_COLUMNS.values()],
                                    max_repetitions=8)
    processors = [v for v in hr_rows[_HR_PROCESSOR_LOAD].values() if isinstance(v, int)]
    return RawPoll(uptime, rtt_ms, _pivot(if_rows, INTERFACE_COLUMNS), processors,
                   _pivot(hr_rows, STORAGE_COLUMNS))
