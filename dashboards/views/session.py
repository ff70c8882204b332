"""Signing in and out: the login form, its throttling and lock-out answers, and the audit of each attempt."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dashboards import i18n
from dashboards.audit import audit
from dashboards.auth import LoginResult, require, sign_in, sign_out
from dashboards.pages import console_of, render, see_other

_STATUS = {LoginResult.BAD_CREDENTIALS: 401, LoginResult.LOCKED: 403, LoginResult.THROTTLED: 429}


def _next(value: object) -> str:
    """Only a path inside the console (no open redirect to another site)."""
    target = str(value or "/")
    return target if target.startswith("/") and not target.startswith("//") else "/"


async def login_form(request: Request) -> Response:
    return render(request, "login.html", {"next": _next(request.query_params.get("next")), "error": None,
                                          "name": ""})


async def login(request: Request) -> Response:
    form = await request.form()
    name, password, target = str(form.get("name", "")).strip(), str(form.get("password", "")), _next(form.get("next"))
    address = request.client.host if request.client else ""
    result, user = await console_of(request).users.login(name, password, address)
    if user is None:
        await audit(request, "login", name, "failed", reason=result.value)
        t = i18n.translator(i18n.lang_of(request))
        return render(request, "login.html", {"next": target, "error": t(f"login.{result.value}"), "name": name},
                      status=_STATUS[result])
    sign_in(request, user)
    await audit(request, "login", user.name)
    return see_other(target)


@require()
async def logout(request: Request) -> Response:
    await audit(request, "logout", request.state.user.name)
    sign_out(request)
    return see_other("/login")


def routes() -> list[Route]:
    return [Route("/login", login_form, methods=["GET"]), Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"])]
