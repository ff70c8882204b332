"""One timeline of everything that happened in a drill: injects, faults, detections, reports, confirmations, actions.

Entries are plain records (time, kind, subject, text, data) — the same shape for
every source, so scoring, the report and the console read them without knowing
where they came from. Times are simulated epoch seconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class EntryKind(StrEnum):
    PHASE = "phase"  # start, pause, resume, abort, end
    MESSAGE = "message"  # free text to a role
    FAULT = "fault"  # injected into the simulation (or, in a tabletop drill, only announced)
    CLEAR = "clear"  # a fault cleared (by the scenario, or the clean-up at the end or on abort)
    REFUSED = "refused"  # the safety interlock refused an inject
    IDS = "ids"  # synthetic IDS / operation-pattern event
    CONDITION = "condition"  # the state engine raised a condition
    REPORT = "report"  # a cascade report issued (初報・第N報・終報)
    CONFIRM = "confirm"  # a recipient confirmed receipt
    REMINDER = "reminder"  # reminders sent to the overdue
    ACTION = "action"  # an operator action (detect, open_incident, ...)


@dataclass(frozen=True, slots=True)
class Entry:
    at: float
    kind: EntryKind
    subject: str  # an inject id, fault target, report id, organisation id or action name
    text: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["kind"] = self.kind.value
        return record


class Timeline:
    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def add(self, at: float, kind: EntryKind, subject: str, text: str = "", **data: Any) -> Entry:
        entry = Entry(at, kind, subject, text, data)
        self.entries.append(entry)
        return entry

    def of(self, *kinds: EntryKind) -> list[Entry]:
        return [e for e in self.entries if e.kind in kinds]

    def first(self, kind: EntryKind, subject: str | None = None, since: float = float("-inf")) -> Entry | None:
        return next((e for e in self.entries if e.kind is kind and e.at >= since
                     and (subject is None or e.subject == subject)), None)

    def sorted(self) -> list[Entry]:
        """By time; entries recorded together keep their order."""
        return sorted(self.entries, key=lambda e: e.at)

    def to_json(self) -> list[dict[str, Any]]:
        return [e.to_json() for e in self.sorted()]
