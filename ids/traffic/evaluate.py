"""Scoring alerts against the ground truth of injected attacks: precision and recall per alert type.

An alert is correct when an attack's endpoints match it (in either direction; an attack
endpoint of None matches any host), its time falls within the attack's span (plus a grace
for window-based detectors) and its type is the attack's type or one the attack triggers by
construction (``also``). An attack is recalled when at least one alert of its own type matches.
"""

from __future__ import annotations

from typing import Any, Mapping

from ids.traffic.eve import AlertType, alert_time, jukimon_type

GRACE = 120.0  # seconds after an attack's last packet an alert may still be about it


def matches(alert: Mapping[str, Any], attack: Mapping[str, Any], kinds: set[str] | None = None) -> bool:
    kinds = kinds if kinds is not None else {attack["type"], *attack.get("also", ())}
    if jukimon_type(alert) not in kinds:
        return False
    if not attack["start"] - 1.0 <= alert_time(alert) <= attack["end"] + GRACE:
        return False
    ends = {alert["src_ip"], alert["dest_ip"]}
    wanted = [host for host in (attack["src"], attack["dst"]) if host is not None]
    return all(host in ends for host in wanted)


def score(alerts: list[Mapping[str, Any]], truth: list[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per alert type: alerts, correct alerts, attacks, attacks detected, precision and recall."""
    result: dict[str, dict[str, Any]] = {}
    for kind in AlertType:
        of_kind = [a for a in alerts if jukimon_type(a) == kind]
        correct = sum(1 for a in of_kind if any(matches(a, t) for t in truth))
        attacks = [t for t in truth if t["type"] == kind]
        found = sum(1 for t in attacks if any(matches(a, t, {kind.value}) for a in of_kind))
        if not of_kind and not attacks:
            continue
        result[kind.value] = {
            "alerts": len(of_kind), "correct": correct, "attacks": len(attacks), "detected": found,
            "precision": correct / len(of_kind) if of_kind else None,
            "recall": found / len(attacks) if attacks else None,
            "missed": [t["name"] for t in attacks if not any(matches(a, t, {kind.value}) for a in of_kind)],
        }
    return result
