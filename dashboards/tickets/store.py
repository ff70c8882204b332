"""The call centre's tables in the monitor's database, and the search over them.

``console_tickets`` (one row per ticket, with a ``version`` so that two
operators cannot overwrite each other), ``console_ticket_alarms`` (ticket ↔
alarm fingerprint), ``console_ticket_events`` (append-only history, numbered
per ticket) and ``console_kb`` (knowledge base). Tickets and knowledge-base
entries carry a normalised ``search_text`` that a trigram index serves
(``dashboards.tickets.search``: SQLite FTS5 or PostgreSQL pg_trgm, one API).

The store only keeps things; what may change and how is ``workflow``'s job.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import replace
from typing import Any, Iterable, Sequence

from sqlalchemy import (JSON, Column, Double, Index, Integer, MetaData, Row, String, Table, Text, delete, func,
                        insert, select, update)
from sqlalchemy.ext.asyncio import AsyncConnection

from dashboards.tickets.model import (Category, HitKind, KbEntry, SearchHit, Ticket, TicketEvent, TicketStatus)
from dashboards.tickets.search import TrigramIndex, document_frequency, ranked, trigram_index
from dashboards.tickets.terms import normalise, search_terms
from monitor.logs import fields
from monitor.store import Store

log = logging.getLogger("dashboards.tickets")

metadata = MetaData()

tickets = Table(
    "console_tickets", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("site", String(64), nullable=False),
    Column("category", String(32), nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("caller", String(200), nullable=False),
    Column("answer", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created", Double, nullable=False),
    Column("updated", Double, nullable=False),
    Column("opened_by", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("search_text", Text, nullable=False),
    Index("ix_console_tickets_status_updated", "status", "updated"),
    Index("ix_console_tickets_site_created", "site", "created"),
)

ticket_alarms = Table(
    "console_ticket_alarms", metadata,
    Column("ticket", Integer, primary_key=True, autoincrement=False),
    Column("fingerprint", String(300), primary_key=True),
    Column("linked", Double, nullable=False),
    Index("ix_console_ticket_alarms_fingerprint", "fingerprint"),
)

events = Table(
    "console_ticket_events", metadata,
    Column("ticket", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", Double, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("data", JSON, nullable=False),
)

kb = Table(
    "console_kb", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("title", Text, nullable=False),
    Column("question", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("category", String(32), nullable=False),
    Column("author", String(200), nullable=False),
    Column("created", Double, nullable=False),
    Column("updated", Double, nullable=False),
    Column("source_ticket", Integer),
    Column("search_text", Text, nullable=False),
)


class TicketConflict(RuntimeError):
    """The ticket changed since it was read (another operator saved first): read it again and retry."""


class TicketStore:
    """Tickets, their history and alarm links, and the knowledge base. Open with ``await TicketStore.open(store)``."""

    def __init__(self, store: Store, index: TrigramIndex) -> None:
        self._store = store
        self._engine = store.engine
        self._index = index

    @classmethod
    async def open(cls, store: Store) -> TicketStore:
        """Create the tables and the search index if missing (``SearchUnavailable`` if the database cannot)."""
        index = trigram_index(store.engine.dialect.name, (tickets, kb))
        await store.create_tables(metadata)
        async with store.engine.begin() as conn:
            await index.create(conn)
        return cls(store, index)

    # --- tickets ------------------------------------------------------------------------------------

    async def create(self, ticket: Ticket, opened: TicketEvent) -> Ticket:
        """Insert a new ticket (its ``id`` is ignored and assigned here) with its alarm links and first event."""
        async with self._engine.begin() as conn:
            values = _ticket_values(ticket)
            del values["id"]
            result = await conn.execute(insert(tickets).values(values))
            saved = replace(ticket, id=result.inserted_primary_key[0])
            await self._link(conn, saved.id, saved.alarms, saved.created)
            await self._append(conn, saved.id, [opened])
        log.info("ticket opened", extra=fields(ticket=saved.id, site=saved.site, category=saved.category.value,
                                               user=saved.opened_by))
        return saved

    async def update(self, ticket: Ticket, changes: Sequence[TicketEvent]) -> Ticket:
        """Save ``ticket`` if its ``version`` is still the stored one (else ``TicketConflict``) and append events.

        Alarm links are made to match ``ticket.alarms``. Event ``seq`` values are assigned here.
        """
        saved = replace(ticket, version=ticket.version + 1)
        async with self._engine.begin() as conn:
            values = _ticket_values(saved)
            result = await conn.execute(update(tickets).where(tickets.c.id == ticket.id,
                                                              tickets.c.version == ticket.version).values(values))
            if result.rowcount != 1:
                raise TicketConflict(f"ticket {ticket.id} changed since version {ticket.version} was read")
            linked = (await self._alarms_of(conn, [ticket.id])).get(ticket.id, ())
            gone = set(linked) - set(saved.alarms)
            if gone:
                await conn.execute(delete(ticket_alarms).where(ticket_alarms.c.ticket == ticket.id,
                                                               ticket_alarms.c.fingerprint.in_(gone)))
            await self._link(conn, ticket.id, [fp for fp in saved.alarms if fp not in linked], saved.updated)
            await self._append(conn, ticket.id, changes)
        return saved

    async def ticket(self, ticket_id: int) -> Ticket | None:
        if not 0 < ticket_id <= MAX_ROW_ID:  # from a URL: beyond any row, and beyond what the database takes
            return None
        found = await self._tickets(select(tickets).where(tickets.c.id == ticket_id))
        return found[0] if found else None

    async def tickets(self, statuses: Iterable[TicketStatus] | None = None, site: str | None = None,
                      limit: int = 200) -> list[Ticket]:
        """Tickets most recently changed first, of the given statuses and caller site if given."""
        query = select(tickets).order_by(tickets.c.updated.desc(), tickets.c.id.desc()).limit(limit)
        if statuses is not None:
            query = query.where(tickets.c.status.in_([s.value for s in statuses]))
        if site is not None:
            query = query.where(tickets.c.site == site)
        return await self._tickets(query)

    async def tickets_by_id(self, ids: Sequence[int]) -> list[Ticket]:
        """The tickets with these ids, in the order given (unknown ids left out)."""
        found = {t.id: t for t in await self._tickets(select(tickets).where(tickets.c.id.in_(ids)))} if ids else {}
        return [found[i] for i in ids if i in found]

    async def opened_between(self, start: float, end: float) -> list[Ticket]:
        """Tickets opened in [start, end), oldest first (for the monthly report)."""
        return await self._tickets(select(tickets).where(tickets.c.created >= start, tickets.c.created < end)
                                   .order_by(tickets.c.created, tickets.c.id))

    async def tickets_for_alarm(self, fingerprint: str) -> list[Ticket]:
        """The tickets linked to an alarm, newest first (for the alarm console)."""
        linked = select(ticket_alarms.c.ticket).where(ticket_alarms.c.fingerprint == fingerprint)
        return await self._tickets(select(tickets).where(tickets.c.id.in_(linked)).order_by(tickets.c.id.desc()))

    async def events(self, ticket_id: int) -> list[TicketEvent]:
        """The ticket's history, oldest first."""
        query = select(events).where(events.c.ticket == ticket_id).order_by(events.c.seq)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [TicketEvent(r.ticket, r.seq, r.at, r.actor, r.action, r.text, r.data or {}) for r in rows]

    async def _tickets(self, query: Any) -> list[Ticket]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            alarms = await self._alarms_of(conn, [r.id for r in rows])
        return [_ticket(r, alarms.get(r.id, ())) for r in rows]

    @staticmethod
    async def _alarms_of(conn: AsyncConnection, ids: list[int]) -> dict[int, tuple[str, ...]]:
        if not ids:
            return {}
        query = (select(ticket_alarms).where(ticket_alarms.c.ticket.in_(ids))
                 .order_by(ticket_alarms.c.linked, ticket_alarms.c.fingerprint))
        found: dict[int, list[str]] = {}
        for row in (await conn.execute(query)).all():
            found.setdefault(row.ticket, []).append(row.fingerprint)
        return {ticket_id: tuple(fps) for ticket_id, fps in found.items()}

    @staticmethod
    async def _link(conn: AsyncConnection, ticket_id: int, fingerprints: Iterable[str], at: float) -> None:
        rows = [{"ticket": ticket_id, "fingerprint": fp, "linked": at} for fp in fingerprints]
        if rows:
            await conn.execute(insert(ticket_alarms), rows)

    @staticmethod
    async def _append(conn: AsyncConnection, ticket_id: int, changes: Sequence[TicketEvent]) -> None:
        if not changes:
            return
        # Safe without a lock: the version check above (or the insert) already serialised writers of this ticket.
        last = (await conn.execute(select(func.max(events.c.seq)).where(events.c.ticket == ticket_id))).scalar()
        first = 0 if last is None else last + 1
        await conn.execute(insert(events), [
            {"ticket": ticket_id, "seq": first + i, "at": e.at, "actor": e.actor, "action": e.action,
             "text": e.text, "data": e.data} for i, e in enumerate(changes)])

    # --- knowledge base -----------------------------------------------------------------------------

    async def save_kb(self, entry: KbEntry) -> KbEntry:
        """Insert (``id`` 0) or replace an entry; returns it with its id."""
        values = {c: getattr(entry, c) for c in ("id", "title", "question", "answer", "author", "created", "updated",
                                                 "source_ticket")}
        values |= {"category": entry.category.value,
                   "search_text": _searchable(entry.title, entry.question, entry.answer)}
        async with self._engine.begin() as conn:
            if entry.id:
                await conn.execute(self._store.upsert(kb), [values])
                return entry
            del values["id"]
            result = await conn.execute(insert(kb).values(values))
        return replace(entry, id=result.inserted_primary_key[0])

    async def kb_entry(self, entry_id: int) -> KbEntry | None:
        if not 0 < entry_id <= MAX_ROW_ID:
            return None
        found = await self._kb(select(kb).where(kb.c.id == entry_id))
        return found[0] if found else None

    async def kb_entries(self, limit: int = 200) -> list[KbEntry]:
        return await self._kb(select(kb).order_by(kb.c.updated.desc(), kb.c.id.desc()).limit(limit))

    async def _kb(self, query: Any) -> list[KbEntry]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [KbEntry(r.id, r.title, r.question, r.answer, Category(r.category), r.author, r.created, r.updated,
                        r.source_ticket) for r in rows]

    # --- search -------------------------------------------------------------------------------------

    async def similar_tickets(self, text: str, limit: int = 5, exclude: int | None = None) -> list[SearchHit]:
        """Past tickets sharing the most (and longest) terms with ``text``; ``exclude`` the ticket being viewed."""
        terms = search_terms(text)
        found = await self._ranked(tickets, terms, limit, exclude)
        return [SearchHit(HitKind.TICKET, t.id, t.title, t.description, t.answer, found[t.id],
                          _matched(terms, t.title, t.description, t.answer), t.status, t.site)
                for t in await self.tickets_by_id(list(found))]

    async def similar_answers(self, text: str, limit: int = 5) -> list[SearchHit]:
        """Knowledge-base entries sharing the most (and longest) terms with ``text``."""
        terms = search_terms(text)
        found = await self._ranked(kb, terms, limit, None)
        by_id = {e.id: e for e in await self._kb(select(kb).where(kb.c.id.in_(found)))}
        return [SearchHit(HitKind.KB, e.id, e.title, e.question, e.answer, found[e.id],
                          _matched(terms, e.title, e.question, e.answer))
                for e in (by_id[i] for i in found)]

    async def _ranked(self, source: Table, terms: list[str], limit: int, exclude: int | None) -> dict[int, float]:
        """Id → score, best first (dicts keep order)."""
        if not terms:
            return {}
        async with self._engine.connect() as conn:
            found = {int(position): count for position, count in
                     (await conn.execute(document_frequency(self._index, source, terms, exclude))).all()}
            if not found:
                return {}
            rows = (await conn.execute(select(func.count()).select_from(source))).scalar_one()
            weights = [(terms[p], len(terms[p]) * math.log(1 + rows / count)) for p, count in sorted(found.items())]
            ranking = (await conn.execute(ranked(self._index, source, weights, limit, exclude))).all()
        return {r.id: float(r.score) for r in ranking}


async def shared_ticket_store(store: Store, cache: dict[str, Any]) -> TicketStore:
    """The console's one ``TicketStore``, opened on first use and kept in ``cache`` (``Console.cache``)."""
    lock = cache.setdefault("tickets.lock", asyncio.Lock())
    async with lock:  # two first requests at once must not both create the tables
        if "tickets.store" not in cache:
            cache["tickets.store"] = await TicketStore.open(store)
    return cache["tickets.store"]


MAX_ROW_ID = 2**63 - 1  # SQLite's and PostgreSQL's largest integer key


def row_id(text: str) -> int | None:
    """A ticket or entry id as a form or query gives it: ASCII digits within the keys' range, else None."""
    if not (text.isascii() and text.isdigit()):  # "²".isdigit() is true, and int() refuses it
        return None
    value = int(text)
    return value if 0 < value <= MAX_ROW_ID else None


def _searchable(*parts: str) -> str:
    return normalise("\n".join(parts))


def _matched(terms: list[str], *parts: str) -> tuple[str, ...]:
    text = _searchable(*parts)
    return tuple(term for term in terms if term in text)


def _ticket_values(ticket: Ticket) -> dict[str, Any]:
    return {"id": ticket.id, "site": ticket.site, "category": ticket.category.value, "title": ticket.title,
            "description": ticket.description, "caller": ticket.caller, "answer": ticket.answer,
            "status": ticket.status.value, "created": ticket.created, "updated": ticket.updated,
            "opened_by": ticket.opened_by, "version": ticket.version,
            "search_text": _searchable(ticket.title, ticket.description, ticket.answer)}


def _ticket(row: Row[Any], alarms: tuple[str, ...]) -> Ticket:
    return Ticket(row.id, row.site, Category(row.category), row.title, row.description, TicketStatus(row.status),
                  row.created, row.updated, row.opened_by, row.caller, row.answer, alarms, row.version)
