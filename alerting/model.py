"""The shapes alerting speaks: alarms (what operators handle) and notifications (what receivers get).

An ``Alarm`` is born from a monitor ``Condition`` (or an IDS alert) and keyed by
the same fingerprint; it adds what people do to it (acknowledge, comment,
resolve, close) and its labels for routing, grouping, silences and inhibition.
A ``Notification`` is one message to one receiver about one group of alarms; its
id is deterministic (group key, receiver, step, sequence), so the outbox can
deliver each exactly once across restarts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class AlarmStatus(StrEnum):
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"  # the condition cleared (or resolved by hand)
    CLOSED = "closed"  # done with: no longer shown among open alarms


SEVERITY_ORDER = ("emergency", "alert", "critical", "error", "warning", "notice", "info", "debug")


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One thing that happened to an alarm, for its timeline and export."""

    at: float
    action: str  # raised, updated, acknowledged, commented, escalated, notified, silenced, resolved, closed, ...
    actor: str  # "monitor", "alerting", or the operator's user name
    text: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Alarm:
    fingerprint: str
    labels: dict[str, str]  # kind, subject, severity, site, prefecture, role, tier, source ("monitor" | "ids")
    summary: str  # Japanese, one line
    severity: str  # monitor.envelope.Severity value
    started: float
    status: AlarmStatus = AlarmStatus.FIRING
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    resolved_at: float | None = None
    closed_at: float | None = None
    suppressed: tuple[str, ...] = ()  # children of a root cause, shown on request
    suppressed_count: int = 0
    in_maintenance: bool = False
    drill: bool = False  # raised by a drill: marked 訓練 everywhere
    timeline: list[TimelineEntry] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Notification:
    id: str  # deterministic: f"{group_key}|{receiver}|{step}|{sequence}"
    receiver: str  # receiver name from the routing configuration
    group_key: str
    alarms: tuple[str, ...]  # fingerprints
    subject: str
    body: str
    created: float
    kind: str = "firing"  # firing | resolved | escalation | reminder
    drill: bool = False
