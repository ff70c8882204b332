"""The common operating window (共通運用時間帯): which phase of the day the network is in.

Owns the business-day calendar and the daily phases of seed 002 §4: online
operation (オンライン運用, updates flow CS ↔ prefecture ↔ national), the
counter-service window (窓口業務受付, unified nationwide), and the daily batch
(日次処理) that follows the end of online operation. Saturdays, Sundays, national
holidays and 29 Dec – 3 Jan are not business days. The seed gives no clock
times; the defaults below are configurable, and each prefecture may end its
online operation at its own time (point (3) of the seed).

Settings (``schedule:`` in the configuration file)::

    online_start: "08:00"          # quote times in YAML: unquoted 18:00 reads as a number
    window_start: "08:30"          # 窓口業務受付 (common window), nationwide
    window_end: "17:15"
    online_end: "20:00"            # default end of online operation
    batch_minutes: 120             # daily batch after the end of online operation
    prefecture_online_end: {"13": "21:00"}
    extra_closed_days: ["2026-05-01"]   # operating-rule exceptions
    extra_open_days: ["2026-12-29"]
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from monitor.configerror import ConfigError

_DAY = 86_400
_PREFECTURES = frozenset(f"{n:02d}" for n in range(1, 48))
# A week of the longest closures (year end, Golden Week) fits many times over; a year of
# closed days means a misconfiguration, and then no change is coming.
_SEARCH_DAYS = 400


@dataclass(frozen=True)
class WindowSettings:
    online_start: str = "08:00"
    window_start: str = "08:30"
    window_end: str = "17:15"
    online_end: str = "20:00"
    batch_minutes: float = 120.0
    prefecture_online_end: dict[str, str] = field(default_factory=dict)  # JIS code "01".."47" → "HH:MM"
    extra_closed_days: tuple[str, ...] = ()  # ISO dates
    extra_open_days: tuple[str, ...] = ()
    timezone: str = "Asia/Tokyo"

    def check(self, key: str) -> None:
        _parse_settings(self, key)


class Phase(StrEnum):
    ONLINE = "online"  # オンライン運用: CS, prefecture and national servers exchange updates
    BATCH = "batch"  # 日次処理: statistics, database backup
    CLOSED = "closed"  # not a business day, or night


class _Hours(NamedTuple):
    """One scope's day in seconds after local midnight; ``batch_end`` may pass midnight."""

    online_start: int
    online_end: int
    batch_end: int


@dataclass(frozen=True)
class _Parsed:
    tz: ZoneInfo
    window: tuple[int, int]
    default: _Hours
    prefectures: dict[str, _Hours]
    closed: frozenset[dt.date]
    opened: frozenset[dt.date]


class OperatingCalendar:
    """Business days and daily phases, per prefecture; settings are validated and parsed once."""

    def __init__(self, settings: WindowSettings | None = None, *, key: str = "schedule"):
        parsed = _parse_settings(settings or WindowSettings(), key)
        self._tz = parsed.tz
        self._window = parsed.window
        self._default = parsed.default
        self._prefectures = parsed.prefectures
        self._closed = parsed.closed
        self._opened = parsed.opened
        # The national servers start first and stop last, so their day spans every prefecture's.
        every = [self._default, *self._prefectures.values()]
        self._national = _Hours(self._default.online_start, max(h.online_end for h in every),
                                max(h.batch_end for h in every))
        self._holidays: dict[int, holidays.HolidayBase] = {}
        self._business: dict[dt.date, bool] = {}

    def is_business_day(self, day: dt.date) -> bool:
        # Asked for every device every few seconds: remembered per day (a few hundred entries a year).
        known = self._business.get(day)
        if known is None:
            known = self._business[day] = self._judge_day(day)
        return known

    def _judge_day(self, day: dt.date) -> bool:
        if day in self._opened:
            return True
        if day in self._closed or day.weekday() >= 5 or _year_end(day):
            return False
        return day not in self._holidays_of(day.year)

    def holiday_name(self, day: dt.date) -> str | None:
        """The national holiday's Japanese name, 年末年始 for 29 Dec – 3 Jan, else None."""
        name = self._holidays_of(day.year).get(day)
        if name is not None:
            return name
        return "年末年始" if _year_end(day) else None

    def phase(self, ts: float, prefecture: str | None = None) -> Phase:
        """The phase at epoch ``ts`` for a prefecture's servers; None means the national servers."""
        day, second = self._local(ts)
        hours = self._hours(prefecture)
        if self.is_business_day(day):
            if hours.online_start <= second < hours.online_end:
                return Phase.ONLINE
            if hours.online_end <= second < hours.batch_end:
                return Phase.BATCH
        # A batch running past midnight belongs to the previous business day.
        if second + _DAY < hours.batch_end and self.is_business_day(day - dt.timedelta(days=1)):
            return Phase.BATCH
        return Phase.CLOSED

    def expected_running(self, ts: float, prefecture: str | None = None) -> bool:
        return self.phase(ts, prefecture) is not Phase.CLOSED

    def in_common_window(self, ts: float) -> bool:
        """Inside 窓口業務受付, the same for every municipality nationwide."""
        day, second = self._local(ts)
        return self._window[0] <= second < self._window[1] and self.is_business_day(day)

    def next_change(self, ts: float, prefecture: str | None = None) -> float:
        """Epoch of the next moment the phase differs from now (math.inf if none within a year)."""
        now = self.phase(ts, prefecture)
        hours = self._hours(prefecture)
        first = self._local(ts)[0] - dt.timedelta(days=1)
        for offset in range(_SEARCH_DAYS):
            day = first + dt.timedelta(days=offset)
            if not self.is_business_day(day):
                continue
            midnight = dt.datetime.combine(day, dt.time(), self._tz)
            for boundary in hours:
                at = (midnight + dt.timedelta(seconds=boundary)).timestamp()
                if at > ts and self.phase(at, prefecture) is not now:
                    return at
        return math.inf

    def _local(self, ts: float) -> tuple[dt.date, float]:
        """Local date and seconds after local midnight."""
        local = dt.datetime.fromtimestamp(ts, self._tz)
        return local.date(), local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6

    def _hours(self, prefecture: str | None) -> _Hours:
        if prefecture is None:
            return self._national
        return self._prefectures.get(prefecture, self._default)

    def _holidays_of(self, year: int) -> holidays.HolidayBase:
        table = self._holidays.get(year)
        if table is None:
            table = self._holidays[year] = holidays.country_holidays("JP", years=year, language="ja")
        return table


def _year_end(day: dt.date) -> bool:
    return (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3)


def _parse_settings(settings: WindowSettings, key: str) -> _Parsed:
    try:
        tz = ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{key}.timezone: unknown time zone {settings.timezone!r}") from None
    online_start = _seconds(f"{key}.online_start", settings.online_start)
    window = (_seconds(f"{key}.window_start", settings.window_start),
              _seconds(f"{key}.window_end", settings.window_end))
    if not online_start <= window[0] < window[1]:
        raise ConfigError(f"{key}.window_end: the common window must start at or after online_start "
                          f"and end after window_start")
    batch = settings.batch_minutes
    if isinstance(batch, bool) or not isinstance(batch, (int, float)) or batch < 0:
        raise ConfigError(f"{key}.batch_minutes: must be a number >= 0, got {batch!r}")

    def hours(end_key: str, end_text: str) -> _Hours:
        end = _seconds(end_key, end_text)
        if end < window[1]:
            raise ConfigError(f"{end_key}: online operation must last until the common window ends "
                              f"({settings.window_end})")
        batch_end = end + round(batch * 60)
        if batch_end > _DAY + online_start:
            raise ConfigError(f"{key}.batch_minutes: the batch after {end_text} would run into the next "
                              f"day's online operation")
        return _Hours(online_start, end, batch_end)

    prefectures = {}
    for code, end_text in settings.prefecture_online_end.items():
        if code not in _PREFECTURES:
            raise ConfigError(f"{key}.prefecture_online_end.{code}: not a prefecture JIS code (\"01\"..\"47\")")
        prefectures[code] = hours(f"{key}.prefecture_online_end.{code}", end_text)
    closed = _dates(f"{key}.extra_closed_days", settings.extra_closed_days)
    opened = _dates(f"{key}.extra_open_days", settings.extra_open_days)
    if closed & opened:
        raise ConfigError(f"{key}.extra_open_days: {min(closed & opened)} is also in extra_closed_days")
    return _Parsed(tz, window, hours(f"{key}.online_end", settings.online_end), prefectures, closed, opened)


def _seconds(key: str, text: object) -> int:
    """"HH:MM" → seconds after midnight."""
    if isinstance(text, dt.time):
        return text.hour * 3600 + text.minute * 60 + text.second
    hour, _, minute = str(text).partition(":")
    if not (hour.isdigit() and minute.isdigit() and len(minute) == 2 and int(hour) < 24 and int(minute) < 60):
        raise ConfigError(f"{key}: must be a time \"HH:MM\" between 00:00 and 23:59 (quoted in YAML), got {text!r}")
    return int(hour) * 3600 + int(minute) * 60


def _dates(key: str, values: tuple[str, ...]) -> frozenset[dt.date]:
    days = set()
    for value in values:
        if isinstance(value, dt.date):
            days.add(value)
            continue
        try:
            days.add(dt.date.fromisoformat(str(value)))
        except ValueError:
            raise ConfigError(f"{key}: {value!r} is not an ISO date (YYYY-MM-DD)") from None
    return frozenset(days)
