"""When each device is polled: evenly spread, drift-free, bounded, and quick to confirm a fault.

Every target has a fixed place on an absolute time grid: its n-th regular poll
is due at ``epoch + offset + n * interval``, where the offset (a hash of the
device id, plus jitter) spreads the fleet evenly across the interval. Because
due times are computed from the grid and not by adding sleeps, there is no
drift over hours. A poll still running at its next due time is not doubled:
that cycle is counted as missed. A device that stops answering is re-checked
quickly (so a fault is confirmed within seconds), then backed off; one success
puts it back on its grid. Targets can be added, changed or removed while running.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import time
import zlib
from dataclasses import dataclass
from typing import Awaitable, Callable, Generic, Hashable, Iterable, TypeVar

from monitor.logs import fields
from monitor.waiting import wait_event

log = logging.getLogger("collectors.scheduler")

T = TypeVar("T")


@dataclass(frozen=True)
class Cadence:
    """How often a target is polled, and how it is re-checked when it fails."""

    interval: float = 10.0
    recheck_interval: float = 2.0  # after a failure, ask again this soon ...
    rechecks: int = 3  # ... this many times,
    backoff_max: float = 60.0  # then double the interval up to this
    jitter: float = 0.1  # fraction of the interval the offset may be shifted by

    def __post_init__(self) -> None:
        if self.interval <= 0 or self.recheck_interval <= 0 or self.backoff_max < self.interval:
            raise ValueError("intervals must be positive and backoff_max >= interval")


@dataclass
class _Entry(Generic[T]):
    key: Hashable
    target: T
    cadence: Cadence
    offset: float
    generation: int
    failures: int = 0
    running: bool = False
    next_due: float = 0.0


@dataclass
class SchedulerStats:
    started: int = 0
    completed: int = 0
    failed: int = 0
    missed: int = 0  # a due poll skipped because the previous one was still running
    max_start_lag: float = 0.0  # worst delay between due time and start, seconds
    lag_sum: float = 0.0
    lag_count: int = 0

    def mean_start_lag(self) -> float:
        return self.lag_sum / self.lag_count if self.lag_count else 0.0


PollFunction = Callable[[T], Awaitable[bool]]  # True: the target answered


class PollScheduler(Generic[T]):
    def __init__(self, poll: PollFunction[T], *, concurrency: int = 256,
                 clock: Callable[[], float] = time.time):
        self._poll = poll
        self._clock = clock
        self._limit = asyncio.Semaphore(concurrency)
        self._entries: dict[Hashable, _Entry[T]] = {}
        self._heap: list[tuple[float, int, Hashable, int]] = []
        self._sequence = 0
        self._generation = 0
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.stats = SchedulerStats()

    # --- targets -----------------------------------------------------------

    def set_targets(self, targets: Iterable[tuple[Hashable, T, Cadence]]) -> None:
        """Replace the whole target set; unchanged keys keep their place on the grid."""
        wanted = {key: (target, cadence) for key, target, cadence in targets}
        for key in list(self._entries):
            if key not in wanted:
                del self._entries[key]
        for key, (target, cadence) in wanted.items():
            self.upsert(key, target, cadence)

    def upsert(self, key: Hashable, target: T, cadence: Cadence) -> None:
        entry = self._entries.get(key)
        if entry is not None and entry.cadence == cadence:
            entry.target = target
            return
        self._generation += 1
        offset = _grid_offset(key, cadence)
        entry = _Entry(key, target, cadence, offset, self._generation)
        self._entries[key] = entry
        self._push(entry, self._next_on_grid(entry, self._clock()))

    def poll_soon(self, key: Hashable) -> bool:
        """Poll a target now, ahead of its grid (the monitor confirming a parent); False if unknown or busy."""
        entry = self._entries.get(key)
        if entry is None or entry.running or entry.next_due <= self._clock():
            return False
        self._push(entry, self._clock())
        return True

    def remove(self, key: Hashable) -> None:
        self._entries.pop(key, None)  # its heap items are skipped when they surface

    def __len__(self) -> int:
        return len(self._entries)

    # --- running -----------------------------------------------------------

    def start(self) -> None:
        if self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self._run(), name="poll-scheduler")

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
            self._runner = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            now = self._clock()
            while self._heap and self._heap[0][0] <= now:
                due, _, key, generation = heapq.heappop(self._heap)
                entry = self._entries.get(key)
                if entry is None or entry.generation != generation or entry.next_due != due:
                    continue  # removed, replaced, or rescheduled since
                self._dispatch(entry, due, now)
            delay = self._heap[0][0] - self._clock() if self._heap else 1.0
            self._wake.clear()
            if delay > 0:
                await wait_event(self._wake, min(delay, 1.0))

    def _dispatch(self, entry: _Entry[T], due: float, now: float) -> None:
        # The regular schedule goes on whatever this poll does; a failure supersedes it.
        self._push(entry, self._next_on_grid(entry, max(now, due)))
        if entry.running:
            self.stats.missed += 1
            return
        entry.running = True
        task = asyncio.get_running_loop().create_task(self._poll_one(entry, due))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _poll_one(self, entry: _Entry[T], due: float) -> None:
        async with self._limit:
            started = self._clock()
            lag = max(0.0, started - due)
            self.stats.started += 1
            self.stats.lag_sum += lag
            self.stats.lag_count += 1
            self.stats.max_start_lag = max(self.stats.max_start_lag, lag)
            try:
                ok = await self._poll(entry.target)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("poll raised", extra=fields(target=str(entry.key)))
                ok = False
            finally:
                entry.running = False
        self.stats.completed += 1
        if self._entries.get(entry.key) is entry:  # not removed or replaced while polling
            self._after(entry, ok)

    def _after(self, entry: _Entry[T], ok: bool) -> None:
        now = self._clock()
        if ok:
            if entry.failures:  # recovered: back from re-checks or backoff onto the grid
                entry.failures = 0
                self._push(entry, self._next_on_grid(entry, now))
            return
        self.stats.failed += 1
        entry.failures += 1
        cadence = entry.cadence
        if entry.failures <= cadence.rechecks:
            self._push(entry, now + cadence.recheck_interval)
        else:
            backoff = min(cadence.backoff_max, cadence.interval * 2 ** (entry.failures - cadence.rechecks))
            self._push(entry, now + backoff)

    def _next_on_grid(self, entry: _Entry[T], now: float) -> float:
        interval = entry.cadence.interval
        cycles = math.floor((now - entry.offset) / interval) + 1
        return entry.offset + cycles * interval

    def _push(self, entry: _Entry[T], due: float) -> None:
        entry.next_due = due
        self._sequence += 1
        heapq.heappush(self._heap, (due, self._sequence, entry.key, entry.generation))
        self._wake.set()


def _grid_offset(key: Hashable, cadence: Cadence) -> float:
    """Spread targets evenly: a stable hash places each in its interval, jitter shifts it a little."""
    digest = zlib.crc32(repr(key).encode())
    base = (digest % 10_000) / 10_000 * cadence.interval
    shift = ((digest >> 16) % 1000) / 1000 * cadence.jitter * cadence.interval
    return (base + shift) % cadence.interval
