"""The console's ASGI application: ``create_app(ctx, users=...)`` assembles sessions, CSRF, views and live updates.

Views are found, not listed: every module in ``dashboards/views/`` that defines
``routes() -> list[BaseRoute]`` is mounted, so a new page is a new module and
nothing else changes. A navigation entry (``pages.NAV``) whose path no view
serves shows a "準備中" (in preparation) page for the roles that may open it.

Middleware, outermost first: signed-cookie sessions (HttpOnly, SameSite=Lax),
then CSRF on every unsafe method. ``auth.LoginRequired`` and ``auth.Forbidden``
raised by ``require`` become the login redirect and an audited 403 page. On
start-up the app creates its tables (users, audit) and attaches the live hub to
the engine; on shut-down it detaches.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import pkgutil
import secrets
import time
from pathlib import Path
from types import ModuleType
from typing import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from dashboards import i18n, live, views
from dashboards.audit import AuditTrail
from dashboards.auth import SESSION_MAX_AGE, UserBook, require
from dashboards.context import ConsoleContext
from dashboards.csrf import CsrfMiddleware
from dashboards.live import LiveHub
from dashboards.pages import EXCEPTION_HANDLERS, Console, NavItem, csrf_refusal, render, template_environment
from monitor.logs import fields

log = logging.getLogger("dashboards")

STATIC_DIR = Path(__file__).parent / "static"
SESSION_COOKIE = "jukimon_session"


def create_app(ctx: ConsoleContext, *, users: UserBook | None = None, audit: AuditTrail | None = None,
               https_only: bool = False) -> Starlette:
    """The console over a running monitor. ``https_only`` marks the session cookie Secure (behind TLS)."""
    secret = ctx.secret_key
    if not secret:
        secret = secrets.token_bytes(32)
        log.warning("console has no secret key: sessions will not survive a restart")
    clock = ctx.clock or time.time
    trail = audit or AuditTrail(ctx.store, clock, signing_key=ctx.extra.get("audit_signing_key"),  # type: ignore[arg-type]
                                head_path=ctx.extra.get("audit_head"))  # type: ignore[arg-type]
    console = Console(ctx, users or UserBook(ctx.store, clock), trail, LiveHub(ctx), template_environment())

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await console.users.open()
        await console.audit.open()
        console.live.attach()
        log.info("console started", extra=fields(views=len(view_modules)))
        try:
            yield
        finally:
            console.live.detach()

    view_modules = discover_views()
    routes: list[BaseRoute] = [*i18n.routes(), *live.routes()]
    for module in view_modules:
        routes.extend(module.routes())
    routes.extend(_placeholders(console.nav, routes))
    routes.append(Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"))
    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers=dict(EXCEPTION_HANDLERS),  # type: ignore[arg-type]
        middleware=[Middleware(SessionMiddleware, secret_key=secret.hex(), session_cookie=SESSION_COOKIE,
                               max_age=SESSION_MAX_AGE, same_site="lax", https_only=https_only),
                    Middleware(CsrfMiddleware, refuse=csrf_refusal)])
    app.state.console = console
    return app


def discover_views() -> list[ModuleType]:
    """Every ``dashboards.views`` module with a ``routes`` function, by name."""
    found = []
    for info in sorted(pkgutil.iter_modules(views.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{views.__name__}.{info.name}")
        if callable(getattr(module, "routes", None)):
            found.append(module)
    return found


def _placeholders(nav: tuple[NavItem, ...], routes: list[BaseRoute]) -> list[Route]:
    served = {route.path for route in routes if isinstance(route, Route)}
    return [Route(item.path, _placeholder(item)) for item in nav if item.path not in served]


def _placeholder(item: NavItem):
    @require(*item.roles)
    async def page(request: Request) -> HTMLResponse:
        return render(request, "placeholder.html", {"title_key": item.key})
    return page
