"""MqttPublisher against a private Mosquitto: topics, QoS, retain, reconnect after a broker restart, queue bound."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Iterator

import pytest

from collectors.outputs.mqtt import MqttPublisher, route, topic_level
from monitor.envelope import Event, EventType, Origin, Sample, Severity, decode
from tests.servers import Mosquitto, free_port, mosquitto_server

aiomqtt = pytest.importorskip("aiomqtt")

CS1 = Origin(device="muni-01-002-cs1", site="muni-01-002", prefecture="01", tier="municipality", role="cs")
FW = Origin(device="muni-01-002-fw", site="muni-01-002", prefecture="01", tier="municipality", role="fw")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with mosquitto_server(tmp_path) as server:
        yield server


def sample(origin: Origin = CS1, ts: float = 1_700_000_000.0, value: float = 1.0) -> Sample:
    return Sample("interface", ts, origin, {"in_bps": value, "oper_status": 1}, {"if_index": "1"})


def poll(origin: Origin, ok: bool, ts: float = 1_700_000_000.0) -> Event:
    return Event(EventType.POLL, ts, "collector.snmp", origin, body={"reachable": ok, "rtt_ms": 3.5})


def syslog(origin: Origin, message: str, ts: float = 1_700_000_000.0) -> Event:
    return Event(EventType.SYSLOG, ts, "collector.syslog", origin, Severity.WARNING, message)


async def wait_for(predicate, timeout: float = 10.0, what: str = "condition") -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


class Listener:
    """A test subscriber (aiomqtt) that records every message it gets."""

    def __init__(self, broker: Mosquitto, topic: str = "jukimon/#") -> None:
        self.broker, self.topic = broker, topic
        self.messages: list = []
        self._ready = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> "Listener":
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._ready.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        async with aiomqtt.Client(self.broker.host, self.broker.port,
                                  protocol=aiomqtt.ProtocolVersion.V5) as client:
            await client.subscribe(self.topic, qos=1)
            self._ready.set()
            async for message in client.messages:
                self.messages.append(message)

    def on(self, topic: str) -> list:
        return [m for m in self.messages if m.topic.value == topic]

    async def wait(self, count: int, timeout: float = 10.0) -> None:
        await wait_for(lambda: len(self.messages) >= count, timeout, f"{count} messages on {self.topic}")


def test_topic_levels_are_sanitised() -> None:
    assert topic_level(None) == "_" and topic_level("") == "_"
    assert topic_level("a/b+c#d\0e") == "a_b_c_d_e"
    assert topic_level("$SYS") == "_SYS"
    assert topic_level("札幌市") == "札幌市"
    odd = Origin(device="dev/1", site="+", tier=None)
    assert route(sample(odd))[0] == "jukimon/_/_/dev_1/sample/interface"
    assert route(Event(EventType.TRAP, 0.0, "collector.trap"))[0] == "jukimon/_/_/_/event/trap"
    poll_sample = Sample("poll", 0.0, CS1, {"ok": True, "duration_ms": 4.2}, {"probe": "snmp"})
    assert route(poll_sample) == ("jukimon/municipality/muni-01-002/muni-01-002-cs1/sample/poll", 0, False)
    assert route(poll(CS1, True)) == ("jukimon/municipality/muni-01-002/muni-01-002-cs1/state", 1, True)
    assert route(sample(CS1)) == ("jukimon/municipality/muni-01-002/muni-01-002-cs1/sample/interface", 0, False)
    assert route(syslog(FW, "x")) == ("jukimon/municipality/muni-01-002/muni-01-002-fw/event/syslog", 1, False)
    with pytest.raises(ValueError):
        MqttPublisher("127.0.0.1", 1, client_id="x", topic_prefix="a/#")


async def test_topics_qos_and_retain(broker: Mosquitto) -> None:
    publisher = MqttPublisher(broker.host, broker.port, client_id="test-pub")
    await publisher.start()
    try:
        async with Listener(broker) as live:
            records = [sample(CS1, value=42.5), syslog(FW, "deny tcp"), poll(CS1, True), poll(FW, False),
                       sample(Origin(device="odd/dev", site="+"), value=1.0)]
            for record in records:
                assert publisher.publish(record)
            await live.wait(len(records))
        base = "jukimon/municipality/muni-01-002"
        (s,) = live.on(f"{base}/muni-01-002-cs1/sample/interface")
        assert s.qos == 0 and not s.retain and decode(s.payload) == records[0]
        (e,) = live.on(f"{base}/muni-01-002-fw/event/syslog")
        assert e.qos == 1 and decode(e.payload) == records[1]
        (st,) = live.on(f"{base}/muni-01-002-cs1/state")
        assert st.qos == 1 and decode(st.payload) == records[2]
        assert live.on("jukimon/_/_/odd_dev/sample/interface")
        assert not live.on(f"{base}/muni-01-002-cs1/event/poll")  # poll outcomes go to .../state only

        # A console that connects later gets the latest state of each device (retained), and nothing else.
        publisher.publish(poll(CS1, False, ts=1_700_000_010.0))
        assert await publisher.drain()
        async with Listener(broker) as late:
            await late.wait(2)
            await asyncio.sleep(0.2)
        assert {m.topic.value for m in late.messages} == {f"{base}/muni-01-002-cs1/state", f"{base}/muni-01-002-fw/state"}
        assert all(m.retain and m.qos == 1 for m in late.messages)
        latest = decode(late.on(f"{base}/muni-01-002-cs1/state")[0].payload)
        assert isinstance(latest, Event) and latest.body["reachable"] is False and latest.ts == 1_700_000_010.0
        stats = publisher.stats()
        assert stats["published"] == 6 and stats["dropped"] == 0 and stats["connected"]
    finally:
        await publisher.stop()


async def test_reconnects_after_broker_restart(broker: Mosquitto, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="collectors.outputs.mqtt")
    publisher = MqttPublisher(broker.host, broker.port, client_id="restart-pub", backoff_initial=0.1,
                              backoff_max=0.5, ack_timeout=2.0)
    await publisher.start()
    try:
        async with Listener(broker) as before:
            publisher.publish(syslog(FW, "before"))
            await before.wait(1)
        await asyncio.to_thread(broker.stop)
        # During the outage: records queue up; the publisher notices on its next publish.
        for i in range(5):
            publisher.publish(syslog(FW, f"during {i}"))
        publisher.publish(poll(CS1, False, ts=1_700_000_100.0))
        await wait_for(lambda: not publisher.stats()["connected"], what="disconnect noticed")
        await asyncio.sleep(1.0)  # several reconnect attempts against a closed port
        assert publisher.stats()["queued"] > 0
        await asyncio.to_thread(broker.start)  # same port, fresh broker (no persistence)
        await wait_for(lambda: publisher.stats()["connected"] and not publisher.stats()["queued"], 10,
                       "reconnect and flush")
        assert await publisher.drain()
        # The state published during the outage reached the new broker (retained there now).
        async with Listener(broker, "jukimon/+/+/+/state") as late:
            await late.wait(1)
        assert decode(late.messages[0].payload).ts == 1_700_000_100.0
        # And records published after the reconnect arrive live.
        async with Listener(broker) as after:
            publisher.publish(syslog(FW, "after"))
            publisher.publish(sample(CS1, value=7.0))
            await after.wait(3)  # the retained state, then the two new records
        fw_events = after.on("jukimon/municipality/muni-01-002/muni-01-002-fw/event/syslog")
        assert [decode(m.payload).message for m in fw_events] == ["after"]
        assert after.on("jukimon/municipality/muni-01-002/muni-01-002-cs1/sample/interface")
        stats = publisher.stats()
        assert stats["connects"] >= 2 and stats["failures"] >= 1
        # One log line for the loss and one for the recovery, not one per failed attempt.
        messages = [r.getMessage() for r in caplog.records]
        assert messages.count("mqtt publisher disconnected, queueing") == 1
        assert messages.count("mqtt publisher reconnected") == 1
    finally:
        await publisher.stop()


async def test_qos1_order_kept_across_broker_restart(tmp_path: Path) -> None:
    """Events published while the broker is away all arrive after the restart, in order, once.

    The listener holds a persistent session on a broker with persistence on, so it gets every QoS 1
    message the publisher sent after the restart, whichever of the two reconnected first.
    """
    server = Mosquitto(tmp_path / "persistent", persistence=True)
    server.start()
    publisher = MqttPublisher(server.host, server.port, client_id="order-pub", backoff_initial=0.05,
                              backoff_max=0.2, ack_timeout=2.0)
    got: list[str] = []

    async def listen(ready: asyncio.Event) -> None:
        async with aiomqtt.Client(server.host, server.port, identifier="order-listener", clean_session=False) as c:
            await c.subscribe("jukimon/+/+/+/event/#", qos=1)
            ready.set()
            async for message in c.messages:
                got.append(decode(message.payload).message)

    try:
        ready = asyncio.Event()
        listener = asyncio.create_task(listen(ready))
        await asyncio.wait_for(ready.wait(), 10)
        await publisher.start()
        publisher.publish(syslog(FW, "warm-up"))
        await wait_for(lambda: got == ["warm-up"], what="warm-up")
        await asyncio.to_thread(server.stop)
        await asyncio.gather(listener, return_exceptions=True)  # its connection dropped with the broker
        for i in range(200):
            publisher.publish(syslog(FW, f"m{i}"))
        await wait_for(lambda: not publisher.stats()["connected"], what="disconnect noticed")
        await asyncio.to_thread(server.start)
        await wait_for(lambda: publisher.stats()["connected"], what="publisher reconnect")
        publisher.publish(syslog(FW, "end"))
        assert await publisher.drain()
        ready = asyncio.Event()
        listener = asyncio.create_task(listen(ready))  # same client id, session kept by the broker
        await wait_for(lambda: "end" in got, 10, "end")
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        assert got == ["warm-up"] + [f"m{i}" for i in range(200)] + ["end"]
    finally:
        await publisher.stop()
        server.stop()


async def test_bounded_queue_drops_oldest_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="collectors.outputs.mqtt")
    publisher = MqttPublisher("127.0.0.1", free_port(), client_id="nobroker", max_queue=10,
                              backoff_initial=0.05, backoff_max=0.1)
    await publisher.start()
    try:
        for i in range(25):
            assert publisher.publish(syslog(FW, f"m{i}"))
        await asyncio.sleep(0.3)  # a few failed connection attempts
        stats = publisher.stats()
        assert stats["dropped"] == 15 and stats["queued"] == 10 and not stats["connected"]
        assert decode(publisher._queue[0][1]).message == "m15"
        messages = [r.getMessage() for r in caplog.records]
        assert messages.count("mqtt queue full, dropping oldest records") == 1
        assert messages.count("mqtt publisher disconnected, queueing") == 1
        # A record that cannot be encoded is refused with a reason, not raised to the producer.
        bad = Event(EventType.ALERT, 0.0, "ids.traffic", body={"x": object()})
        assert not publisher.publish(bad)
        assert publisher.stats()["rejected"] == 1
    finally:
        await publisher.stop(timeout=0.2)
