"""The alarm book and what mutes an alarm: labels from the inventory, the lifecycle an operator drives, the
timeline and its exports, silences (validated, expiring by themselves) and inhibition by a root cause."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest

from alerting.alarms import AlarmBook, AlarmError, timeline_json, timeline_text
from alerting.model import Alarm, AlarmStatus
from alerting.silences import (ROOT_CAUSE_KINDS, InhibitRule, Matcher, MatcherError, Muting, SilenceBook, SilenceError,
                               inhibitors,
                               parse_matcher)
from monitor.inventory.model import Inventory
from monitor.state.engine import Changes
from monitor.state.model import ConditionKind
from tests.test_alerting_service import OTARU_CS, T0, cleared, condition, raised


@pytest.fixture
def book(small_inventory: Inventory) -> AlarmBook:
    return AlarmBook(small_inventory)


def test_labels_say_where_the_subject_sits(book: AlarmBook) -> None:
    book.apply(raised(OTARU_CS, condition(ConditionKind.SITE_UNREACHABLE, "muni-47-002", "critical"),
                      condition(ConditionKind.LINK_DOWN, "line-muni-01-003-rt1")), T0)
    assert book.get(OTARU_CS.fingerprint).labels == {
        "kind": "device_down", "subject": "muni-01-003-cs1", "severity": "error", "source": "monitor",
        "role": "cs", "site": "muni-01-003", "tier": "municipality", "prefecture": "01"}
    site = book.get("site_unreachable:muni-47-002").labels
    assert (site["site"], site["prefecture"], site["tier"], "role" in site) == ("muni-47-002", "47", "municipality",
                                                                               False)
    assert book.get("link_down:line-muni-01-003-rt1").labels["site"] == "muni-01-003"


def test_lifecycle_acknowledge_resolve_close(book: AlarmBook) -> None:
    book.apply(raised(OTARU_CS), T0)
    alarm = book.acknowledge(OTARU_CS.fingerprint, "sato", "現地に確認中", T0 + 60)
    assert (alarm.status, alarm.acknowledged_by, alarm.acknowledged_at) == (AlarmStatus.ACKNOWLEDGED, "sato", T0 + 60)
    with pytest.raises(AlarmError, match="確認済みのアラームは確認できません"):
        book.acknowledge(OTARU_CS.fingerprint, "suzuki", "", T0 + 61)
    book.comment(OTARU_CS.fingerprint, "sato", "保守業者に連絡", T0 + 120)
    book.resolve(OTARU_CS.fingerprint, "sato", "CS 再起動で復旧", T0 + 600)
    book.close(OTARU_CS.fingerprint, "sato", "", T0 + 700)
    assert alarm.status is AlarmStatus.CLOSED and (alarm.resolved_at, alarm.closed_at) == (T0 + 600, T0 + 700)
    assert [(e.action, e.actor, e.text) for e in alarm.timeline] == [
        ("raised", "monitor", "muni-01-003-cs1 応答なし"), ("acknowledged", "sato", "現地に確認中"),
        ("commented", "sato", "保守業者に連絡"), ("resolved", "sato", "CS 再起動で復旧"), ("closed", "sato", "")]
    with pytest.raises(AlarmError, match="操作者"):
        book.comment(OTARU_CS.fingerprint, " ", "x", T0 + 800)


def test_resolved_when_the_condition_clears_and_reopened_when_it_returns(book: AlarmBook) -> None:
    book.apply(raised(OTARU_CS), T0)
    book.acknowledge(OTARU_CS.fingerprint, "sato", "", T0 + 10)
    book.apply(cleared(OTARU_CS, T0 + 100), T0 + 100)
    alarm = book.get(OTARU_CS.fingerprint)
    assert (alarm.status, alarm.resolved_at) == (AlarmStatus.RESOLVED, T0 + 100)

    book.apply(raised(replace(OTARU_CS, started=T0 + 500)), T0 + 500)
    reopened = book.get(OTARU_CS.fingerprint)
    assert (reopened.status, reopened.acknowledged_by, reopened.started) == (AlarmStatus.FIRING, None, T0 + 500)
    assert [e.action for e in reopened.timeline] == ["raised", "acknowledged", "resolved", "reopened"]


def test_resolved_by_hand_stays_resolved_while_the_condition_holds(book: AlarmBook) -> None:
    book.apply(raised(OTARU_CS), T0)
    book.resolve(OTARU_CS.fingerprint, "sato", "誤検知 (監視経路の問題)", T0 + 60)
    book.apply(cleared(OTARU_CS, T0 + 120), T0 + 120)
    alarm = book.get(OTARU_CS.fingerprint)
    assert alarm.status is AlarmStatus.RESOLVED and alarm.resolved_at == T0 + 60
    assert alarm.timeline[-1].action == "cleared"


def test_updates_follow_the_condition(book: AlarmBook) -> None:
    root = condition(ConditionKind.ROOT_CAUSE, "pref-01-fw", "critical", summary="北海道 FW 停止 — 配下 3 台が監視不能",
                     suppressed=("a", "b", "c"), details={"suppressed_count": 3})
    book.apply(raised(root), T0)
    grown = replace(root, summary="北海道 FW 停止 — 配下 5 台が監視不能", suppressed=("a", "b", "c", "d", "e"),
                    details={"suppressed_count": 5}, in_maintenance=True)
    book.apply(Changes(updated=[grown]), T0 + 30)
    alarm = book.get(root.fingerprint)
    assert (alarm.suppressed_count, alarm.in_maintenance, alarm.summary) == (5, True, grown.summary)
    assert alarm.timeline[-1].data == {"suppressed_count": [3, 5], "in_maintenance": [False, True]}
    assert not book.notifiable(alarm), "under maintenance: recorded, not notified"


def test_timeline_exports(book: AlarmBook) -> None:
    book.apply(raised(OTARU_CS), T0)
    book.acknowledge(OTARU_CS.fingerprint, "sato", "対応開始", T0 + 90)
    alarm = book.get(OTARU_CS.fingerprint)
    document = json.loads(timeline_json(alarm, Muting(silenced_by=("s1",))))
    assert document["status"] == "acknowledged" and document["muting"]["silenced_by"] == ["s1"]
    assert [(e["action"], e["at_jst"]) for e in document["timeline"]] == [
        ("raised", "2023-11-15 07:13:20 JST"), ("acknowledged", "2023-11-15 07:14:50 JST")]
    text = timeline_text(alarm)
    assert "状態: 確認済み" in text
    assert "2023-11-15 07:14:50 JST  確認  sato  対応開始" in text


# --- silences ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "labels", "expected"), [
    ("severity=critical", {"severity": "critical"}, True),
    ("severity!=critical", {"severity": "critical"}, False),
    ('site=~"muni-01-.*"', {"site": "muni-01-003"}, True),
    ('site=~"muni-01"', {"site": "muni-01-003"}, False),  # the whole value must match
    ("site!~muni-47-.*", {"site": "muni-01-003"}, True),
    ("role=", {}, True),  # a missing label is the empty string
])
def test_matchers(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_matcher(text).matches(labels) is expected


def test_bad_matchers() -> None:
    with pytest.raises(MatcherError, match="正規表現"):
        parse_matcher('site=~"muni-(01"')
    with pytest.raises(MatcherError, match="ラベル 演算子 値"):
        parse_matcher("severity critical")


@pytest.mark.parametrize(("matchers", "start", "end", "author", "reason", "field"), [
    ([], T0, T0 + 60, "sato", "工事", "matchers: 少なくとも1つ"),
    (['site=~".*"'], T0, T0 + 60, "sato", "工事", "matchers: 空の値にも一致"),
    (["site=~(("], T0, T0 + 60, "sato", "工事", "matchers: "),
    (["site=muni-01-003"], T0, T0, "sato", "工事", "end: 終了時刻は開始時刻より後"),
    (["site=muni-01-003"], T0 - 120, T0 - 60, "sato", "工事", "end: 終了時刻が過去"),
    (["site=muni-01-003"], T0, T0 + 60, " ", "工事", "author: "),
    (["site=muni-01-003"], T0, T0 + 60, "sato", "", "reason: "),
])
def test_silence_validation(matchers: list[str], start: float, end: float, author: str, reason: str,
                            field: str) -> None:
    with pytest.raises(SilenceError, match=f"^{field}"):
        SilenceBook().add(matchers, start, end, author, reason, T0)


def test_silences_start_and_expire_by_themselves() -> None:
    silences = SilenceBook()
    silence = silences.add([Matcher("site", "=", "muni-01-003")], T0 + 60, T0 + 120, "sato", "CS 更改", T0)
    labels = {"site": "muni-01-003"}
    assert [silence.state(t) for t in (T0, T0 + 60, T0 + 120)] == ["pending", "active", "expired"]
    assert [silences.silencing(labels, t) for t in (T0, T0 + 90, T0 + 120)] == [(), (silence.id,), ()]
    assert silences.silencing({"site": "muni-01-004"}, T0 + 90) == ()
    early = silences.expire(silence.id, "suzuki", T0 + 70)
    assert (early.end, early.expired_by, silences.silencing(labels, T0 + 90)) == (T0 + 70, "suzuki", ())
    with pytest.raises(SilenceError, match="既に終了"):
        silences.expire(silence.id, "suzuki", T0 + 80)


# --- inhibition ---------------------------------------------------------------------------------------------------


def test_a_root_cause_inhibits_its_children_and_its_site(book: AlarmBook) -> None:
    fw = condition(ConditionKind.ROOT_CAUSE, "muni-01-003-fw", "critical", suppressed=("muni-01-003-cs1",))
    cut = condition(ConditionKind.SITE_UNREACHABLE, "muni-01-004", "critical", suppressed=("muni-01-004-cs1",))
    child = condition(ConditionKind.LIFECYCLE, "muni-01-003-cs1", "warning")
    neighbour = condition(ConditionKind.DEGRADED, "muni-01-003-rt1", "warning")
    other_root = condition(ConditionKind.ROOT_CAUSE, "muni-01-003-rt2", "critical")
    elsewhere = condition(ConditionKind.DEGRADED, "muni-01-005-cs1", "warning")
    behind_cut = condition(ConditionKind.FLAPPING, "muni-01-004-cs2", "warning")
    book.apply(raised(fw, cut, child, neighbour, other_root, elsewhere, behind_cut), T0)
    assert inhibitors(book.alarms.values(), ()) == {child.fingerprint: fw.fingerprint,
                                                    neighbour.fingerprint: fw.fingerprint,
                                                    behind_cut.fingerprint: cut.fingerprint}
    book.apply(cleared(fw, T0 + 60), T0 + 60)
    assert inhibitors(book.alarms.values(), ())[child.fingerprint] == other_root.fingerprint, "same site"
    book.apply(cleared(other_root, T0 + 90), T0 + 90)
    assert child.fingerprint not in inhibitors(book.alarms.values(), ())


def test_configured_inhibit_rule_with_equal_labels(book: AlarmBook) -> None:
    rule = InhibitRule((parse_matcher("kind=root_cause"), parse_matcher("role=prefecture_unit")),
                       (parse_matcher("kind=order_violation"),), ("prefecture",))
    unit = condition(ConditionKind.ROOT_CAUSE, "aggregation-pu-01", "critical")
    same_prefecture = condition(ConditionKind.ORDER_VIOLATION, "muni-01-003-cs1", "warning")
    other_prefecture = condition(ConditionKind.ORDER_VIOLATION, "muni-47-001-cs1", "warning")
    book.apply(raised(unit, same_prefecture, other_prefecture), T0)
    assert inhibitors(book.alarms.values(), [rule]) == {same_prefecture.fingerprint: unit.fingerprint}


def test_the_indexed_inhibition_names_the_inhibitor_checking_every_pair_would(book: AlarmBook,
                                                                              small_inventory: Inventory) -> None:
    """A storm's worth of random alarms: the index finds exactly what comparing every pair finds."""
    rules = [InhibitRule((parse_matcher("kind=root_cause"),), (parse_matcher("kind=order_violation"),),
                         ("prefecture",)),
             InhibitRule((parse_matcher("kind=degraded"),), (parse_matcher("kind=degraded"),), ("site",))]
    rng = random.Random(11)
    devices = sorted(small_inventory.devices)
    kinds = [ConditionKind.ROOT_CAUSE, ConditionKind.SITE_UNREACHABLE, ConditionKind.DEGRADED,
             ConditionKind.LIFECYCLE, ConditionKind.ORDER_VIOLATION]
    conditions = {}
    for _ in range(400):
        kind, device = rng.choice(kinds), rng.choice(devices)
        subject = small_inventory.devices[device].site if kind is ConditionKind.SITE_UNREACHABLE else device
        suppressed = tuple(rng.sample(devices, 3)) if kind in (ConditionKind.ROOT_CAUSE,
                                                               ConditionKind.SITE_UNREACHABLE) else ()
        made = condition(kind, subject, "warning", suppressed=suppressed)
        conditions[made.fingerprint] = made
    book.apply(raised(*conditions.values()), T0)
    book.apply(cleared(rng.choice(list(conditions.values())), T0 + 1), T0 + 1)

    def root_cause(source: Alarm, target: Alarm) -> bool:
        site = source.labels.get("site")
        return (source.labels.get("kind") in ROOT_CAUSE_KINDS and target.labels.get("kind") not in ROOT_CAUSE_KINDS
                and (target.labels.get("subject") in source.suppressed
                     or (bool(site) and target.labels.get("site") == site)))

    firing = [a for a in book.alarms.values() if a.status in (AlarmStatus.FIRING, AlarmStatus.ACKNOWLEDGED)]
    pairwise = {}
    for target in firing:
        for source in firing:
            if source is not target and (root_cause(source, target) or any(r.inhibits(source, target) for r in rules)):
                pairwise[target.fingerprint] = source.fingerprint
                break
    assert len(pairwise) > 50 and inhibitors(book.alarms.values(), rules) == pairwise


def test_ids_alarms_are_marked_as_such_and_survive_the_monitors_reconciliation(small_inventory) -> None:
    from monitor.state.model import ConditionKind
    from alerting.alarms import AlarmBook, alarm_labels

    ids = condition(ConditionKind.IDS_OPERATIONS, "muni-01-001")
    monitor = condition(ConditionKind.DEVICE_DOWN, "muni-01-002-cs1")
    assert alarm_labels(ids, small_inventory)["source"] == "ids"
    assert alarm_labels(monitor, small_inventory)["source"] == "monitor"
    book = AlarmBook(small_inventory)
    book.fire(ids, T0)
    book.fire(monitor, T0)
    book.reconcile([], T0 + 60)  # a restart: the monitor's conditions are gone, the IDS alarm is people's work
    assert book.alarms[ids.fingerprint].status is AlarmStatus.FIRING
    assert book.alarms[monitor.fingerprint].status is AlarmStatus.RESOLVED
