"""Alerts of the operation-pattern IDS: one fixed list of types, each alert explainable.

An alert names its type, the organisation and operator, the time span of the
behaviour, the rule or baseline it was judged by and the evidence (counts,
thresholds, terminals — never a resident code; pseudonyms at most).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from monitor.japan_time import JST



class AlertType(StrEnum):
    OFF_HOURS = "off_hours"
    BULK_LOOKUP = "bulk_lookup"
    UNENTITLED_PURPOSE = "unentitled_purpose"
    OUT_OF_JURISDICTION = "out_of_jurisdiction"
    ENUMERATION = "enumeration"
    BIOMETRIC_FAILURES = "biometric_failures"
    CONCURRENT_TERMINALS = "concurrent_terminals"
    UNKNOWN_TERMINAL = "unknown_terminal"
    DORMANT_ACCOUNT = "dormant_account"
    AGENCY_OVERPULL = "agency_overpull"


# Severities in the envelope's (syslog) vocabulary, which alerting ranks.
SEVERITY = {
    AlertType.OFF_HOURS: "warning",
    AlertType.BULK_LOOKUP: "error",
    AlertType.UNENTITLED_PURPOSE: "error",
    AlertType.OUT_OF_JURISDICTION: "error",
    AlertType.ENUMERATION: "critical",
    AlertType.BIOMETRIC_FAILURES: "warning",
    AlertType.CONCURRENT_TERMINALS: "error",
    AlertType.UNKNOWN_TERMINAL: "critical",
    AlertType.DORMANT_ACCOUNT: "warning",
    AlertType.AGENCY_OVERPULL: "critical",
}


@dataclass(frozen=True, slots=True)
class Alert:
    type: AlertType
    organisation: str
    operator: str | None  # None for terminal- or agency-level alerts
    start: float  # epoch seconds of the first event judged
    end: float
    rule: str  # the rule or baseline, in words
    evidence: dict[str, Any] = field(default_factory=dict)
    terminal: str | None = None

    @property
    def severity(self) -> str:
        return SEVERITY[self.type]

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.type.value,
            "severity": self.severity,
            "organisation": self.organisation,
            "operator": self.operator,
            "terminal": self.terminal,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "rule": self.rule,
            "evidence": self.evidence,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), ensure_ascii=False, sort_keys=False)


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, JST).isoformat(timespec="seconds")
