"""Japan time for people: epoch seconds in JST, and dates in the Japanese era (和暦).

Municipalities and prefectures date their correspondence in the era calendar
(令和8年12月2日), so notifications show it beside the Western year. Japan has no
daylight saving time: a fixed +09:00 offset is exact.
"""

from __future__ import annotations

import datetime as dt

from monitor.japan_time import JST

# Era name and its first day, newest first (令和 began on 2019-05-01 when the new emperor acceded).
_ERAS = ((dt.date(2019, 5, 1), "令和"), (dt.date(1989, 1, 8), "平成"), (dt.date(1926, 12, 25), "昭和"))


def jst(ts: float) -> dt.datetime:
    """Epoch seconds as an aware datetime in Japan time."""
    return dt.datetime.fromtimestamp(ts, JST)


def era_year(day: dt.date) -> str:
    """The era and year of ``day``: 令和8年; the first year of an era is 元年 (令和元年)."""
    for start, name in _ERAS:
        if day >= start:
            year = day.year - start.year + 1
            return f"{name}{'元' if year == 1 else year}年"
    raise ValueError(f"{day} is before the Shōwa era")


def wareki(day: dt.date) -> str:
    """``day`` in the era calendar: 令和8年12月2日."""
    return f"{era_year(day)}{day.month}月{day.day}日"
