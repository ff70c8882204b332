"""Detectors that judge one event on its own: hours, purpose, jurisdiction, terminal."""

from __future__ import annotations

import datetime as dt

from ids.operations.alerts import Alert, AlertType
from monitor.japan_time import JST
from ids.operations.directory import Directory
from ids.operations.purposes import PURPOSES, Scope, entitled
from ids.operations.records import Action, Event
from monitor.schedule.window import OperatingCalendar, Phase

_NONE: tuple[Alert, ...] = ()
_DATA_ACTIONS = frozenset({Action.LOOKUP, Action.UPDATE, Action.PROVISION})


class OffHours:
    """Terminal work belongs to online operation (オンライン運用) of the organisation's prefecture
    on business days; the calendar's extra open days are the operating rules' exceptions."""

    def __init__(self, directory: Directory, calendar: OperatingCalendar):
        self._directory = directory
        self._calendar = calendar
        self._phases: dict[tuple[str | None, int], Phase] = {}  # (prefecture, minute) → phase

    def observe(self, event: Event) -> tuple[Alert, ...]:
        prefecture = self._directory.prefecture_of(event.organisation)
        minute = int(event.ts) // 60
        phase = self._phases.get((prefecture, minute))
        if phase is None:
            if len(self._phases) > 100_000:
                self._phases.clear()
            phase = self._phases[(prefecture, minute)] = self._calendar.phase(minute * 60, prefecture)
        if phase is Phase.ONLINE:
            return _NONE
        day = dt.datetime.fromtimestamp(event.ts, JST).date()
        return (Alert(AlertType.OFF_HOURS, event.organisation, event.operator, event.ts, event.ts,
                      "operation outside online operation (オンライン運用) of a business day",
                      {"action": event.action.value, "phase": phase.value,
                       "business_day": self._calendar.is_business_day(day),
                       "holiday": self._calendar.holiday_name(day), "prefecture": prefecture},
                      event.terminal),)


class PurposeEntitlement:
    """Every data access names a 事務 the organisation is entitled to (see purposes.py)."""

    def __init__(self, directory: Directory):
        self._directory = directory

    def observe(self, event: Event) -> tuple[Alert, ...]:
        if event.action not in _DATA_ACTIONS:
            return _NONE
        organisation = self._directory.organisations.get(event.organisation)
        purpose = PURPOSES.get(event.purpose) if event.purpose else None
        if purpose is not None and organisation is not None and entitled(purpose, organisation.id, organisation.tier):
            return _NONE
        reason = ("no purpose given" if event.purpose is None else
                  "unknown purpose code" if purpose is None else
                  "organisation not entitled to this purpose")
        return (Alert(AlertType.UNENTITLED_PURPOSE, event.organisation, event.operator, event.ts, event.ts,
                      f"purpose table (利用事務): {reason}",
                      {"action": event.action.value, "purpose": event.purpose,
                       "purpose_name": purpose.name if purpose else None,
                       "entitled": sorted(purpose.entitled) if purpose else None,
                       "organisation_tier": organisation.tier if organisation else None},
                      event.terminal),)


class Jurisdiction:
    """A purpose of scope ``own`` or ``prefecture`` reaches only residents inside that area."""

    def __init__(self, directory: Directory):
        self._directory = directory

    def observe(self, event: Event) -> tuple[Alert, ...]:
        if event.resident_municipality is None or event.action not in _DATA_ACTIONS:
            return _NONE
        purpose = PURPOSES.get(event.purpose) if event.purpose else None
        if purpose is None or purpose.scope is Scope.NATIONAL:
            return _NONE  # no purpose is the entitlement rule's finding, not this one's
        if purpose.scope is Scope.OWN:
            inside = event.resident_municipality == event.organisation
        else:
            organisation_prefecture = self._directory.prefecture_of(event.organisation)
            inside = organisation_prefecture is not None and (
                self._directory.prefecture_of(event.resident_municipality) == organisation_prefecture)
        if inside:
            return _NONE
        return (Alert(AlertType.OUT_OF_JURISDICTION, event.organisation, event.operator, event.ts, event.ts,
                      f"purpose {purpose.code} has scope {purpose.scope.value}: resident outside it",
                      {"purpose": purpose.code, "purpose_name": purpose.name, "scope": purpose.scope.value,
                       "resident_municipality": event.resident_municipality, "resident": event.resident},
                      event.terminal),)


class UnknownTerminal:
    """Only the organisation's own terminals from the inventory may appear in its records."""

    def __init__(self, directory: Directory):
        self._directory = directory

    def observe(self, event: Event) -> tuple[Alert, ...]:
        owner = self._directory.terminals.get(event.terminal)
        if owner == event.organisation:
            return _NONE
        rule = "terminal not in the inventory" if owner is None else "terminal belongs to another organisation"
        return (Alert(AlertType.UNKNOWN_TERMINAL, event.organisation, event.operator, event.ts, event.ts, rule,
                      {"terminal": event.terminal, "registered_to": owner, "action": event.action.value},
                      event.terminal),)
