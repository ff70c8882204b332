"""The console's audit trail (操作ログ): every operator action, who did it, when, to what, and how it ended.

Appended to ``console_audit`` in the monitor's database, never updated or
deleted by the console. Operator logs are kept and audited (seed 002 §5), and
the operation-pattern IDS reads them, so each entry is one flat row: user,
role, action (dotted, e.g. ``alarm.acknowledge``), target (an alarm
fingerprint, a site id, a ticket number), result (``ok``, ``denied``,
``error``, ``failed``), a JSON detail and the client address.

Views call ``await audit(request, "alarm.acknowledge", fingerprint)`` after
acting; refusals (403, CSRF, failed logins) are recorded too.

Every entry is hash-chained to the one before and signed with Ed25519
(``dashboards.audit_chain``); ``jukimon audit verify`` finds any edit, deletion,
reordering or truncation and says where.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sqlalchemy import JSON, BigInteger, Column, Double, Index, Integer, MetaData, String, Table, Text, insert, select
from starlette.requests import Request

from dashboards.audit_chain import GENESIS, chain_hash, sign, write_head
from monitor.logs import fields
from monitor.store import Store

log = logging.getLogger("dashboards.audit")

metadata = MetaData()

audit_table = Table(
    "audit_log", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("seq", BigInteger, nullable=False, unique=True),  # 1, 2, 3 … in the order written
    Column("at", Double, nullable=False),
    Column("user", String(100), nullable=False),  # "-" before login
    Column("role", String(32), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", Text, nullable=False),
    Column("result", String(16), nullable=False),
    Column("detail", JSON, nullable=False),
    Column("client", String(64), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("signature", String(128), nullable=False),  # Ed25519 over hash, hex ("" when no key is configured)
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_user_at", "user", "at"),
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
    """Append to and read the chained, signed ``audit_log``."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time, *,
                 signing_key: Ed25519PrivateKey | None = None, head_path: Path | None = None) -> None:
        self.store = store
        self.clock = clock
        self.signing_key = signing_key
        self.head_path = head_path  # the newest (seq, hash), signed, outside the database: truncation shows
        self._lock = asyncio.Lock()  # one writer at a time: each entry chains to the one before
        self._head: tuple[int, str] | None = None

    async def open(self) -> AuditTrail:
        await self.store.create_tables(metadata)
        return self

    async def _last(self) -> tuple[int, str]:
        if self._head is None:
            query = select(audit_table.c.seq, audit_table.c.hash).order_by(audit_table.c.seq.desc()).limit(1)
            async with self.store.engine.connect() as conn:
                row = (await conn.execute(query)).first()
            self._head = (row.seq, row.hash) if row else (0, GENESIS)
        return self._head

    async def record(self, user: str, role: str, action: str, target: str = "", result: str = "ok", *,
                     client: str = "", **detail: Any) -> None:
        async with self._lock:
            seq, previous = await self._last()
            row = {"seq": seq + 1, "at": self.clock(), "user": user or "-", "role": role or "-", "action": action,
                   "target": target, "result": result, "detail": detail, "client": client, "prev_hash": previous}
            row["hash"] = chain_hash(row, previous)
            row["signature"] = sign(self.signing_key, row["hash"])
            async with self.store.engine.begin() as conn:
                await conn.execute(insert(audit_table), [row])
            self._head = (row["seq"], row["hash"])
            if self.head_path is not None:
                await asyncio.to_thread(write_head, self.head_path, row["seq"], row["hash"], self.signing_key)
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
