"""Site and device detail: what it is, its state and since when, why, what happened lately, and its graphs.

``/sites/{id}``: the site's state, its devices (state, since, reason), the
conditions and open alarms at the site, the site's recent transitions.
``/devices/{id}``: the device's place (site, parents, lines), state, lifecycle,
conditions, open alarms, recent transitions (``store.transitions``) and SVG
graphs from the short-term history — RTT and loss, CPU, traffic per interface,
disk — over the last 15 minutes, hour, 6 hours or day (``?range=``, an hour by default).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from collectors.history import History
from dashboards.auth import require
from dashboards.graphs import Graph, Series, render_svg
from dashboards.i18n import clock_time, lang_of, translate
from dashboards.pages import console_of, error_page, render
from dashboards.views.noc import layout_of, site_name
from monitor.state.model import State, SubjectKind

RANGES = {"15m": 900, "1h": 3600, "6h": 6 * 3600, "24h": 86_400}
MAX_INTERFACES = 6
MAX_VOLUMES = 4
RECENT_TRANSITIONS = 30


def graphs_of(history: History, device_id: str, start: float, end: float) -> list[Graph]:
    """The device's graphs, from the series the history holds for it (a missing series: no graph)."""
    keys = set(history.keys(device_id))

    def series(name: str, key: str) -> Series:
        return Series(name, history.series(device_id, key, since=start, until=end))

    graphs = []
    rtt = [series(name, key) for name, key in (("SNMP", "system.rtt_ms"), ("ICMP", "icmp.rtt_avg_ms")) if key in keys]
    if rtt:
        graphs.append(Graph("graph.rtt", "", "ms", tuple(rtt)))
    if "icmp.loss" in keys:
        graphs.append(Graph("graph.loss", "", "ratio", (series("ICMP", "icmp.loss"),)))
    if "host.cpu_pct" in keys:
        graphs.append(Graph("graph.cpu", "", "%", (series("CPU", "host.cpu_pct"),)))
    interfaces = sorted({k.split(":", 1)[1] for k in keys if k.startswith(("interface.in_bps:", "interface.out_bps:"))},
                        key=lambda i: (len(i), i))
    for index in interfaces[:MAX_INTERFACES]:
        graphs.append(Graph("graph.traffic", f"ifIndex {index}", "bps",
                            tuple(series(direction, f"interface.{direction}_bps:{index}")
                                  for direction in ("in", "out") if f"interface.{direction}_bps:{index}" in keys)))
    volumes = sorted(k for k in keys if k.startswith("storage.used_pct:"))[:MAX_VOLUMES]
    if volumes:
        graphs.append(Graph("graph.disk", "", "%", tuple(series(k.split(":", 1)[1], k) for k in volumes)))
    return graphs


def _alarms(request: Request, label: str, value: str) -> list:
    alerting = console_of(request).ctx.alerting
    return alerting.open_alarms([f"{label}={value}"]) if alerting is not None else []


@require()
async def site_detail(request: Request) -> Response:
    console = console_of(request)
    ctx = console.ctx
    site = ctx.inventory.sites.get(request.path_params["site_id"])
    if site is None:
        return error_page(request, 404, translate(lang_of(request), "error.not_found",
                                                  what=request.path_params["site_id"]))
    devices = sorted(ctx.inventory.devices_by_site.get(site.id, ()), key=lambda d: d.id)
    states = [(d, ctx.engine.state_of(SubjectKind.DEVICE, d.id)) for d in devices]
    members = {site.id, *(d.id for d in devices)}
    conditions = sorted((c for c in ctx.engine.conditions.values() if c.subject in members),
                        key=lambda c: c.started, reverse=True)
    parent = ctx.inventory.sites.get(site.parent) if site.parent else None
    return render(request, "site.html", {
        "site": site, "parent": parent, "record": ctx.engine.state_of(SubjectKind.SITE, site.id),
        "devices": states, "conditions": conditions, "alarms": _alarms(request, "site", site.id),
        "transitions": await ctx.store.transitions(subject=site.id, limit=RECENT_TRANSITIONS),
        "site_name": site_name, "prefecture": layout_of(console).by_code.get(site.prefecture or "")})


@require()
async def device_detail(request: Request) -> Response:
    console = console_of(request)
    ctx = console.ctx
    device = ctx.inventory.devices.get(request.path_params["device_id"])
    lang = lang_of(request)
    if device is None:
        return error_page(request, 404, translate(lang, "error.not_found", what=request.path_params["device_id"]))
    span_key = request.query_params.get("range", "1h")
    span = RANGES.get(span_key, RANGES["1h"])
    end = console.now()
    start = end - span
    graphs = []
    if ctx.history is not None:
        slot = ctx.history.resolution if span <= 3600 else ctx.history.coarse_resolution
        graphs = [(g, render_svg(g, start, end, slot, clock_time)) for g in graphs_of(ctx.history, device.id,
                                                                                       start, end)]
    lines = ctx.inventory.links_of(device.id)
    return render(request, "device.html", {
        "device": device, "site": ctx.inventory.sites[device.site],
        "prefecture": layout_of(console).by_code.get(ctx.inventory.sites[device.site].prefecture or ""),
        "record": ctx.engine.state_of(SubjectKind.DEVICE, device.id),
        "parents": [ctx.inventory.devices[p] for p in device.parents if p in ctx.inventory.devices],
        "lines": [(link, ctx.engine.state_of(SubjectKind.LINK, link.id)) for link in lines],
        "conditions": sorted((c for c in ctx.engine.conditions.values() if c.subject == device.id),
                             key=lambda c: c.started, reverse=True),
        "alarms": _alarms(request, "subject", device.id),
        "transitions": await ctx.store.transitions(subject=device.id, limit=RECENT_TRANSITIONS),
        "graphs": graphs, "ranges": RANGES, "span_key": span_key if span_key in RANGES else "1h",
        "site_name": site_name, "unknown": State.UNKNOWN})


def routes() -> list[Route]:
    return [Route("/sites/{site_id}", site_detail), Route("/devices/{device_id}", device_detail)]
