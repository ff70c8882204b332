"""Alerting's tables in the monitor's database: what a restart needs to go on where it stopped.

``alarm_alarms`` (one row per fingerprint), ``alarm_timeline`` (append-only, keyed by
fingerprint and position), ``alarm_silences``, ``alarm_groups`` (each group's
schedule: episode start, last send, who was told, the send counter) and
``alarm_escalations`` (step, when, acknowledged). A save is one transaction of
upserts, so saving the same thing twice is harmless; group membership is not
stored — routing derives it again from the alarms' labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import JSON, Boolean, Column, Double, Index, Integer, MetaData, String, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncConnection

from alerting.escalation import AlarmGroup, Escalation
from alerting.model import Alarm, AlarmStatus, TimelineEntry
from alerting.silences import Silence, parse_matcher
from monitor.store import Store

metadata = MetaData()

alarms = Table(
    "alarm_alarms", metadata,
    Column("fingerprint", String(300), primary_key=True),
    Column("labels", JSON, nullable=False),
    Column("summary", Text, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("started", Double, nullable=False),
    Column("status", String(16), nullable=False),
    Column("acknowledged_by", String(200)),
    Column("acknowledged_at", Double),
    Column("resolved_at", Double),
    Column("closed_at", Double),
    Column("suppressed", JSON, nullable=False),
    Column("suppressed_count", Integer, nullable=False),
    Column("in_maintenance", Boolean, nullable=False),
    Column("drill", Boolean, nullable=False),
    Index("ix_alarm_alarms_status", "status"),
)

timeline = Table(
    "alarm_timeline", metadata,
    Column("fingerprint", String(300), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", Double, nullable=False),
    Column("action", String(32), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("text", Text, nullable=False),
    Column("data", JSON, nullable=False),
)

silences = Table(
    "alarm_silences", metadata,
    Column("id", String(64), primary_key=True),
    Column("matchers", JSON, nullable=False),  # matcher texts: severity="critical"
    Column("start", Double, nullable=False),
    Column("end", Double, nullable=False),
    Column("author", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created", Double, nullable=False),
    Column("expired_by", String(200)),
)

groups = Table(
    "alarm_groups", metadata,
    Column("key", String(600), primary_key=True),
    Column("route", String(300), nullable=False),
    Column("labels", JSON, nullable=False),
    Column("since", Double),
    Column("last_flush", Double),
    Column("notified", JSON, nullable=False),
    Column("sequence", Integer, nullable=False),
)

escalations = Table(
    "alarm_escalations", metadata,
    Column("group_key", String(600), primary_key=True),
    Column("policy", String(200), nullable=False),
    Column("step", Integer, nullable=False),
    Column("step_at", Double),
    Column("acked", Boolean, nullable=False),
)


@dataclass
class Saved:
    alarms: list[Alarm]
    silences: list[Silence]
    groups: list[AlarmGroup]


class AlarmStore:
    """Open with ``await AlarmStore.open(store)`` (creates the tables if missing)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._timeline_saved: dict[str, int] = {}  # fingerprint → entries already in alarm_timeline

    @classmethod
    async def open(cls, store: Store) -> AlarmStore:
        await store.create_tables(metadata)
        return cls(store)

    async def save(self, changed_alarms: Iterable[Alarm] = (), changed_silences: Iterable[Silence] = (),
                   changed_groups: Iterable[AlarmGroup] = ()) -> None:
        """Upsert what changed, and append the timelines' new entries, in one transaction."""
        alarm_list, group_list = list(changed_alarms), list(changed_groups)
        entries = [{"fingerprint": a.fingerprint, "seq": seq, "at": e.at, "action": e.action, "actor": e.actor,
                    "text": e.text, "data": e.data}
                   for a in alarm_list for seq, e in enumerate(a.timeline)
                   if seq >= self._timeline_saved.get(a.fingerprint, 0)]
        async with self.store.begin() as conn:
            await self._upsert(conn, alarms, [_alarm_row(a) for a in alarm_list])
            await self._upsert(conn, timeline, entries)
            await self._upsert(conn, silences, [_silence_row(s) for s in changed_silences])
            await self._upsert(conn, groups, [_group_row(g) for g in group_list])
            await self._upsert(conn, escalations, [_escalation_row(g.escalation) for g in group_list
                                                   if g.escalation is not None])
        for alarm in alarm_list:
            self._timeline_saved[alarm.fingerprint] = len(alarm.timeline)

    async def load(self) -> Saved:
        async with self.store.engine.connect() as conn:
            alarm_rows = (await conn.execute(select(alarms).order_by(alarms.c.started))).all()
            entry_rows = (await conn.execute(select(timeline).order_by(timeline.c.fingerprint,
                                                                       timeline.c.seq))).all()
            silence_rows = (await conn.execute(select(silences).order_by(silences.c.created))).all()
            group_rows = (await conn.execute(select(groups))).all()
            escalation_rows = (await conn.execute(select(escalations))).all()
        loaded = {r.fingerprint: _alarm(r) for r in alarm_rows}
        for r in entry_rows:
            if r.fingerprint in loaded:
                loaded[r.fingerprint].timeline.append(TimelineEntry(r.at, r.action, r.actor, r.text, r.data or {}))
        self._timeline_saved = {fp: len(a.timeline) for fp, a in loaded.items()}
        by_group = {r.group_key: Escalation(r.group_key, r.policy, r.step, r.step_at, r.acked)
                    for r in escalation_rows}
        return Saved(list(loaded.values()), [_silence(r) for r in silence_rows],
                     [AlarmGroup(r.key, r.route, dict(r.labels), r.since, r.last_flush, set(r.notified), r.sequence,
                                 by_group.get(r.key)) for r in group_rows])

    async def _upsert(self, conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
        if rows:
            await conn.execute(self.store.upsert(table), rows)


def _alarm_row(a: Alarm) -> dict[str, Any]:
    return {"fingerprint": a.fingerprint, "labels": a.labels, "summary": a.summary, "severity": a.severity,
            "started": a.started, "status": a.status.value, "acknowledged_by": a.acknowledged_by,
            "acknowledged_at": a.acknowledged_at, "resolved_at": a.resolved_at, "closed_at": a.closed_at,
            "suppressed": list(a.suppressed), "suppressed_count": a.suppressed_count,
            "in_maintenance": a.in_maintenance, "drill": a.drill}


def _alarm(r: Any) -> Alarm:
    return Alarm(r.fingerprint, dict(r.labels), r.summary, r.severity, r.started, AlarmStatus(r.status),
                 r.acknowledged_by, r.acknowledged_at, r.resolved_at, r.closed_at, tuple(r.suppressed),
                 r.suppressed_count, r.in_maintenance, r.drill)


def _silence_row(s: Silence) -> dict[str, Any]:
    return {"id": s.id, "matchers": [str(m) for m in s.matchers], "start": s.start, "end": s.end,
            "author": s.author, "reason": s.reason, "created": s.created, "expired_by": s.expired_by}


def _silence(r: Any) -> Silence:
    return Silence(r.id, tuple(parse_matcher(m) for m in r.matchers), r.start, r.end, r.author, r.reason,
                   r.created, r.expired_by)


def _group_row(g: AlarmGroup) -> dict[str, Any]:
    return {"key": g.key, "route": g.route, "labels": g.labels, "since": g.since, "last_flush": g.last_flush,
            "notified": sorted(g.notified), "sequence": g.sequence}


def _escalation_row(e: Escalation) -> dict[str, Any]:
    return {"group_key": e.group_key, "policy": e.policy, "step": e.step, "step_at": e.step_at, "acked": e.acked}
