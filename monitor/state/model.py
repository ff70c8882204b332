"""The monitor's judgement, as data: states of devices, links and sites, and the conditions raised.

Shared by the state engine (which computes them), the store (which keeps them
across restarts), alerting (which turns conditions into alarms) and the console.

A *condition* is the monitor's statement that something is wrong, with a stable
fingerprint: while it holds it stays one condition however often it is observed;
alerting deduplicates on the fingerprint. A root-cause condition carries the ids
of the subjects it makes UNREACHABLE (``suppressed``), so the operator sees one
alarm with a count, and the children on request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class State(StrEnum):
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"
    UNREACHABLE = "unreachable"  # cannot be judged: something it depends on is down
    MAINTENANCE = "maintenance"  # inside a maintenance window
    OFF_SCHEDULE = "off_schedule"  # stopped as planned, outside the operating window
    UNKNOWN = "unknown"  # not observed yet

    @property
    def rank(self) -> int:
        """Worst first when a site or prefecture shows the worst of its members."""
        return _RANK[self]


_RANK = {State.DOWN: 0, State.UNREACHABLE: 1, State.DEGRADED: 2, State.MAINTENANCE: 3, State.OFF_SCHEDULE: 4,
         State.UNKNOWN: 5, State.UP: 6}


class SubjectKind(StrEnum):
    DEVICE = "device"
    LINK = "link"
    SITE = "site"


@dataclass(frozen=True, slots=True)
class StateRecord:
    """The current state of one subject, and since when (epoch seconds)."""

    kind: SubjectKind
    subject: str  # device, link or site id
    state: State
    since: float
    reason: str = ""  # why, in one line (Japanese-neutral code such as "poll_timeout", "parent_down:<id>")
    flapping: bool = False
    details: dict[str, Any] = field(default_factory=dict)


class ConditionKind(StrEnum):
    DEVICE_DOWN = "device_down"
    SITE_UNREACHABLE = "site_unreachable"  # every line of a site cut: one alarm for the site
    ROOT_CAUSE = "root_cause"  # a device down with dependants made unreachable
    REDUNDANCY_LOST = "redundancy_lost"  # 二重化喪失: one line of a duplicated pair down
    LINK_DOWN = "link_down"
    DEGRADED = "degraded"  # errors, loss, latency, CPU, memory, disk above thresholds
    FLAPPING = "flapping"
    REBOOTED = "rebooted"
    OFF_SCHEDULE = "off_schedule"
    ORDER_VIOLATION = "order_violation"  # start-up / shut-down order not respected
    LIFECYCLE = "lifecycle"  # support end, weak crypto, certificate expiry
    IDS_TRAFFIC = "ids_traffic"  # suspicious communication (ids.traffic): raised by the IDS, resolved by people
    IDS_OPERATIONS = "ids_operations"  # suspicious operator behaviour (ids.operations)


class ConditionStatus(StrEnum):
    ACTIVE = "active"
    CLEARED = "cleared"


@dataclass(slots=True)
class Condition:
    """Something wrong, as long as it holds. ``fingerprint`` is ``kind:subject[:detail]``."""

    fingerprint: str
    kind: ConditionKind
    subject: str
    severity: str  # monitor.envelope.Severity value
    started: float
    summary: str  # one line for people (Japanese)
    status: ConditionStatus = ConditionStatus.ACTIVE
    cleared: float | None = None
    suppressed: tuple[str, ...] = ()  # subjects made UNREACHABLE by this root cause
    in_maintenance: bool = False  # raised inside a maintenance window: recorded, not alarmed
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of a subject's state, for the history."""

    kind: SubjectKind
    subject: str
    old: State
    new: State
    at: float
    reason: str = ""
