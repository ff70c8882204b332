"""From raw poll results to samples and events: rates, utilisation, reboots, port changes."""

from __future__ import annotations

from dataclasses import dataclass, field

from collectors.rates import CounterTracker, Discontinuity, Reading, uptime_delta_seconds
from collectors.snmp.client import Value
from collectors.snmp.probe import DeviceTables, RawPoll
from monitor.envelope import Event, EventType, Origin, Sample, Severity

IF_UP, IF_DOWN = 1, 2
_OCTETS = (("in_octets", "in_bps"), ("out_octets", "out_bps"))  # width per port: row["counter_bits"]
_COUNTERS32 = (("in_errors", "in_errors_ps"), ("out_errors", "out_errors_ps"),
               ("in_discards", "in_discards_ps"), ("out_discards", "out_discards_ps"))


@dataclass
class DeviceHistory:
    """What the converter remembers about one device between polls."""

    tables: DeviceTables | None = None
    uptime_ticks: int | None = None
    wall_time: float | None = None
    oper_status: dict[int, int] = field(default_factory=dict)


def _int(value: Value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class PollConverter:
    """Turns successive RawPolls of many devices into Samples and Events."""

    def __init__(self) -> None:
        self.counters = CounterTracker()
        self.devices: dict[str, DeviceHistory] = {}

    def history(self, device_id: str) -> DeviceHistory:
        return self.devices.setdefault(device_id, DeviceHistory())

    def convert(self, origin: Origin, raw: RawPoll, wall_time: float) -> tuple[list[Sample], list[Event]]:
        device_id = origin.device or "?"
        past = self.history(device_id)
        events: list[Event] = []
        if past.uptime_ticks is not None and past.wall_time is not None and uptime_delta_seconds(
                past.uptime_ticks, raw.uptime_ticks, wall_time - past.wall_time) is None:
            past.tables = None  # interfaces may have been renumbered: learn the tables again
            events.append(Event(EventType.STATE, wall_time, "collector.snmp", origin, Severity.WARNING,
                                f"{device_id} rebooted (sysUpTime {raw.uptime_ticks / 100:.0f} s)",
                                body={"change": "reboot", "uptime_s": raw.uptime_ticks / 100,
                                      "previous_uptime_s": past.uptime_ticks / 100}))
        samples = [Sample("system", wall_time, origin, {"uptime_s": raw.uptime_ticks / 100,
                                                        "rtt_ms": round(raw.rtt_ms, 3)})]
        names = past.tables.interfaces if past.tables else {}
        for index, row in sorted(raw.interfaces.items()):
            samples.append(self._interface(origin, index, row, names.get(index, ("", "")), raw, wall_time))
            status = _int(row.get("oper_status"))
            before = past.oper_status.get(index)
            if status is not None and before is not None and status != before:
                events.append(self._port_change(origin, index, names.get(index, ("", "")), before, status,
                                                wall_time))
            if status is not None:
                past.oper_status[index] = status
        if raw.processors:
            samples.append(Sample("host", wall_time, origin, {
                "cpu_pct": sum(raw.processors) / len(raw.processors), "cpu_max_pct": max(raw.processors)}))
        storage_names = past.tables.storages if past.tables else {}
        for index, row in sorted(raw.storages.items()):
            units, size, used = _int(row.get("units")), _int(row.get("size")), _int(row.get("used"))
            if not units or not size or used is None:
                continue
            samples.append(Sample("storage", wall_time, origin, {
                "used_pct": round(100.0 * used / size, 3), "used_bytes": used * units, "size_bytes": size * units,
            }, {"storage": storage_names.get(index, str(index))}))
        past.uptime_ticks, past.wall_time = raw.uptime_ticks, wall_time
        return samples, events

    def _interface(self, origin: Origin, index: int, row: dict[str, Value], name: tuple[str, str],
                   raw: RawPoll, wall_time: float) -> Sample:
        fields: dict[str, float | int] = {}
        status = _int(row.get("oper_status"))
        if status is not None:
            fields["oper_status"] = status
        speed = row.get("speed_mbps")
        speed = speed if isinstance(speed, (int, float)) and not isinstance(speed, bool) and speed > 0 else None
        max_octets = speed * 125_000 if speed else None
        octet_bits = _int(row.get("counter_bits")) or 64
        for column, field_name, scale, bits, limit in (
                *((c, f, 8, octet_bits, max_octets) for c, f in _OCTETS),
                *((c, f, 1, 32, None) for c, f in _COUNTERS32)):
            value = _int(row.get(column))
            if value is None:
                continue
            result = self.counters.update((origin.device, index, column), Reading(raw.uptime_ticks, value),
                                          wall_time, bits=bits, max_rate=limit)
            if result.rate is not None and result.discontinuity is Discontinuity.NONE:
                fields[field_name] = result.rate * scale
        if speed and "in_bps" in fields and "out_bps" in fields:
            fields["utilisation_pct"] = round(100 * max(fields["in_bps"], fields["out_bps"]) / (speed * 1e6), 3)
        tags = {"if_index": str(index)}
        if name[0]:
            tags["if_name"] = name[0]
        if name[1]:
            tags["if_alias"] = name[1]
        return Sample("interface", wall_time, origin, fields or {"oper_status": 0}, tags)

    @staticmethod
    def _port_change(origin: Origin, index: int, name: tuple[str, str], before: int, after: int,
                     wall_time: float) -> Event:
        label = name[0] or f"ifIndex {index}"
        circuit = f" ({name[1]})" if name[1] else ""
        down = after != IF_UP
        return Event(EventType.STATE, wall_time, "collector.snmp", origin,
                     Severity.ERROR if down else Severity.NOTICE,
                     f"{origin.device} {label}{circuit} {'down' if down else 'up'}",
                     body={"change": "interface", "if_index": index, "if_name": name[0], "if_alias": name[1],
                           "oper_status": after, "previous": before})
