"""Outage: the MQTT broker restarts — the project's clients are back within 5 s and no QoS 1 message is lost.

One private Mosquitto with persistence on (sessions, subscriptions and queued
messages survive its restart, as a production broker is configured). The
clients are the project's own: the collectors' ``MqttPublisher`` (events, and the
monitor's conditions through ``StateBus``), the alerting outbox's MQTT receiver,
and the report cascade's receipt subscriber. A persistent subscriber (MQTT v5,
clean start off, session expiry) stands for any other consumer — a second NOC
site, the monitor on another host: it is away while messages are published and
the broker restarts, and must get every one of them when it comes back.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator, Callable, Iterator

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from alerting.cascade import open_cascade
from alerting.notify import DurableOutbox, OutboxStatus
from alerting.notify.mqtt import MqttReceiver
from collectors.outputs.mqtt import MqttPublisher
from monitor.inventory.model import Inventory
from monitor.state.bus import StateBus
from monitor.state.engine import Changes
from monitor.state.model import Condition, ConditionKind
from monitor.store import Store
from tests.mqtt_messages import gather_messages
from tests.servers import Mosquitto, require
from tests.test_cascade_fixtures import SimClock, cascade_settings, smtp_sink
from tests.test_cascade_mqtt import DRILL, FIRST, reports
from tests.test_notify_outbox import note
from tests.test_outputs_mqtt import CS1, syslog

RECONNECT_LIMIT_S = 5.0
DOWN_S = 6.0  # long enough for the clients' backoff to reach its cap


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    from monitor.localservers import MOSQUITTO
    require(MOSQUITTO, "mosquitto")
    server = Mosquitto(tmp_path / "mosquitto", persistence=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def session_expiry(seconds: int = 3600) -> Properties:
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = seconds
    return properties


@asynccontextmanager
async def persistent_client(broker: Mosquitto, client_id: str) -> AsyncIterator[aiomqtt.Client]:
    """A subscriber whose session (subscriptions, queued QoS 1 messages) the broker keeps while it is away."""
    async with aiomqtt.Client(broker.host, broker.port, identifier=client_id, protocol=aiomqtt.ProtocolVersion.V5,
                              clean_start=False, properties=session_expiry()) as client:
        yield client


async def seconds_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, f"timed out after {timeout}s waiting for {what}"
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def restart(broker: Mosquitto, down: float = DOWN_S) -> None:
    """Stop the broker (it saves its persistence file), leave it down ``down`` seconds, start it again."""
    await asyncio.to_thread(broker.stop)
    await asyncio.sleep(down)
    await asyncio.to_thread(broker.start)


def condition(i: int) -> Condition:
    return Condition(f"device_down:muni-01-{i:03d}-cs1", ConditionKind.DEVICE_DOWN, f"muni-01-{i:03d}-cs1",
                     "critical", 1_700_000_000.0 + i, f"CS {i} 応答なし")


async def test_publisher_and_state_bus_reconnect_and_lose_no_event_or_condition(broker: Mosquitto) -> None:
    async with persistent_client(broker, "noc-site-b") as site_b:  # subscribes, then goes away
        await site_b.subscribe("jukimon/+/+/+/event/#", qos=1)
        await site_b.subscribe("jukimon/monitor/condition/#", qos=1)
    publisher = MqttPublisher(broker.host, broker.port, client_id="jukimon-collectors-test")
    bus = StateBus(publisher)
    await publisher.start()
    try:
        await seconds_until(lambda: publisher.stats()["connected"], 10, "first connection")
        for i in range(100):
            publisher.publish(syslog(CS1, f"event {i:03d}"))
        bus(Changes(raised=[condition(i) for i in range(5)]))
        assert await publisher.drain(10)
        await asyncio.to_thread(broker.stop)
        for i in range(100, 200):  # queued by the publisher while the broker is away
            publisher.publish(syslog(CS1, f"event {i:03d}"))
        bus(Changes(raised=[condition(i) for i in range(5, 10)]))
        await asyncio.sleep(DOWN_S)
        await asyncio.to_thread(broker.start)
        reconnect_s = await seconds_until(lambda: publisher.stats()["connects"] >= 2, 15, "reconnection")
        for i in range(200, 300):
            publisher.publish(syslog(CS1, f"event {i:03d}"))
        assert await publisher.drain(10)
        stats = publisher.stats()
    finally:
        await publisher.stop()
    assert reconnect_s < RECONNECT_LIMIT_S, f"publisher reconnected {reconnect_s:.1f}s after the broker was back"
    assert stats["dropped"] == 0 and stats["rejected"] == 0

    await asyncio.to_thread(broker.restart)  # and once more while site B is still away: its queue is persisted
    async with persistent_client(broker, "noc-site-b") as site_b:  # no new subscribe: the session has them
        got = await gather_messages(site_b, lambda got: len({bytes(m.payload) for m in got}) >= 310)
    events = [json.loads(bytes(m.payload))["message"] for m in got if "/event/" in str(m.topic)]  # type: ignore[arg-type]
    conditions = {str(m.topic).rsplit("/", 1)[1] for m in got if "/monitor/condition/" in str(m.topic)}
    assert sorted(set(events)) == [f"event {i:03d}" for i in range(300)], "every QoS 1 event arrives"
    assert events == sorted(events), "in the order published"
    assert conditions == {condition(i).fingerprint for i in range(10)}
    print(f"\npublisher back {reconnect_s:.2f}s after the broker ({DOWN_S:.0f}s down); site B got {len(set(events))}"
          f"/300 events ({len(events) - len(set(events))} duplicates) and {len(conditions)}/10 conditions")


async def test_notifications_over_mqtt_survive_a_broker_restart(broker: Mosquitto, tmp_path: Path) -> None:
    async with persistent_client(broker, "noc-bot") as bot:
        await bot.subscribe("noc/alarms", qos=1)
    notes = [note(i, receiver="noc-bus") for i in range(1, 7)]
    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path}/jukimon.db") as store:
        outbox = DurableOutbox(store, {"noc-bus": MqttReceiver(broker.host, broker.port, "noc/alarms")})
        await outbox.start()  # the main job's outbox settings (backoff from 2 s)

        async def sent() -> set[str]:
            return {e.notification.id for e in await outbox.entries() if e.status is OutboxStatus.SENT}

        try:
            for n in notes[:2]:
                await outbox.enqueue(n)
            await asyncio.to_thread(broker.stop)
            for n in notes[2:4]:  # the receiver keeps asking (then the outbox would retry)
                await outbox.enqueue(n)
            await asyncio.sleep(DOWN_S)
            await asyncio.to_thread(broker.start)
            back = time.monotonic()
            for n in notes[4:]:
                await outbox.enqueue(n)
            first_s = None  # the first one that waited: how soon the receiver is through again
            while await sent() != {n.id for n in notes}:
                if first_s is None and notes[2].id in await sent():
                    first_s = time.monotonic() - back
                assert time.monotonic() - back < 30, f"only {len(await sent())} sent"
                await asyncio.sleep(0.05)
            delivered_s = time.monotonic() - back
            first_s = delivered_s if first_s is None else first_s
        finally:
            await outbox.stop()
    await asyncio.to_thread(broker.restart)
    async with persistent_client(broker, "noc-bot") as bot:
        got = await gather_messages(bot, lambda got: len({json.loads(bytes(m.payload))["id"] for m in got}) >= 6)
    ids = Counter(json.loads(bytes(m.payload))["id"] for m in got)  # type: ignore[arg-type]
    assert set(ids) == {n.id for n in notes}
    assert first_s < RECONNECT_LIMIT_S, f"the first waiting notification sent {first_s:.1f}s after the broker was back"
    print(f"\nnotifications: the first waiting one sent {first_s:.2f}s, all 6 {delivered_s:.2f}s after the broker was "
          f"back (one connection each, in order); the bot "
          f"got each ({sum(ids.values()) - len(ids)} duplicates)")


async def test_cascade_receipts_survive_broker_and_monitor_restarts(broker: Mosquitto, tmp_path: Path,
                                                                   small_inventory: Inventory) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/jukimon.db"
    with smtp_sink() as sink:
        settings = cascade_settings(tmp_path, sink.port)
        async with await Store.open(url) as store:
            cascade = await open_cascade(store, small_inventory, settings, mqtt=(broker.host, broker.port),
                                         clock=SimClock())
            channel = cascade.channels[0]
            try:
                async with aiomqtt.Client(broker.host, broker.port, identifier="recipients") as recipients:
                    await recipients.subscribe("jukimon/cascade/+/report", qos=1)
                    await cascade.issue(DRILL, FIRST)
                    received = {org: json.loads(p) for org, p in (await reports(recipients, 14)).items()}

                await restart(broker)
                back = time.monotonic()
                reconnect_s = await seconds_until(channel.connected.is_set, 15, "cascade reconnection")
                otaru = received["muni-01-002"]
                async with aiomqtt.Client(broker.host, broker.port, identifier="otaru") as city:
                    await city.publish(otaru["ack_topic"], json.dumps({"token": otaru["token"], "by": "小樽市"}), qos=1)
                await seconds_until(lambda: cascade.tracker.counts(FIRST.id).confirmed == 1, 10, "receipt")
                receipt_s = time.monotonic() - back
            finally:
                await cascade.close()  # the monitor goes away; its session stays with the broker

            later = [org for org in received if org.startswith("muni-") and org != "muni-01-002"][:3]
            async with aiomqtt.Client(broker.host, broker.port, identifier="cities") as cities:
                for org in later:
                    await cities.publish(received[org]["ack_topic"], json.dumps({"token": received[org]["token"]}),
                                         qos=1)
            await asyncio.to_thread(broker.restart)  # while the monitor is away too
            cascade = await open_cascade(store, small_inventory, settings, mqtt=(broker.host, broker.port),
                                         clock=SimClock())
            try:
                await seconds_until(lambda: cascade.tracker.counts(FIRST.id).confirmed == 1 + len(later), 10,
                                    "receipts sent while the monitor was away")
                assert {org for org in received if cascade.tracker.delivery(FIRST.id, org).confirmed_via == "mqtt"} \
                    == {"muni-01-002", *later}
            finally:
                await cascade.close()
    assert reconnect_s < RECONNECT_LIMIT_S and receipt_s < RECONNECT_LIMIT_S + 1
    print(f"\ncascade: reconnected {reconnect_s:.2f}s after the broker was back, a receipt confirmed after "
          f"{receipt_s:.2f}s; {len(later)} receipts sent while it was away confirmed after its restart")
