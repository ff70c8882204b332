"""Incidents (障害) of a period from the alarms: how many, how severe, how fast they were handled.

An incident is an alarm of the monitor that began in the period — not a drill,
not raised inside a maintenance window, and not a renewal reminder (LIFECYCLE)
or a planned stop (OFF_SCHEDULE), which are not failures. Alarms of the IDS
(``source=ids``) are counted apart as unauthorised-access detections.

MTTR is the mean time from start to resolution over the incidents resolved;
MTTA the mean time to the first acknowledgement. An alarm that fired again
(reopened) is counted once, with its latest episode.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from statistics import fmean
from typing import Iterable

from alerting.alarms import severity_rank
from alerting.model import Alarm
from dashboards.reporting.availability import Period
from monitor.state.model import ConditionKind

NOT_INCIDENTS = frozenset({ConditionKind.LIFECYCLE.value, ConditionKind.OFF_SCHEDULE.value})
IDS_SOURCE = "ids"
LONGEST = 10


@dataclass(frozen=True)
class IncidentSummary:
    count: int
    by_severity: dict[str, int]  # most severe first
    by_kind: dict[str, int]  # most frequent first
    by_tier: dict[str, int]
    resolved: int
    mttr: float | None  # seconds
    mtta: float | None
    longest: list[Alarm]  # the longest to resolve (still open ones count up to the period's end)
    detections: int  # IDS alarms
    detections_by_kind: dict[str, int]


def summarise(alarms: Iterable[Alarm], period: Period, now: float) -> IncidentSummary:
    in_period = [a for a in alarms if period.start <= a.started < period.end and not a.drill]
    incidents = [a for a in in_period if a.labels.get("source") != IDS_SOURCE and not a.in_maintenance
                 and a.labels.get("kind") not in NOT_INCIDENTS]
    detections = [a for a in in_period if a.labels.get("source") == IDS_SOURCE]
    resolved = [a for a in incidents if a.resolved_at is not None]
    acknowledged = [a for a in incidents if a.acknowledged_at is not None]
    horizon = min(period.end, now)

    def lasted(alarm: Alarm) -> float:
        return (alarm.resolved_at if alarm.resolved_at is not None else horizon) - alarm.started

    severities = Counter(a.severity for a in incidents)
    return IncidentSummary(
        count=len(incidents),
        by_severity=dict(sorted(severities.items(), key=lambda kv: severity_rank(kv[0]))),
        by_kind=_by_count(a.labels.get("kind", "") for a in incidents),
        by_tier=_by_count(a.labels.get("tier", "") for a in incidents),
        resolved=len(resolved),
        mttr=fmean(lasted(a) for a in resolved) if resolved else None,
        mtta=fmean(a.acknowledged_at - a.started for a in acknowledged  # type: ignore[operator]
                   ) if acknowledged else None,
        longest=sorted(incidents, key=lasted, reverse=True)[:LONGEST],
        detections=len(detections),
        detections_by_kind=_by_count(a.labels.get("kind", "") for a in detections),
    )


def _by_count(values: Iterable[str]) -> dict[str, int]:
    return dict(sorted(Counter(values).items(), key=lambda kv: (-kv[1], kv[0])))
