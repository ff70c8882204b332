"""The report cascade in the console (障害連絡: 初報・第2報・終報): issue reports, watch receipts, chase the missing.

``/cascade`` lists incidents with their reports and counts (sent, delivered,
confirmed, overdue) and has the forms to open an incident with its first report
and to issue the next one (第N報, or the 終報 that closes it). ``/cascade/{report}``
shows one report's progress per prefecture and who is missing (narrowed to a
prefecture: each of its organisations with when it was sent, delivered and
confirmed, how and by whom), and takes the
operators' actions: remind the overdue now, record a receipt taken by phone,
record that a prefecture forwarded the report itself. ``/cascade/{report}/progress``
is the same progress as JSON, fetched periodically by ``static/cascade.js``
(the console's SSE hub carries only the engine's events).

The one-click confirm link in the mails (``/cascade/confirm?token=…``) is served
here too, without login: the token is the authority (``alerting.cascade.web``).

The running cascade comes from ``ctx.extra["cascade"]`` (the main job puts it
there); without one every page says the cascade is not configured.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import secrets
from dataclasses import asdict
from typing import Any, Awaitable, Callable, Iterable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from alerting.cascade import Cascade, Incident, Report, confirm_routes
from alerting.cascade.model import Channel, Organisation
from dashboards import i18n
from dashboards.audit import audit
from dashboards.auth import UserRole, require
from dashboards.pages import console_of, error_page, flash, render, see_other
from monitor.japan_time import JST
from monitor.logs import fields

log = logging.getLogger("dashboards.views.cascade")

R = UserRole
ISSUERS = (R.NOC_OPERATOR, R.DRILL_CONTROLLER)  # (and the admin) open incidents and issue reports
CHASERS = (R.NOC_OPERATOR, R.DRILL_CONTROLLER)  # remind the overdue, record forwards
RECEIVERS = (R.NOC_OPERATOR, R.DRILL_CONTROLLER, R.CALL_CENTER)  # take receipts on the phone
HERE = "/cascade"
DELIVERY_FIELDS = ("sent_at", "delivered_at", "error", "confirmed_at", "confirmed_via", "confirmed_by", "reminders")
MAX_BODY = 10_000  # characters of report text: one mail, not an attachment


class CascadeFormError(ValueError):
    """A form that cannot be acted on; the message is a catalogue key."""


def _cascade(request: Request) -> Cascade | None:
    cascade = console_of(request).ctx.extra.get("cascade")
    return cascade if isinstance(cascade, Cascade) else None


Endpoint = Callable[[Request], Awaitable[Response]]


def with_cascade(endpoint: Callable[[Request, Cascade], Awaitable[Response]]) -> Endpoint:
    """The endpoint gets the running cascade; without one the page says the cascade is not configured."""
    @functools.wraps(endpoint)
    async def page(request: Request) -> Response:
        cascade = _cascade(request)
        if cascade is None:
            return render(request, "cascade/not_configured.html")
        return await endpoint(request, cascade)
    return page


def with_report(endpoint: Callable[[Request, Cascade, Report], Awaitable[Response]]) -> Endpoint:
    """As ``with_cascade``, and the report named in the path (404 if the tracker has none)."""
    @with_cascade
    @functools.wraps(endpoint)
    async def page(request: Request, cascade: Cascade) -> Response:
        report = cascade.tracker.reports.get(request.path_params["report"])
        if report is None:
            return error_page(request, 404, _t(request)("cascade.error.no_report"))
        return await endpoint(request, cascade, report)
    return page


def _t(request: Request) -> i18n.Translate:
    return i18n.translator(i18n.lang_of(request))


# --- overview and issuing -----------------------------------------------------------------------------------------


@require()
@with_cascade
async def overview(request: Request, cascade: Cascade) -> Response:
    tracker = cascade.tracker
    incidents = sorted(tracker.incidents.values(), key=lambda i: i.opened, reverse=True)
    reports = {i.id: [(r, tracker.counts(r.id)) for r in tracker.reports.values() if r.incident == i.id]
               for i in incidents}
    return render(request, "cascade/index.html", {
        "incidents": [(i, sorted(reports[i.id], key=lambda rc: rc[0].sequence), _closed(tracker.reports.values(), i))
                      for i in incidents],
        "prefectures": tracker.directory.prefectures(),
        "may_issue": request.state.user.may(ISSUERS)})


@require(*ISSUERS)
@with_cascade
async def open_incident(request: Request, cascade: Cascade) -> Response:
    """A new incident and its first report (初報), sent at once."""
    form = await request.form()
    now = console_of(request).now()
    title = " ".join(str(form.get("title", "")).split())  # one line: it is every subject
    drill = form.get("drill") == "on"
    try:
        if not title or len(title) > 200:
            raise CascadeFormError("cascade.error.title")
        incident = Incident(_incident_id(now, drill), title, drill=drill, opened=now)
        report = Report(incident.id, 1, _body(form), now, scope=_scope(cascade, form))
    except CascadeFormError as exc:
        return await _refuse(request, "cascade.incident.open", title, exc)
    return await _issue(request, cascade, incident, report)


@require(*ISSUERS)
@with_cascade
async def issue_next(request: Request, cascade: Cascade) -> Response:
    """The next report (第N報, or the 終報) on an open incident."""
    tracker = cascade.tracker
    incident = tracker.incidents.get(request.path_params["incident"])
    if incident is None:
        return error_page(request, 404, _t(request)("cascade.error.no_incident"))
    form = await request.form()
    try:
        if _closed(tracker.reports.values(), incident):
            raise CascadeFormError("cascade.error.closed")
        sequence = 1 + max((r.sequence for r in tracker.reports.values() if r.incident == incident.id), default=0)
        report = Report(incident.id, sequence, _body(form), console_of(request).now(),
                        final=form.get("final") == "on", scope=_scope(cascade, form))
    except CascadeFormError as exc:
        return await _refuse(request, "cascade.report.issue", incident.id, exc)
    return await _issue(request, cascade, incident, report)


async def _issue(request: Request, cascade: Cascade, incident: Incident, report: Report) -> Response:
    """Send the report now: the operator sees at once how many messages the mail server took."""
    t = _t(request)
    try:
        accepted = await cascade.issue(incident, report)
    except ValueError as exc:  # e.g. another operator issued the same number a moment ago
        await audit(request, "cascade.report.issue", report.id, "failed", error=str(exc))
        flash(request, t("cascade.error.issue", reason=str(exc)), "error")
        return see_other(HERE)
    counts = cascade.tracker.counts(report.id)
    await audit(request, "cascade.report.issue", report.id, label=report.label, drill=incident.drill,
                scope=list(report.scope), targets=counts.targets, accepted=accepted)
    log.info("cascade report issued from the console", extra=fields(
        report=report.id, user=request.state.user.name, accepted=accepted, planned=counts.planned))
    flash(request, t("cascade.issued", label=report.label, accepted=accepted, planned=counts.planned),
          "ok" if accepted == counts.planned else "error")
    return see_other(f"{HERE}/{report.id}")


async def _refuse(request: Request, action: str, target: str, exc: CascadeFormError) -> Response:
    await audit(request, action, target, "failed", error=str(exc))
    flash(request, _t(request)(str(exc)), "error")
    return see_other(HERE)


def _incident_id(now: float, drill: bool) -> str:
    """Readable and unique enough: kind, JST minute, a random suffix (two operators in the same minute)."""
    stamp = dt.datetime.fromtimestamp(now, JST).strftime("%Y%m%d-%H%M")
    return f"{'drill' if drill else 'inc'}-{stamp}-{secrets.token_hex(2)}"


def _body(form: Any) -> str:
    body = str(form.get("body", "")).replace("\r\n", "\n").strip()
    if not body or len(body) > MAX_BODY:
        raise CascadeFormError("cascade.error.body")
    return body


def _scope(cascade: Cascade, form: Any) -> tuple[str, ...]:
    """Empty for every prefecture; else the chosen JIS codes, each one a prefecture the directory knows."""
    if form.get("scope") != "chosen":
        return ()
    known = {p.prefecture for p in cascade.tracker.directory.prefectures()}
    chosen = tuple(sorted(set(form.getlist("prefecture"))))
    if not chosen or not set(chosen) <= known:
        raise CascadeFormError("cascade.error.scope")
    return chosen


def _closed(reports: Iterable[Report], incident: Incident) -> bool:
    return any(r.incident == incident.id and r.final for r in reports)


# --- one report ---------------------------------------------------------------------------------------------------


@require()
@with_report
async def report_page(request: Request, cascade: Cascade, report: Report) -> Response:
    pref = request.query_params.get("pref", "")
    user = request.state.user
    return render(request, "cascade/report.html", {
        "report": report, "progress": _progress(cascade, report.id, pref), "pref": pref,
        "prefectures": cascade.tracker.directory.prefectures(report.scope),
        "may_chase": user.may(CHASERS), "may_receive": user.may(RECEIVERS)})


@require()
async def progress_json(request: Request) -> Response:
    cascade = _cascade(request)
    report_id = request.path_params["report"]
    if cascade is None or report_id not in cascade.tracker.reports:
        return JSONResponse({"error": "not found"}, status_code=404)
    return JSONResponse(_progress(cascade, report_id, request.query_params.get("pref", "")),
                        headers={"Cache-Control": "no-store"})


def _progress(cascade: Cascade, report_id: str, pref: str) -> dict[str, Any]:
    """The tracker's progress; for one prefecture (JIS code) the missing list narrowed to it and every one of
    its organisations with what happened when (sent, delivered, confirmed how and by whom, reminders)."""
    progress = cascade.tracker.progress(report_id).to_json()
    progress["organisations"] = []
    if pref:
        progress["missing"] = [m for m in progress["missing"] if m["prefecture"] == pref]
        progress["organisations"] = _organisations(cascade, report_id, pref)
    return progress


def _organisations(cascade: Cascade, report_id: str, pref: str) -> list[dict[str, Any]]:
    tracker = cascade.tracker
    rows = []
    for prefecture in tracker.directory.prefectures(tracker.reports[report_id].scope):
        if prefecture.prefecture != pref:
            continue
        for org in (prefecture, *tracker.directory.municipalities(prefecture)):
            delivery = tracker.delivery(report_id, org.id)  # None: waiting for its prefecture to forward
            known = asdict(delivery) if delivery is not None else {}
            rows.append({"id": org.id, "name": org.name, "tier": org.tier.value,
                         **{name: known.get(name) for name in DELIVERY_FIELDS}})
    return rows


@require(*CHASERS)
@with_report
async def remind(request: Request, cascade: Cascade, report: Report) -> Response:
    """Remind every overdue recipient now (those already reminded within the interval wait for their turn)."""
    sent = await cascade.remind()
    await audit(request, "cascade.remind", report.id, reminders=sent)
    flash(request, _t(request)("cascade.reminded", count=sent))
    return see_other(f"{HERE}/{report.id}")


@require(*RECEIVERS)
@with_report
async def phone_receipt(request: Request, cascade: Cascade, report: Report) -> Response:
    """An organisation called in its receipt: recorded as confirmed in the console, by this operator."""
    form = await request.form()
    typed = str(form.get("org", "")).strip()
    caller = " ".join(str(form.get("caller", "")).split())[:100]
    t = _t(request)
    org = _organisation(cascade, report, typed)
    result = await cascade.tracker.confirm(report.id, org.id, Channel.CONSOLE, request.state.user.name) \
        if org is not None else None
    if result is None:
        await audit(request, "cascade.receipt", f"{report.id}/{typed}", "failed", caller=caller)
        flash(request, t("cascade.error.receipt", org=typed), "error")
    else:
        await audit(request, "cascade.receipt", f"{report.id}/{result.delivery.org}", caller=caller,
                    outcome=result.outcome.value)
        flash(request, t(f"cascade.receipt.{result.outcome.value}", org=result.org.name if result.org else typed,
                         at=i18n.when(result.at, lang=i18n.lang_of(request))))
    return see_other(f"{HERE}/{report.id}")


def _organisation(cascade: Cascade, report: Report, typed: str) -> Organisation | None:
    """An organisation typed by id, or by name when exactly one the report went to has it (府中市 is two)."""
    directory = cascade.tracker.directory
    if typed in directory:
        return directory[typed]
    named = [o for o in directory.targets(report) if o.name == typed]
    return named[0] if len(named) == 1 else None


@require(*CHASERS)
@with_report
async def forward(request: Request, cascade: Cascade, report: Report) -> Response:
    """A prefecture that forwards itself has done so: its municipalities get the report (and are tracked)."""
    prefecture = request.path_params["prefecture"]
    target, t = f"{report.id}/{prefecture}", _t(request)
    try:
        sent = await cascade.forward(report.id, prefecture, request.state.user.name)
    except ValueError as exc:  # not a prefecture, or one the report did not go to
        await audit(request, "cascade.forward", target, "failed", error=str(exc))
        flash(request, t("cascade.error.forward", reason=str(exc)), "error")
    else:
        await audit(request, "cascade.forward", target, accepted=sent)
        flash(request, t("cascade.forwarded", name=cascade.tracker.directory[prefecture].name, count=sent))
    return see_other(f"{HERE}/{report.id}")


# --- the confirm link ---------------------------------------------------------------------------------------------


async def confirm_link(request: Request) -> Response:
    """``alerting.cascade.web``'s page over the running cascade's tracker and link key (built once)."""
    cascade = _cascade(request)
    if cascade is None:
        return error_page(request, 503, i18n.translate("ja", "cascade.not_configured"))
    cache = console_of(request).cache
    endpoint = cache.get("cascade.confirm")
    if endpoint is None:
        (route,) = confirm_routes(cascade.tracker, cascade.composer.links)
        endpoint = cache["cascade.confirm"] = route.endpoint
    return await endpoint(request)


def routes() -> list[Route]:
    return [
        Route("/cascade/confirm", confirm_link, methods=["GET"]),  # before /cascade/{report}
        Route(HERE, overview),
        Route(f"{HERE}/incidents", open_incident, methods=["POST"]),
        Route(HERE + "/incidents/{incident}/reports", issue_next, methods=["POST"]),
        Route(HERE + "/{report}", report_page),
        Route(HERE + "/{report}/progress", progress_json),
        Route(HERE + "/{report}/remind", remind, methods=["POST"]),
        Route(HERE + "/{report}/receipts", phone_receipt, methods=["POST"]),
        Route(HERE + "/{report}/forward/{prefecture}", forward, methods=["POST"]),
    ]
