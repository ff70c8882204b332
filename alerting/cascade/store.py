"""The cascade's tables (``cascade_*``) in the monitor's database, with group commit for delivery updates.

What a restart must not lose: incidents, reports, every delivery's progress (so a
report already accepted by SMTP is never sent again, and a confirmation is never
asked for again) and who forwarded each report in each prefecture.

A cascade updates thousands of deliveries within seconds (SMTP acceptances by the
batch, confirmations one click at a time). Each update is awaited until it is
committed, but concurrent updates share a transaction (group commit): the first
writer commits whatever has queued meanwhile, in one executemany. Deliveries are
inserted when planned and only updated afterwards, with a plain ``UPDATE … WHERE
report AND org``: unlike the dialects' upserts, SQLAlchemy caches its compiled
form, which matters at one commit per click.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, fields
from typing import Any, Iterable

from sqlalchemy import JSON, Boolean, Column, Double, Integer, MetaData, String, Table, Text, bindparam, select, update
from sqlalchemy.sql.dml import Insert

from alerting.cascade.model import Delivery, Incident, Report
from monitor.store import Store

metadata = MetaData()

incidents = Table(
    "cascade_incidents", metadata,
    Column("id", String(100), primary_key=True),
    Column("title", Text, nullable=False),
    Column("drill", Boolean, nullable=False),
    Column("opened", Double, nullable=False),
)

reports = Table(
    "cascade_reports", metadata,
    Column("incident", String(100), primary_key=True),
    Column("sequence", Integer, primary_key=True),
    Column("body", Text, nullable=False),
    Column("issued_at", Double, nullable=False),
    Column("final", Boolean, nullable=False),
    Column("scope", JSON, nullable=False),
)

deliveries = Table(
    "cascade_deliveries", metadata,
    Column("report", String(100), primary_key=True),
    Column("org", String(100), primary_key=True),
    Column("sent_by", String(100), nullable=False),
    Column("on_behalf", Boolean, nullable=False),
    Column("planned_at", Double, nullable=False),
    Column("sent_at", Double),
    Column("delivered_at", Double),
    Column("attempts", Integer, nullable=False),
    Column("error", Text, nullable=False),
    Column("confirmed_at", Double),
    Column("confirmed_via", String(16)),
    Column("confirmed_by", Text),
    Column("reminders", Integer, nullable=False),
    Column("reminded_at", Double),
)

# Who forwarded a report in a prefecture (the prefecture itself, or Jukimon on its behalf) and when.
forwards = Table(
    "cascade_forwards", metadata,
    Column("report", String(100), primary_key=True),
    Column("prefecture", String(100), primary_key=True),
    Column("by", Text, nullable=False),
    Column("on_behalf", Boolean, nullable=False),
    Column("at", Double, nullable=False),
)


_DELIVERY_FIELDS = tuple(f.name for f in fields(Delivery))
_KEY = ("report", "org")
_update_delivery = update(deliveries).where(deliveries.c.report == bindparam("key_report"),
                                            deliveries.c.org == bindparam("key_org")).values(
    {name: bindparam(name) for name in _DELIVERY_FIELDS if name not in _KEY})


def _delivery_row(d: Delivery) -> dict[str, Any]:
    return {name: getattr(d, name) for name in _DELIVERY_FIELDS}  # flat values: no deep copy as asdict makes


@dataclass(frozen=True, slots=True)
class Forward:
    report: str
    prefecture: str  # org id
    by: str  # the prefecture's operator, or "jukimon"
    on_behalf: bool
    at: float


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the cascade tables hold, as loaded at start."""

    incidents: list[Incident]
    reports: list[Report]
    deliveries: list[Delivery]
    forwards: list[Forward]


class CascadeStore:
    """Reads and writes the cascade tables through the monitor's ``Store``."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._upserts: dict[str, Insert] = {t.name: store.upsert(t) for t in metadata.sorted_tables}
        self._pending: dict[tuple[str, str], dict[str, Any]] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._committer: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, store: Store) -> CascadeStore:
        await store.create_tables(metadata)
        return cls(store)

    async def save_incident(self, incident: Incident) -> None:
        await self._write(incidents, [asdict(incident)])

    async def save_report(self, report: Report, planned: Iterable[Delivery], forwarded: Iterable[Forward]) -> None:
        """A new report with its first deliveries, in one transaction: never a report without its plan."""
        row = {**{k: v for k, v in asdict(report).items() if k != "scope"}, "scope": list(report.scope)}
        async with self._store.begin() as conn:
            await conn.execute(self._upserts[reports.name], [row])
            await self._execute(conn, deliveries, [_delivery_row(d) for d in planned])
            await self._execute(conn, forwards, [asdict(f) for f in forwarded])

    async def save_forward(self, forward: Forward, planned: Iterable[Delivery]) -> None:
        async with self._store.begin() as conn:
            await self._execute(conn, forwards, [asdict(forward)])
            await self._execute(conn, deliveries, [_delivery_row(d) for d in planned])

    async def save_deliveries(self, updated: Iterable[Delivery]) -> None:
        """Persist the current state of these (planned, so saved) deliveries; returns once committed (group
        commit)."""
        for delivery in updated:
            row = _delivery_row(delivery)
            row["key_report"], row["key_org"] = row.pop("report"), row.pop("org")
            self._pending[delivery.key] = row  # the newest state of a delivery wins
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit_pending(), name="cascade-group-commit")
        await waiter

    async def load(self) -> Snapshot:
        async with self._store.engine.connect() as conn:
            found = {t.name: (await conn.execute(select(t))).mappings().all()
                     for t in (incidents, reports, deliveries, forwards)}
        return Snapshot(
            incidents=[Incident(**r) for r in found[incidents.name]],
            reports=[Report(**{**r, "scope": tuple(r["scope"])}) for r in found[reports.name]],
            deliveries=[Delivery(**r) for r in found[deliveries.name]],
            forwards=[Forward(**r) for r in found[forwards.name]])

    async def _commit_pending(self) -> None:
        try:
            while self._waiters:
                rows, waiters = list(self._pending.values()), self._waiters
                self._pending, self._waiters = {}, []
                try:
                    if rows:
                        async with self._store.begin() as conn:
                            await conn.execute(_update_delivery, rows)
                except Exception as exc:  # every writer in this group learns that its update is not saved
                    for waiter in waiters:
                        if not waiter.done():
                            waiter.set_exception(exc)
                    continue
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)
        finally:
            self._committer = None

    async def _write(self, table: Table, rows: list[dict[str, Any]]) -> None:
        async with self._store.begin() as conn:
            await self._execute(conn, table, rows)

    async def _execute(self, conn: Any, table: Table, rows: list[dict[str, Any]]) -> None:
        if rows:
            await conn.execute(self._upserts[table.name], rows)
