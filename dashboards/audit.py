"""The console's audit trail (操作ログ): every operator action, who did it, when, to what, and how it ended.

Appended to ``console_audit`` in the monitor's database, never updated or
deleted by the console. Operator logs are kept and audited (seed 002 §5), and
the operation-pattern IDS reads them, so each entry is one flat row: user,
role, action (dotted, e.g. ``alarm.acknowledge``), target (an alarm
fingerprint, a site id, a ticket number), result (``ok``, ``denied``,
``error``, ``failed``), a JSON detail and the client address.

Views call ``await audit(request, "alarm.acknowledge", fingerprint)`` after
acting; refusals (403, CSRF, failed logins) are recorded too.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import JSON, BigInteger, Column, Double, Index, Integer, MetaData, String, Table, Text, insert, select
from starlette.requests import Request

from monitor.logs import fields
from monitor.store import Store

log = logging.getLogger("dashboards.audit")

metadata = MetaData()

audit_table = Table(
    "console_audit", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", Double, nullable=False),
    Column("user", String(100), nullable=False),  # "-" before login
    Column("role", String(32), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", Text, nullable=False),
    Column("result", String(16), nullable=False),
    Column("detail", JSON, nullable=False),
    Column("client", String(64), nullable=False),
    Index("ix_console_audit_at", "at"),
    Index("ix_console_audit_user_at", "user", "at"),
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: float
    user: str
    role: str
    action: str
    target: str
    result: str
    detail: dict[str, Any]
    client: str


class AuditTrail:
    """Append and read ``console_audit``."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    async def open(self) -> AuditTrail:
        await self.store.create_tables(metadata)
        return self

    async def record(self, user: str, role: str, action: str, target: str = "", result: str = "ok", *,
                     client: str = "", **detail: Any) -> None:
        row = {"at": self.clock(), "user": user or "-", "role": role or "-", "action": action, "target": target,
               "result": result, "detail": detail, "client": client}
        async with self.store.engine.begin() as conn:
            await conn.execute(insert(audit_table), [row])
        log.info("console action", extra=fields(user=row["user"], action=action, target=target or None,
                                                result=result))

    async def entries(self, *, user: str | None = None, action: str | None = None, since: float | None = None,
                      limit: int = 500) -> list[AuditEntry]:
        """Newest first."""
        query = select(audit_table).order_by(audit_table.c.at.desc(), audit_table.c.id.desc()).limit(limit)
        if user:
            query = query.where(audit_table.c.user == user)
        if action:
            query = query.where(audit_table.c.action.startswith(action))
        if since is not None:
            query = query.where(audit_table.c.at >= since)
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [AuditEntry(r.at, r.user, r.role, r.action, r.target, r.result, r.detail or {}, r.client)
                for r in rows]


async def audit(request: Request, action: str, target: str = "", result: str = "ok", **detail: Any) -> None:
    """Record an action of this request's user (or of the anonymous visitor) in the app's audit trail."""
    session = request.scope.get("session") or {}
    trail: AuditTrail = request.app.state.console.audit
    await trail.record(session.get("user", "-"), session.get("role", "-"), action, target, result,
                       client=request.client.host if request.client else "", **detail)
