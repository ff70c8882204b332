"""Detectors of volume against a learned baseline: look-ups per operator-hour, agency provisions.

Baselines are learned online from the stream itself (a replayed file teaches as it is
read): look-ups per active operator-hour, per hour of the week (Japan time), for the
operator and for the organisation's operators together; an agency's instant
provisions per day and its batches per month. Until enough history exists, fixed
floors judge.
"""

from __future__ import annotations

import datetime as dt
import statistics

from ids.operations.alerts import Alert, AlertType
from monitor.japan_time import JST
from ids.operations.records import Action, Event
from ids.operations.settings import OpsIdsSettings

_NONE: tuple[Alert, ...] = ()
_JST_OFFSET = 9 * 3600
_WEEK_HOURS = 168


class _Mean:
    __slots__ = ("total", "n")

    def __init__(self) -> None:
        self.total = 0
        self.n = 0

    def add(self, value: int) -> None:
        self.total += value
        self.n += 1

    def mean(self, at_least: int) -> float | None:
        return self.total / self.n if self.n >= at_least else None


class _Hour:
    __slots__ = ("bucket", "count", "first", "threshold", "bases", "alerted")

    def __init__(self, bucket: int, first: float, threshold: float, bases: dict[str, float | None]):
        self.bucket = bucket
        self.count = 0
        self.first = first
        self.threshold = threshold
        self.bases = bases
        self.alerted = False


class BulkLookup:
    """Look-ups in one operator-hour above ``bulk_factor`` x the operator's or organisation's baseline."""

    def __init__(self, settings: OpsIdsSettings):
        self._s = settings
        self._hours: dict[str, _Hour] = {}  # operator → current hour
        self._means: dict[tuple[str, int | None], _Mean] = {}  # (operator or org, hour-of-week | None)

    def observe(self, event: Event) -> tuple[Alert, ...]:
        if event.action is not Action.LOOKUP:
            return _NONE
        bucket = int(event.ts + _JST_OFFSET) // 3600
        hour = self._hours.get(event.operator)
        if hour is None or hour.bucket != bucket:
            if hour is not None:
                self._learn(event.operator, event.organisation, hour)
            hour = self._hours[event.operator] = self._open(event, bucket)
        hour.count += 1
        if hour.alerted or hour.count <= hour.threshold:
            return _NONE
        hour.alerted = True
        return (Alert(AlertType.BULK_LOOKUP, event.organisation, event.operator, hour.first, event.ts,
                      f"look-ups in one hour above max({self._s.bulk_floor}, {self._s.bulk_factor} x baseline) "
                      f"(per hour of week)",
                      {"lookups_this_hour": hour.count, "threshold": round(hour.threshold, 1),
                       **{k: (round(v, 2) if v is not None else None) for k, v in hour.bases.items()}},
                      event.terminal),)

    def _open(self, event: Event, bucket: int) -> _Hour:
        how = bucket % _WEEK_HOURS
        least = self._s.bulk_min_hours
        operator = self._mean(event.operator, how).mean(1) or self._mean(event.operator, None).mean(least)
        organisation = (self._mean(event.organisation, how).mean(3)
                        or self._mean(event.organisation, None).mean(least))
        known = [b for b in (operator, organisation) if b is not None]
        threshold = max(self._s.bulk_floor, self._s.bulk_factor * max(known, default=0.0))
        return _Hour(bucket, event.ts, threshold, {"operator_baseline": operator,
                                                  "organisation_baseline": organisation})

    def _learn(self, operator: str, organisation: str, hour: _Hour) -> None:
        how = hour.bucket % _WEEK_HOURS
        for who in (operator, organisation):
            self._mean(who, how).add(hour.count)
            self._mean(who, None).add(hour.count)

    def _mean(self, who: str, how: int | None) -> _Mean:
        mean = self._means.get((who, how))
        if mean is None:
            mean = self._means[(who, how)] = _Mean()
        return mean


class _Agency:
    __slots__ = ("day", "day_total", "day_first", "day_alerted", "days", "batches")

    def __init__(self) -> None:
        self.day: dt.date | None = None
        self.day_total = 0
        self.day_first = 0.0
        self.day_alerted = False
        self.days: list[int] = []  # totals of earlier days with instant provisions
        self.batches: list[tuple[float, str, int]] = []  # (ts, "YYYY-MM", residents)


class AgencyOverpull:
    """An agency pulling far more than its usual monthly rhythm: one batch a month of a usual size,
    and instant provisions (即時提供) of a usual daily volume."""

    def __init__(self, settings: OpsIdsSettings):
        self._s = settings
        self._agencies: dict[str, _Agency] = {}

    def observe(self, event: Event) -> tuple[Alert, ...]:
        if event.action is not Action.PROVISION:
            return _NONE
        agency = self._agencies.setdefault(event.organisation, _Agency())
        local = dt.datetime.fromtimestamp(event.ts, JST)
        if event.count >= self._s.agency_batch_min:
            return self._batch(event, agency, local.strftime("%Y-%m"))
        return self._instant(event, agency, local.date())

    def _batch(self, event: Event, agency: _Agency, month: str) -> tuple[Alert, ...]:
        earlier = [b for b in agency.batches if b[1] == month]
        usual = statistics.median(b[2] for b in agency.batches) if agency.batches else None
        agency.batches.append((event.ts, month, event.count))
        if earlier:
            rule = "a second batch provision in one month (usual rhythm: one a month)"
        elif usual is not None and event.count > self._s.agency_factor * usual:
            rule = f"batch above {self._s.agency_factor} x the median batch"
        else:
            return _NONE
        return (self._alert(event, earlier[0][0] if earlier else event.ts, rule,
                            {"residents": event.count, "median_batch": usual,
                             "batches_this_month": len(earlier) + 1, "purpose": event.purpose}),)

    def _instant(self, event: Event, agency: _Agency, day: dt.date) -> tuple[Alert, ...]:
        if agency.day != day:
            if agency.day is not None:
                agency.days.append(agency.day_total)
            agency.day, agency.day_total, agency.day_first, agency.day_alerted = day, 0, event.ts, False
        agency.day_total += event.count
        if agency.day_alerted or len(agency.days) < self._s.agency_min_days:
            return _NONE
        usual = statistics.median(agency.days[-60:])
        if agency.day_total <= self._s.agency_factor * usual:
            return _NONE
        agency.day_alerted = True
        return (self._alert(event, agency.day_first,
                            f"instant provisions of one day above {self._s.agency_factor} x the median day",
                            {"residents_today": agency.day_total, "median_day": usual,
                             "days_of_history": len(agency.days)}),)

    @staticmethod
    def _alert(event: Event, start: float, rule: str, evidence: dict) -> Alert:
        return Alert(AlertType.AGENCY_OVERPULL, event.organisation, None, start, event.ts, rule, evidence,
                     event.terminal)
