"""Full-text search of the call centre's tables: one ranking, two trigram indexes (SQLite FTS5, PostgreSQL pg_trgm).

Each searchable table keeps a ``search_text`` column — its text, normalised
(``terms.normalise``) — written by the store on both databases alike. What
differs by dialect is only how a term of three or more characters is looked up
through an index:

- SQLite: an FTS5 table with the ``trigram`` tokenizer (SQLite 3.34 or later)
  over ``search_text`` as external content, kept in step by triggers; a term is a
  phrase ``MATCH`` (substring match).
- PostgreSQL: a GIN ``gin_trgm_ops`` index on ``search_text`` (extension
  ``pg_trgm``); a term is ``LIKE '%term%'``, which the index answers. pg_trgm
  takes trigrams from *word characters* only, by the database's LC_CTYPE: under
  the C locale (``initdb --no-locale``) Japanese letters are not word characters,
  the index cannot narrow a Japanese term and the LIKE scans — same answers,
  slower. Create the database with a UTF-8 LC_CTYPE (``C.UTF-8``, ``ja_JP.UTF-8``).

Shorter terms are a plain ``LIKE`` scan on both. A document's score is the sum,
over the terms it contains (``terms.search_terms``), of the term's length times
its rarity — ``log(1 + rows / rows containing it)``, the idea of BM25's IDF —
so that "住基" or "ネット", in half of all calls, weigh less than "回線" or
"静脈". Two queries: how many rows contain each term, then the ranking.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Protocol, Sequence

from sqlalchemy import (Float, Select, Subquery, Table, column, func, literal, literal_column, select, table, text,
                        union_all)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from dashboards.tickets.terms import MIN_INDEXED
from monitor.logs import fields

log = logging.getLogger("dashboards.tickets.search")

SQLITE_TRIGRAM = (3, 34, 0)  # FTS5's trigram tokenizer first shipped in SQLite 3.34


class SearchUnavailable(RuntimeError):
    """The database cannot index Japanese text for search as required; the message says what to install or run."""


class TrigramIndex(Protocol):
    async def create(self, conn: AsyncConnection) -> None:
        """Create the index and whatever keeps it in step (idempotent)."""

    def indexed_match(self, source: Table, term: str) -> ColumnElement[bool]:
        """The rows of ``source`` whose ``search_text`` contains ``term`` (three or more characters)."""


def like_pattern(term: str) -> str:
    """``%term%`` with LIKE's wildcards in the term escaped (escape character: backslash)."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def contains(source: Table, term: str) -> ColumnElement[bool]:
    return source.c.search_text.like(like_pattern(term), escape="\\")


class SqliteTrigramIndex:
    """``<table>_fts``: FTS5, trigram tokenizer, external content ``<table>.search_text``, rowid = ``id``."""

    def __init__(self, tables: Sequence[Table]) -> None:
        if sqlite3.sqlite_version_info < SQLITE_TRIGRAM:
            raise SearchUnavailable(f"SQLite {sqlite3.sqlite_version} has no FTS5 trigram tokenizer; "
                                    f"ticket search needs SQLite {'.'.join(map(str, SQLITE_TRIGRAM))} or later")
        self._tables = tables

    async def create(self, conn: AsyncConnection) -> None:
        for source in self._tables:
            for statement in _sqlite_ddl(source.name):
                await conn.execute(text(statement))

    def indexed_match(self, source: Table, term: str) -> ColumnElement[bool]:
        fts = f"{source.name}_fts"
        phrase = '"' + term.replace('"', '""') + '"'  # one FTS5 string: a substring, not query syntax
        hits = select(column("rowid")).select_from(table(fts)).where(literal_column(fts).op("MATCH")(phrase))
        return source.c.id.in_(hits)


def _sqlite_ddl(name: str) -> list[str]:
    fts = f"{name}_fts"
    delete = f"INSERT INTO {fts}({fts}, rowid, search_text) VALUES ('delete', old.id, old.search_text);"
    insert = f"INSERT INTO {fts}(rowid, search_text) VALUES (new.id, new.search_text);"
    return [
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5(search_text, content='{name}', content_rowid='id', "
        "tokenize='trigram')",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_insert AFTER INSERT ON {name} BEGIN {insert} END",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_delete AFTER DELETE ON {name} BEGIN {delete} END",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_update AFTER UPDATE OF search_text ON {name} BEGIN {delete} {insert} END",
    ]


class PostgresTrigramIndex:
    """``<table>_search_trgm``: GIN (search_text gin_trgm_ops)."""

    def __init__(self, tables: Sequence[Table]) -> None:
        self._tables = tables

    async def create(self, conn: AsyncConnection) -> None:
        installed = (await conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"))).first()
        if installed is None:
            try:
                await conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
            except DBAPIError as exc:  # the contrib files missing, or a role that may not create extensions
                raise SearchUnavailable(
                    "ticket search needs the PostgreSQL extension pg_trgm: as a database owner or superuser run "
                    f"CREATE EXTENSION pg_trgm; in this database ({type(exc).__name__}: {exc})") from exc
        for source in self._tables:
            await conn.execute(text(f"CREATE INDEX IF NOT EXISTS {source.name}_search_trgm ON {source.name} "
                                    "USING gin (search_text gin_trgm_ops)"))
        if not (await conn.execute(text("SELECT show_trgm(:probe)"), {"probe": "回線断"})).scalar():
            ctype = (await conn.execute(text("SHOW lc_ctype"))).scalar()
            log.warning("pg_trgm cannot index Japanese in this database: searches scan every row",
                        extra=fields(lc_ctype=ctype, fix="a database created with LC_CTYPE 'C.UTF-8' or 'ja_JP.UTF-8'"))

    def indexed_match(self, source: Table, term: str) -> ColumnElement[bool]:
        return contains(source, term)


def trigram_index(dialect: str, tables: Sequence[Table]) -> TrigramIndex:
    if dialect == "sqlite":
        return SqliteTrigramIndex(tables)
    if dialect == "postgresql":
        return PostgresTrigramIndex(tables)
    raise SearchUnavailable(f"no full-text search for the {dialect} dialect")


def _matches(index: TrigramIndex, source: Table, term: str, exclude: int | None) -> ColumnElement[bool]:
    found = index.indexed_match(source, term) if len(term) >= MIN_INDEXED else contains(source, term)
    return found if exclude is None else found & (source.c.id != exclude)


def _hits(index: TrigramIndex, source: Table, weights: Sequence[tuple[str, float]], exclude: int | None) -> Subquery:
    """One row ``(id, weight)`` per row of ``source`` and term it contains."""
    return union_all(*(select(source.c.id.label("id"), literal(weight, Float).label("weight"))
                       .where(_matches(index, source, term, exclude)) for term, weight in weights)).subquery()


def document_frequency(index: TrigramIndex, source: Table, terms: Sequence[str],
                       exclude: int | None = None) -> Select[tuple[float, int]]:
    """``(term position, rows containing it)`` for the terms found at all (the weight column carries the position)."""
    hits = _hits(index, source, [(term, position) for position, term in enumerate(terms)], exclude)
    return select(hits.c.weight, func.count()).group_by(hits.c.weight)


def ranked(index: TrigramIndex, source: Table, weights: Sequence[tuple[str, float]], limit: int,
           exclude: int | None = None) -> Select[tuple[int, float]]:
    """``(id, score)`` of the ``limit`` best rows of ``source``: the sum of the weights of the terms each contains."""
    hits = _hits(index, source, weights, exclude)
    score = func.sum(hits.c.weight).label("score")
    return select(hits.c.id, score).group_by(hits.c.id).order_by(score.desc(), hits.c.id.desc()).limit(limit)
