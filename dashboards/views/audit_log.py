"""The audit log page (操作ログ): the console's audit trail for auditors, newest first, by user and action."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dashboards.auth import UserRole, require
from dashboards.pages import console_of, render

SHOWN = 500


@require(UserRole.AUDITOR)
async def audit_log(request: Request) -> Response:
    user = request.query_params.get("user", "").strip()
    action = request.query_params.get("action", "").strip()
    entries = await console_of(request).audit.entries(user=user or None, action=action or None, limit=SHOWN)
    return render(request, "audit.html", {"entries": entries, "user_filter": user, "action_filter": action,
                                          "shown": SHOWN})


def routes() -> list[Route]:
    return [Route("/audit", audit_log)]
