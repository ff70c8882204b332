"""The operation IDS in the running product: the simulation's audit stream over TLS → IDS → alarm → the /ids page.

A small real-shape network's operators work one Monday on a fast simulated clock,
with one labelled misuse of every type and one forged operator id that is an HTML
script; the audit sender replays it over real TLS (simulation CA) to the IDS's
listener, whose alerts become alarms in a real AlertingService over SQLite and
are shown on the console, over HTTP, to the roles that may see them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import stat
from pathlib import Path
from typing import AsyncIterator
from urllib.parse import quote

import pytest

from alerting.alarm_store import AlarmStore
from dashboards.auth import UserRole
from ids.operations import OperationsIds, OpsIdsSettings
from ids.operations.alarms import IdsAlarms, fingerprint_of
from ids.operations.alerts import JST
from ids.operations.tls_ingest import AuditListener
from monitor.inventory.model import Inventory
from monitor.mainjob import SimulationOptions, _local_pseudonym_key
from simnet import cli as simnet_cli
from simnet.audit_sender import AuditSender, receiver_context, sender_context
from simnet.audit_stream import AuditStream, Injection
from simnet.clock import SimClock
from tests.console_fixtures import USERS, ConsoleClient, served

MONDAY = dt.date(2026, 12, 7)
KEY = OpsIdsSettings(pseudonym_key_id="t", pseudonym_keys={"t": "test-key-0123456789"})
FORGED = "<script>alert('ids')</script>"
SPEED = 50_000.0  # simulated seconds per real second: the working day passes in about a second


def monday(inventory: Inventory) -> tuple[AuditStream, Injection, list[dict]]:
    """The day's stream with one scenario of each type and the forged operator's unentitled look-up."""
    stream = AuditStream(inventory, seed=3)
    injection = stream.plan_scenarios(MONDAY, 1, per_type=1)
    ten = dt.datetime.combine(MONDAY, dt.time(10), JST).timestamp()
    injection.records.append((ten, {"organisation": "muni-01-001", "terminal": "muni-01-001-term01",
                                    "operator": FORGED, "action": "lookup", "purpose": "A01",
                                    "resident": "31415926535", "resident_municipality": "muni-01-001"}))
    records = [dict(r) for r in stream.records(MONDAY, 1, injection)]
    return stream, injection, records


@contextlib.asynccontextmanager
async def chain(inventory: Inventory, tmp_path: Path) -> AsyncIterator[tuple]:
    """Console (real alerting over SQLite) ← IdsAlarms ← AuditListener (TLS) ← AuditSender, Monday replayed."""
    stream, injection, records = monday(inventory)
    async with served(inventory, tmp_path) as server:
        ctx = server.app.state.console.ctx
        ids = OperationsIds(inventory, KEY)
        alarms = IdsAlarms(inventory)
        alarms.attach(ctx.alerting)
        ctx.extra.update(opsids=ids, opsids_alerts=alarms.recent)
        listener = AuditListener(ids, alarms, "127.0.0.1", 0, receiver_context(tmp_path / "simnet"))
        await listener.start()
        clock = SimClock(speed=SPEED, start=dt.datetime.combine(MONDAY, dt.time(), JST).timestamp())
        sender = AuditSender(stream, clock, listener.address, sender_context(tmp_path / "simnet"), injection)
        await sender.start()
        try:
            for _ in range(1500):  # until Monday is in (bounded: a broken chain fails, it does not hang)
                if listener.stats().get("messages", 0) >= len(records):
                    break
                await asyncio.sleep(0.02)
        finally:
            await sender.stop()
            await listener.stop()
        client = ConsoleClient(server.url)
        try:
            yield ctx, injection, records, client, listener
        finally:
            await client.close()


async def test_monday_misuse_arrives_over_tls_and_becomes_alarms_kept_in_sqlite_and_shown_on_ids(
        small_inventory: Inventory, tmp_path: Path) -> None:
    async with chain(small_inventory, tmp_path) as (ctx, injection, records, client, listener):
        assert listener.stats()["messages"] >= len(records)
        assert not any(k.startswith("record_") for k in listener.stats())  # every record well-formed
        alerts = list(ctx.extra["opsids_alerts"])
        for label in injection.labels:  # every labelled misuse found, as what it is, where it happened
            assert any(a.type.value == label.type and a.organisation == label.organisation for a in alerts), label

        await ctx.alerting.tick()  # saves to the store
        stored = {a.fingerprint: a for a in (await (await AlarmStore.open(ctx.store)).load()).alarms}
        for alert in alerts:
            alarm = stored[fingerprint_of(alert)]
            assert alarm.labels["kind"] == "ids_operations" and alarm.labels["site"] == alert.organisation
            assert alarm.severity == alert.severity and alert.organisation in alarm.summary
        enumeration = next(a for a in alerts if a.type.value == "enumeration")
        assert enumeration.operator in stored[fingerprint_of(enumeration)].summary
        assert "連番照会" in stored[fingerprint_of(enumeration)].summary

        assert (await client.login(USERS[UserRole.AUDITOR])).status_code == 200
        page = (await client.get("/ids")).text
        assert "ライブセンサーは動作していません" in page and "操作パターン監視" in page  # no traffic sensor here
        for alert in alerts:
            assert f"/ids/operations/org/{alert.organisation}" in page
        assert page.count('class="alert"') == len(alerts)
        assert 'data-type="enumeration"><td>連番照会 (総当たり)</td><td class="num">1<' in page

        codes = {r["resident"] for r in records if r.get("resident")}
        shown = page + json.dumps([(a.summary, a.labels, [e.data for e in a.timeline]) for a in stored.values()],
                                  ensure_ascii=False)
        assert not [c for c in codes if c in shown]  # resident codes never get past ingestion

        site = enumeration.organisation
        alarm_page = await client.get(f"/alarms/{quote(fingerprint_of(enumeration), safe='')}")
        assert alarm_page.status_code == 200 and "連番照会" in alarm_page.text
        own = (await client.get(f"/ids/operations/org/{site}")).text
        assert own.count('class="alert"') == sum(a.organisation == site for a in alerts)
        assert enumeration.operator in own
        audit = (await client.get("/audit", params={"action": "ids."})).text
        assert site in audit  # looking at an organisation's operators is itself recorded


async def test_a_forged_operator_id_is_shown_as_text_and_other_roles_are_refused(
        small_inventory: Inventory, tmp_path: Path) -> None:
    async with chain(small_inventory, tmp_path) as (ctx, _, _records, client, _listener):
        assert any(a.operator == FORGED for a in ctx.extra["opsids_alerts"])
        await client.login(USERS[UserRole.NOC_OPERATOR])
        for path in ("/ids", "/ids/operations/org/muni-01-001", f"/ids/operations/operator/{quote(FORGED, safe='')}"):
            page = (await client.get(path)).text
            assert FORGED not in page and "&lt;script&gt;alert(&#39;ids&#39;)&lt;/script&gt;" in page, path
        other = ConsoleClient(str(client.http.base_url))
        try:
            await other.login(USERS[UserRole.CALL_CENTER])
            assert (await other.get("/ids")).status_code == 403
        finally:
            await other.close()


async def test_the_same_behaviour_again_updates_its_open_alarm(small_inventory: Inventory, tmp_path: Path) -> None:
    _, _, records = monday(small_inventory)
    alerts = [a for a in OperationsIds(small_inventory, KEY).feed(json.dumps(r) for r in records)]
    async with served(small_inventory, tmp_path) as server:
        ctx = server.app.state.console.ctx
        alarms = IdsAlarms(small_inventory)
        alarms(alerts[0])  # before alerting is attached: raised when it is
        alarms.attach(ctx.alerting)
        alarms(alerts[0])
        ids_alarms = [a for a in ctx.alerting.open_alarms() if a.labels["kind"] == "ids_operations"]
        assert [a.fingerprint for a in ids_alarms] == [fingerprint_of(alerts[0])]
        assert [e.action for e in ids_alarms[0].timeline].count("raised") == 1 and alarms.count == 2


async def test_the_sender_replays_on_the_simulated_clock_skipping_the_past_and_sending_each_record_once(
        small_inventory: Inventory, tmp_path: Path) -> None:
    def login(day: dt.date, hour: int, operator: str) -> tuple[float, dict]:
        return (dt.datetime.combine(day, dt.time(hour), JST).timestamp(),
                {"organisation": "muni-01-001", "terminal": "muni-01-001-term01", "operator": operator,
                 "action": "login_ok"})

    tuesday, wednesday = MONDAY + dt.timedelta(days=1), MONDAY + dt.timedelta(days=2)
    injection = Injection([login(MONDAY, 10, "before-start"), login(MONDAY, 14, "monday"),
                           login(tuesday, 10, "tuesday")])
    ids = OperationsIds(small_inventory, KEY)
    seen: list[str] = []
    ingest = ids.ingestor.ingest_line
    ids.ingestor.ingest_line = lambda line, where="": seen.append(json.loads(line)["operator"]) or ingest(line, where)
    listener = AuditListener(ids, lambda _alert: None, "127.0.0.1", 0, receiver_context(tmp_path))
    await listener.start()
    clock = SimClock(speed=SPEED, start=dt.datetime.combine(MONDAY, dt.time(12), JST).timestamp())
    sender = AuditSender(AuditStream(small_inventory, sites=()), clock, listener.address, sender_context(tmp_path),
                         injection)
    await sender.start()
    try:
        noon = dt.datetime.combine(wednesday, dt.time(12), JST).timestamp()
        for _ in range(1500):
            if clock.now() > noon:
                break
            await asyncio.sleep(0.02)
    finally:
        await sender.stop()
        await listener.stop()
    assert seen == ["monday", "tuesday"] and sender.stats["sent"] == 2


def test_the_pseudonym_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    first = _local_pseudonym_key(tmp_path / "opsids.key")
    assert stat.S_IMODE(os.stat(tmp_path / "opsids.key").st_mode) == 0o600
    assert _local_pseudonym_key(tmp_path / "opsids.key") == first
    assert first.keys()[1]["local"] != _local_pseudonym_key(tmp_path / "other.key").keys()[1]["local"]


def test_the_main_job_points_the_simulation_audit_stream_at_its_listener(tmp_path: Path) -> None:
    options = SimulationOptions(None, 1161, 8443, True, 1.0, tmp_path, ("127.0.0.1", 16100))
    argv = options.argv(10162, 10514, 16514)
    parser = argparse.ArgumentParser()
    simnet_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv[argv.index("simnet"):])
    assert args.audit_target == ("127.0.0.1", 16514)
    assert "--audit-target" not in options.argv(10162, 10514)


@pytest.fixture(autouse=True)
def _no_key_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUKIMON_OPSIDS_KEY", raising=False)
