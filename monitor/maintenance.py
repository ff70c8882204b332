"""Maintenance windows (保守作業時間帯): planned work such as equipment renewal (機器更改).

Owns the window itself (scope, time, recurrence, who and why) and the book of
windows that answers "is this device under maintenance now?". A device is
covered by a window on itself, on its site, or on its prefecture. A device in
maintenance is recorded but not alarmed; the state engine asks the book.

Times are epoch seconds; a window covers [start, end). A recurring window
repeats on the Japanese wall clock (daily, weekly, or monthly on the same day
of the month, the last day for months too short) for occurrences that start
before ``until``. The book indexes windows by scope so that asking for every
device every few seconds costs three dictionary look-ups per device.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any, Iterable

from monitor.inventory.model import Inventory
from monitor.logs import fields
from monitor.japan_time import JST

log = logging.getLogger("jukimon.maintenance")



class MaintenanceError(ValueError):
    """A window that cannot be accepted; the message says which and why."""


class ScopeKind(StrEnum):
    DEVICE = "device"
    SITE = "site"
    PREFECTURE = "prefecture"  # JIS code "01".."47": every device serving the prefecture


class Recurrence(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


# An occurrence must end before the next begins (the shortest month has 28 days).
_SHORTEST_PERIOD = {Recurrence.DAILY: 86_400, Recurrence.WEEKLY: 7 * 86_400, Recurrence.MONTHLY: 28 * 86_400}


@dataclass(frozen=True)
class MaintenanceWindow:
    id: str
    scope_kind: ScopeKind
    scope_id: str
    start: float
    end: float
    author: str
    reason: str
    recurrence: Recurrence | None = None
    until: float | None = None  # recurring windows: no occurrence starts at or after this
    created: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scope_kind", _member(ScopeKind, self.scope_kind, self.id, "scope_kind"))
        if self.recurrence is not None:
            object.__setattr__(self, "recurrence", _member(Recurrence, self.recurrence, self.id, "recurrence"))
        for name in ("start", "end", "until", "created"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise MaintenanceError(f"maintenance window {self.id!r}: {name} must be epoch seconds, got {value!r}")
        for name in ("id", "scope_id", "author", "reason"):
            if not str(getattr(self, name)).strip():
                raise MaintenanceError(f"maintenance window {self.id!r}: {name} may not be empty")
        if not self.end > self.start:
            raise MaintenanceError(f"maintenance window {self.id}: end must be after start")
        if self.recurrence is None:
            if self.until is not None:
                raise MaintenanceError(f"maintenance window {self.id}: until is only for a recurring window")
            return
        if self.until is None or self.until <= self.start:
            raise MaintenanceError(f"maintenance window {self.id}: a recurring window needs until after start")
        if self.end - self.start >= _SHORTEST_PERIOD[self.recurrence]:
            raise MaintenanceError(f"maintenance window {self.id}: a {self.recurrence} window must be shorter "
                                   f"than its period")

    def occurrence_at(self, ts: float) -> tuple[float, float] | None:
        """The [start, end) of the occurrence covering ``ts``, or None."""
        if self.recurrence is None:
            return (self.start, self.end) if self.start <= ts < self.end else None
        assert self.until is not None
        near = self._index_near(ts)
        # Occurrences are shorter than their period: only this one or the one before can cover ts.
        for index in (near, near - 1):
            if index < 0:
                continue
            begin, finish = self._occurrence(index)
            if begin <= ts < finish and begin < self.until:
                return begin, finish
        return None

    def is_active(self, ts: float) -> bool:
        return self.occurrence_at(ts) is not None

    @cached_property
    def final_end(self) -> float:
        """When the last occurrence ends: after this the window can be discarded."""
        if self.recurrence is None or self.until is None:
            return self.end
        index = self._index_near(self.until)
        begin, finish = self._occurrence(index)
        return finish if begin < self.until else self._occurrence(index - 1)[1]

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"scope_kind": self.scope_kind.value,
                               "recurrence": self.recurrence.value if self.recurrence else None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MaintenanceWindow:
        try:
            return cls(**data)
        except TypeError as exc:  # missing or unknown keys
            raise MaintenanceError(f"maintenance window {data.get('id')!r}: {exc}") from None

    def _index_near(self, ts: float) -> int:
        """Index of the occurrence starting on or before ``ts``'s local date, in its period."""
        base = dt.datetime.fromtimestamp(self.start, JST).date()
        day = dt.datetime.fromtimestamp(ts, JST).date()
        if self.recurrence is Recurrence.MONTHLY:
            return (day.year - base.year) * 12 + day.month - base.month
        days = (day - base).days
        return days if self.recurrence is Recurrence.DAILY else days // 7

    def _occurrence(self, index: int) -> tuple[float, float]:
        base = dt.datetime.fromtimestamp(self.start, JST)
        if self.recurrence is Recurrence.MONTHLY:
            begin = _add_months(base, index)
        else:
            begin = base + dt.timedelta(days=index if self.recurrence is Recurrence.DAILY else 7 * index)
        return begin.timestamp(), begin.timestamp() + (self.end - self.start)


def _member(enum: type[StrEnum], value: object, window_id: str, name: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(m.value for m in enum)
        raise MaintenanceError(f"maintenance window {window_id}: {name} must be one of {choices}, "
                               f"got {value!r}") from None


def _add_months(moment: dt.datetime, months: int) -> dt.datetime:
    year, month = divmod(moment.month - 1 + months, 12)
    year += moment.year
    last = calendar.monthrange(year, month + 1)[1]
    return moment.replace(year=year, month=month + 1, day=min(moment.day, last))


_Scope = tuple[ScopeKind, str]


class MaintenanceBook:
    """The windows in force, indexed by scope; each device's three scopes are worked out once."""

    def __init__(self, inventory: Inventory, windows: Iterable[MaintenanceWindow] = ()):
        self._inventory = inventory
        self._windows: dict[str, MaintenanceWindow] = {}
        self._by_scope: dict[_Scope, list[MaintenanceWindow]] = defaultdict(list)
        self._scopes_of: dict[str, tuple[_Scope, ...]] = {}
        for device in inventory.devices.values():
            site = inventory.sites.get(device.site)
            prefecture = device.prefecture or (site.prefecture if site else None)
            scopes = [(ScopeKind.DEVICE, device.id), (ScopeKind.SITE, device.site)]
            if prefecture:
                scopes.append((ScopeKind.PREFECTURE, prefecture))
            self._scopes_of[device.id] = tuple(scopes)
        self._prefectures = {scope[1] for scopes in self._scopes_of.values() for scope in scopes
                             if scope[0] is ScopeKind.PREFECTURE}
        self._prefectures.update(s.prefecture for s in inventory.sites.values() if s.prefecture)
        for window in windows:
            self.add(window)

    def add(self, window: MaintenanceWindow) -> None:
        if window.id in self._windows:
            raise MaintenanceError(f"maintenance window {window.id}: id already in use")
        known = {ScopeKind.DEVICE: self._inventory.devices, ScopeKind.SITE: self._inventory.sites,
                 ScopeKind.PREFECTURE: self._prefectures}[window.scope_kind]
        if window.scope_id not in known:
            raise MaintenanceError(f"maintenance window {window.id}: no {window.scope_kind} {window.scope_id!r} "
                                   f"in the inventory")
        self._windows[window.id] = window
        self._by_scope[(window.scope_kind, window.scope_id)].append(window)
        log.info("maintenance window added", extra=fields(window=window.id, scope=f"{window.scope_kind}:"
                                                          f"{window.scope_id}", author=window.author))

    def remove(self, window_id: str) -> MaintenanceWindow | None:
        window = self._windows.pop(window_id, None)
        if window is None:
            return None
        scope = (window.scope_kind, window.scope_id)
        self._by_scope[scope].remove(window)
        if not self._by_scope[scope]:
            del self._by_scope[scope]
        log.info("maintenance window removed", extra=fields(window=window_id))
        return window

    def windows(self) -> list[MaintenanceWindow]:
        return sorted(self._windows.values(), key=lambda w: (w.start, w.id))

    def active_for(self, device_id: str, ts: float) -> MaintenanceWindow | None:
        """The window covering the device at ``ts``: its own first, then its site's, then its prefecture's."""
        for scope in self._scopes_of.get(device_id, ()):
            for window in self._by_scope.get(scope, ()):
                if window.is_active(ts):
                    return window
        return None

    def active_windows(self, ts: float) -> list[MaintenanceWindow]:
        return [w for w in self.windows() if w.is_active(ts)]

    def expired(self, ts: float) -> list[MaintenanceWindow]:
        """Windows whose last occurrence has ended, for the caller to remove and forget."""
        return [w for w in self.windows() if w.final_end <= ts]
