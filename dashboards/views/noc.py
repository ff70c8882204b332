"""The NOC board (監視盤): the national picture at a glance, and its drill-down by prefecture.

``/`` shows the national centre and the aggregation centre on top, then the 47
prefectures, each a card whose municipalities are tiles coloured by the site's
worst state (the engine's site state: the worst of its devices), with open
alarm counts by severity. ``/prefectures/{code}`` shows one prefecture's
network, its processing unit at the aggregation centre and its municipalities
by name. Tiles link to the site page (``views.device``).

Fast at full scale (1,741 municipalities): the layout — which sites go where,
their names, tile labels — depends only on the inventory and is built once per
app; a request reads each tile's state with one dictionary look-up and counts
the open alarms in one pass.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alerting.alarms import OPEN_STATUSES
from dashboards.auth import require
from dashboards.context import ConsoleContext
from dashboards.pages import Console, console_of, error_page, render
from dashboards.i18n import lang_of, translate
from monitor.inventory.model import Device, Inventory, Role, Site, Tier
from monitor.state.model import State, SubjectKind

# The board's severity columns; rarer severities count with the nearest column.
SEVERITY_BUCKETS = {"emergency": "critical", "alert": "critical", "critical": "critical", "error": "error",
                    "warning": "warning", "notice": "notice", "info": "notice"}
BUCKETS = ("critical", "error", "warning", "notice")
LEGEND = (State.UP, State.DEGRADED, State.DOWN, State.UNREACHABLE, State.MAINTENANCE, State.OFF_SCHEDULE,
          State.UNKNOWN)


@dataclass(frozen=True, slots=True)
class PrefectureLayout:
    code: str
    site: Site  # the prefecture network
    unit: Device | None  # 都道府県サーバ処理装置 at the aggregation centre
    municipalities: tuple[Site, ...]


@dataclass(frozen=True)
class Layout:
    """What the board shows where: depends on the inventory only, built once."""

    centres: tuple[tuple[Site, tuple[Device, ...]], ...]  # national, aggregation, then agencies
    prefectures: tuple[PrefectureLayout, ...]
    by_code: dict[str, PrefectureLayout] = field(default_factory=dict)

    @classmethod
    def of(cls, inventory: Inventory) -> Layout:
        sites = sorted(inventory.sites.values(), key=lambda s: s.id)
        municipalities: dict[str, list[Site]] = {}
        for site in sites:
            if site.tier is Tier.MUNICIPALITY and site.prefecture:
                municipalities.setdefault(site.prefecture, []).append(site)
        units = {d.prefecture: d for d in inventory.devices.values() if d.role is Role.PREFECTURE_UNIT}
        prefectures = tuple(PrefectureLayout(s.prefecture or "", s, units.get(s.prefecture),
                                             tuple(municipalities.get(s.prefecture or "", ())))
                            for s in sites if s.tier is Tier.PREFECTURE)
        centres = tuple((s, tuple(sorted(inventory.devices_by_site.get(s.id, ()), key=lambda d: d.id)))
                        for tier in (Tier.NATIONAL, Tier.AGGREGATION, Tier.AGENCY) for s in sites if s.tier is tier)
        return cls(centres, prefectures, {p.code: p for p in prefectures})


def layout_of(console: Console) -> Layout:
    layout = console.cache.get("noc.layout")
    if layout is None:
        layout = console.cache["noc.layout"] = Layout.of(console.ctx.inventory)
    return layout


@dataclass
class AlarmTally:
    """Open alarms counted once: nationally, per prefecture and per site, by severity bucket."""

    total: Counter[str] = field(default_factory=Counter)
    prefectures: dict[str, Counter[str]] = field(default_factory=dict)
    sites: Counter[str] = field(default_factory=Counter)
    unacknowledged: int = 0

    @classmethod
    def of(cls, ctx: ConsoleContext) -> AlarmTally:
        tally = cls()
        if ctx.alerting is None:
            return tally
        for alarm in ctx.alerting.open_alarms(statuses=OPEN_STATUSES):
            bucket = SEVERITY_BUCKETS.get(alarm.severity)
            if bucket is None:
                continue
            tally.total[bucket] += 1
            tally.unacknowledged += alarm.status.value == "firing"
            prefecture, site = alarm.labels.get("prefecture"), alarm.labels.get("site")
            if prefecture:
                tally.prefectures.setdefault(prefecture, Counter())[bucket] += 1
            if site:
                tally.sites[site] += 1
        return tally


def current_states(ctx: ConsoleContext) -> tuple[dict[str, str], dict[str, str]]:
    """Site and device states (id → state value), in one pass over the engine's states."""
    sites: dict[str, str] = {}
    devices: dict[str, str] = {}
    for (kind, subject), record in ctx.engine.states.items():
        if kind is SubjectKind.SITE:
            sites[subject] = record.state.value
        elif kind is SubjectKind.DEVICE:
            devices[subject] = record.state.value
    return sites, devices


def worst(states: list[str]) -> str:
    return min(states, key=lambda s: State(s).rank, default=State.UNKNOWN.value)


def site_name(site: Site, lang: str) -> str:
    return site.name if lang == "ja" or not site.name_en else site.name_en


@require()
async def board(request: Request) -> Response:
    console = console_of(request)
    layout = layout_of(console)
    sites, devices = current_states(console.ctx)
    tally = AlarmTally.of(console.ctx)
    unknown = State.UNKNOWN.value
    prefectures = []
    legend: Counter[str] = Counter()
    for pref in layout.prefectures:
        tiles = [(m, sites.get(m.id, unknown)) for m in pref.municipalities]
        legend.update(state for _, state in tiles)
        own = [sites.get(pref.site.id, unknown)] + ([devices.get(pref.unit.id, unknown)] if pref.unit else [])
        prefectures.append((pref, tiles, own, worst(own + [s for _, s in tiles])))
    centres = [(site, sites.get(site.id, unknown), [(d, devices.get(d.id, unknown)) for d in members])
               for site, members in layout.centres]
    return render(request, "noc.html", {
        "centres": centres, "prefectures": prefectures, "tally": tally, "buckets": BUCKETS,
        "legend": [(s.value, legend.get(s.value, 0)) for s in LEGEND], "site_name": site_name,
        "unit_label": unit_label})


@require()
async def prefecture(request: Request) -> Response:
    console = console_of(request)
    pref = layout_of(console).by_code.get(request.path_params["code"])
    lang = lang_of(request)
    if pref is None:
        return error_page(request, 404, translate(lang, "error.not_found", what=request.path_params["code"]))
    ctx = console.ctx
    sites, devices = current_states(ctx)
    tally = AlarmTally.of(ctx)
    unknown = State.UNKNOWN.value
    by_site = ctx.inventory.devices_by_site
    tiles = []
    for site in pref.municipalities:
        members = by_site.get(site.id, ())
        bad = sum(devices.get(d.id, unknown) in ("down", "unreachable") for d in members)
        tiles.append((site, sites.get(site.id, unknown), tally.sites.get(site.id, 0), bad, len(members)))
    network = [(d, devices.get(d.id, unknown)) for d in by_site.get(pref.site.id, ())]
    return render(request, "prefecture.html", {
        "pref": pref, "tiles": tiles, "network": network, "site_state": sites.get(pref.site.id, unknown),
        "unit_state": devices.get(pref.unit.id, unknown) if pref.unit else None,
        "counts": tally.prefectures.get(pref.code, Counter()), "buckets": BUCKETS,
        "legend": [(s.value, sum(t[1] == s.value for t in tiles)) for s in LEGEND], "site_name": site_name})


def unit_label(device: Device) -> str:
    """Short tile text: a processing unit is its prefecture, other devices their name."""
    if device.role is Role.PREFECTURE_UNIT:
        return device.name.removesuffix("サーバ処理装置")
    return device.name.removeprefix("全国サーバ ")


def routes() -> list[Route]:
    return [Route("/", board), Route("/prefectures/{code}", prefecture)]
