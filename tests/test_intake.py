"""The monitor's intake from the bus against a private Mosquitto: what collectors publish reaches the sinks."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Iterator

import pytest

from collectors.outputs.mqtt import MqttPublisher
from monitor.envelope import EnvelopeError, Event, EventType, Origin, Sample, Severity
from monitor.intake import BusIntake, parse
from monitor.mqtt_tls import MqttTls, client_context
from monitor.pki import init
from tests.servers import MOSQUITTO, Mosquitto, mosquitto_server, require
from tests.test_outputs_mqtt import CS1, FW, wait_for

aiomqtt = pytest.importorskip("aiomqtt")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with mosquitto_server(tmp_path) as server:
        yield server


def poll_samples(origin: Origin, ok: bool, ts: float) -> list[Sample]:
    """What CollectorService emits for one SNMP poll: the poll outcome and a measurement."""
    return [Sample("poll", ts, origin, {"ok": ok, "duration_ms": 3.2}, {"probe": "snmp"}),
            Sample("interface", ts, origin, {"in_bps": 1200.0, "oper_status": 1}, {"if_index": "1"})]


def trap(origin: Origin, ts: float) -> Event:
    return Event(EventType.TRAP, ts, "collector.trap", origin, Severity.WARNING, "linkDown",
                 body={"trap": "linkDown", "if_index": 2})


class Recorder:
    def __init__(self) -> None:
        self.records: list[Sample | Event] = []

    def __call__(self, records: list[Sample | Event]) -> None:
        self.records.extend(records)


def test_parse_rejects_what_the_topic_does_not_promise() -> None:
    with pytest.raises(EnvelopeError, match="JSON array"):
        parse("jukimon/a/b/c/samples", b'{"kind": "sample"}')
    event = json.dumps(trap(CS1, 1.0).to_json()).encode()
    with pytest.raises(EnvelopeError, match="samples only"):
        parse("jukimon/a/b/c/samples", b"[" + event + b"]")
    with pytest.raises(EnvelopeError, match="not JSON"):
        parse("jukimon/a/b/c/event/trap", b"\xff")


async def test_polls_and_events_reach_every_sink_and_bad_payloads_are_counted_once(
        broker: Mosquitto, caplog: pytest.LogCaptureFixture) -> None:
    first, second = Recorder(), Recorder()

    def broken(records: list[Sample | Event]) -> None:
        raise RuntimeError("sink bug")

    intake = BusIntake(broker.host, broker.port, [first, broken, second], client_id="test-monitor")
    publisher = MqttPublisher(broker.host, broker.port, client_id="test-collector")
    await publisher.start()
    # Retained before the monitor subscribes: an old poll outcome, not replayed to it.
    publisher.publish(Event(EventType.POLL, time.time() - 60, "collector.snmp", CS1, body={"reachable": True}))
    assert await publisher.drain(10)
    await intake.start()
    try:
        await asyncio.wait_for(intake.connected.wait(), 10)
        ts = time.time()
        publisher.publish_poll(poll_samples(CS1, True, ts))
        publisher.publish(trap(FW, ts))
        publisher.publish(Event(EventType.POLL, ts, "collector.snmp", FW, Severity.ERROR, "not answering",
                                body={"reachable": False}))
        caplog.set_level(logging.WARNING, logger="monitor.intake")
        for _ in range(2):  # the same fault twice: counted twice, logged once
            publisher.publish_message("municipality/muni-01-002/muni-01-002-fw/event/trap", b"not json")
            publisher.publish_message("municipality/muni-01-002/muni-01-002-cs1/samples", b'{"kind": "x"}')
        await wait_for(lambda: intake.counts["messages"] >= 7, what="7 messages")
    finally:
        await publisher.stop()
        await intake.stop()
    assert first.records == second.records  # a broken sink between them changes nothing
    kinds = sorted((type(r).__name__, getattr(r, "measurement", None) or str(getattr(r, "event_type", "")))
                   for r in first.records)
    assert kinds == [("Event", "poll"), ("Event", "trap"), ("Sample", "interface"), ("Sample", "poll")]
    assert [r.origin for r in first.records if isinstance(r, Event) and r.event_type is EventType.POLL] == [FW]
    assert next(r for r in first.records if isinstance(r, Sample) and r.measurement == "poll").origin == CS1
    assert intake.counts["malformed"] == 4 and len(intake.malformed) == 2
    warnings = [r for r in caplog.records if r.getMessage() == "malformed message from the bus skipped"]
    assert len(warnings) == 2


async def test_events_published_while_the_monitor_is_away_arrive_when_it_is_back(broker: Mosquitto) -> None:
    """Persistent session: the broker keeps QoS-1 events for the monitor's client id across a reconnect."""
    seen = Recorder()
    intake = BusIntake(broker.host, broker.port, [seen], client_id="test-monitor-persistent")
    await intake.start()
    await asyncio.wait_for(intake.connected.wait(), 10)
    await intake.stop()  # the monitor goes away (a restart, a network cut)

    publisher = MqttPublisher(broker.host, broker.port, client_id="test-collector")
    await publisher.start()
    publisher.publish(trap(FW, time.time()))
    publisher.publish_poll(poll_samples(CS1, True, time.time()))  # QoS 0: not kept for an absent subscriber
    assert await publisher.drain(10)
    await publisher.stop()

    back = BusIntake(broker.host, broker.port, [seen], client_id="test-monitor-persistent")
    await back.start()
    try:
        await wait_for(lambda: any(isinstance(r, Event) for r in seen.records), what="the queued trap")
        await asyncio.sleep(0.3)
    finally:
        await back.stop()
    assert [r.event_type for r in seen.records] == [EventType.TRAP]


async def test_reconnects_after_a_broker_restart_and_asks_collectors_to_recheck(broker: Mosquitto) -> None:
    seen = Recorder()
    publisher = MqttPublisher(broker.host, broker.port, client_id="test-monitor-out")
    intake = BusIntake(broker.host, broker.port, [seen], client_id="test-monitor", publisher=publisher,
                       backoff_max=0.5)
    await publisher.start()
    await intake.start()
    try:
        await asyncio.wait_for(intake.connected.wait(), 10)
        await asyncio.to_thread(broker.stop)
        await wait_for(lambda: not intake.connected.is_set(), what="the intake to notice the outage")
        await asyncio.to_thread(broker.start)
        await wait_for(lambda: intake.connected.is_set() and intake.counts["connects"] == 2, 20, "a reconnect")

        async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as collector:
            await collector.subscribe("jukimon/control/recheck", qos=1)
            intake.recheck("muni-01-002-cs1")  # the engine suspects the device: the collector should ask it now
            message = await asyncio.wait_for(anext(collector.messages), 10)
            assert json.loads(message.payload) == {"device": "muni-01-002-cs1"} and message.qos == 1
            await collector.publish("jukimon/municipality/muni-01-002/muni-01-002-fw/event/trap",
                                    json.dumps(trap(FW, time.time()).to_json()), qos=1)
        await wait_for(lambda: seen.records, what="a trap after the restart")
    finally:
        await intake.stop()
        await publisher.stop()
    assert seen.records[0].event_type is EventType.TRAP


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[Mosquitto, Path]]:
    """Mosquitto with the shipped TLS configuration and ACL, and the `jukimon pki init` directory."""
    require(MOSQUITTO, "mosquitto")
    pki = tmp_path / "pki"
    init(pki)
    server = Mosquitto(tmp_path / "mosquitto-tls", tls_pki=pki)
    server.start()
    try:
        yield server, pki
    finally:
        server.stop()


async def test_over_tls_the_monitor_certificate_reads_the_collectors_and_sends_rechecks(
        tls_broker: tuple[Mosquitto, Path]) -> None:
    broker, pki = tls_broker
    monitor_tls, collector_tls = (MqttTls(pki / "ca.crt", pki / f"{name}.crt", pki / f"{name}.key")
                                  for name in ("monitor", "collector"))
    seen = Recorder()
    out = MqttPublisher(broker.host, broker.port, client_id="test-monitor-out", tls=client_context(monitor_tls))
    intake = BusIntake(broker.host, broker.port, [seen], client_id="test-monitor", publisher=out,
                       tls=client_context(monitor_tls))
    collector = MqttPublisher(broker.host, broker.port, client_id="test-collector", tls=client_context(collector_tls))
    national = Origin(device="national-fw", site="national", tier="national", role="fw")
    for client in (out, intake, collector):
        await client.start()
    try:
        await asyncio.wait_for(intake.connected.wait(), 10)
        async with aiomqtt.Client(broker.host, broker.port, identifier="test-collector-control",
                                  tls_context=client_context(collector_tls),
                                  protocol=aiomqtt.ProtocolVersion.V5) as control:
            await control.subscribe("jukimon/control/recheck", qos=1)
            collector.publish_poll(poll_samples(national, False, time.time()))
            collector.publish(trap(national, time.time()))
            await wait_for(lambda: len(seen.records) == 3, what="the collector's poll and trap")
            intake.recheck("national-fw")
            message = await asyncio.wait_for(anext(control.messages), 10)
            assert json.loads(message.payload) == {"device": "national-fw"}
    finally:
        for client in (collector, intake, out):
            await client.stop()
    assert {r.origin.device for r in seen.records} == {"national-fw"} and intake.counts["malformed"] == 0
