"""The alarm console: open alarms with filters, and what NOC operators do to them.

``/alarms`` lists alarms most severe first (``AlertingService.open_alarms``),
filtered by minimum severity, prefecture, type and status (firing, acknowledged,
resolved), 200 a page;
``/alarms/{fingerprint}`` shows one alarm with its labels, muting, root-cause
children and timeline. Root-cause alarms (``root_cause``, ``site_unreachable``)
show "配下 N 台" and load their unreachable subjects and inhibited alarms on
demand (``/alarms/children/{fingerprint}``, an HTML fragment).

Actions (POST, CSRF-checked by the middleware, NOC operators and admins only):
acknowledge (several at once from the list), comment, resolve with a reason,
close, silence from an alarm (matchers on its labels, a duration, a reason),
and escalate now when the alerting service offers ``escalate_now``. Each is
applied through the alerting service (persisted before it returns), written to
the audit trail with its result, and announced to every open page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable
from urllib.parse import quote, urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alerting.alarms import OPEN_STATUSES, AlarmError
from alerting.model import SEVERITY_ORDER, Alarm, AlarmStatus
from alerting.service import AlertingService
from alerting.silences import ROOT_CAUSE_KINDS, Matcher, MatcherError, SilenceError
from dashboards.audit import audit
from dashboards.auth import UserRole, require
from dashboards.i18n import lang_of, translate, translator
from dashboards.live import alarm_counts
from dashboards.pages import console_of, error_page, flash, render, see_other
from dashboards.views.noc import layout_of, site_name
from monitor.state.model import ConditionKind, State, SubjectKind

PAGE_SIZE = 200
OPERATORS = (UserRole.NOC_OPERATOR,)
SILENCE_LABELS = ("kind", "subject", "site", "prefecture")  # what a silence made from an alarm may match on
SILENCE_HOURS = (1, 4, 8, 24, 72)
STATUS_FILTERS = {"open": OPEN_STATUSES, "firing": (AlarmStatus.FIRING,), "acknowledged": (AlarmStatus.ACKNOWLEDGED,),
                  "resolved": (AlarmStatus.RESOLVED,)}


@dataclass(frozen=True)
class Filters:
    severity: str = ""
    prefecture: str = ""
    kind: str = ""
    status: str = "open"
    page: int = 1

    @classmethod
    def of(cls, request: Request) -> Filters:
        q = request.query_params
        severity = q.get("severity", "")
        status = q.get("status", "open")
        try:
            page = max(1, int(q.get("page", "1")))
        except ValueError:
            page = 1
        return cls(severity if severity in SEVERITY_ORDER else "", q.get("prefecture", "").strip(),
                   q.get("kind", "").strip(), status if status in STATUS_FILTERS else "open", page)

    def matchers(self) -> list[Matcher]:
        return [Matcher(label, "=", value) for label, value in (("prefecture", self.prefecture), ("kind", self.kind))
                if value]

    def query(self, **changes: object) -> str:
        values = {"severity": self.severity, "prefecture": self.prefecture, "kind": self.kind, "status": self.status,
                  "page": self.page, **changes}
        return urlencode({k: v for k, v in values.items() if v not in ("", "open", 1)})


def _alerting(request: Request) -> AlertingService | None:
    return console_of(request).ctx.alerting


@require()
async def alarm_list(request: Request) -> Response:
    alerting = _alerting(request)
    filters = Filters.of(request)
    alarms = alerting.open_alarms(filters.matchers(), min_severity=filters.severity or None,
                                  statuses=STATUS_FILTERS[filters.status]) if alerting is not None else []
    pages = max(1, -(-len(alarms) // PAGE_SIZE))
    page = min(filters.page, pages)
    shown = alarms[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    console = console_of(request)
    return render(request, "alarms.html", {
        "alarms": shown, "total": len(alarms), "page": page, "pages": pages, "filters": filters,
        "severities": SEVERITY_ORDER[:6], "kinds": [k.value for k in ConditionKind],
        "prefectures": layout_of(console).prefectures, "status_filters": tuple(STATUS_FILTERS),
        "muting": {a.fingerprint: alerting.muting(a.fingerprint) for a in shown} if alerting else {},
        "place": _place(request), "root_kinds": ROOT_CAUSE_KINDS, "operator": _is_operator(request),
        "available": alerting is not None, "site_name": site_name, "counts": alarm_counts(console.ctx)})


@require()
async def alarm_detail(request: Request) -> Response:
    alerting = _alerting(request)
    fingerprint = request.path_params["fingerprint"]
    alarm = alerting.alarm(fingerprint) if alerting is not None else None
    if alarm is None:
        return error_page(request, 404, translate(lang_of(request), "error.not_found", what=fingerprint))
    return render(request, "alarm.html", {
        "alarm": alarm, "muting": alerting.muting(fingerprint), "place": _place(request),
        "root_kinds": ROOT_CAUSE_KINDS, "operator": _is_operator(request), "open": alarm.status in OPEN_STATUSES,
        "silence_labels": [(label, alarm.labels[label]) for label in SILENCE_LABELS if alarm.labels.get(label)],
        "silence_hours": SILENCE_HOURS, "can_escalate": callable(getattr(alerting, "escalate_now", None)),
        "timeline": list(reversed(alarm.timeline)), "site_name": site_name,
        **(children_of(request, alerting, fingerprint) if alarm.suppressed_count else {})})


@require()
async def alarm_children(request: Request) -> Response:
    """The subjects a root cause made unreachable and the alarms it inhibits (a fragment for the list)."""
    fingerprint = request.path_params["fingerprint"]
    alerting = _alerting(request)
    if alerting is None or alerting.alarm(fingerprint) is None:
        return error_page(request, 404, translate(lang_of(request), "error.not_found", what=fingerprint))
    return render(request, "alarm_children.html", children_of(request, alerting, fingerprint))


def children_of(request: Request, alerting: AlertingService, fingerprint: str) -> dict[str, object]:
    """What the children fragment shows: the alarm's hidden subjects with their names and states, and its inhibited."""
    ctx = console_of(request).ctx
    children = alerting.children(fingerprint)
    subjects = []
    for subject in children.subjects:
        device = ctx.inventory.devices.get(subject)
        record = ctx.engine.state_of(SubjectKind.DEVICE, subject)
        subjects.append((subject, device.name if device else subject,
                         record.state.value if record else State.UNKNOWN.value))
    return {"children": children, "subjects": subjects}


def _is_operator(request: Request) -> bool:
    return request.state.user.may(OPERATORS)


def _place(request: Request) -> Callable[[Alarm], str]:
    """Where an alarm is, for people: the site's name (and prefecture's when the site is not one)."""
    console = console_of(request)
    sites = console.ctx.inventory.sites
    prefectures = layout_of(console).by_code
    lang = lang_of(request)

    def place(alarm: Alarm) -> str:
        site = sites.get(alarm.labels.get("site", ""))
        pref = prefectures.get(alarm.labels.get("prefecture", ""))
        names = [site_name(pref.site, lang)] if pref is not None and (site is None or site.id != pref.site.id) else []
        if site is not None:
            names.append(site_name(site, lang))
        return " ".join(names)
    return place


# --- actions ---------------------------------------------------------------------------------------------------


Action = Callable[[AlertingService, str, str, FormData], Awaitable[object]]


def _back(form: FormData, fingerprint: str) -> str:
    target = str(form.get("next", ""))
    if target.startswith("/") and not target.startswith("//"):
        return target
    return f"/alarms/{quote(fingerprint)}" if fingerprint else "/alarms"


def _action(name: str, run: Action):
    """An operator action on the alarms named in the form: applied, audited, announced, then back to the page."""
    @require(*OPERATORS)
    async def endpoint(request: Request) -> Response:
        form = await request.form()
        fingerprints = [str(f) for f in form.getlist("fingerprint") if str(f)]
        t = translator(lang_of(request))
        alerting = _alerting(request)
        if alerting is None or not fingerprints:
            flash(request, t("alarms.none_selected"), "error")
            return see_other(_back(form, ""))
        user = request.state.user.name
        done, failed = 0, []
        for fingerprint in fingerprints:
            try:
                await run(alerting, fingerprint, user, form)
            except (AlarmError, SilenceError, MatcherError) as exc:
                failed.append(str(exc))
                await audit(request, f"alarm.{name}", fingerprint, "failed", error=str(exc))
            else:
                done += 1
                await audit(request, f"alarm.{name}", fingerprint, text=str(form.get("text", ""))[:500] or None)
        if done:
            console_of(request).live.alarms_changed()
            flash(request, t(f"alarms.done.{name}", count=done))
        for message in failed[:5]:
            flash(request, message, "error")
        return see_other(_back(form, fingerprints[0] if len(fingerprints) == 1 else ""))
    return endpoint


async def _acknowledge(alerting: AlertingService, fingerprint: str, user: str, form: FormData) -> object:
    return await alerting.acknowledge(fingerprint, user, str(form.get("text", "")))


async def _comment(alerting: AlertingService, fingerprint: str, user: str, form: FormData) -> object:
    return await alerting.comment(fingerprint, user, str(form.get("text", "")))


async def _resolve(alerting: AlertingService, fingerprint: str, user: str, form: FormData) -> object:
    return await alerting.resolve(fingerprint, user, str(form.get("text", "")))


async def _close(alerting: AlertingService, fingerprint: str, user: str, form: FormData) -> object:
    return await alerting.close(fingerprint, user, str(form.get("text", "")))


async def _silence(alerting: AlertingService, fingerprint: str, user: str, form: FormData) -> object:
    """A silence on the labels ticked in the form (those of this alarm), from now for the chosen hours."""
    alarm = alerting.alarm(fingerprint)
    if alarm is None:
        raise AlarmError(f"{fingerprint}: そのアラームはありません")
    labels = [str(label) for label in form.getlist("label") if str(label) in SILENCE_LABELS]
    matchers = [Matcher(label, "=", alarm.labels[label]) for label in labels if alarm.labels.get(label)]
    if not matchers:
        raise SilenceError("サイレンスの対象ラベルを1つ以上選んでください")
    try:
        hours = float(str(form.get("hours", "")))
    except ValueError:
        raise SilenceError("期間 (時間) を数字で指定してください") from None
    now = alerting.clock()
    return await alerting.add_silence(matchers, now, now + hours * 3600, user, str(form.get("text", "")))


async def _escalate(alerting: AlertingService, fingerprint: str, user: str, form: FormData) -> object:
    escalate_now = getattr(alerting, "escalate_now", None)
    if escalate_now is None:
        raise AlarmError("このアラートサービスは即時エスカレーションに対応していません")
    return await escalate_now(fingerprint, user, str(form.get("text", "")))


ACTIONS: dict[str, Action] = {"acknowledge": _acknowledge, "comment": _comment, "resolve": _resolve,
                              "close": _close, "silence": _silence, "escalate": _escalate}


def routes() -> list[Route]:
    return [Route("/alarms", alarm_list),
            *(Route(f"/alarms/{name}", _action(name, run), methods=["POST"]) for name, run in ACTIONS.items()),
            Route("/alarms/children/{fingerprint:path}", alarm_children),
            Route("/alarms/{fingerprint:path}", alarm_detail)]
