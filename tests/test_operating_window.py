"""共通運用時間帯: business days, the phases of a business day, per-prefecture online end, settings checks."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest

from monitor.config import ConfigError
from monitor.schedule import OperatingCalendar, Phase, WindowSettings

JST = ZoneInfo("Asia/Tokyo")
WEDNESDAY = dt.date(2026, 11, 25)
FRIDAY = dt.date(2026, 11, 27)


def jst(day: dt.date, hour: int, minute: int = 0) -> float:
    return dt.datetime.combine(day, dt.time(hour, minute), JST).timestamp()


@pytest.fixture(scope="module")
def calendar() -> OperatingCalendar:
    return OperatingCalendar(WindowSettings())


def test_year_end_holidays_are_not_business_days_even_on_weekdays(calendar):
    assert not calendar.is_business_day(dt.date(2026, 1, 2))  # a Friday
    assert not calendar.is_business_day(dt.date(2025, 12, 29))  # a Monday
    assert calendar.is_business_day(dt.date(2025, 12, 26))
    assert calendar.holiday_name(dt.date(2026, 1, 2)) == "年末年始"
    assert calendar.holiday_name(dt.date(2026, 1, 1)) == "元日"


def test_labour_thanksgiving_day_is_a_holiday_named_in_japanese(calendar):
    holiday = dt.date(2026, 11, 23)
    assert not calendar.is_business_day(holiday)
    assert calendar.holiday_name(holiday) == "勤労感謝の日"
    assert calendar.phase(jst(holiday, 10)) is Phase.CLOSED
    assert calendar.holiday_name(WEDNESDAY) is None


def test_weekend_is_closed_all_day(calendar):
    for day in (dt.date(2026, 11, 28), dt.date(2026, 11, 29)):
        assert calendar.phase(jst(day, 10)) is Phase.CLOSED
        assert not calendar.expected_running(jst(day, 10), "01")
        assert not calendar.in_common_window(jst(day, 10))


@pytest.mark.parametrize(("hour", "minute", "phase"), [
    (7, 59, Phase.CLOSED),
    (8, 0, Phase.ONLINE),
    (10, 0, Phase.ONLINE),
    (19, 59, Phase.ONLINE),
    (20, 0, Phase.BATCH),
    (21, 0, Phase.BATCH),
    (22, 0, Phase.CLOSED),
    (23, 0, Phase.CLOSED),
])
def test_phases_of_a_business_day(calendar, hour, minute, phase):
    assert calendar.phase(jst(WEDNESDAY, hour, minute), "13") is phase
    assert calendar.expected_running(jst(WEDNESDAY, hour, minute), "13") is (phase is not Phase.CLOSED)


def test_common_window_is_nationwide_counter_hours(calendar):
    assert not calendar.in_common_window(jst(WEDNESDAY, 8, 29))
    assert calendar.in_common_window(jst(WEDNESDAY, 8, 30))
    assert calendar.in_common_window(jst(WEDNESDAY, 17, 14))
    assert not calendar.in_common_window(jst(WEDNESDAY, 17, 15))


def test_prefecture_ending_online_early_is_in_batch_while_others_are_online():
    calendar = OperatingCalendar(WindowSettings(prefecture_online_end={"01": "18:00"}))
    at = jst(WEDNESDAY, 19)
    assert calendar.phase(at, "01") is Phase.BATCH
    assert calendar.phase(at, "47") is Phase.ONLINE
    assert calendar.phase(jst(WEDNESDAY, 20, 30), "01") is Phase.CLOSED


def test_national_servers_stay_online_until_the_latest_prefecture_ends():
    calendar = OperatingCalendar(WindowSettings(prefecture_online_end={"13": "21:00"}))
    assert calendar.phase(jst(WEDNESDAY, 20, 30), "47") is Phase.BATCH
    assert calendar.phase(jst(WEDNESDAY, 20, 30), "13") is Phase.ONLINE
    assert calendar.phase(jst(WEDNESDAY, 20, 30)) is Phase.ONLINE
    assert calendar.phase(jst(WEDNESDAY, 22, 30)) is Phase.BATCH


def test_utc_epoch_is_read_in_japan_time(calendar):
    utc = dt.timezone.utc
    assert calendar.phase(dt.datetime(2026, 11, 25, 1, 0, tzinfo=utc).timestamp()) is Phase.ONLINE  # 10:00 JST
    assert calendar.in_common_window(dt.datetime(2026, 11, 24, 23, 30, tzinfo=utc).timestamp())  # 08:30 JST
    # Friday 23:00 UTC is Saturday 08:00 in Japan.
    assert calendar.phase(dt.datetime(2026, 11, 27, 23, 0, tzinfo=utc).timestamp()) is Phase.CLOSED
    # Same clock in summer and winter: Japan keeps no daylight saving time.
    assert calendar.phase(dt.datetime(2026, 7, 15, 11, 30, tzinfo=utc).timestamp()) is Phase.BATCH  # 20:30 JST


def test_batch_running_past_midnight_belongs_to_the_previous_business_day():
    calendar = OperatingCalendar(WindowSettings(online_end="23:00", batch_minutes=120))
    saturday = FRIDAY + dt.timedelta(days=1)
    assert calendar.phase(jst(FRIDAY, 23, 30)) is Phase.BATCH
    assert calendar.phase(jst(saturday, 0, 30)) is Phase.BATCH
    assert calendar.phase(jst(saturday, 1, 0)) is Phase.CLOSED
    assert calendar.next_change(jst(saturday, 0, 30)) == jst(saturday, 1, 0)


def test_operating_rule_exceptions_open_or_close_a_day():
    saturday = dt.date(2026, 11, 28)
    calendar = OperatingCalendar(WindowSettings(extra_open_days=(saturday.isoformat(),),
                                                extra_closed_days=(WEDNESDAY.isoformat(),)))
    assert calendar.phase(jst(saturday, 10)) is Phase.ONLINE
    assert calendar.phase(jst(WEDNESDAY, 10)) is Phase.CLOSED


@pytest.mark.parametrize(("now", "change"), [
    (jst(WEDNESDAY, 10), jst(WEDNESDAY, 20)),
    (jst(WEDNESDAY, 21), jst(WEDNESDAY, 22)),
    (jst(WEDNESDAY, 23), jst(WEDNESDAY + dt.timedelta(days=1), 8)),
    (jst(FRIDAY, 23), jst(dt.date(2026, 11, 30), 8)),
    (jst(dt.date(2026, 12, 28), 23), jst(dt.date(2027, 1, 4), 8)),  # over the year end
])
def test_next_change_is_the_next_phase_boundary(calendar, now, change):
    assert calendar.next_change(now, "01") == change


def test_next_change_for_an_early_prefecture():
    calendar = OperatingCalendar(WindowSettings(prefecture_online_end={"01": "18:00"}))
    assert calendar.next_change(jst(WEDNESDAY, 10), "01") == jst(WEDNESDAY, 18)
    assert calendar.next_change(jst(WEDNESDAY, 10), "02") == jst(WEDNESDAY, 20)


@pytest.mark.parametrize(("changes", "key"), [
    ({"window_start": "18:00"}, "schedule.window_end"),
    ({"online_end": "25:00"}, "schedule.online_end"),
    ({"online_start": "8"}, "schedule.online_start"),
    ({"online_end": "1200"}, "schedule.online_end"),  # what YAML makes of an unquoted 20:00
    ({"prefecture_online_end": {"48": "18:00"}}, "schedule.prefecture_online_end.48"),
    ({"prefecture_online_end": {"01": "16:00"}}, "schedule.prefecture_online_end.01"),
    ({"batch_minutes": -5}, "schedule.batch_minutes"),
    ({"batch_minutes": 13 * 60}, "schedule.batch_minutes"),
    ({"extra_closed_days": ("2026-13-01",)}, "schedule.extra_closed_days"),
    ({"extra_closed_days": ("2026-05-01",), "extra_open_days": ("2026-05-01",)}, "schedule.extra_open_days"),
    ({"timezone": "Mars/Olympus"}, "schedule.timezone"),
])
def test_bad_settings_name_the_key(changes, key):
    settings = replace(WindowSettings(), **changes)
    with pytest.raises(ConfigError, match=f"^{re.escape(key)}:"):
        settings.check("schedule")
    with pytest.raises(ConfigError, match=f"^{re.escape(key)}:"):
        OperatingCalendar(settings)
