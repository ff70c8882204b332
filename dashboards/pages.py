"""How a console page answers: the app-wide ``Console`` state, ``render`` with the base context, flashes, errors.

Every view (``dashboards/views/*.py``) gets the console with ``console_of(request)``
and answers with ``render(request, "x.html", {...})``. The base context gives
every template the same names, so a page never builds them itself:

- ``t(key, **values)``: the catalogue in the session's language (``i18n``)
- ``when(ts)``, ``duration(seconds)``: JST / era dates in that language
- ``label(prefix, code)``: ``t(prefix.code)`` when the catalogue has it, else the code
- ``csrf_field()``: the hidden token field for every form; ``csrf_token`` for scripts
- ``user`` (``auth.User`` or None), ``lang``, ``nav`` (entries the user may open), ``path``
- ``flashes``: one-time messages set by ``flash()`` before a redirect
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from dashboards import csrf, i18n
from dashboards.audit import AuditTrail, audit
from dashboards.auth import Forbidden, LoginRequired, User, UserBook, UserRole, current_user
from dashboards.context import ConsoleContext

if TYPE_CHECKING:
    from dashboards.live import LiveHub

TEMPLATES_DIR = Path(__file__).parent / "templates"

R = UserRole
ANY_ROLE: tuple[UserRole, ...] = ()


@dataclass(frozen=True, slots=True)
class NavItem:
    """One entry of the navigation bar: a path, its catalogue key, who sees it."""

    path: str
    key: str
    roles: tuple[UserRole, ...] = ANY_ROLE


# The navigation bar. Views serve these paths; one nobody serves yet shows a "準備中" page.
NAV = (
    NavItem("/", "nav.noc"),
    NavItem("/alarms", "nav.alarms"),
    NavItem("/triage", "nav.triage", (R.CALL_CENTER, R.NOC_OPERATOR)),
    NavItem("/cascade", "nav.cascade"),
    NavItem("/maintenance", "nav.maintenance", (R.NOC_OPERATOR,)),
    NavItem("/reports", "nav.reports", (R.NOC_OPERATOR, R.AUDITOR)),
    NavItem("/ids", "nav.ids", (R.NOC_OPERATOR, R.AUDITOR)),
    NavItem("/drills", "nav.drills", (R.DRILL_CONTROLLER,)),
    NavItem("/audit", "nav.audit", (R.AUDITOR,)),
)


@dataclass
class Console:
    """What every view shares: the monitor's parts, the accounts, the audit trail, live updates, templates."""

    ctx: ConsoleContext
    users: UserBook
    audit: AuditTrail
    live: "LiveHub"
    templates: jinja2.Environment
    nav: tuple[NavItem, ...] = NAV
    cache: dict[str, Any] = field(default_factory=dict)  # views' precomputed structures (built once)

    def now(self) -> float:
        return self.ctx.clock() if self.ctx.clock is not None else time.time()


def template_environment() -> jinja2.Environment:
    """Autoescaping everywhere: names, summaries and comments come from operators and devices."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def console_of(request: Request) -> Console:
    return request.app.state.console


def user_of(request: Request) -> User | None:
    return getattr(request.state, "user", None) or current_user(request)


def render(request: Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200,
           headers: dict[str, str] | None = None) -> HTMLResponse:
    console = console_of(request)
    lang = i18n.lang_of(request)
    user = user_of(request)
    session = request.session
    base = {
        "request": request, "user": user, "lang": lang, "path": request.url.path,
        "t": i18n.translator(lang), "when": partial(i18n.when, lang=lang),
        "duration": partial(i18n.duration, lang=lang), "label": partial(i18n.label, lang=lang), "now": console.now(),
        "csrf_field": partial(csrf.hidden_field, session), "csrf_token": csrf.token(session),
        "nav": [item for item in console.nav if user is not None and user.may(item.roles)],
        "flashes": session.pop("flash", []),
    }
    html = console.templates.get_template(template).render({**base, **(context or {})})
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})})


def flash(request: Request, text: str, kind: str = "ok") -> None:
    """A message shown once on the next page (after a redirect); ``kind`` is ok or error."""
    request.session["flash"] = [*request.session.get("flash", []), [kind, text]]


def see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", {"status": status, "message": message}, status=status)


def to_login(request: Request, _exc: Exception | None = None) -> Response:
    if request.headers.get("accept", "").startswith("text/event-stream"):
        return Response(status_code=401)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return see_other(f"/login?next={quote(target, safe='')}")


async def forbidden(request: Request, exc: Exception) -> HTMLResponse:
    assert isinstance(exc, Forbidden)
    await audit(request, "access.denied", request.url.path, "denied", method=request.method,
                needs=[r.value for r in exc.roles])
    t = i18n.translator(i18n.lang_of(request))
    return error_page(request, 403, t("error.forbidden", roles=", ".join(t(f"role.{r.value}") for r in exc.roles)))


async def csrf_refusal(request: Request) -> HTMLResponse:
    """The CSRF middleware's answer, audited: always in Japanese first, then the session's language."""
    await audit(request, "csrf.refused", request.url.path, "denied", method=request.method)
    message = i18n.translate("ja", "error.csrf")
    if i18n.lang_of(request) != "ja":
        message += " / " + i18n.translate(i18n.lang_of(request), "error.csrf")
    return error_page(request, 403, message)


EXCEPTION_HANDLERS = {LoginRequired: to_login, Forbidden: forbidden}
