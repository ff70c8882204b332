"""Active/standby monitors: a lease in PostgreSQL says which one may act (主系/待機系).

Two or more monitors read the same bus and the same store; only the holder of the
lease notifies, escalates, ticks the cascade and writes the judgement. One row per
lease name in ``leases`` (monitor.store.schema) holds the holder, when the lease
expires and a fencing ``epoch``. Everything is decided by one statement on the
database's clock (``now()``), so no monitor's wall clock matters:

- a free or expired lease is taken (``epoch`` + 1: a new term, even for the same holder);
- the holder renews its own unexpired lease (same epoch);
- anybody else gets no row: the lease stays with its holder (a stale holder cannot renew).

The holder renews every ``ttl/3``. It considers itself active only until
``start of its last successful renewal + ttl − margin`` on its *monotonic* clock.
The database set ``expires_at = now() + ttl`` after that start, so the holder
stops acting at least ``margin`` seconds before anybody else can acquire: two
monitors never act at once, as long as neither clock runs ``margin/ttl`` fast
against the other (monotonic clocks drift by parts per million). A holder that
cannot reach the database (or is paused) simply runs out and stands by; the
others take over ``ttl`` after its last renewal at the latest.

The epoch is also a fencing token for the store: ``hold(conn)`` runs first in each of the
holder's write transactions (``Store.fenced``) and refuses it (``FencedOut``) unless the row
still names this holder, this epoch and an unexpired term. It reads the row ``FOR SHARE``, so
a monitor taking over waits for such a transaction to end: a write of the old term either lands
before the new term begins or not at all — even from a holder paused (GC, SIGSTOP) between
asking ``active`` and writing.

With SQLite there is nobody to share the store with: a single monitor, always
active, and no row is written (``Lease.solo``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.logs import fields
from monitor.store import StoreUnavailable

log = logging.getLogger("monitor.lease")

_TAKE = text("""
INSERT INTO leases AS l (name, holder, epoch, expires_at, renewed_at)
VALUES (:name, :holder, 1, now() + CAST(:ttl AS double precision) * interval '1 second', now())
ON CONFLICT (name) DO UPDATE
   SET holder = EXCLUDED.holder,
       epoch = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > now() THEN l.epoch ELSE l.epoch + 1 END,
       expires_at = EXCLUDED.expires_at,
       renewed_at = now()
 WHERE l.holder = EXCLUDED.holder OR l.expires_at <= now()
RETURNING epoch
""")

_RELEASE = text("UPDATE leases SET expires_at = now() WHERE name = :name AND holder = :holder")

_HOLDS = text("""
SELECT epoch FROM leases
 WHERE name = :name AND holder = :holder AND epoch = :epoch AND expires_at > now()
   FOR SHARE
""")

_READ = text("SELECT holder, epoch, expires_at, expires_at > now() AS live FROM leases WHERE name = :name")


class FencedOut(StoreUnavailable):
    """A write of a term that has ended (or never began): refused, nothing written.

    A ``StoreUnavailable`` to the writers: the state engine keeps its backlog (dropped once it stands by),
    alerting and the outbox retry and are stopped by the stand-by that follows.
    """


@dataclass(frozen=True)
class LeaseRow:
    """What the database says about a lease (for the status line, the console and the tests)."""

    holder: str
    epoch: int
    expires_at: datetime
    live: bool


class Lease:
    """One monitor's view of one lease. ``await renew()`` in a loop (``run``); ask ``active`` before acting."""

    def __init__(self, engine: AsyncEngine, name: str, holder: str, *, ttl: float = 15.0, margin: float = 3.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 < margin < ttl:
            raise ValueError(f"lease margin must be between 0 and ttl ({ttl}), got {margin}")
        self.engine, self.name, self.holder = engine, name, holder
        self.ttl, self.margin, self.clock = ttl, margin, clock
        self.solo = engine.dialect.name == "sqlite"
        self.epoch = 0  # the term this monitor holds (or last held); 0: never
        self.listeners: list[Callable[[bool], None]] = []  # called on every change of ``active``
        self._valid_until = math.inf if self.solo else 0.0
        self._was_active = self.solo
        self._failing = False

    @property
    def active(self) -> bool:
        """True while this monitor may act. Cheap: ask it right before each action, not once at start."""
        return self.clock() < self._valid_until

    def remaining(self) -> float:
        """Seconds of activity left on this monitor's clock (0 when standing by)."""
        return max(0.0, self._valid_until - self.clock())

    async def renew(self) -> bool:
        """Acquire or renew, one statement; True when this monitor holds the lease now."""
        if self.solo:
            return True
        started = self.clock()  # before the statement: the database's expiry is later than this + ttl
        try:
            async with asyncio.timeout(self.ttl / 3):
                async with self.engine.begin() as conn:
                    epoch = (await conn.execute(_TAKE, {"name": self.name, "holder": self.holder,
                                                        "ttl": self.ttl})).scalar_one_or_none()
        except Exception as exc:  # database away or slow: keep the deadline we have, it runs out by itself
            if not self._failing:
                self._failing = True
                log.warning("lease renewal failing", extra=fields(lease=self.name, error=f"{type(exc).__name__}: {exc}"[:300],
                                                                  active_for_s=round(self.remaining(), 1)))
            self._notify()
            return self.active
        if self._failing:
            self._failing = False
            log.info("lease renewal working again", extra=fields(lease=self.name))
        if epoch is None:  # somebody else holds it
            self._valid_until = 0.0
        else:
            if epoch != self.epoch:
                log.warning("lease acquired", extra=fields(lease=self.name, holder=self.holder, epoch=epoch))
            self.epoch = epoch
            self._valid_until = started + self.ttl - self.margin
        self._notify()
        return self.active

    async def release(self) -> None:
        """At a clean stop, after this monitor has stopped acting: the standby may take over at once."""
        if self.solo:
            return
        self._valid_until = 0.0
        self._notify(released=True)
        async with self.engine.begin() as conn:
            released = (await conn.execute(_RELEASE, {"name": self.name, "holder": self.holder})).rowcount
        if released:  # nothing when another monitor holds it by now
            log.info("lease released", extra=fields(lease=self.name, epoch=self.epoch))

    async def hold(self, conn: AsyncConnection) -> None:
        """The fence of a write transaction (``Store.fenced(lease.hold)``): raise ``FencedOut`` unless this
        monitor's term is the database's current one; keeps the lease row share-locked until the commit."""
        if self.solo:
            return
        held = (await conn.execute(_HOLDS, {"name": self.name, "holder": self.holder, "epoch": self.epoch})).first()
        if held is None:
            raise FencedOut(f"lease {self.name!r}: epoch {self.epoch} of {self.holder} is not the current term")

    async def read(self) -> LeaseRow | None:
        """The lease as the database has it now (None: never taken, or SQLite)."""
        if self.solo:
            return None
        async with self.engine.connect() as conn:
            row = (await conn.execute(_READ, {"name": self.name})).first()
        return LeaseRow(row.holder, row.epoch, row.expires_at, row.live) if row is not None else None

    async def run(self) -> None:
        """Renew every ttl/3 for ever (cancel to stop); wake up at the deadline too, to tell listeners in time."""
        while True:
            await self.renew()
            pause = self.ttl / 3
            if self.active:
                pause = min(pause, self.remaining() + 0.01)
            await asyncio.sleep(pause)
            self._notify()

    def _notify(self, released: bool = False) -> None:
        now = self.active
        if now == self._was_active:
            return
        self._was_active = now
        if not now and not released:
            log.warning("lease lost: standing by", extra=fields(lease=self.name, epoch=self.epoch))
        for listener in self.listeners:
            listener(now)
