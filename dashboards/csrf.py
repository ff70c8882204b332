"""Cross-site request forgery protection: one token per session, checked on every state-changing request.

The token lives in the signed session cookie (``session["csrf"]``); every form
carries it as the hidden field ``csrf_token`` (``{{ csrf_field() }}`` in a
template) and scripts send it as the ``X-CSRF-Token`` header. The middleware
checks *every* POST/PUT/PATCH/DELETE before any endpoint runs, so a new page
cannot forget to: a request without the session's token is refused with 403 and
a Japanese explanation.

The body is read here to find the field, then replayed to the endpoint
unchanged. SameSite=Lax cookies already stop most cross-site posts; the token
covers what they do not (older browsers, same-site subdomains).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.logs import fields

log = logging.getLogger("dashboards.csrf")

FIELD = "csrf_token"
HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_BODY = 16 * 2 ** 20

Refusal = Callable[[Request], Awaitable[Response]]


def token(session: dict[str, Any]) -> str:
    """The session's token, created on first use (an anonymous session gets one for the login form)."""
    value = session.get("csrf")
    if not value:
        value = session["csrf"] = secrets.token_urlsafe(32)
    return value


def hidden_field(session: dict[str, Any]) -> Markup:
    return Markup('<input type="hidden" name="{}" value="{}">').format(FIELD, token(session))


class CsrfMiddleware:
    """Refuse unsafe requests whose token (form field or header) is not the session's."""

    def __init__(self, app: ASGIApp, refuse: Refusal) -> None:
        self.app = app
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            await PlainTextResponse("リクエストが大きすぎます", status_code=413)(scope, receive, send)
            return
        replay = _replayer(body)
        request = Request(scope, replay())
        expected = scope.get("session", {}).get("csrf")
        submitted = request.headers.get(HEADER) or await _form_token(request, body)
        if not expected or not submitted or not hmac.compare_digest(expected, submitted):
            log.warning("csrf token refused", extra=fields(path=scope["path"], method=scope["method"],
                                                         reason="missing" if not submitted else "mismatch",
                                                         client=request.client.host if request.client else None))
            response = await self.refuse(request)
            await response(scope, receive, send)
            return
        await self.app(scope, replay(), send)


async def _read_body(receive: Receive) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replayer(body: bytes) -> Callable[[], Receive]:
    def make() -> Receive:
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return receive
    return make


async def _form_token(request: Request, body: bytes) -> str | None:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/x-www-form-urlencoded"):
        values = parse_qs(body.decode("utf-8", "replace")).get(FIELD)
        return values[0] if values else None
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        value = form.get(FIELD)
        return value if isinstance(value, str) else None
    return None
