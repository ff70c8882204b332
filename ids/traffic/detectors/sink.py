"""Where detectors put alerts: suppression of repeats per key within a hold time."""

from __future__ import annotations

from typing import Any, Callable, Hashable


class AlertSink:
    def __init__(self, hold: float, deliver: Callable[[dict[str, Any]], None]):
        self.hold = hold
        self.deliver = deliver
        self._last: dict[Hashable, float] = {}
        self.suppressed = 0

    def due(self, key: Hashable, ts: float) -> bool:
        """Whether an alert with this key may be raised at ``ts`` (cheap check before building it)."""
        last = self._last.get(key)
        if last is not None and ts - last < self.hold:
            self.suppressed += 1
            return False
        return True

    def emit(self, key: Hashable, ts: float, record: dict[str, Any]) -> None:
        self._last[key] = ts
        self.deliver(record)


class Window:
    """A tumbling window of distinct items, e.g. the ports one source touched in the last minute."""

    __slots__ = ("start", "items", "fired")

    def __init__(self, start: float):
        self.start = start
        self.items: set[Hashable] = set()
        self.fired = False

    def add(self, ts: float, length: float, item: Hashable) -> int:
        if ts - self.start > length:
            self.start = ts
            self.items.clear()
            self.fired = False
        self.items.add(item)
        return len(self.items)
