"""Precision and recall of alerts against ground-truth labels, per alert type.

An alert is a true positive when a label of the same type and organisation overlaps
its time span (with ``slack`` seconds of tolerance); a label is found when at least
one alert matches it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Protocol

from ids.operations.alerts import Alert, AlertType


class LabelLike(Protocol):
    type: str
    organisation: str
    start: float
    end: float


def _matches(alert: Alert, label: LabelLike, slack: float) -> bool:
    return (alert.type.value == label.type and alert.organisation == label.organisation
            and alert.start <= label.end + slack and alert.end >= label.start - slack)


def score(alerts: Iterable[Alert], labels: Iterable[LabelLike], slack: float = 600.0) -> dict[str, dict[str, float]]:
    """type → {alerts, true_positives, false_positives, labels, found, precision, recall}."""
    by_key: dict[tuple[str, str], list[LabelLike]] = defaultdict(list)
    labels = list(labels)
    for label in labels:
        by_key[(label.type, label.organisation)].append(label)
    found: set[int] = set()
    tally = {t.value: {"alerts": 0, "true_positives": 0, "labels": 0, "found": 0} for t in AlertType}
    for alert in alerts:
        row = tally[alert.type.value]
        row["alerts"] += 1
        hits = [label for label in by_key.get((alert.type.value, alert.organisation), ())
                if _matches(alert, label, slack)]
        row["true_positives"] += bool(hits)
        found.update(id(label) for label in hits)
    for label in labels:
        tally[label.type]["labels"] += 1
        tally[label.type]["found"] += id(label) in found
    return {kind: {**row, "false_positives": row["alerts"] - row["true_positives"],
                   "precision": row["true_positives"] / row["alerts"] if row["alerts"] else 1.0,
                   "recall": row["found"] / row["labels"] if row["labels"] else 1.0}
            for kind, row in tally.items()}
