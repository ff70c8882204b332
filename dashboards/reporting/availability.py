"""Availability (稼働率) from the state history: how long each site was in each state during a period.

The store keeps every transition (old → new state, when). Replaying them over a
period gives each subject's seconds per state; the state a subject was in when
the period began is the ``old`` of its first transition after the start, or,
with none since, the state it is in now.

Availability counts only the time a site was *expected* to serve: UP and
DEGRADED (still serving) against those plus DOWN and UNREACHABLE. Time in a
maintenance window, outside the operating window (OFF_SCHEDULE) or not yet
observed (UNKNOWN) counts neither way — planned stops are not outages.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Iterable, Mapping

from monitor.state.model import State, Transition
from monitor.japan_time import JST


SERVING = frozenset({State.UP, State.DEGRADED})
OUTAGE = frozenset({State.DOWN, State.UNREACHABLE})


@dataclass(frozen=True, slots=True)
class Period:
    """[start, end) in epoch seconds; ``label`` as people say it (``2026-11``)."""

    start: float
    end: float
    label: str


def month_period(month: str) -> Period:
    """The calendar month ``YYYY-MM`` in Japan time (``ValueError`` if it is not one)."""
    first = dt.datetime.strptime(month, "%Y-%m").replace(tzinfo=JST)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return Period(first.timestamp(), following.timestamp(), f"{first:%Y-%m}")


@dataclass(frozen=True, slots=True)
class Availability:
    """Seconds by state over a period, for one site or a group of them."""

    seconds: Mapping[State, float]

    @property
    def serving(self) -> float:
        return sum(self.seconds.get(s, 0.0) for s in SERVING)

    @property
    def outage(self) -> float:
        return sum(self.seconds.get(s, 0.0) for s in OUTAGE)

    @property
    def ratio(self) -> float | None:
        """Serving time over expected time; None if the site was never expected to serve in the period."""
        expected = self.serving + self.outage
        return self.serving / expected if expected else None

    def __add__(self, other: Availability) -> Availability:
        total: Counter[State] = Counter(self.seconds)
        total.update(other.seconds)
        return Availability(dict(total))


def time_in_states(transitions: Iterable[Transition], current: Mapping[str, State], subjects: Iterable[str],
                   period: Period, now: float) -> dict[str, Availability]:
    """Each subject's seconds per state in ``period`` (up to ``now``).

    ``transitions`` must hold every transition of these subjects since ``period.start`` (any order); ``current``
    is each subject's state now.
    """
    stop = min(period.end, now)
    by_subject: dict[str, list[Transition]] = defaultdict(list)
    for transition in transitions:
        if transition.at >= period.start:
            by_subject[transition.subject].append(transition)
    result = {}
    for subject in subjects:
        history = sorted(by_subject.get(subject, ()), key=lambda t: t.at)
        state = history[0].old if history else current.get(subject, State.UNKNOWN)
        seconds: Counter[State] = Counter()
        cursor = period.start
        for transition in history:
            if transition.at >= stop:
                break
            seconds[state] += transition.at - cursor
            state, cursor = transition.new, transition.at
        if stop > cursor:
            seconds[state] += stop - cursor
        result[subject] = Availability(dict(seconds))
    return result


def total(parts: Iterable[Availability]) -> Availability:
    summed = Availability({})
    for part in parts:
        summed = summed + part
    return summed
