"""The two shapes every package exchanges: ``Sample`` (a measurement) and ``Event`` (something happened).

Modelled on Suricata's EVE JSON: one header that every record shares — time,
type, source, device and where it sits — plus a body of the type's own. Tools
downstream (bus, TSDB writer, monitor, IDS, alerting, console, drill timeline)
never special-case the producer.

Samples are high-volume and map one-to-one onto an InfluxDB point
(measurement, tags, fields, time); events are lower-volume and carry a body.
Both serialise to compact JSON for MQTT.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from monitor.inventory.model import Device, Inventory

FieldValue = float | int | str | bool


class EventType(StrEnum):
    POLL = "poll"  # a device poll's outcome (reachable or not, why, how long)
    TRAP = "trap"  # SNMP trap or inform received
    SYSLOG = "syslog"  # syslog message received (firewalls, servers)
    TLS = "tls"  # TLS service check: certificate facts
    AUDIT = "audit"  # operator audit record (業務端末)
    ALERT = "alert"  # an IDS or monitor judgement
    STATE = "state"  # a state change of a device, link or site
    DRILL = "drill"  # a drill inject or action


class Severity(StrEnum):
    """Syslog-compatible levels, most severe first."""

    EMERGENCY = "emergency"
    ALERT = "alert"
    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    NOTICE = "notice"
    INFO = "info"
    DEBUG = "debug"

    @classmethod
    def from_syslog(cls, level: int) -> "Severity":
        return list(cls)[max(0, min(7, level))]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a record comes from in the watched network (all optional: a trap may be from an unknown host)."""

    device: str | None = None
    site: str | None = None
    prefecture: str | None = None  # JIS code
    tier: str | None = None
    role: str | None = None

    def tags(self) -> dict[str, str]:
        return {k: v for k, v in (("device", self.device), ("site", self.site), ("prefecture", self.prefecture),
                                  ("tier", self.tier), ("role", self.role)) if v is not None}


def origin_of(inventory: "Inventory | None", device: "Device | None") -> Origin:
    """Where a device sits, for the header of every record about it (empty when unknown)."""
    if device is None:
        return Origin()
    site = inventory.sites.get(device.site) if inventory is not None else None
    return Origin(device.id, device.site, device.prefecture, site.tier.value if site else None, device.role.value)


@dataclass(frozen=True, slots=True)
class Sample:
    """One measurement: an InfluxDB point. ``ts`` is epoch seconds (UTC)."""

    measurement: str  # "system", "interface", "host", "storage", "tls", "icmp", "poll"
    ts: float
    origin: Origin
    fields: Mapping[str, FieldValue]
    tags: Mapping[str, str] = field(default_factory=dict)  # beyond the origin: if_index, if_name, ...

    def all_tags(self) -> dict[str, str]:
        return {**self.origin.tags(), **self.tags}

    def to_json(self) -> dict[str, Any]:
        return {"kind": "sample", "measurement": self.measurement, "ts": self.ts, "tags": self.all_tags(),
                "fields": dict(self.fields)}


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened. ``body`` is the type's own object (EVE style)."""

    event_type: EventType
    ts: float
    source: str  # the producing component, e.g. "collector.syslog", "ids.traffic"
    origin: Origin = field(default_factory=Origin)
    severity: Severity = Severity.INFO
    message: str = ""
    src_ip: str | None = None
    dest_ip: str | None = None
    body: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": "event", "event_type": self.event_type.value, "ts": self.ts,
                                "source": self.source, "severity": self.severity.value, "message": self.message,
                                **self.origin.tags()}
        if self.src_ip is not None:
            data["src_ip"] = self.src_ip
        if self.dest_ip is not None:
            data["dest_ip"] = self.dest_ip
        data[self.event_type.value] = dict(self.body)
        return data


class EnvelopeError(ValueError):
    """A JSON record that is not a valid Sample or Event."""


def encode(record: Sample | Event) -> bytes:
    return json.dumps(record.to_json(), ensure_ascii=False, separators=(",", ":")).encode()


def decode(payload: bytes | str) -> Sample | Event:
    """Parse one JSON record from the bus; raise EnvelopeError with the reason if it is not one."""
    return decode_record(_load(payload))


def decode_batch(payload: bytes | str) -> list[Sample | Event]:
    """Parse a JSON array of records (a poll's ``samples`` message) without re-encoding each one."""
    items = _load(payload)
    if not isinstance(items, list):
        raise EnvelopeError("a batch is a JSON array")
    return [decode_record(item) for item in items]


def decode_record(data: Any) -> Sample | Event:
    """One record from already-parsed JSON; EnvelopeError with the reason if it is not one."""
    if not isinstance(data, dict):
        raise EnvelopeError("a record is a JSON object")
    kind = data.get("kind")
    ts = data.get("ts")
    if not isinstance(ts, (int, float)) or isinstance(ts, bool) or not math.isfinite(ts):
        raise EnvelopeError("ts must be a finite number")
    if kind == "sample":
        return _decode_sample(data, float(ts))
    if kind == "event":
        return _decode_event(data, float(ts))
    raise EnvelopeError(f"unknown kind {kind!r}")


def _load(payload: bytes | str) -> Any:
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EnvelopeError(f"not JSON: {exc}") from None
    except RecursionError:
        raise EnvelopeError("not JSON: nested too deeply") from None


_ORIGIN_KEYS = ("device", "site", "prefecture", "tier", "role")


def _origin(data: Mapping[str, Any]) -> Origin:
    values = {k: data.get(k) for k in _ORIGIN_KEYS}
    for key, value in values.items():
        if value is not None and not isinstance(value, str):
            raise EnvelopeError(f"{key} must be a string")
    return Origin(**values)


def _decode_sample(data: dict[str, Any], ts: float) -> Sample:
    tags, fields_ = data.get("tags"), data.get("fields")
    measurement = data.get("measurement")
    if not isinstance(measurement, str) or not measurement:
        raise EnvelopeError("measurement must be a non-empty string")
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise EnvelopeError("tags must be an object of strings")
    if not isinstance(fields_, dict) or not fields_:
        raise EnvelopeError("fields must be a non-empty object")
    for key, value in fields_.items():
        if not isinstance(value, (int, float, str, bool)) or (isinstance(value, float) and not math.isfinite(value)):
            raise EnvelopeError(f"field {key} must be a finite number, string or boolean")
    origin = _origin(tags)
    extra = {k: v for k, v in tags.items() if k not in _ORIGIN_KEYS}
    return Sample(measurement, ts, origin, fields_, extra)


def _decode_event(data: dict[str, Any], ts: float) -> Event:
    try:
        event_type = EventType(data.get("event_type"))
        severity = Severity(data.get("severity", "info"))
    except ValueError as exc:
        raise EnvelopeError(str(exc)) from None
    body = data.get(event_type.value, {})
    if not isinstance(body, dict):
        raise EnvelopeError(f"{event_type.value} body must be an object")
    source, message = data.get("source"), data.get("message", "")
    if not isinstance(source, str) or not isinstance(message, str):
        raise EnvelopeError("source and message must be strings")
    src_ip, dest_ip = data.get("src_ip"), data.get("dest_ip")
    if not all(v is None or isinstance(v, str) for v in (src_ip, dest_ip)):
        raise EnvelopeError("src_ip and dest_ip must be strings")
    return Event(event_type, ts, source, _origin(data), severity, message, src_ip, dest_ip, body)
