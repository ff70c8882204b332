"""Labelled misuse scenarios through the real ingestion path: each detection fires, and explains itself."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections import Counter
from pathlib import Path

import pytest

from ids.operations import AlertType, OperationsIds, OpsIdsSettings
from ids.operations.cli import register
from ids.operations.scoring import score
from monitor.inventory import Tier, default_inventory
from monitor.schedule.window import OperatingCalendar, WindowSettings
from simnet.audit_stream import SCENARIO_TYPES, AuditStream

ROOT = Path(__file__).resolve().parents[1]
MONTH = dt.date(2026, 11, 2)  # four weeks from a Monday, with 文化の日 and 勤労感謝の日
KEY = OpsIdsSettings(pseudonym_key_id="t", pseudonym_keys={"t": "test-key-0123456789"})


def small_network() -> list[str]:
    """Tottori and Shimane (38 municipalities) and every agency."""
    inventory = default_inventory()
    return [s.id for s in inventory.sites.values()
            if s.prefecture in ("31", "32") and s.tier is Tier.MUNICIPALITY or s.tier is Tier.AGENCY]


@pytest.fixture(scope="module")
def month():
    stream = AuditStream(default_inventory(), seed=3, sites=small_network())
    injection = stream.plan_scenarios(MONTH, 28, per_type=2)
    ids = OperationsIds(default_inventory(), KEY)
    alerts = list(ids.feed(stream.lines(MONTH, 28, injection)))
    return injection.labels, alerts, ids


def test_every_detection_type_has_a_scenario():
    assert set(SCENARIO_TYPES) == {t.value for t in AlertType}


@pytest.mark.parametrize("kind", SCENARIO_TYPES)
def test_each_labelled_scenario_is_detected_and_nothing_else_is_raised(month, kind):
    labels, alerts, ids = month
    result = score(alerts, labels)[kind]
    assert result["labels"] == 2, "the month must hold two scenarios of every type"
    assert result["found"] == 2, f"{kind}: missed a scenario"
    assert result["false_positives"] == 0, [a.as_dict() for a in alerts if a.type.value == kind]
    assert ids.ingestor.rejected == Counter()


def test_alerts_explain_themselves(month):
    _, alerts, _ = month
    for alert in alerts:
        shown = alert.as_dict()
        assert shown["rule"] and shown["evidence"] and shown["severity"] in ("warning", "error", "critical")
        assert shown["start"] <= shown["end"]
    bulk = next(a for a in alerts if a.type is AlertType.BULK_LOOKUP)
    assert bulk.evidence["lookups_this_hour"] > bulk.evidence["threshold"] >= 40
    assert bulk.evidence["operator_baseline"] is not None  # a real staff member with a learned hour-of-week
    pull = [a for a in alerts if a.type is AlertType.AGENCY_OVERPULL]
    assert {a.rule.split(" ")[0] for a in pull} == {"a", "instant"}  # second batch, and a day of instant ones


def test_an_open_day_allowed_by_the_operating_rules_is_not_off_hours():
    record = {"ts": "2026-11-03T10:00:00+09:00", "organisation": "muni-31-001", "terminal": "muni-31-001-term01",
              "operator": "muni-31-001-op001", "action": "login_ok"}  # 文化の日
    holiday = list(OperationsIds(default_inventory(), KEY).feed([json.dumps(record)]))
    assert [(a.type, a.evidence["holiday"]) for a in holiday] == [(AlertType.OFF_HOURS, "文化の日")]
    calendar = OperatingCalendar(WindowSettings(extra_open_days=("2026-11-03",)))
    assert list(OperationsIds(default_inventory(), KEY, calendar).feed([json.dumps(record)])) == []


def test_replay_command_prints_one_json_alert_per_line_for_the_documented_example(capsys):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["opsids", "replay", str(ROOT / "docs/examples/audit.jsonl")])
    assert args.handler(args) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(a["type"], a["operator"]) for a in printed] == [
        ("unentitled_purpose", "muni-01-002-op007"),
        ("out_of_jurisdiction", "muni-01-002-op007"),
        ("unentitled_purpose", "muni-01-002-op012"),
        ("concurrent_terminals", "muni-01-002-op003"),
        ("unknown_terminal", "muni-01-002-op011"),
        ("off_hours", "muni-01-002-op003"),
    ]
    assert all(a["organisation"] == "muni-01-002" and a["start"] and a["evidence"] for a in printed)
