"""How busy a line or server is at a given simulated moment.

The network's load follows the common operating window (共通運用時間帯): high on
weekday business hours, a second hump in the evening batch window (statistics,
DB backup), nearly idle at night and on weekends. The shape is smooth and
deterministic per device (a phase derived from its id) so counters are
reproducible and rates never jump.
"""

from __future__ import annotations

import math

JST_OFFSET = 9 * 3600
DAY = 86_400.0


def utilisation(t: float, phase: float, peak: float) -> float:
    """Fraction of capacity in use at simulated epoch ``t`` (0..1)."""
    local = t + JST_OFFSET
    weekday = int(local // DAY + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    hour = (local % DAY) / 3600.0
    night = 0.01 + 0.005 * math.sin(t / 600.0 + phase * 6.283)
    if weekday >= 5:
        return night
    business = _hump(hour, 8.5, 17.25)  # online hours
    batch = 0.6 * _hump(hour, 18.0, 22.0)  # after-hours batch
    ripple = 0.1 * math.sin(t / 97.0 + phase * 6.283)
    return min(1.0, night + peak * max(business, batch) * (1.0 + ripple))


def _hump(hour: float, begin: float, end: float) -> float:
    """1 inside [begin, end] with 30-minute ramps, 0 outside."""
    if hour <= begin - 0.5 or hour >= end + 0.5:
        return 0.0
    if hour < begin:
        return (hour - (begin - 0.5)) / 0.5
    if hour > end:
        return ((end + 0.5) - hour) / 0.5
    return 1.0


def cpu_load(t: float, phase: float, base: float) -> int:
    """Percent CPU for a device whose idle load is ``base`` percent."""
    busy = utilisation(t, phase, 0.5)
    return max(1, min(99, round(base + 60 * busy + 3 * math.sin(t / 37.0 + phase * 9.0))))
