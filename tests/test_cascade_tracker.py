"""Receipt tracking: who was sent what, who confirmed, who is overdue — exact counts, reminders only to the missing."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import AsyncIterator

import pytest

from alerting.cascade import (CascadeSettings, CascadeStore, Channel, ConfirmOutcome, Counts, Directory, Forwarding,
                              Incident, OrgTier, Report, Tracker)
from monitor.configerror import ConfigError
from monitor.inventory import Inventory
from monitor.store import Store
from tests.test_cascade_fixtures import T0, SimClock

DRILL = Incident("drill-2021", "処理装置Xのネットワーク切断", drill=True, opened=T0)
WITHIN, INTERVAL = 1800.0, 900.0


def directory(inventory: Inventory, **kw: object) -> Directory:
    return Directory.from_inventory(inventory, **kw)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> SimClock:
    return SimClock()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CascadeStore]:
    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path}/jukimon.db") as db:
        yield await CascadeStore.open(db)


async def open_tracker(store: CascadeStore, d: Directory, clock: SimClock) -> Tracker:
    settings = CascadeSettings(confirm_within=WITHIN, reminder_interval=INTERVAL, max_reminders=2)
    tracker = await Tracker.open(store, d, settings, clock)
    await tracker.open_incident(DRILL)
    return tracker


async def deliver_all(tracker: Tracker, report_id: str) -> None:
    await tracker.record_sent((d, None) for d in tracker.pending(report_id))


def test_directory_of_the_full_network(full_inventory: Inventory) -> None:
    d = directory(full_inventory)
    tiers = [o.tier for o in d.organisations.values()]
    assert (len(d), tiers.count(OrgTier.PREFECTURE), tiers.count(OrgTier.MUNICIPALITY)) == (1788, 47, 1741)
    assert d["muni-01-002"].address == "cs-admin@muni-01-002.lg.jp.example"
    assert len(d.targets(Report(DRILL.id, 1, "", T0))) == 1788
    assert len(directory(full_inventory, include_agencies=True).targets(Report(DRILL.id, 1, "", T0))) == 1796
    tokyo = d["pref-13"]
    assert [m.prefecture for m in d.municipalities(tokyo)] == ["13"] * len(d.municipalities(tokyo))
    assert len(d.targets(Report(DRILL.id, 1, "", T0, scope=("13",)))) == 1 + len(d.municipalities(tokyo))


def test_address_file_and_forwarding_overrides(tmp_path: Path, small_inventory: Inventory) -> None:
    (tmp_path / "addresses.yaml").write_text("pref-47: jyuki@pref.okinawa.lg.jp.example\n")
    settings = CascadeSettings(addresses_file=tmp_path / "addresses.yaml", forwarding_overrides={"47": "prefecture"})
    d = settings.directory(small_inventory)
    assert d["pref-47"].address == "jyuki@pref.okinawa.lg.jp.example"
    assert d.forwarding_of(d["pref-47"]) is Forwarding.PREFECTURE
    assert d.forwarding_of(d["pref-01"]) is Forwarding.SYSTEM

    (tmp_path / "addresses.yaml").write_text("muni-99-999: a@b.example\n")
    with pytest.raises(ConfigError, match="muni-99-999: not a recipient"):
        settings.directory(small_inventory)
    (tmp_path / "addresses.yaml").write_text("pref-47: not-an-address\n")
    with pytest.raises(ConfigError, match="addresses.yaml: pref-47: not an e-mail address"):
        settings.directory(small_inventory)
    with pytest.raises(ConfigError, match="cascade.forwarding_overrides.47: one of prefecture, system"):
        CascadeSettings(forwarding_overrides={"47": "nobody"}).check("cascade")
    with pytest.raises(ConfigError, match="cascade.confirm_within: must be a number > 0"):
        CascadeSettings(confirm_within=0).check("cascade")


async def test_forwarding_by_the_system_and_by_the_prefecture(store: CascadeStore, small_inventory: Inventory,
                                                              clock: SimClock) -> None:
    d = directory(small_inventory, forwarding_overrides={"pref-47": Forwarding.PREFECTURE})
    tracker = await open_tracker(store, d, clock)
    report = Report(DRILL.id, 1, "初報本文", T0)
    planned = await tracker.add_report(report)
    hokkaido = [o.id for o in d.municipalities(d["pref-01"])]
    okinawa = [o.id for o in d.municipalities(d["pref-47"])]
    assert {p.org for p in planned} == {"pref-01", "pref-47", *hokkaido}
    assert {(p.sent_by, p.on_behalf) for p in planned if p.org in hokkaido} == {("pref-01", True)}
    assert tracker.forward_of(report.id, "pref-01").by == "jukimon"  # type: ignore[union-attr]
    counts = tracker.counts(report.id)
    assert (counts.targets, counts.planned, counts.awaiting_forward, counts.missing) == (14, 8, 1, 14)
    assert {m.id for m in tracker.progress(report.id).missing if m.status == "not_forwarded"} == set(okinawa)

    clock.now += 300
    forwarded = await tracker.forward(report.id, "pref-47", by="沖縄県 住基担当 比嘉")
    assert {f.org for f in forwarded} == set(okinawa)
    assert {(f.sent_by, f.on_behalf, f.planned_at) for f in forwarded} == {("pref-47", False, T0 + 300)}
    assert await tracker.forward(report.id, "pref-47", by="again") == []
    assert tracker.forward_of(report.id, "pref-47").by == "沖縄県 住基担当 比嘉"  # type: ignore[union-attr]
    assert tracker.counts(report.id).awaiting_forward == 0
    with pytest.raises(ValueError, match="no prefecture muni-01-002"):
        await tracker.forward(report.id, "muni-01-002", by="x")


async def test_confirmations_with_random_delays_exact_counts_and_reminders_only_to_the_missing(
        store: CascadeStore, full_inventory: Inventory, clock: SimClock) -> None:
    """1,788 recipients; each confirms after a seeded random delay, by link, console or MQTT — or never."""
    tracker = await open_tracker(store, directory(full_inventory), clock)
    report = Report(DRILL.id, 1, "初報本文", T0)
    await tracker.add_report(report)
    await deliver_all(tracker, report.id)
    rng = random.Random(3)
    delays = {d.org: (None if rng.random() < 0.06 else 60.0 * rng.randint(1, 60)) for d in tracker.deliveries(report.id)}
    channels = {org: rng.choice(list(Channel)) for org in delays}

    async def confirm_until(t: float) -> None:
        for org, delay in sorted(delays.items(), key=lambda kv: (kv[1] or 1e9, kv[0])):
            if delay is not None and T0 + delay < t and tracker.delivery(report.id, org).confirmed_at is None:  # type: ignore[union-attr]
                clock.now = T0 + delay
                result = await tracker.confirm(report.id, org, channels[org], by=f"{org} 担当者")
                assert result is not None and result.outcome is ConfirmOutcome.CONFIRMED

    def unconfirmed_at(t: float) -> set[str]:
        return {org for org, delay in delays.items() if delay is None or T0 + delay >= t}

    await confirm_until(T0 + WITHIN)
    clock.now = T0 + WITHIN - 1
    assert tracker.due_reminders() == []  # nobody is overdue a second early
    clock.now = T0 + WITHIN
    first = tracker.due_reminders()
    assert {d.org for d in first} == unconfirmed_at(T0 + WITHIN)
    await tracker.record_reminded((d, None) for d in first)
    assert tracker.due_reminders() == []  # reminded now: the next one after the interval

    await confirm_until(T0 + WITHIN + INTERVAL)
    clock.now = T0 + WITHIN + INTERVAL
    second = tracker.due_reminders()
    assert {d.org for d in second} == unconfirmed_at(clock.now)
    await tracker.record_reminded((d, None) for d in second)

    await confirm_until(T0 + 4000)
    clock.now = T0 + 2 * WITHIN + INTERVAL
    never = {org for org, delay in delays.items() if delay is None}
    assert tracker.due_reminders() == []  # max_reminders = 2 reached by those who never answer
    expected = Counts(targets=1788, planned=1788, sent=1788, delivered=1788, failed=0,
                      confirmed=1788 - len(never), missing=len(never), overdue=len(never), reminded=len(first),
                      reminders=len(first) + len(second), awaiting_forward=0)
    assert tracker.counts(report.id) == expected
    assert {d.org for d in tracker.overdue(report.id)} == never
    by_channel = {c: sum(1 for d in tracker.deliveries(report.id) if d.confirmed_via == c.value) for c in Channel}
    assert by_channel == {c: sum(1 for o in delays if delays[o] is not None and channels[o] is c) for c in Channel}
    some = next(o for o, delay in delays.items() if delay is not None)
    delivery = tracker.delivery(report.id, some)
    assert (delivery.confirmed_at, delivery.confirmed_by) == (T0 + delays[some], f"{some} 担当者")  # type: ignore

    progress = tracker.progress(report.id)
    assert {m.id for m in progress.missing} == never
    assert {m.status for m in progress.missing} == {"overdue"}
    assert sum(p.confirmed for p in progress.prefectures) == 1788 - len(never)
    assert sum(p.targets for p in progress.prefectures) == 1788

    restarted = await Tracker.open(store, directory(full_inventory), CascadeSettings(
        confirm_within=WITHIN, reminder_interval=INTERVAL, max_reminders=2), clock)
    assert restarted.counts(report.id) == expected
    assert restarted.progress(report.id) == progress


async def test_first_confirmation_stands_and_unknown_is_refused(store: CascadeStore, small_inventory: Inventory,
                                                                clock: SimClock) -> None:
    d = directory(small_inventory)
    tracker = await open_tracker(store, d, clock)
    report = Report(DRILL.id, 1, "本文", T0, scope=("47",))
    await tracker.add_report(report)
    okinawa = {"pref-47", *(m.id for m in d.municipalities(d["pref-47"]))}
    assert {d.org for d in tracker.deliveries(report.id)} == okinawa  # no agencies, no Hokkaido
    first = await tracker.confirm(report.id, "pref-47", Channel.CONSOLE, by="コールセンター 山田")
    clock.now += 60
    again = await tracker.confirm(report.id, "pref-47", Channel.LINK, by="cs-admin@pref-47")
    assert first is not None and again is not None
    assert (first.outcome, again.outcome) == (ConfirmOutcome.CONFIRMED, ConfirmOutcome.ALREADY)
    assert (again.at, again.delivery.confirmed_via, again.delivery.confirmed_by) == (T0, "console", "コールセンター 山田")
    assert await tracker.confirm(report.id, "pref-01", Channel.LINK, by="x") is None  # outside the report's scope
    assert await tracker.confirm("drill-2021.9", "pref-47", Channel.LINK, by="x") is None


async def test_reports_of_an_incident(store: CascadeStore, small_inventory: Inventory, clock: SimClock) -> None:
    tracker = await open_tracker(store, directory(small_inventory), clock)
    first = Report(DRILL.id, 1, "初報本文", T0)
    assert len(await tracker.add_report(first)) == 14
    assert await tracker.add_report(first) == []  # issuing again (after a crash) plans nothing new
    with pytest.raises(ValueError, match="already issued with other content"):
        await tracker.add_report(replace(first, body="別の本文"))
    final = Report(DRILL.id, 2, "終報本文", T0 + 3600, final=True)
    await tracker.add_report(final)
    assert (first.label, final.label, Report(DRILL.id, 3, "", T0).label) == ("初報", "終報", "第3報")
    with pytest.raises(ValueError, match="closed by its final report drill-2021.2"):
        await tracker.add_report(Report(DRILL.id, 3, "第3報", T0 + 7200))
    with pytest.raises(ValueError, match="unknown incident"):
        await tracker.add_report(Report("other", 1, "", T0))


async def test_failed_delivery_is_pending_and_shown(store: CascadeStore, small_inventory: Inventory,
                                                   clock: SimClock) -> None:
    tracker = await open_tracker(store, directory(small_inventory), clock)
    report = Report(DRILL.id, 1, "本文", T0)
    await tracker.add_report(report)
    pending = tracker.pending(report.id)
    await tracker.record_sent([(d, None if d.org != "muni-01-002" else "451 mailbox busy") for d in pending])
    assert [d.org for d in tracker.pending()] == ["muni-01-002"]
    counts = tracker.counts(report.id)
    assert (counts.sent, counts.delivered, counts.failed) == (14, 13, 1)
    statuses = {m.id: m.status for m in tracker.progress(report.id).missing}
    assert statuses["muni-01-002"] == "failed" and statuses["pref-01"] == "unconfirmed"
    clock.now = T0 + WITHIN
    assert "muni-01-002" not in {d.org for d in tracker.due_reminders()}  # a reminder needs a delivered report
