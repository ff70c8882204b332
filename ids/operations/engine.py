"""The detection pipeline: every event through every detector, then one alert per episode.

Events are expected in time order (as a terminal's audit log is written). A
behaviour that keeps going yields one alert per type, organisation and operator (or
terminal, for terminal-level alerts) within ``cooldown`` seconds; the rest are counted as suppressed.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Protocol

from ids.operations.alerts import Alert
from ids.operations.behaviour import BiometricFailures, ConcurrentTerminals, DormantAccount, Enumeration
from ids.operations.directory import Directory
from ids.operations.records import Event
from ids.operations.rules import Jurisdiction, OffHours, PurposeEntitlement, UnknownTerminal
from ids.operations.settings import OpsIdsSettings
from ids.operations.volume import AgencyOverpull, BulkLookup
from monitor.schedule.window import OperatingCalendar


class Detector(Protocol):
    def observe(self, event: Event) -> tuple[Alert, ...]: ...


class Engine:
    def __init__(self, directory: Directory, settings: OpsIdsSettings | None = None,
                 calendar: OperatingCalendar | None = None):
        settings = settings or OpsIdsSettings()
        self._cooldown = settings.cooldown
        self.detectors: list[Detector] = [
            OffHours(directory, calendar or OperatingCalendar()),
            PurposeEntitlement(directory),
            Jurisdiction(directory),
            UnknownTerminal(directory),
            Enumeration(settings),
            BiometricFailures(settings),
            ConcurrentTerminals(settings),
            DormantAccount(settings),
            BulkLookup(settings),
            AgencyOverpull(settings),
        ]
        self._observers = [d.observe for d in self.detectors]
        self._last_alert: dict[tuple[str, str, str | None], float] = {}
        self.suppressed = 0

    def observe(self, event: Event) -> list[Alert]:
        raised = [alert for observe in self._observers for alert in observe(event)]
        return [alert for alert in raised if self._first_of_episode(alert)] if raised else raised

    def run(self, events: Iterable[Event]) -> Iterator[Alert]:
        for event in events:
            yield from self.observe(event)

    def _first_of_episode(self, alert: Alert) -> bool:
        key = (alert.type.value, alert.organisation, alert.operator or alert.terminal)
        last = self._last_alert.get(key)
        self._last_alert[key] = alert.end
        if last is not None and alert.end - last < self._cooldown:
            self.suppressed += 1
            return False
        return True
