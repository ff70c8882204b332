"""A restart in the middle of a cascade neither loses a receipt nor sends a report twice (SQLite and PostgreSQL).

Mail goes to a real SMTP server that refuses some recipients with a temporary
error in the first run; after the restart only those are sent, with the same
deterministic Message-IDs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from alerting.cascade import Channel, Incident, Report, open_cascade
from monitor.inventory import Inventory
from monitor.store import Store
from tests.test_cascade_fixtures import T0, SimClock, cascade_settings, smtp_sink


@pytest.fixture
def database(url: str) -> str:
    """The shared ``url`` fixture (conftest): SQLite, then the private PostgreSQL."""
    return url

DRILL = Incident("drill-2021", "処理装置Xのネットワーク切断", drill=True, opened=T0)
FIRST = Report(DRILL.id, 1, "初報本文", T0)


async def test_restart_resumes_without_duplicates(database: str, tmp_path: Path, small_inventory: Inventory) -> None:
    clock = SimClock()
    with smtp_sink() as sink:
        settings = cascade_settings(tmp_path, sink.port, confirm_within=600.0, reminder_interval=300.0)
        busy = {"cs-admin@muni-01-002.lg.jp.example", "cs-admin@muni-47-003.lg.jp.example", "cs-admin@pref-47"
                ".lg.jp.example"}
        sink.refuse |= busy
        async with await Store.open(database) as store:
            cascade = await open_cascade(store, small_inventory, settings, clock=clock)
            assert await cascade.issue(DRILL, FIRST) == 11
            first_run = sink.take()
            assert len(first_run) == 11 and not busy & {m.recipient for m in first_run}
            await cascade.tracker.confirm(FIRST.id, "pref-01", Channel.CONSOLE, by="コールセンター 山田")
            clock.now = T0 + 600
            assert await cascade.remind() == 10  # delivered and unconfirmed: everyone but Hokkaido
            assert "cs-admin@pref-01.lg.jp.example" not in {m.recipient for m in sink.take()}

        sink.refuse.clear()
        clock.now = T0 + 700
        async with await Store.open(database) as store:  # the restart
            cascade = await open_cascade(store, small_inventory, settings, clock=clock)
            assert {d.org for d in cascade.tracker.pending()} == {"muni-01-002", "muni-47-003", "pref-47"}
            assert await cascade.issue(DRILL, FIRST) == 3  # the operator issues again: only the unsent go
            resent = sink.take()
            assert {m.recipient for m in resent} == busy
            assert {m.header("Message-ID") for m in resent} == {
                f"<{FIRST.id}.{org}@cascade.jukimon>" for org in ("muni-01-002", "muni-47-003", "pref-47")}
            assert await cascade.resume() == 0
            assert await cascade.remind() == 0  # the first reminders were 100 s ago; the interval is 300 s
            counts = cascade.tracker.counts(FIRST.id)
            assert (counts.delivered, counts.confirmed, counts.reminded) == (14, 1, 10)
            assert cascade.tracker.delivery(FIRST.id, "pref-01").confirmed_by == "コールセンター 山田"  # type: ignore

            clock.now = T0 + 900
            assert await cascade.remind() == 10  # second reminders; the three late ones are not due before 1300
            reminded = {m.recipient: m.header("Message-ID") for m in sink.take()}
            assert reminded["cs-admin@muni-01-001.lg.jp.example"] == f"<{FIRST.id}.muni-01-001.r2@cascade.jukimon>"


async def test_concurrent_confirmations_are_all_saved(database: str, tmp_path: Path, full_inventory: Inventory) -> None:
    """Confirmations arriving together share commits (group commit); every one of them is on disk."""
    clock = SimClock()
    settings = cascade_settings(tmp_path, 25)
    async with await Store.open(database) as store:
        cascade = await open_cascade(store, full_inventory, settings, clock=clock)
        await cascade.tracker.open_incident(DRILL)
        await cascade.tracker.add_report(FIRST)
        orgs = [d.org for d in cascade.tracker.deliveries(FIRST.id)]
        results = await asyncio.gather(*(cascade.tracker.confirm(FIRST.id, org, Channel.MQTT, by=org)
                                         for org in orgs))
        assert all(r is not None for r in results)
    async with await Store.open(database) as store:
        cascade = await open_cascade(store, full_inventory, settings, clock=clock)
        assert cascade.tracker.counts(FIRST.id).confirmed == 1788
        assert {d.confirmed_by for d in cascade.tracker.deliveries(FIRST.id)} == set(orgs)


async def test_tick_while_a_report_goes_out_sends_nothing_twice(tmp_path: Path, full_inventory: Inventory) -> None:
    with smtp_sink() as sink:
        async with await Store.open(f"sqlite+aiosqlite:///{tmp_path}/jukimon.db") as store:
            cascade = await open_cascade(store, full_inventory, cascade_settings(tmp_path, sink.port),
                                         clock=SimClock())
            issuing = asyncio.create_task(cascade.issue(DRILL, FIRST))
            async with asyncio.timeout(30):
                while not sink.received:  # the report is going out
                    await asyncio.sleep(0.001)
            await cascade.tick()
            assert await issuing == 1788
        recipients = [m.recipient for m in sink.take()]
    assert len(recipients) == len(set(recipients)) == 1788
