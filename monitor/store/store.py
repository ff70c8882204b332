"""The monitor's persistent state: one async code path over SQLite (default) and PostgreSQL (by configuration).

What a restart must neither lose nor re-raise lives here: the current state of
every device, link and site, every condition (active and cleared) with its
fingerprint, the state history, maintenance windows, and the engine's own
checkpoints (hysteresis counters, last sysUpTime per device). Writes are
batch-oriented — the engine saves thousands of records per cycle — so each save
is one transaction with one executemany of an upsert (``INSERT … ON CONFLICT DO
UPDATE``, which both dialects spell the same way in SQLAlchemy).

The URL's password never reaches a log line: only ``Store.url`` (masked) does.

The database may go away for a while (a PostgreSQL restart, a fail-over): a
write that cannot reach it raises ``StoreUnavailable`` and leaves nothing half
written, so the caller keeps its batch and tries again later in the same order
(the state engine does). The store logs once when writes start failing and once
when they succeed again, not at every retry.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import fields
from enum import Enum
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable

from sqlalchemy import Connection, MetaData, Row, Table, delete, event, func, inspect, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.dml import Insert

from monitor.logs import fields as log_fields
from monitor.state.model import (Condition, ConditionKind, ConditionStatus, State, StateRecord, SubjectKind,
                                 Transition)
from monitor.store import schema
from monitor.store.schema import SCHEMA_VERSION

log = logging.getLogger("monitor.store")

DEFAULT_URL = "sqlite+aiosqlite:///state/jukimon.db"
Fence = Callable[[AsyncConnection], Awaitable[None]]  # raises to refuse a write transaction (Store.fenced)

# The two backends, and their INSERT with ON CONFLICT support.
_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


class StoreError(RuntimeError):
    """The store cannot be opened or used as configured."""


class StoreUnavailable(StoreError):
    """A write did not reach the database (it is down or unreachable); nothing of it was committed."""


class SchemaTooNewError(StoreError):
    """The database was written by a newer Jukimon; reading it could misread or damage it."""


class Store:
    """The monitor's database. Open with ``await Store.open(url)``; use as ``async with``."""

    def __init__(self, engine: AsyncEngine, fence: Fence | None = None, *, owns_engine: bool = True) -> None:
        self._engine = engine
        self._fence, self._owns_engine = fence, owns_engine
        self._upserts = {table.name: _upsert(engine.dialect.name, table)
                         for table in (schema.states, schema.conditions, schema.maintenance, schema.checkpoints)}
        self._failing_since: float | None = None  # monotonic time of the first failed write of an outage

    @classmethod
    async def open(cls, url: str = DEFAULT_URL) -> Store:
        """Connect, create missing tables, and refuse a schema newer than this code understands."""
        parsed = make_url(url)
        masked = parsed.render_as_string(hide_password=True)
        backend = parsed.get_backend_name()
        if backend not in _INSERTS:
            raise StoreError(f"store url {masked}: only sqlite+aiosqlite and postgresql+asyncpg are supported")
        if backend == "sqlite":
            _create_parent_dir(parsed)
        engine = create_async_engine(parsed, pool_pre_ping=True,  # survive a PostgreSQL restart between saves
                                     json_serializer=partial(json.dumps, ensure_ascii=False))
        if backend == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(_prepare_schema, masked)
        except BaseException:
            await engine.dispose()
            raise
        log.info("store opened", extra=log_fields(url=masked, schema_version=SCHEMA_VERSION))
        return cls(engine)

    @property
    def url(self) -> str:
        """The database URL with the password masked, for logs and status pages."""
        return self._engine.url.render_as_string(hide_password=True)

    @property
    def engine(self) -> AsyncEngine:
        """For other packages' tables in the same database (alerting, tickets, drills): one connection pool."""
        return self._engine

    def fenced(self, fence: Fence) -> Store:
        """The same database, each write transaction opened by ``fence(conn)`` (``monitor.lease.Lease.hold``):
        the writes of an active monitor, refused once its term has ended. Closing the view leaves the pool open."""
        return Store(self._engine, fence, owns_engine=False)

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, fenced when this is a ``fenced`` view; other packages' writes use it too."""
        async with self._engine.begin() as conn:
            if self._fence is not None:
                await self._fence(conn)
            yield conn

    async def create_tables(self, metadata: MetaData) -> None:
        """Create another package's tables (its own ``MetaData``) if missing."""
        async with self._engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

    def upsert(self, table: Table) -> Insert:
        """``INSERT … ON CONFLICT (primary key) DO UPDATE`` for any table, in this database's dialect."""
        return _upsert(self._engine.dialect.name, table)

    async def close(self) -> None:
        if not self._owns_engine:
            return
        await self._engine.dispose()
        log.info("store closed", extra=log_fields(url=self.url))

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # --- states -------------------------------------------------------------------------------------

    async def save_states(self, records: Iterable[StateRecord]) -> None:
        """Insert or replace the state of each subject, keyed by (kind, subject)."""
        await self._write(self._upserts["states"], [_row(r) for r in records])

    async def load_states(self) -> list[StateRecord]:
        rows = await self._read(select(schema.states).order_by(schema.states.c.kind, schema.states.c.subject))
        return [StateRecord(kind=SubjectKind(r.kind), subject=r.subject, state=State(r.state), since=r.since,
                            reason=r.reason, flapping=r.flapping, details=r.details or {}) for r in rows]

    # --- conditions ---------------------------------------------------------------------------------

    async def save_conditions(self, conds: Iterable[Condition]) -> None:
        """Insert or replace each condition by fingerprint (clearing one is saving it with status CLEARED)."""
        await self._write(self._upserts["conditions"], [_row(c) for c in conds])

    async def save_judgement(self, states: Iterable[StateRecord], transitions: Iterable[Transition],
                             conds: Iterable[Condition]) -> None:
        """One judgement's states, transitions and conditions in one transaction: all or nothing.

        Transitions are appended, not upserted, so a retry after a partial write would store them twice.
        """
        await self._write_all([(self._upserts["states"], [_row(r) for r in states]),
                               (insert(schema.transitions), [_row(t) for t in transitions]),
                               (self._upserts["conditions"], [_row(c) for c in conds])])

    async def load_conditions(self, active_only: bool = True) -> list[Condition]:
        """Conditions, oldest first; only the active ones unless ``active_only`` is false."""
        table = schema.conditions
        query = select(table).order_by(table.c.started, table.c.fingerprint)
        if active_only:
            query = query.where(table.c.status == ConditionStatus.ACTIVE.value)
        return [Condition(fingerprint=r.fingerprint, kind=ConditionKind(r.kind), subject=r.subject,
                          severity=r.severity, started=r.started, summary=r.summary,
                          status=ConditionStatus(r.status), cleared=r.cleared, suppressed=tuple(r.suppressed),
                          in_maintenance=r.in_maintenance, details=r.details or {})
                for r in await self._read(query)]

    # --- history ------------------------------------------------------------------------------------

    async def append_transitions(self, ts: Iterable[Transition]) -> None:
        await self._write(insert(schema.transitions), [_row(t) for t in ts])

    async def transitions(self, subject: str | None = None, since: float | None = None,
                          limit: int = 1000) -> list[Transition]:
        """The newest ``limit`` transitions (of one subject, at or after ``since``), newest first."""
        table = schema.transitions
        query = select(table).order_by(table.c.at.desc(), table.c.id.desc()).limit(limit)
        if subject is not None:
            query = query.where(table.c.subject == subject)
        if since is not None:
            query = query.where(table.c.at >= since)
        return [Transition(kind=SubjectKind(r.kind), subject=r.subject, old=State(r.old), new=State(r.new),
                           at=r.at, reason=r.reason) for r in await self._read(query)]

    async def prune_transitions(self, before: float) -> int:
        """Delete the history older than ``before``; returns how many transitions went."""
        async with self.begin() as conn:
            result = await conn.execute(delete(schema.transitions).where(schema.transitions.c.at < before))
        return result.rowcount

    # --- maintenance windows ------------------------------------------------------------------------

    async def save_maintenance(self, id: str, payload: dict[str, Any], start: float, end: float) -> None:
        """Insert or replace one window; ``payload`` is its ``to_json()`` dict, stored as given."""
        await self._write(self._upserts["maintenance"], [{"id": id, "payload": payload, "start": start, "end": end}])

    async def delete_maintenance(self, id: str) -> bool:
        """Forget one window; false if there was none with that id."""
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(schema.maintenance).where(schema.maintenance.c.id == id))
        return result.rowcount > 0

    async def load_maintenance(self) -> list[dict[str, Any]]:
        """Every window's payload, by start time."""
        table = schema.maintenance
        return [r.payload for r in await self._read(select(table).order_by(table.c.start, table.c.id))]

    # --- checkpoints --------------------------------------------------------------------------------

    async def put_checkpoint(self, key: str, value: Any) -> None:
        """Keep any JSON-serialisable value under ``key``, replacing the previous one."""
        await self._write(self._upserts["checkpoints"], [{"key": key, "value": value, "updated": time.time()}])

    async def get_checkpoint(self, key: str) -> Any | None:
        rows = await self._read(select(schema.checkpoints.c.value).where(schema.checkpoints.c.key == key))
        return rows[0].value if rows else None

    # --- plumbing -----------------------------------------------------------------------------------

    @property
    def failing(self) -> bool:
        """The last write did not reach the database."""
        return self._failing_since is not None

    async def _write(self, statement: Insert, rows: list[dict[str, Any]]) -> None:
        """One transaction, one executemany (an empty batch is no statement at all)."""
        await self._write_all([(statement, rows)])

    async def _write_all(self, batches: list[tuple[Insert, list[dict[str, Any]]]]) -> None:
        """Every non-empty batch in one transaction; ``StoreUnavailable`` if the database cannot be reached."""
        batches = [(statement, rows) for statement, rows in batches if rows]
        if not batches:
            return
        try:
            async with self.begin() as conn:
                for statement, rows in batches:
                    await conn.execute(statement, rows)
        except Exception as exc:  # the driver's own errors may come unwrapped (asyncpg while connecting)
            if not _unreachable(exc):
                raise  # a real error of this write (a constraint, a bug): retrying cannot help
            self._write_failed(exc)
            raise StoreUnavailable(f"store {self.url}: {_reason(exc)}") from exc
        if self._failing_since is not None:
            log.info("store writes recovered", extra=log_fields(
                url=self.url, outage_s=round(time.monotonic() - self._failing_since, 1)))
            self._failing_since = None

    def _write_failed(self, exc: BaseException) -> None:
        if self._failing_since is None:  # once per outage: the caller retries every few seconds
            self._failing_since = time.monotonic()
            log.warning("store writes failing, keeping them to retry", extra=log_fields(
                url=self.url, error=_reason(exc)))

    async def _read(self, query: Any) -> list[Row[Any]]:
        async with self._engine.connect() as conn:
            return list((await conn.execute(query)).all())


def _unreachable(exc: BaseException) -> bool:
    """The database is down, restarting or unreachable — not a fault of the write itself.

    Refused or reset sockets and timeouts; a connection SQLAlchemy saw break; the driver's
    operational and interface errors; PostgreSQL's SQLSTATE classes 08 (connection exception)
    and 57 (operator intervention: shutting down, starting up).
    """
    if isinstance(exc, (OSError, TimeoutError)):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError)):
            return True
        exc = exc.orig or exc
    sqlstate = str(getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None) or "")
    return sqlstate.startswith(("08", "57"))  # e.g. asyncpg's CannotConnectNowError: "starting up"


def _reason(exc: BaseException) -> str:
    """A short reason for a log line: the driver's first line, never the statement or its parameters."""
    inner = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return f"{type(inner).__name__}: {str(inner).splitlines()[0] if str(inner) else ''}"[:300]


def _upsert(dialect: str, table: Table) -> Insert:
    """``INSERT … ON CONFLICT (primary key) DO UPDATE SET`` every other column to the new row's value."""
    statement = _INSERTS[dialect](table)
    return statement.on_conflict_do_update(
        index_elements=list(table.primary_key.columns),
        set_={c.name: statement.excluded[c.name] for c in table.columns if not c.primary_key})


def _row(record: Any) -> dict[str, Any]:
    """A model dataclass as column values: enums as their values, tuples as JSON lists."""
    return {f.name: _plain(getattr(record, f.name)) for f in fields(record)}


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


def _prepare_schema(conn: Connection, masked_url: str) -> None:
    """Check the stored schema version first, so a newer database is refused before anything is created in it."""
    stored = None
    if inspect(conn).has_table(schema.schema_version.name):
        stored = conn.execute(select(func.max(schema.schema_version.c.version))).scalar()
    if stored is not None and stored > SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"store {masked_url} has schema version {stored}, newer than this Jukimon's {SCHEMA_VERSION}: "
            "upgrade Jukimon, or point the store at another database")
    schema.metadata.create_all(conn)
    if stored is None:
        conn.execute(insert(schema.schema_version).values(version=SCHEMA_VERSION))


def _create_parent_dir(url: URL) -> None:
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets the console read while the engine writes; NORMAL sync is durable enough in WAL and much faster."""
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=5000"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()
