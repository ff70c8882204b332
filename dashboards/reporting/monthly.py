"""The monthly operations report (月次運用報告): availability per tier, prefecture and site, incidents, calls.

Assembled from what the running monitor keeps — the state history in the
store, the current states, the alarms, the call centre's tickets — for one
calendar month in Japan time. A month not over yet is reported up to now and
marked partial. The console renders it as a printable A4 page.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from alerting.model import AlarmStatus
from dashboards.reporting.availability import Availability, Period, time_in_states, total
from dashboards.reporting.incidents import IncidentSummary, summarise
from monitor.inventory.model import Site, Tier
from monitor.state.model import SubjectKind

if TYPE_CHECKING:
    from dashboards.context import ConsoleContext
    from dashboards.tickets import TicketStore

HISTORY_LIMIT = 500_000  # transitions read for one month; more than this and the report says it is incomplete
WORST_SITES = 50
TIER_ORDER = (Tier.NATIONAL, Tier.AGGREGATION, Tier.AGENCY, Tier.PREFECTURE, Tier.MUNICIPALITY)


@dataclass(frozen=True, slots=True)
class SiteAvailability:
    site: Site
    availability: Availability


@dataclass(frozen=True, slots=True)
class PrefectureAvailability:
    code: str
    name: str
    availability: Availability  # its prefecture site and municipalities together
    sites_below: int  # sites under 100 %


@dataclass(frozen=True)
class CallSummary:
    count: int
    by_category: dict[str, int]
    by_status: dict[str, int]


@dataclass(frozen=True)
class MonthlyReport:
    period: Period
    generated: float
    partial: bool  # the month is not over
    truncated: bool  # the history had more transitions than were read: availability is approximate
    by_tier: dict[Tier, Availability]
    by_prefecture: list[PrefectureAvailability]
    worst_sites: list[SiteAvailability]  # lowest availability first, only sites under 100 %
    sites_below: int
    incidents: IncidentSummary | None  # None without alerting
    calls: CallSummary | None  # None without the call centre's tickets


async def monthly_report(ctx: ConsoleContext, period: Period, now: float,
                         tickets: TicketStore | None = None) -> MonthlyReport:
    sites = ctx.inventory.sites
    history = await ctx.store.transitions(since=period.start, limit=HISTORY_LIMIT)
    current = {subject: record.state for (kind, subject), record in ctx.engine.states.items()
               if kind is SubjectKind.SITE}
    per_site = time_in_states((t for t in history if t.kind is SubjectKind.SITE), current, sites, period, now)
    rows = [SiteAvailability(sites[s], a) for s, a in per_site.items()]
    below = sorted((r for r in rows if r.availability.ratio is not None and r.availability.ratio < 1),
                   key=lambda r: (r.availability.ratio, r.site.id))
    alarms = ctx.alerting.open_alarms(statuses=list(AlarmStatus)) if ctx.alerting is not None else None
    calls = None
    if tickets is not None:
        opened = await tickets.opened_between(period.start, period.end)
        calls = CallSummary(len(opened), _counts(t.category.value for t in opened),
                            _counts(t.status.value for t in opened))
    return MonthlyReport(
        period=period, generated=now, partial=now < period.end, truncated=len(history) >= HISTORY_LIMIT,
        by_tier={tier: total(r.availability for r in rows if r.site.tier is tier) for tier in TIER_ORDER},
        by_prefecture=_by_prefecture(rows, below),
        worst_sites=below[:WORST_SITES], sites_below=len(below),
        incidents=summarise(alarms, period, now) if alarms is not None else None,
        calls=calls)


def _by_prefecture(rows: list[SiteAvailability], below: list[SiteAvailability]) -> list[PrefectureAvailability]:
    names = {r.site.prefecture: r.site.name for r in rows if r.site.tier is Tier.PREFECTURE and r.site.prefecture}
    short = Counter(r.site.prefecture for r in below)
    return [PrefectureAvailability(code, name, total(r.availability for r in rows if r.site.prefecture == code),
                                   short[code]) for code, name in sorted(names.items())]


def _counts(values: Iterable[str]) -> dict[str, int]:
    return dict(Counter(values).most_common())
