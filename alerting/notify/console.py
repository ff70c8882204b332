"""The console receiver: the last notifications, in memory, for the NOC console's notification panel."""

from __future__ import annotations

import logging
from collections import deque
from typing import Callable

from alerting.model import Notification
from monitor.logs import fields

log = logging.getLogger("alerting.notify.console")


class ConsoleReceiver:
    """Keeps the newest ``keep`` notifications; ``listeners`` are called with each one (live updates)."""

    def __init__(self, keep: int = 200) -> None:
        self._recent: deque[Notification] = deque(maxlen=keep)
        self.listeners: list[Callable[[Notification], None]] = []

    async def deliver(self, n: Notification) -> None:
        self._recent.append(n)
        for listener in self.listeners:
            try:
                listener(n)
            except Exception:  # a broken live view must not make the outbox deliver the notification again
                log.exception("console listener failed", extra=fields(notification=n.id))

    def recent(self, limit: int | None = None) -> list[Notification]:
        """Newest first, at most ``limit``."""
        newest = list(reversed(self._recent))
        return newest if limit is None else newest[:limit]
