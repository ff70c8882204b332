"""Where both IDSs hand their alerts over: alarms raised through alerting, recent alerts kept for the console.

Each IDS says how one of its alerts becomes a ``Condition`` (kind, fingerprint,
Japanese summary) and how it is logged; the hand-over itself — the alerts that
arrive before alerting is attached, the bounded memory of recent ones — is shared.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Generic, TypeVar

from monitor.state.engine import Changes
from monitor.state.model import Condition

if TYPE_CHECKING:
    from alerting.service import AlertingService

RECENT = 500  # alerts the console keeps in memory; the alarms themselves are in the store

A = TypeVar("A")


class AlarmSink(Generic[A]):
    """An IDS's alert sink. Subclasses say what an alert means (``condition``) and log it (``log_alert``).

    Alerts that arrive before alerting is attached (the simulation starts first) are
    raised when it is. Call it on the event loop's thread: alerting is not thread-safe.
    """

    def __init__(self, alerting: "AlertingService | None" = None, keep: int = RECENT):
        self.alerting = alerting
        self.recent: deque[A] = deque(maxlen=keep)
        self._waiting: list[A] = []
        self.count = 0  # alerts since start (``recent`` keeps the last ``keep``)

    def condition(self, alert: A) -> Condition:
        raise NotImplementedError

    def log_alert(self, alert: A) -> None:
        raise NotImplementedError

    def __call__(self, alert: A) -> None:
        self.recent.append(alert)
        self.count += 1
        self.log_alert(alert)
        if self.alerting is None:
            self._waiting.append(alert)
        else:
            self._raise([alert])

    def attach(self, alerting: "AlertingService") -> None:
        self.alerting = alerting
        waiting, self._waiting = self._waiting, []
        if waiting:
            self._raise(waiting)

    def _raise(self, alerts: list[A]) -> None:
        assert self.alerting is not None
        self.alerting.on_changes(Changes(raised=[self.condition(a) for a in alerts]))
