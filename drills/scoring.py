"""Scoring a drill from its timeline: time to detect, time to first report, receipts per tier and prefecture,
stragglers, missed deadlines, actions out of order, points.

Everything is computed from the recorded timeline (and the recipient directory for
who was expected), never from the runner's intentions: what the report says is
what happened. A confirmation's latency is counted from the report's issue time —
the delay the national centre experiences.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from alerting.cascade import Directory, OrgTier
from drills.runner import DrillResult
from drills.scenario import Expectation, ExpectationKind
from drills.timeline import Entry, EntryKind

INJECT_KINDS = (EntryKind.FAULT, EntryKind.CLEAR, EntryKind.REPORT, EntryKind.MESSAGE, EntryKind.IDS,
                EntryKind.REFUSED)


@dataclass(frozen=True)
class TierStats:
    targets: int
    confirmed: int
    rate: float
    latency_median: float | None
    latency_p90: float | None
    latency_max: float | None


@dataclass(frozen=True)
class ReportStats:
    inject: str
    report: str
    label: str
    issued_at: float
    tiers: dict[str, TierStats]  # prefecture, municipality, all
    latencies: list[float]  # every confirmation, seconds after issue (the histogram)


@dataclass(frozen=True)
class PrefectureRow:
    code: str
    name: str
    municipalities: int
    prefecture_latency: dict[str, float | None]  # report label → the prefecture's own receipt
    municipalities_confirmed: dict[str, int]
    slowest_municipality: dict[str, float | None]


@dataclass(frozen=True)
class Straggler:
    report: str  # label
    org: str
    name: str
    tier: str
    prefecture: str
    latency: float | None  # None: never confirmed


@dataclass(frozen=True)
class ExpectationResult:
    id: str
    kind: str
    what: str
    points: float
    met: bool
    reference_at: float | None
    deadline: float | None
    done_at: float | None = None  # ACTION
    rate: float | None = None  # CONFIRM: share in time
    out_of_order: bool = False


@dataclass(frozen=True)
class Metrics:
    scenario: str
    title: str
    incident: str
    status: str
    started: float
    ended: float
    time_to_detect: float | None
    time_to_first_report: float | None
    reports: list[ReportStats]
    prefectures: list[PrefectureRow]
    stragglers: list[Straggler]
    expectations: list[ExpectationResult]
    score: float
    max_score: float
    passed: bool
    deadlines_missed: list[str] = field(default_factory=list)
    out_of_order: list[str] = field(default_factory=list)

    @property
    def percent(self) -> float:
        return 100.0 * self.score / self.max_score if self.max_score else 100.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "percent": round(self.percent, 1)}


def score(result: DrillResult, directory: Directory) -> Metrics:
    timeline, scenario = result.timeline, result.scenario
    issued = {e.subject: e for e in timeline.of(EntryKind.REPORT)}
    confirms: dict[str, dict[str, float]] = {}  # report id → org → confirmed at
    for e in timeline.of(EntryKind.CONFIRM):
        confirms.setdefault(e.data["report"], {})[e.subject] = e.at
    reports = [_report_stats(inject, issued[inject].at, r, directory, confirms.get(r.id, {}))
               for inject, r in result.reports.items() if inject in issued]
    expectations = [_expectation(e, result, directory, confirms) for e in scenario.expectations]
    first_fault = timeline.first(EntryKind.FAULT)
    detected = timeline.first(EntryKind.ACTION, "detect", since=first_fault.at) if first_fault else None
    first_report = min((e.at for e in issued.values()), default=None)
    origin = first_fault.at if first_fault else result.started
    total = sum(e.points for e in scenario.expectations)
    got = sum(x.points for x in expectations if x.met)
    return Metrics(
        scenario=scenario.name, title=scenario.title, incident=result.incident.id, status=result.status.value,
        started=result.started, ended=result.ended,
        time_to_detect=detected.at - first_fault.at if detected and first_fault else None,
        time_to_first_report=first_report - origin if first_report is not None else None,
        reports=reports, prefectures=_prefecture_rows(result, directory, issued, confirms),
        stragglers=_stragglers(result, directory, issued, confirms), expectations=expectations,
        score=got, max_score=total, passed=100.0 * got >= scenario.scoring.pass_mark * total,
        deadlines_missed=[x.id for x in expectations if not x.met],
        out_of_order=[x.id for x in expectations if x.out_of_order])


def _report_stats(inject: str, issued_at: float, report: Any, directory: Directory,
                  confirmed: dict[str, float]) -> ReportStats:
    targets = directory.targets(report)
    stats = {}
    for tier in (OrgTier.PREFECTURE.value, OrgTier.MUNICIPALITY.value, "all"):
        members = [o.id for o in targets if tier == "all" or o.tier.value == tier]
        latencies = [confirmed[o] - issued_at for o in members if o in confirmed]
        stats[tier] = _tier_stats(len(members), latencies)
    return ReportStats(inject, report.id, report.label, issued_at, stats,
                       sorted(at - issued_at for at in confirmed.values()))


def _tier_stats(targets: int, latencies: list[float]) -> TierStats:
    ordered = sorted(latencies)
    return TierStats(targets, len(ordered), len(ordered) / targets if targets else 1.0,
                     statistics.median(ordered) if ordered else None,
                     ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))] if ordered else None,
                     ordered[-1] if ordered else None)


def _prefecture_rows(result: DrillResult, directory: Directory, issued: dict[str, Entry],
                     confirms: dict[str, dict[str, float]]) -> list[PrefectureRow]:
    rows = []
    for pref in directory.prefectures(result.scenario.scope):
        munis = directory.municipalities(pref)
        own: dict[str, float | None] = {}
        count: dict[str, int] = {}
        slowest: dict[str, float | None] = {}
        for inject, report in result.reports.items():
            at = issued[inject].at
            confirmed = confirms.get(report.id, {})
            own[report.label] = confirmed[pref.id] - at if pref.id in confirmed else None
            latencies = [confirmed[m.id] - at for m in munis if m.id in confirmed]
            count[report.label] = len(latencies)
            slowest[report.label] = max(latencies) if latencies else None
        rows.append(PrefectureRow(pref.prefecture or "", pref.name, len(munis), own, count, slowest))
    return rows


def _stragglers(result: DrillResult, directory: Directory, issued: dict[str, Entry],
                confirms: dict[str, dict[str, float]]) -> list[Straggler]:
    late_after = result.scenario.scoring.straggler_after
    found = []
    for inject, report in result.reports.items():
        at, confirmed = issued[inject].at, confirms.get(report.id, {})
        for org in directory.targets(report):
            latency = confirmed[org.id] - at if org.id in confirmed else None
            if latency is None or latency > late_after:
                found.append(Straggler(report.label, org.id, org.name, org.tier.value, org.prefecture or "", latency))
    return found


def _reference(expectation: Expectation, result: DrillResult) -> float | None:
    """When the deadline starts: the referenced inject happened, or the referenced expectation's action was done."""
    timeline = result.timeline
    entry = next((e for e in timeline.entries if e.kind in INJECT_KINDS and e.subject == expectation.after), None)
    if entry is not None:
        return entry.at
    before = next((e for e in result.scenario.expectations if e.id == expectation.after), None)
    if before is not None and before.kind is ExpectationKind.ACTION:
        done = timeline.first(EntryKind.ACTION, before.action)
        return done.at if done else None
    return None


def _expectation(expectation: Expectation, result: DrillResult, directory: Directory,
                 confirms: dict[str, dict[str, float]]) -> ExpectationResult:
    ref = _reference(expectation, result)
    deadline = ref + expectation.within if ref is not None else None
    base = {"id": expectation.id, "kind": expectation.kind.value, "points": expectation.points,
            "reference_at": ref, "deadline": deadline}
    if expectation.kind is ExpectationKind.ACTION:
        done = result.timeline.first(EntryKind.ACTION, expectation.action)
        done_at = done.at if done else None
        early = done_at is not None and ref is not None and done_at < ref
        met = done_at is not None and deadline is not None and not early and done_at <= deadline
        return ExpectationResult(what=f"{expectation.by.value if expectation.by else ''}: {expectation.action}",
                                 met=met, done_at=done_at, out_of_order=early, **base)
    report = next((r for i, r in result.reports.items() if i == expectation.report), None)
    tier = expectation.tier.value if expectation.tier else "all"
    what = f"{tier}: {expectation.report} 受信確認 {expectation.min_rate:.0%}"
    if report is None or deadline is None:
        return ExpectationResult(what=what, met=False, rate=0.0, **base)
    members = [o.id for o in directory.targets(report) if tier == "all" or o.tier.value == tier]
    confirmed = confirms.get(report.id, {})
    in_time = sum(1 for o in members if o in confirmed and confirmed[o] <= deadline)
    rate = in_time / len(members) if members else 1.0
    return ExpectationResult(what=what, met=rate >= expectation.min_rate, rate=rate, **base)
