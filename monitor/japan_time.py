"""Japan Standard Time, the one clock people read in Jukimon (no daylight saving: a fixed UTC+9)."""

from __future__ import annotations

import datetime as dt

JST = dt.timezone(dt.timedelta(hours=9), "JST")
