"""The durable outbox: every notification is written to the database before anyone tries to send it.

``enqueue`` inserts one row per notification id (``notify_outbox``) and returns
once it is committed; a second enqueue of the same id is a no-op — whether the
first is still pending or long sent — which is what keeps a restarted monitor,
replaying its alarms, from notifying twice. One worker per receiver delivers
that receiver's pending rows in enqueue order; a failure keeps the row at the
head of its queue with exponential backoff (capped), so an outage delays a
receiver's notifications but neither loses nor reorders them, and never holds
up the other receivers. On ``start`` the workers resume whatever the table
still holds as pending.

Exactly once, as far as a database can make it: a crash between a receiver
accepting a message and the row being marked sent redelivers that one message
on the next start — with the same Message-ID / Idempotency-Key / payload id,
so the far end can recognise it.

Time is ``clock()`` (simulated in tests) for when a retry is due; ``tick`` is
how often, in real seconds, a worker waiting for a retry looks at the clock.

With active/standby monitors (monitor.lease) ``fence`` says whether this
monitor may act; it is asked right before each delivery, and while it says no
the rows wait in the table for whoever holds the lease.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Callable, Mapping

from sqlalchemy import (JSON, BigInteger, Column, Double, Index, Integer, MetaData, Row, String, Table, Text, func,
                        insert, select, update)
from sqlalchemy.exc import IntegrityError

from alerting.model import Notification
from alerting.notify.codec import notification_dict, notification_from_dict
from alerting.notify.receivers import Receiver, RejectedError
from alerting.notify.compose import mark_drill
from monitor.logs import fields
from monitor.store import Store
from monitor.waiting import wait_event

log = logging.getLogger("alerting.notify.outbox")


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # refused for good by the receiver, or for a receiver that is not configured


metadata = MetaData()

notify_outbox = Table(
    "notify_outbox", metadata,
    Column("id", String, primary_key=True),  # Notification.id: the idempotency key
    Column("seq", BigInteger, nullable=False),  # enqueue order, the delivery order within a receiver
    Column("receiver", String(200), nullable=False),
    Column("payload", JSON, nullable=False),  # the whole Notification
    Column("created", Double, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt", Double, nullable=False),
    Column("last_error", Text, nullable=False),
    Column("sent_at", Double),
    Index("ix_notify_outbox_queue", "receiver", "status", "seq"),
)


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One row of the outbox, for the console and the tests."""

    notification: Notification
    status: OutboxStatus
    attempts: int
    next_attempt: float
    last_error: str
    sent_at: float | None


class DurableOutbox:
    """Implements alerting's ``Outbox`` protocol. ``await start()`` before ``enqueue``; ``await stop()`` at exit."""

    def __init__(self, store: Store, receivers: Mapping[str, Receiver], clock: Callable[[], float] = time.time, *,
                 backoff_initial: float = 2.0, backoff_max: float = 300.0, tick: float = 1.0,
                 deliver_timeout: float = 60.0, batch: int = 100, fence: Callable[[], bool] | None = None) -> None:
        self._store = store
        self._fence = fence
        self._fenced = False  # the fence said no last time: log the transitions only
        self._receivers = dict(receivers)
        self._clock = clock
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.tick = tick
        self.deliver_timeout = deliver_timeout  # a hung receiver must not hold its queue for ever
        self.batch = batch
        self._wake = {name: asyncio.Event() for name in self._receivers}
        self._failing: set[str] = set()  # receivers whose last attempt failed: log the transitions only
        self._workers: list[asyncio.Task[None]] = []
        self._next_seq: int | None = None
        self._stopping = False

    async def start(self) -> None:
        """Create the table if missing, fail what no configured receiver can send, resume the rest."""
        await self._store.create_tables(metadata)
        async with self._store.begin() as conn:
            self._next_seq = (await conn.execute(select(func.max(notify_outbox.c.seq)))).scalar_one_or_none() or 0
            orphans = (await conn.execute(
                update(notify_outbox)
                .where(notify_outbox.c.status == OutboxStatus.PENDING.value,
                       notify_outbox.c.receiver.not_in(list(self._receivers)))
                .values(status=OutboxStatus.FAILED.value, last_error="unknown receiver")
                .returning(notify_outbox.c.id, notify_outbox.c.receiver))).all()
        for row in orphans:
            log.error("pending notification for a receiver no longer configured: marked failed",
                      extra=fields(notification=row.id, receiver=row.receiver))
        self._stopping = False
        self._workers = [asyncio.create_task(self._work(name), name=f"outbox:{name}") for name in self._receivers]
        log.info("outbox started", extra=fields(receivers=",".join(self._receivers), store=self._store.url))

    async def stop(self, grace: float = 5.0) -> None:
        """Let each worker finish the delivery in hand (up to ``grace`` seconds), then cancel."""
        self._stopping = True
        for wake in self._wake.values():
            wake.set()
        if self._workers:
            _, late = await asyncio.wait(self._workers, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    async def __aenter__(self) -> DurableOutbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def enqueue(self, n: Notification) -> None:
        """Persist ``n`` (once per id) and wake its receiver's worker; returns after the commit."""
        if self._next_seq is None:
            raise RuntimeError("DurableOutbox.enqueue before start()")
        known = n.receiver in self._receivers
        self._next_seq += 1
        row = {"id": n.id, "seq": self._next_seq, "receiver": n.receiver, "payload": notification_dict(n),
               "created": n.created, "attempts": 0, "next_attempt": self._clock(), "sent_at": None,
               "status": (OutboxStatus.PENDING if known else OutboxStatus.FAILED).value,
               "last_error": "" if known else "unknown receiver"}
        try:
            async with self._store.begin() as conn:
                await conn.execute(insert(notify_outbox), row)
        except IntegrityError:
            log.debug("notification already in the outbox", extra=fields(notification=n.id))
            return
        if known:
            self._wake[n.receiver].set()
        else:
            log.error("notification for an unknown receiver: marked failed",
                      extra=fields(notification=n.id, receiver=n.receiver))

    async def entries(self, status: OutboxStatus | None = None, receiver: str | None = None) -> list[OutboxEntry]:
        """Rows in enqueue order, optionally of one status and one receiver."""
        query = select(notify_outbox).order_by(notify_outbox.c.seq)
        if status is not None:
            query = query.where(notify_outbox.c.status == status.value)
        if receiver is not None:
            query = query.where(notify_outbox.c.receiver == receiver)
        async with self._store.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [OutboxEntry(notification_from_dict(r.payload), OutboxStatus(r.status), r.attempts, r.next_attempt,
                            r.last_error, r.sent_at) for r in rows]

    # --- delivery -----------------------------------------------------------------------------------

    async def _work(self, name: str) -> None:
        """Keep delivering ``name``'s queue; ride out a store outage (the rows wait in the database)."""
        store_failing = False
        while not self._stopping:
            try:
                await self._deliver_due(name)
            except Exception:  # e.g. PostgreSQL restarting: one log line per outage, then keep trying
                if not store_failing:
                    log.exception("outbox worker cannot use the store", extra=fields(receiver=name))
                store_failing = True
                await asyncio.sleep(self.tick)
                continue
            if store_failing:
                store_failing = False
                log.info("outbox worker using the store again", extra=fields(receiver=name))

    async def _deliver_due(self, name: str) -> None:
        """One pass over ``name``'s pending rows, head first; wait when there is none or the head is not due."""
        wake = self._wake[name]
        wake.clear()  # before reading: an enqueue from now on ends the wait below
        rows = await self._pending(name)
        if not rows:
            await wake.wait()
            return
        for row in rows:
            due_in = row.next_attempt - self._clock()
            if due_in > 0 or not self._may_deliver():
                await wait_event(wake, min(due_in, self.tick) if due_in > 0 else self.tick)
                return
            if not await self._attempt(name, row) or self._stopping:
                return

    def _may_deliver(self) -> bool:
        """The fence, asked right before each delivery (no fence: a single monitor, always)."""
        allowed = self._fence is None or self._fence()
        if allowed == self._fenced:  # a change: log it once
            self._fenced = not allowed
            log.info("outbox delivering" if allowed else "outbox holding: this monitor is not active",
                     extra=fields(store=self._store.url))
        return allowed

    async def _pending(self, name: str) -> list[Row[Any]]:
        query = (select(notify_outbox)
                 .where(notify_outbox.c.receiver == name, notify_outbox.c.status == OutboxStatus.PENDING.value)
                 .order_by(notify_outbox.c.seq).limit(self.batch))
        async with self._store.engine.connect() as conn:
            return list((await conn.execute(query)).all())

    async def _attempt(self, name: str, row: Row[Any]) -> bool:
        """One delivery of the row; true when its queue can move on (sent, or refused for good)."""
        n = mark_drill(notification_from_dict(row.payload))
        try:
            await asyncio.wait_for(self._receivers[name].deliver(n), self.deliver_timeout)
        except RejectedError as exc:
            log.error("notification refused by the receiver: marked failed",
                      extra=fields(notification=n.id, receiver=name, error=str(exc)))
            await self._save(row.id, status=OutboxStatus.FAILED.value, attempts=row.attempts + 1,
                             last_error=str(exc))
            return True
        except Exception as exc:  # any other failure is the channel's, not the message's: retry
            await self._retry_later(name, row, f"{type(exc).__name__}: {exc}")
            return False
        await self._save(row.id, status=OutboxStatus.SENT.value, attempts=row.attempts + 1, sent_at=self._clock(),
                         last_error="")
        if name in self._failing:
            self._failing.discard(name)
            log.info("receiver delivering again", extra=fields(receiver=name, notification=n.id))
        return True

    async def _retry_later(self, name: str, row: Row[Any], error: str) -> None:
        attempts = row.attempts + 1
        delay = min(self.backoff_max, self.backoff_initial * 2 ** (attempts - 1))
        await self._save(row.id, attempts=attempts, next_attempt=self._clock() + delay, last_error=error[:1000])
        if name not in self._failing:  # once per outage, not once per retry
            self._failing.add(name)
            log.warning("receiver failing, notifications kept and retried",
                        extra=fields(receiver=name, notification=row.id, error=error, retry_in=delay))

    async def _save(self, id: str, **values: Any) -> None:
        # Not fenced (Store.fenced): the outcome of a delivery already made is a fact; refusing it would have the
        # next holder send the notification again.
        async with self._store.engine.begin() as conn:
            await conn.execute(update(notify_outbox).where(notify_outbox.c.id == id).values(**values))
