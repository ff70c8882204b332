"""Reports (レポート): the monthly operations report, printable to A4, and the renewal plan of the fleet.

``/reports/monthly?month=YYYY-MM``: availability per tier, prefecture and site
from the state history, incidents with MTTR, unauthorised-access detections,
and the call centre's tickets (``dashboards.reporting``). The page is a
document: its print stylesheet (``static/report.css``) makes the browser's
"print to PDF" a clean A4 report.

``/reports/lifecycle?as_of=YYYY-MM-DD``: what reaches hardware or software
support end, has a certificate expiring, or uses compromised crypto, month by
month (``monitor.lifecycle_report``), from the inventory's renewal data.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alerting.notify.jpdate import era_year
from dashboards import i18n
from dashboards.auth import UserRole, require
from dashboards.pages import console_of, error_page, render
from dashboards.reporting import month_period, monthly_report
from monitor.japan_time import JST
from dashboards.reporting.monthly import TIER_ORDER
from dashboards.tickets.store import shared_ticket_store
from monitor.lifecycle import FINDING_KINDS, LifecycleChecker
from monitor.lifecycle_report import RenewalPlan, renewal_plan

ROLES = (UserRole.NOC_OPERATOR, UserRole.AUDITOR)
MONTHS_LISTED = 12
ENTRIES_SHOWN = 100  # devices listed per month of the renewal plan unless all are asked for


@require(*ROLES)
async def index(request: Request) -> Response:
    today = _today(request)
    first = today.replace(day=1)
    months = []
    for _ in range(MONTHS_LISTED):
        months.append(first)
        first = (first - dt.timedelta(days=1)).replace(day=1)
    return render(request, "reports/index.html", {"months": [(f"{m:%Y-%m}", _month_title(m, request)) for m in months],
                                                  "today": today.isoformat()})


@require(*ROLES)
async def monthly(request: Request) -> Response:
    console = console_of(request)
    month = request.query_params.get("month") or f"{_today(request):%Y-%m}"
    try:
        period = month_period(month)
    except ValueError:
        return _bad_request(request, "month", month)
    tickets = await shared_ticket_store(console.ctx.store, console.cache)
    report = await monthly_report(console.ctx, period, console.now(), tickets)
    first = dt.datetime.fromtimestamp(period.start, JST).date()
    last = dt.datetime.fromtimestamp(period.end, JST).date() - dt.timedelta(days=1)
    return render(request, "reports/monthly.html", {
        "report": report, "title_month": _month_title(first, request), "first": first, "last": last,
        "tiers": TIER_ORDER, "pct": _pct, "ids_connected": "ids" in console.ctx.extra})


@require(*ROLES)
async def lifecycle(request: Request) -> Response:
    console = console_of(request)
    text = request.query_params.get("as_of", "")
    try:
        as_of = dt.date.fromisoformat(text) if text else _today(request)
    except ValueError:
        return _bad_request(request, "as_of", text)
    plan = _plan(console, as_of)
    chosen = request.query_params.get("month")
    return render(request, "reports/lifecycle.html", {
        "plan": plan, "as_of": as_of, "kinds": FINDING_KINDS, "chosen": chosen,
        "limit": None if request.query_params.get("all") == "1" else ENTRIES_SHOWN})


def _plan(console: Any, as_of: dt.date) -> RenewalPlan:
    """The last plan asked for is kept (the whole fleet takes a fifth of a second to judge); with the main job's
    live checker (certificates as the collectors read them) it is judged again every five minutes."""
    cache, inventory = console.cache, console.ctx.inventory
    live = console.ctx.extra.get("lifecycle")
    checker = live if isinstance(live, LifecycleChecker) else LifecycleChecker(inventory)
    stamp = (as_of, int(console.now() // 300) if live is not None else 0)
    kept = cache.get("reports.lifecycle")
    if kept is None or kept[0] != stamp:
        plan = renewal_plan(checker.findings(as_of), inventory, today=as_of)
        kept = cache["reports.lifecycle"] = (stamp, plan)
    return kept[1]


def _today(request: Request) -> dt.date:
    return dt.datetime.fromtimestamp(console_of(request).now(), JST).date()


def _month_title(first: dt.date, request: Request) -> str:
    """令和8年11月 / November 2026."""
    return f"{era_year(first)}{first.month}月" if i18n.lang_of(request) == "ja" else f"{first:%B %Y}"


def _pct(ratio: float | None) -> str:
    """Availability to three decimals, rounded down: any outage at all never shows as 100.000 %."""
    return "—" if ratio is None else f"{math.floor(ratio * 100_000) / 1000:.3f} %"


def _bad_request(request: Request, name: str, value: str) -> Response:
    t = i18n.translator(i18n.lang_of(request))
    return error_page(request, 400, t("reports.bad_parameter", name=name, value=value))


def routes() -> list[Route]:
    return [Route("/reports", index), Route("/reports/monthly", monthly), Route("/reports/lifecycle", lifecycle)]
