"""Ingestion of operator audit records: validation with counted reasons, pseudonymisation, the enumeration signal."""

from __future__ import annotations

import json
import logging
import random

import pytest

from ids.operations import Action, Ingestor, OpsIdsSettings, Pseudonymiser
from ids.operations.pseudonym import masked_step
from monitor.configerror import ConfigError

KEYS = {"k1": b"first-key-0123456789", "k2": b"second-key-0123456789"}
GOOD = {"ts": "2026-12-07T09:00:00+09:00", "organisation": "muni-01-002", "terminal": "muni-01-002-term01",
        "operator": "muni-01-002-op003", "action": "lookup", "purpose": "M01", "resident": "30418275526",
        "resident_municipality": "muni-01-002"}


def ingestor(current: str = "k1") -> Ingestor:
    return Ingestor(Pseudonymiser(current, KEYS))


def test_a_good_lookup_becomes_an_event_with_a_keyed_pseudonym_and_no_clear_code():
    event = ingestor().ingest_line(json.dumps(GOOD))
    assert event is not None and event.action is Action.LOOKUP and event.count == 1
    assert event.resident.startswith("k1:") and "30418275526" not in repr(event)
    assert event.ts == 1796601600.0  # 2026-12-07 00:00 UTC


@pytest.mark.parametrize("change, reason", [
    ({"ts": "2026-12-07 25:61"}, "bad_ts"),
    ({"ts": "2026-12-07T09:00:00"}, "ts_without_offset"),
    ({"ts": 1796601600}, "missing_ts"),
    ({"ts": "0001-01-01T00:00:00+09:00"}, "ts_out_of_range"),
    ({"ts": "9999-12-31T23:59:59-12:00"}, "ts_out_of_range"),
    ({"action": "delete"}, "bad_action"),
    ({"action": ["lookup"]}, "bad_action"),
    ({"operator": ""}, "missing_operator"),
    ({"organisation": None}, "missing_organisation"),
    ({"resident": "3041827552"}, "bad_resident"),
    ({"resident": "3041827552x"}, "bad_resident"),
    ({"resident": "３０４１８２７５５２６"}, "bad_resident"),  # full-width digits
    ({"resident": 30418275526}, "bad_resident"),
    ({"resident": None}, "missing_resident"),
    ({"purpose": 1}, "bad_purpose"),
    ({"action": "provision", "resident_count": 0}, "bad_resident_count"),
    ({"action": "provision", "resident_count": True}, "bad_resident_count"),
])
def test_malformed_records_are_rejected_with_a_counted_reason(change, reason, caplog):
    ids = ingestor()
    with caplog.at_level(logging.DEBUG, logger="ids.operations.records"):
        assert ids.ingest_line(json.dumps({**GOOD, **change}), "f.jsonl:7") is None
        assert ids.ingest_line(json.dumps({**GOOD, **change}), "f.jsonl:8") is None
    assert ids.rejected == {reason: 2} and ids.accepted == 0
    first, second = caplog.records
    assert first.levelno == logging.WARNING and second.levelno == logging.DEBUG
    assert first.fields == {"reason": reason, "where": "f.jsonl:7", "count": 1}


@pytest.mark.parametrize("line", [b"", b"{", b"\xff\xfe", b"[1, 2]", b"null", b"[" * 100_000, b'"x"'])
def test_garbage_never_crashes_ingestion(line):
    ids = ingestor()
    assert ids.ingest_line(line) is None
    assert sum(ids.rejected.values()) == 1


def test_pseudonyms_are_stable_per_key_and_rotation_keeps_old_ones_findable():
    old, new = Pseudonymiser("k1", KEYS), Pseudonymiser("k2", KEYS)
    assert old.pseudonym("30418275526") == old.pseudonym("30418275526") != old.pseudonym("30418275527")
    rotated = new.pseudonym("30418275526")
    assert rotated.startswith("k2:") and rotated[3:] != old.pseudonym("30418275526")[3:]
    assert old.pseudonym("30418275526") in new.pseudonyms_under_every_key("30418275526")


def test_the_enumeration_step_is_the_code_difference_though_the_state_holds_no_code():
    ids = ingestor()
    steps = [ids.ingest({**GOOD, "resident": code}).step for code in ("30418275526", "30418275527", "30418275520")]
    assert steps == [None, 1, -7]
    assert all(value != 30418275520 for value in ids._previous.values())
    assert masked_step(10**11 - 1, 2) == 3  # wraps around the 11-digit space


def test_key_settings_from_the_environment_win_and_bad_settings_name_the_key(monkeypatch):
    settings = OpsIdsSettings(pseudonym_key_id="a", pseudonym_keys={"a": "env:OPSIDS_TEST_KEY"})
    monkeypatch.setenv("OPSIDS_TEST_KEY", "secret-from-the-environment")
    assert settings.keys() == ("a", {"a": b"secret-from-the-environment"})
    monkeypatch.setenv("JUKIMON_OPSIDS_KEY", "r7:rotated-secret-0123456789")
    assert settings.keys()[0] == "r7"
    with pytest.raises(ConfigError, match="opsids.pseudonym_key_id"):
        OpsIdsSettings(pseudonym_key_id="b", pseudonym_keys={"a": "x"}).check("opsids")
    with pytest.raises(ConfigError, match="opsids.bulk_factor"):
        OpsIdsSettings(bulk_factor=0).check("opsids")


def test_thousands_of_mutated_records_never_crash_ingestion_or_detection():
    from ids.operations import OperationsIds
    from monitor.inventory import default_inventory

    rng = random.Random(8)
    values = [None, 0, -1, 2**70, 1.5, float("nan"), True, "", "x" * 5000, [], {}, {"a": [1]}, "lookup",
              "provision", "2026-12-07T03:00:00+09:00", "muni-01-002", "agency-01-server", "A01", "00000000000"]
    ids = OperationsIds(default_inventory(), OpsIdsSettings(pseudonym_key_id="k1", pseudonym_keys={"k1": "k" * 20}))
    lines = []
    for _ in range(3000):
        record = dict(GOOD, resident_count=5)
        for name in rng.sample(sorted(record), rng.randint(1, 3)):
            record[name] = rng.choice(values)
        lines.append(json.dumps(record))
    alerts = list(ids.feed(lines))
    assert ids.ingestor.accepted + sum(ids.ingestor.rejected.values()) == 3000
    assert ids.ingestor.accepted > 100 and len(ids.ingestor.rejected) > 5 and alerts
