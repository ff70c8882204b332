"""Simulated time: wall-clock epoch seconds that may run faster than real time.

Everything time-dependent in the simulation (sysUpTime, counters, traffic by hour
of day) reads this clock, so a test can live through an hour in seconds.
SNMPv3 engine time deliberately does not: managers keep real-time windows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class SimClock:
    speed: float = 1.0
    start: float = field(default_factory=time.time)  # simulated epoch at creation
    _anchor: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError("clock speed must be positive")

    def now(self) -> float:
        return self.start + (time.monotonic() - self._anchor) * self.speed

    def advance(self, seconds: float) -> None:
        """Jump forward (tests): shifts simulated time without waiting."""
        self.start += seconds
