"""The drill clock: simulated time that runs ``speed`` times faster than real time, and can be paused.

Time advances only while the runner waits for its next step; while the runner
acts (issuing a report to 1,788 organisations takes real seconds) the clock stands
still, so an accelerated drill does not charge the sending time, multiplied by the
speed, to the recipients' confirmation latency. Anything reading the clock during
a wait (a confirmation through the console) sees time advancing smoothly.
"""

from __future__ import annotations

import asyncio
import math
import time
from monitor.waiting import wait_event


class DrillAborted(Exception):
    """The drill was aborted while waiting."""


class DrillClock:
    def __init__(self, start: float, speed: float = 1.0) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be more than 0, got {speed}")
        self.speed = speed
        self._now = start
        self._wait: tuple[float, float] | None = None  # (monotonic start of the wait, simulated target)
        self._running = asyncio.Event()
        self._running.set()
        self._interrupt = asyncio.Event()
        self.aborted = False

    def __call__(self) -> float:
        if self._wait is None:
            return self._now
        began, target = self._wait
        return min(target, self._now + (time.monotonic() - began) * self.speed)

    async def sleep_until(self, target: float) -> None:
        """Wait (scaled) until simulated ``target``; raises ``DrillAborted`` if aborted meanwhile."""
        while True:
            if self.aborted:
                raise DrillAborted()
            if self._now >= target:
                return
            await self._running.wait()
            if self.aborted:
                raise DrillAborted()
            self._interrupt.clear()
            self._wait = (time.monotonic(), target)
            real = 0.0 if math.isinf(self.speed) else (target - self._now) / self.speed
            await wait_event(self._interrupt, real)
            self._now, self._wait = self(), None

    def pause(self) -> None:
        self._running.clear()
        self._interrupt.set()

    def resume(self) -> None:
        self._running.set()

    def abort(self) -> None:
        self.aborted = True
        self._interrupt.set()
        self._running.set()
