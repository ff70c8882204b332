"""Outage: the PostgreSQL store stopped for ~30 s while the monitor judges — it keeps judging and catches up.

A real private PostgreSQL (its own, not the session's: this test stops it), a real
Mosquitto, the state engine fed poll results every half second as the collectors
would, and its judgement published by ``StateBus``. While the database is down,
lines are cut and mended: each condition must still reach the bus and the
engine's listeners at once; the store's writes wait, in order, and land when the
database is back — every state, every transition once, every condition with its
final status. One log line when writes start failing, one when they recover.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections import Counter
from pathlib import Path

import aiomqtt
import pytest

from collectors.outputs.mqtt import MqttPublisher
from monitor.inventory.model import Inventory
from monitor.state.bus import StateBus
from monitor.state.engine import Changes, StateEngine
from monitor.state.health import HealthSettings
from monitor.state.model import ConditionKind, ConditionStatus, SubjectKind
from monitor.state.settings import MonitorSettings
from monitor.store import Store
from tests.postgres import postgres_server
from tests.servers import mosquitto_server
from tests.test_state_judge import all_answer, behind

JST = dt.timezone(dt.timedelta(hours=9))
WEEKDAY_10 = dt.datetime(2026, 12, 2, 10, 0, tzinfo=JST).timestamp()  # inside the operating window
SETTINGS = MonitorSettings(health=HealthSettings(down_after=2, up_after=1), settle=0.2, tick=1.0, hold_max=5.0,
                           checkpoint_every=2.0)
OUTAGE_S = 30.0
REDUNDANCY = "redundancy_lost:muni-01-001"
UNREACHABLE = "site_unreachable:muni-01-002"


async def wait_until(predicate, timeout: float, what: str) -> float:  # noqa: ANN001
    """Seconds until ``predicate()`` held; fails after ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)
    return time.monotonic() - start


async def test_database_outage_judging_goes_on_and_the_store_catches_up(
        small_inventory: Inventory, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="monitor")
    offset = WEEKDAY_10 - time.time()
    silent: set[str] = set()
    seen: list[Changes] = []  # what the engine handed its listeners (the console's inbox reads the same)
    on_bus: list[tuple[str, dict | None]] = []

    async def feed() -> None:  # the collectors: every device polled twice a second
        while True:
            all_answer(engine, time.time(), silent)
            await asyncio.sleep(0.5)

    async def listen(port: int, subscribed: asyncio.Event) -> None:
        async with aiomqtt.Client("127.0.0.1", port, identifier="test-bus-listener") as client:
            await client.subscribe("jukimon/monitor/condition/#", qos=1)
            await client.subscribe("jukimon/monitor/cleared/#", qos=1)
            subscribed.set()
            async for message in client.messages:
                payload = bytes(message.payload)  # type: ignore[arg-type]
                on_bus.append((str(message.topic), json.loads(payload) if payload else None))

    def raised_on_bus(fingerprint: str) -> bool:
        return any(t == f"jukimon/monitor/condition/{fingerprint}" and body for t, body in on_bus)

    def cleared_on_bus(fingerprint: str) -> bool:
        return any(t == f"jukimon/monitor/cleared/{fingerprint}" for t, _ in on_bus)

    with postgres_server() as pg, mosquitto_server(tmp_path) as broker:
        store = await Store.open(pg.url)
        publisher = MqttPublisher(broker.host, broker.port, client_id="test-monitor")
        engine = StateEngine(small_inventory, SETTINGS, store=store, calendar_clock=lambda: time.time() + offset)
        engine.listeners += [StateBus(publisher), seen.append]
        subscribed = asyncio.Event()
        tasks = [asyncio.create_task(listen(broker.port, subscribed))]
        await asyncio.wait_for(subscribed.wait(), 10)
        await publisher.start()
        await engine.start()
        tasks.append(asyncio.create_task(feed()))
        try:
            await wait_until(lambda: len(engine.states) > 100 and not engine._pending, 20, "first judgement stored")

            await asyncio.to_thread(pg.stop)
            stopped = time.monotonic()
            silent |= {"muni-01-001-rt1"}  # one of two lines of 札幌市's neighbour: redundancy lost
            took = await wait_until(lambda: raised_on_bus(REDUNDANCY), 10, "redundancy lost on the bus")
            assert took < 5, f"condition reached the bus {took:.1f}s after the cut"
            silent |= behind(small_inventory, {"muni-01-002-rt1", "muni-01-002-rt2"})  # a whole site cut off
            await wait_until(lambda: raised_on_bus(UNREACHABLE), 10, "site unreachable on the bus")
            silent -= {"muni-01-001-rt1"}  # the line is mended while the database is still away
            await wait_until(lambda: cleared_on_bus(REDUNDANCY), 10, "redundancy cleared on the bus")
            assert store.failing and engine._task is not None and not engine._task.done()
            assert {c.fingerprint for c in engine.active()} >= {UNREACHABLE}
            await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
            backlog = len(engine._pending)
            assert backlog >= 3, "the judgements during the outage wait for the database"

            await asyncio.to_thread(pg.start)
            caught_up = await wait_until(lambda: not engine._pending and not store.failing, 20, "backlog written")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await engine.stop()
            await publisher.stop()

        # Everything the engine decided is in the database, once, in order.
        judged = [t for changes in seen for t in changes.transitions]
        stored = list(reversed(await store.transitions(limit=100_000)))  # oldest first
        assert [(t.subject, t.old, t.new, t.at) for t in stored] == [(t.subject, t.old, t.new, t.at) for t in judged]
        assert len(judged) > 10
        rows = {c.fingerprint: c for c in await store.load_conditions(active_only=False)}
        assert rows[REDUNDANCY].status is ConditionStatus.CLEARED and rows[REDUNDANCY].cleared is not None
        assert rows[UNREACHABLE].status is ConditionStatus.ACTIVE and rows[UNREACHABLE].kind is \
            ConditionKind.SITE_UNREACHABLE
        assert {c.fingerprint for c in await store.load_conditions()} == set(engine.conditions)
        assert {(r.kind, r.subject): r for r in await store.load_states()} == engine.states
        assert (SubjectKind.SITE, "muni-01-002") in engine.states
        await store.close()

    messages = Counter(r.getMessage() for r in caplog.records if r.name == "monitor.store")
    assert messages["store writes failing, keeping them to retry"] == 1
    assert messages["store writes recovered"] == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "no crash, no exception logged"
    print(f"\noutage {OUTAGE_S:.0f}s: backlog {backlog} judgements, written {caught_up:.1f}s after the restart; "
          f"{len(judged)} transitions stored once")
