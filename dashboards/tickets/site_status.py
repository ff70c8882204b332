"""What the call centre sees of a caller at once: the site's live state, its open alarms, its recent changes.

Read from the running monitor only (``ConsoleContext``): the engine's current
states, alerting's open alarms, the store's transitions, the maintenance book.
A municipality's alarms are those labelled with its site plus the root causes
elsewhere that made its devices unreachable (a prefecture FW down is why Otaru
cannot reach anything); a prefecture's are every alarm in the prefecture.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from alerting.model import AlarmStatus
from dashboards.tickets.callers import Caller
from monitor.inventory.model import Device, Link, Role, Tier
from monitor.maintenance import MaintenanceWindow, ScopeKind
from monitor.state.model import State, StateRecord, SubjectKind, Transition

if TYPE_CHECKING:
    from alerting.model import Alarm
    from dashboards.context import ConsoleContext

RECENT_CHANGES = 15
RECENTLY_RESOLVED = 24 * 3600  # a caller often rings after the fault has cleared: "what happened this morning?"


@dataclass(frozen=True)
class SiteStatus:
    caller: Caller
    state: StateRecord | None  # None: not judged yet
    devices: list[tuple[Device, StateRecord | None]]  # polled devices of the site (and a prefecture's unit)
    lines: list[tuple[Link, StateRecord | None]]  # the site's leased lines
    alarms: list[Alarm]  # open or resolved within RECENTLY_RESOLVED, most severe first
    changes: list[Transition]  # newest first
    maintenance: list[MaintenanceWindow]  # in force now or still to come
    municipalities: dict[State, int]  # a prefecture's municipalities by state (empty for a municipality)


async def site_status(ctx: ConsoleContext, caller: Caller, now: float) -> SiteStatus:
    inventory = ctx.inventory
    site = caller.site
    devices = [d for d in inventory.devices_by_site.get(site, ()) if d.role.answers_snmp]
    if caller.tier is Tier.PREFECTURE:
        devices += [d for centre in inventory.sites_of_tier(Tier.AGGREGATION)
                    for d in inventory.devices_by_site.get(centre.id, ())
                    if d.role is Role.PREFECTURE_UNIT and d.prefecture == caller.prefecture]
    ids = {d.id for d in devices}
    lines = [link for link in inventory.links.values() if link.a in ids]
    states = ctx.engine.states
    subjects = [site, *(d.id for d in devices), *(link.id for link in lines)]
    history = [t for s in subjects for t in await ctx.store.transitions(subject=s, limit=RECENT_CHANGES)]
    changes = sorted(history, key=lambda t: t.at, reverse=True)[:RECENT_CHANGES]
    municipalities: Counter[State] = Counter()
    if caller.tier is Tier.PREFECTURE:
        for muni in inventory.sites_of_tier(Tier.MUNICIPALITY):
            if muni.prefecture == caller.prefecture:
                record = states.get((SubjectKind.SITE, muni.id))
                municipalities[record.state if record else State.UNKNOWN] += 1
    return SiteStatus(
        caller, states.get((SubjectKind.SITE, site)),
        [(d, states.get((SubjectKind.DEVICE, d.id))) for d in devices],
        [(link, states.get((SubjectKind.LINK, link.id))) for link in lines],
        _alarms(ctx, caller, ids, now), changes, _maintenance(ctx, caller, ids, now),
        dict(sorted(municipalities.items(), key=lambda kv: kv[0].rank)))


def _alarms(ctx: ConsoleContext, caller: Caller, devices: set[str], now: float) -> list[Alarm]:
    if ctx.alerting is None:
        return []
    statuses = (AlarmStatus.FIRING, AlarmStatus.ACKNOWLEDGED, AlarmStatus.RESOLVED)
    if caller.tier is Tier.PREFECTURE:
        found = ctx.alerting.open_alarms([f'prefecture="{caller.prefecture}"'], statuses=statuses)
    else:
        found = [a for a in ctx.alerting.open_alarms(statuses=statuses)
                 if a.labels.get("site") == caller.site or not devices.isdisjoint(a.suppressed)]
    return [a for a in found if a.resolved_at is None or a.resolved_at >= now - RECENTLY_RESOLVED]


def _maintenance(ctx: ConsoleContext, caller: Caller, devices: set[str], now: float) -> list[MaintenanceWindow]:
    book = ctx.maintenance if ctx.maintenance is not None else ctx.engine.maintenance  # the one the engine judges by
    scopes = {(ScopeKind.SITE, caller.site), (ScopeKind.PREFECTURE, caller.prefecture),
              *((ScopeKind.DEVICE, d) for d in devices)}
    return [w for w in book.windows() if (w.scope_kind, w.scope_id) in scopes and w.final_end > now]
