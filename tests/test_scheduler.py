"""The poll scheduler's timing, in real time with short intervals (pure logic, no network)."""

from __future__ import annotations

import asyncio
import time
from itertools import pairwise

import pytest

from collectors.scheduler import Cadence, PollScheduler

TOLERANCE = 0.12  # seconds; generous for a loaded CI machine


async def run_for(scheduler: PollScheduler, seconds: float) -> None:
    scheduler.start()
    await asyncio.sleep(seconds)
    await scheduler.stop()


async def test_targets_are_spread_evenly_and_polled_once_per_interval() -> None:
    starts: dict[int, list[float]] = {i: [] for i in range(200)}

    async def poll(target: int) -> bool:
        starts[target].append(time.time())
        return True

    scheduler = PollScheduler(poll)
    scheduler.set_targets((i, i, Cadence(interval=1.0, recheck_interval=0.2)) for i in range(200))
    await run_for(scheduler, 4.0)
    counts = [len(v) for v in starts.values()]
    assert min(counts) >= 3 and max(counts) <= 5
    for times in starts.values():  # on the grid: gaps are the interval, no drift
        gaps = [b - a for a, b in pairwise(times)]
        assert all(abs(g - 1.0) < TOLERANCE for g in gaps), gaps
    phases = [t[0] % 1.0 for t in starts.values()]
    buckets = [sum(1 for x in phases if k / 10 <= x < (k + 1) / 10) for k in range(10)]
    assert max(buckets) < 40  # 200 targets in ten 100-ms slots: ~20 each, never one burst


async def test_failing_target_is_rechecked_fast_then_backed_off_and_recovers() -> None:
    times: list[float] = []
    healthy = asyncio.Event()

    async def poll(target: str) -> bool:
        times.append(time.time())
        return healthy.is_set()

    scheduler = PollScheduler(poll)
    scheduler.upsert("cs", "cs", Cadence(interval=0.5, recheck_interval=0.1, rechecks=3, backoff_max=2.0))
    scheduler.start()
    await asyncio.sleep(4.2)  # offset (<0.5) + 3 re-checks + 1.0 + 2.0
    gaps = [b - a for a, b in pairwise(times)]
    assert gaps[:3] == pytest.approx([0.1, 0.1, 0.1], abs=0.05)  # quick re-checks confirm the fault
    assert gaps[3] == pytest.approx(1.0, abs=TOLERANCE)  # then back off: 2×, 4× (capped at 2 s)
    assert gaps[4] == pytest.approx(2.0, abs=TOLERANCE)
    healthy.set()
    before = len(times)
    await asyncio.sleep(3.5)  # the next backoff poll succeeds, then every 0.5 s again
    await scheduler.stop()
    gaps_after = [b - a for a, b in pairwise(times[before:])]
    # back on its own grid: the first gap rejoins the grid phase (≤ interval), then exactly the interval
    assert len(gaps_after) >= 3 and gaps_after[0] <= 0.5 + TOLERANCE, gaps_after
    assert all(abs(g - 0.5) < TOLERANCE for g in gaps_after[1:]), gaps_after
    assert scheduler.stats.failed >= 5


async def test_a_slow_poll_is_not_doubled_and_counts_as_missed() -> None:
    running = peak = 0

    async def poll(target: str) -> bool:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(1.2)  # longer than two intervals
        running -= 1
        return True

    scheduler = PollScheduler(poll)
    scheduler.upsert("slow", "slow", Cadence(interval=0.5, recheck_interval=0.1))
    await run_for(scheduler, 3.0)
    assert peak == 1
    assert scheduler.stats.missed >= 2


async def test_targets_follow_inventory_changes_without_restart() -> None:
    polled: list[str] = []

    async def poll(target: str) -> bool:
        polled.append(target)
        return True

    cadence = Cadence(interval=0.3, recheck_interval=0.1)
    scheduler = PollScheduler(poll)
    scheduler.set_targets([("a", "a", cadence), ("b", "b", cadence)])
    scheduler.start()
    await asyncio.sleep(0.7)
    scheduler.set_targets([("b", "b", cadence), ("c", "c", cadence)])
    await asyncio.sleep(0.05)
    polled.clear()
    await asyncio.sleep(0.7)
    await scheduler.stop()
    assert "a" not in polled and {"b", "c"} <= set(polled)


async def test_concurrency_is_bounded() -> None:
    running = peak = 0

    async def poll(target: int) -> bool:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1
        return True

    scheduler = PollScheduler(poll, concurrency=8)
    scheduler.set_targets((i, i, Cadence(interval=0.5, recheck_interval=0.1, jitter=0.0)) for i in range(100))
    await run_for(scheduler, 1.2)
    assert peak == 8
    assert scheduler.stats.started >= 100


async def test_poll_soon_polls_ahead_of_the_grid_then_keeps_the_grid() -> None:
    starts: list[float] = []

    async def poll(target: str) -> bool:
        starts.append(time.time())
        return True

    scheduler = PollScheduler(poll)
    scheduler.set_targets([("a", "a", Cadence(interval=600.0, recheck_interval=1.0, backoff_max=600.0))])  # grid far off
    scheduler.start()
    await asyncio.sleep(0.05)
    before = len(starts)
    asked = time.time()
    assert scheduler.poll_soon("a") is True
    assert scheduler.poll_soon("missing") is False
    await asyncio.sleep(0.3)
    await scheduler.stop()
    assert len(starts) == before + 1 and starts[-1] - asked < 0.2
