"""The MIB every simulated device exposes: SNMPv2-MIB system, IF-MIB, HOST-RESOURCES-MIB.

A ``MibLayout`` is the sorted OID space of one device *shape* (interface count,
storage set, CPU count) with one value getter per OID; devices of the same shape
share it, so 9,000 agents hold a few hundred layouts, not 9,000 OID tables.
A ``DeviceView`` binds a layout to one device at one simulated instant, which is
what the SNMP engine reads for a request.
"""

from __future__ import annotations

import zlib
from bisect import bisect_right
from dataclasses import dataclass
from typing import Callable

from simnet.device import SimDevice
from monitor.snmp import ber
from monitor.snmp.ber import Oid

Getter = Callable[[SimDevice, float], bytes]

SYSTEM = (1, 3, 6, 1, 2, 1, 1)
IF_NUMBER = (1, 3, 6, 1, 2, 1, 2, 1, 0)
IF_ENTRY = (1, 3, 6, 1, 2, 1, 2, 2, 1)
IFX_ENTRY = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
HR_SYSTEM_UPTIME = (1, 3, 6, 1, 2, 1, 25, 1, 1, 0)
HR_MEMORY_SIZE = (1, 3, 6, 1, 2, 1, 25, 2, 2, 0)
HR_STORAGE_ENTRY = (1, 3, 6, 1, 2, 1, 25, 2, 3, 1)
HR_STORAGE_RAM = (1, 3, 6, 1, 2, 1, 25, 2, 1, 2)
HR_STORAGE_FIXED_DISK = (1, 3, 6, 1, 2, 1, 25, 2, 1, 4)
HR_PROCESSOR_ENTRY = (1, 3, 6, 1, 2, 1, 25, 3, 3, 1)
HR_DEVICE_PROCESSOR_BASE = 196608  # hrDeviceIndex of the first CPU, as net-snmp numbers them
SYS_OBJECT_ID = (1, 3, 6, 1, 4, 1, 8072, 3, 2, 10)

UP, DOWN = 1, 2


def _mac(dev: SimDevice, row: int) -> bytes:
    digest = zlib.crc32(dev.device.id.encode()).to_bytes(4, "big")
    return b"\x02\x4a" + digest[:3] + bytes((row + 1,))


def _system_getters() -> list[tuple[Oid, Getter]]:
    def descr(d: SimDevice, _: float) -> bytes:
        return ber.encode_octets(f"{d.device.lifecycle.model} ({d.device.role.value}) Jukimon simnet")

    sys_oid = ber.encode_oid(SYS_OBJECT_ID)
    return [
        (SYSTEM + (1, 0), descr),
        (SYSTEM + (2, 0), lambda d, t: sys_oid),
        (SYSTEM + (3, 0), lambda d, t: ber.timeticks(d.uptime_ticks(t))),
        (SYSTEM + (4, 0), lambda d, t: ber.encode_octets("全国センター ネットワーク監視 (NOC)")),
        (SYSTEM + (5, 0), lambda d, t: ber.encode_octets(d.device.id)),
        (SYSTEM + (6, 0), lambda d, t: ber.encode_octets(d.site_name)),
        (SYSTEM + (7, 0), lambda d, t: ber.encode_integer(d.profile.services)),
    ]


def _if_getters(count: int) -> list[tuple[Oid, Getter]]:
    """ifTable and ifXTable columns the collectors read, one row per interface."""

    def counters(d: SimDevice, t: float) -> None:
        d.advance_counters(t)

    def col(row: int, fn: Callable[[SimDevice, float, int], bytes], live: bool = False) -> Getter:
        if live:
            def get(d: SimDevice, t: float) -> bytes:
                counters(d, t)
                return fn(d, t, row)
        else:
            def get(d: SimDevice, t: float) -> bytes:
                return fn(d, t, row)
        return get

    def last_change(d: SimDevice, t: float, r: int) -> bytes:
        changed = d.interfaces[r].last_change
        return ber.timeticks(max(0, int((changed - d.boot_time) * 100)))

    columns: list[tuple[Oid, Callable[[SimDevice, float, int], bytes], bool]] = [
        (IF_ENTRY + (1,), lambda d, t, r: ber.encode_integer(r + 1), False),
        (IF_ENTRY + (2,), lambda d, t, r: ber.encode_octets(d.interfaces[r].name), False),
        (IF_ENTRY + (3,), lambda d, t, r: ber.encode_integer(d.interfaces[r].if_type), False),
        (IF_ENTRY + (4,), lambda d, t, r: ber.encode_integer(1500), False),
        (IF_ENTRY + (5,), lambda d, t, r: ber.gauge32(d.interfaces[r].speed_mbps * 1_000_000), False),
        (IF_ENTRY + (6,), lambda d, t, r: ber.encode_octets(_mac(d, r)), False),
        (IF_ENTRY + (7,), lambda d, t, r: ber.encode_integer(DOWN if d.interfaces[r].admin_down else UP), False),
        (IF_ENTRY + (8,), lambda d, t, r: ber.encode_integer(UP if d.interfaces[r].oper_up else DOWN), False),
        (IF_ENTRY + (9,), last_change, False),
        (IF_ENTRY + (10,), lambda d, t, r: ber.counter32(d.interfaces[r].in_octets), True),
        (IF_ENTRY + (11,), lambda d, t, r: ber.counter32(d.interfaces[r].in_packets), True),
        (IF_ENTRY + (13,), lambda d, t, r: ber.counter32(0), False),
        (IF_ENTRY + (14,), lambda d, t, r: ber.counter32(d.interfaces[r].in_errors), True),
        (IF_ENTRY + (16,), lambda d, t, r: ber.counter32(d.interfaces[r].out_octets), True),
        (IF_ENTRY + (17,), lambda d, t, r: ber.counter32(d.interfaces[r].out_packets), True),
        (IF_ENTRY + (19,), lambda d, t, r: ber.counter32(0), False),
        (IF_ENTRY + (20,), lambda d, t, r: ber.counter32(0), False),
        (IFX_ENTRY + (1,), lambda d, t, r: ber.encode_octets(d.interfaces[r].name), False),
        (IFX_ENTRY + (6,), lambda d, t, r: ber.counter64(d.interfaces[r].in_octets), True),
        (IFX_ENTRY + (7,), lambda d, t, r: ber.counter64(d.interfaces[r].in_packets), True),
        (IFX_ENTRY + (10,), lambda d, t, r: ber.counter64(d.interfaces[r].out_octets), True),
        (IFX_ENTRY + (11,), lambda d, t, r: ber.counter64(d.interfaces[r].out_packets), True),
        (IFX_ENTRY + (15,), lambda d, t, r: ber.gauge32(d.interfaces[r].speed_mbps), False),
        (IFX_ENTRY + (18,), lambda d, t, r: ber.encode_octets(d.interfaces[r].alias), False),
    ]
    out: list[tuple[Oid, Getter]] = [(IF_NUMBER, lambda d, t: ber.encode_integer(len(d.interfaces)))]
    for prefix, fn, live in columns:
        out.extend((prefix + (row + 1,), col(row, fn, live)) for row in range(count))
    return out


def _host_getters(storage_indices: tuple[int, ...], cpus: int) -> list[tuple[Oid, Getter]]:
    ram_oid = ber.encode_oid(HR_STORAGE_RAM)
    disk_oid = ber.encode_oid(HR_STORAGE_FIXED_DISK)
    zero_oid = ber.encode_oid((0, 0))
    out: list[tuple[Oid, Getter]] = [
        (HR_SYSTEM_UPTIME, lambda d, t: ber.timeticks(d.uptime_ticks(t))),
        (HR_MEMORY_SIZE, lambda d, t: ber.encode_integer(d.profile.memory_mb * 1024)),
    ]
    for pos, index in enumerate(storage_indices):
        def storage(fn: Callable[[SimDevice, float, int], bytes], p: int = pos) -> Getter:
            return lambda d, t: fn(d, t, p)

        out += [
            (HR_STORAGE_ENTRY + (1, index), storage(lambda d, t, p: ber.encode_integer(d.storages[p].index))),
            (HR_STORAGE_ENTRY + (2, index),
             storage(lambda d, t, p: ram_oid if d.storages[p].ram else disk_oid)),
            (HR_STORAGE_ENTRY + (3, index), storage(lambda d, t, p: ber.encode_octets(d.storages[p].descr))),
            (HR_STORAGE_ENTRY + (4, index),
             storage(lambda d, t, p: ber.encode_integer(d.storages[p].allocation_unit))),
            (HR_STORAGE_ENTRY + (5, index), storage(lambda d, t, p: ber.encode_integer(d.storages[p].size_units))),
            (HR_STORAGE_ENTRY + (6, index),
             storage(lambda d, t, p: ber.encode_integer(d.storage_used(d.storages[p], t)))),
        ]
    for cpu in range(cpus):
        index = HR_DEVICE_PROCESSOR_BASE + cpu
        out.append((HR_PROCESSOR_ENTRY + (1, index), lambda d, t: zero_oid))
        out.append((HR_PROCESSOR_ENTRY + (2, index), lambda d, t: ber.encode_integer(d.cpu_percent(t))))
    return out


@dataclass(frozen=True)
class MibLayout:
    oids: tuple[Oid, ...]  # sorted
    getters: tuple[Getter, ...]
    index: dict[Oid, int]
    objects: frozenset[Oid]  # OIDs without their last arc: tells noSuchInstance from noSuchObject

    @classmethod
    def build(cls, entries: list[tuple[Oid, Getter]]) -> "MibLayout":
        entries = sorted(entries, key=lambda e: e[0])
        oids = tuple(e[0] for e in entries)
        return cls(oids, tuple(e[1] for e in entries), {o: i for i, o in enumerate(oids)},
                   frozenset(o[:-1] for o in oids))


_layouts: dict[tuple, MibLayout] = {}


def layout_for(dev: SimDevice) -> MibLayout:
    key = (len(dev.interfaces), tuple(s.index for s in dev.storages), dev.profile.cpus)
    layout = _layouts.get(key)
    if layout is None:
        entries = _system_getters() + _if_getters(key[0]) + _host_getters(key[1], key[2])
        layout = _layouts[key] = MibLayout.build(entries)
    return layout


class DeviceView:
    """One device's MIB at one simulated instant (implements engine.MibView)."""

    __slots__ = ("device", "now", "layout")

    def __init__(self, device: SimDevice, now: float, layout: MibLayout):
        self.device = device
        self.now = now
        self.layout = layout

    def get(self, oid: Oid) -> bytes | None:
        i = self.layout.index.get(oid)
        return None if i is None else self.layout.getters[i](self.device, self.now)

    def next(self, oid: Oid) -> tuple[Oid, bytes] | None:
        i = bisect_right(self.layout.oids, oid)
        if i >= len(self.layout.oids):
            return None
        return self.layout.oids[i], self.layout.getters[i](self.device, self.now)

    def has_object(self, oid: Oid) -> bool:
        return oid[:-1] in self.layout.objects
