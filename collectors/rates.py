"""Per-second rates from SNMP counters, right across counter wrap and device reboot.

The time base is the agent's own sysUpTime, not the poller's clock: it is what
the counters were sampled against, so a late poll or a simulated clock running
fast still gives true rates. Rules:

* sysUpTime went backwards by less than a wrap → the device rebooted: counters
  restarted from zero, so no rate for this interval (the baseline resets).
* a counter went backwards without a reboot → it wrapped once: add 2^bits.
* a computed rate above the interface's speed is impossible → discarded
  (a counter discontinuity the agent did not announce).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

TICKS_WRAP = 2**32  # sysUpTime is TimeTicks (1/100 s), 32 bits: wraps after 497 days


class Discontinuity(Enum):
    NONE = "none"
    FIRST = "first"  # no earlier reading
    REBOOT = "reboot"
    IMPLAUSIBLE = "implausible"


@dataclass(frozen=True, slots=True)
class Reading:
    uptime_ticks: int
    value: int


@dataclass(frozen=True, slots=True)
class RateResult:
    rate: float | None  # units per second
    discontinuity: Discontinuity


def uptime_delta_seconds(previous: int, current: int, wall_elapsed: float) -> float | None:
    """Seconds between two sysUpTime readings, or None if the device rebooted in between.

    A smaller reading is either a reboot or a TimeTicks wrap; the wall clock tells them apart.
    """
    if current >= previous:
        return (current - previous) / 100.0
    wrapped = (current + TICKS_WRAP - previous) / 100.0
    if abs(wrapped - wall_elapsed) <= max(60.0, 0.5 * wall_elapsed):
        return wrapped
    return None


def counter_rate(previous: Reading | None, current: Reading, *, bits: int, wall_elapsed: float,
                 max_rate: float | None = None) -> RateResult:
    """Rate of a Counter32/Counter64 between two readings of the same device."""
    if previous is None:
        return RateResult(None, Discontinuity.FIRST)
    seconds = uptime_delta_seconds(previous.uptime_ticks, current.uptime_ticks, wall_elapsed)
    if seconds is None:
        return RateResult(None, Discontinuity.REBOOT)
    if seconds <= 0:
        return RateResult(None, Discontinuity.IMPLAUSIBLE)
    delta = current.value - previous.value
    if delta < 0:
        delta += 2**bits
    rate = delta / seconds
    if max_rate is not None and rate > max_rate * 1.05:
        return RateResult(None, Discontinuity.IMPLAUSIBLE)
    return RateResult(rate, Discontinuity.NONE)


class CounterTracker:
    """Remembers the last reading per counter key and turns new readings into rates."""

    def __init__(self) -> None:
        self._last: dict[tuple, tuple[Reading, float]] = {}

    def update(self, key: tuple, reading: Reading, wall_time: float, *, bits: int,
               max_rate: float | None = None) -> RateResult:
        previous = self._last.get(key)
        self._last[key] = (reading, wall_time)
        if previous is None:
            return RateResult(None, Discontinuity.FIRST)
        return counter_rate(previous[0], reading, bits=bits, wall_elapsed=wall_time - previous[1],
                            max_rate=max_rate)

    def forget(self, prefix: str) -> None:
        """Drop every counter of a device (key[0] == prefix), e.g. when it leaves the inventory."""
        for key in [k for k in self._last if k[0] == prefix]:
            del self._last[key]
