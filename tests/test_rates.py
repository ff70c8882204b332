"""Counter rates across wrap and reboot (pure logic)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from collectors.rates import CounterTracker, Discontinuity, Reading, counter_rate


def test_plain_rate_uses_agent_uptime_not_poll_time() -> None:
    result = counter_rate(Reading(10_000, 1_000), Reading(11_000, 6_000), bits=64, wall_elapsed=12.0)
    assert result.rate == 500.0  # 5,000 octets over 10 s of sysUpTime (the poll was 2 s late)


def test_counter32_wrap_is_added_back() -> None:
    before = Reading(0, 2**32 - 1_000)
    after = Reading(1_000, 4_000)  # 10 s later, the counter passed 2^32
    result = counter_rate(before, after, bits=32, wall_elapsed=10.0)
    assert result.rate == 500.0 and result.discontinuity is Discontinuity.NONE


def test_reboot_gives_no_rate_instead_of_a_spike() -> None:
    before = Reading(50_000_000, 9_000_000_000)
    after = Reading(1_500, 12_345)  # uptime restarted: counters too
    result = counter_rate(before, after, bits=64, wall_elapsed=10.0, max_rate=1.25e6)
    assert result.rate is None and result.discontinuity is Discontinuity.REBOOT


def test_uptime_wrap_after_497_days_is_not_a_reboot() -> None:
    before = Reading(2**32 - 500, 1_000)
    after = Reading(500, 6_000)  # TimeTicks wrapped; 10 s passed
    result = counter_rate(before, after, bits=64, wall_elapsed=10.0)
    assert result.rate == 500.0


def test_impossible_rate_is_discarded() -> None:
    result = counter_rate(Reading(0, 0), Reading(1_000, 10**12), bits=64, wall_elapsed=10.0, max_rate=1.25e6)
    assert result.rate is None and result.discontinuity is Discontinuity.IMPLAUSIBLE


@given(start=st.integers(0, 2**32 - 1), rate=st.integers(0, 10**6), seconds=st.integers(1, 3600))
def test_counter32_rates_are_exact_across_any_single_wrap(start: int, rate: int, seconds: int) -> None:
    end = (start + rate * seconds) % 2**32
    if rate * seconds >= 2**32:
        return  # more than one wrap in an interval cannot be seen by anyone
    result = counter_rate(Reading(0, start), Reading(seconds * 100, end), bits=32, wall_elapsed=seconds)
    assert result.rate == rate


def test_tracker_keeps_per_counter_state() -> None:
    tracker = CounterTracker()
    assert tracker.update(("cs1", 1, "in"), Reading(0, 0), 0.0, bits=64).discontinuity is Discontinuity.FIRST
    assert tracker.update(("cs1", 1, "in"), Reading(1000, 10_000), 10.0, bits=64).rate == 1000.0
    assert tracker.update(("cs1", 2, "in"), Reading(1000, 10_000), 10.0, bits=64).rate is None
    tracker.forget("cs1")
    assert tracker.update(("cs1", 1, "in"), Reading(2000, 20_000), 20.0, bits=64).rate is None
