"""The bus over TLS: a private Mosquitto running the shipped deploy/mosquitto configuration and ACL.

Certificates from `jukimon pki init`; each component connects with its own and the broker's ACL
(user = certificate CN) decides what it may publish and read. A refused publish is checked by
absence: the same connection (or, once the refused one was acknowledged, another) then sends an
allowed sentinel, and the subscriber sees the sentinel alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest

from alerting.cascade import Cascade, open_cascade
from alerting.model import Notification
from alerting.notify.mqtt import MqttReceiver
from alerting.notify.receivers import DeliveryError
from collectors.outputs.mqtt import MqttPublisher
from collectors.shard.membership import Membership
from monitor.cli import main
from monitor.envelope import Event, EventType, Origin, Severity, decode
from monitor.inventory import Inventory
from monitor.mqtt_tls import MqttTls
from monitor.pki import init, issue
from monitor.store import Store
from tests.servers import MOSQUITTO, Mosquitto, require
from tests.test_cascade_fixtures import SimClock, cascade_settings, smtp_sink
from tests.test_cascade_mqtt import DRILL, FIRST

aiomqtt = pytest.importorskip("aiomqtt")

SITE = "jukimon/municipality/muni-01-002"
SAMPLES = f"{SITE}/muni-01-002-cs1/samples"
FW = Origin(device="muni-01-002-fw", site="muni-01-002", prefecture="01", tier="municipality", role="fw")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    init(directory)
    return directory


@pytest.fixture(scope="module")
def broker(pki: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    require(MOSQUITTO, "mosquitto")
    server = Mosquitto(tmp_path_factory.mktemp("mosquitto"), tls_pki=pki)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def tls(pki: Path, name: str) -> ssl.SSLContext:
    return MqttTls(pki / "ca.crt", pki / f"{name}.crt", pki / f"{name}.key").client_context()


@contextlib.asynccontextmanager
async def connected(broker: Mosquitto, context: ssl.SSLContext | None) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(broker.host, broker.port, tls_context=context, timeout=10,
                              protocol=aiomqtt.ProtocolVersion.V5) as client:
        yield client


@contextlib.asynccontextmanager
async def received(broker: Mosquitto, context: ssl.SSLContext, topic: str = "jukimon/#"
                   ) -> AsyncIterator[list[tuple[str, bytes]]]:
    """Everything a subscriber with ``context``'s certificate gets while the block runs."""
    got: list[tuple[str, bytes]] = []
    async with connected(broker, context) as client:
        await client.subscribe(topic, qos=1)

        async def collect() -> None:
            async for message in client.messages:
                got.append((str(message.topic), bytes(message.payload)))  # type: ignore[arg-type]

        task = asyncio.create_task(collect())
        try:
            yield got
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def until(got: list, topic: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(t == topic for t, _ in got):
        assert time.monotonic() < deadline, f"nothing on {topic} within {timeout}s; got {got}"
        await asyncio.sleep(0.02)


async def test_collector_publishes_samples_but_not_into_the_monitors_tree(broker: Mosquitto, pki: Path) -> None:
    async with received(broker, tls(pki, "monitor")) as got:
        async with connected(broker, tls(pki, "collector")) as collector:
            # The monitor's namespace, also in the shape of a device record, and an IDS alert: all refused.
            for topic in ("jukimon/monitor/condition/forged", "jukimon/monitor/state/site/samples",
                          "jukimon/monitor/condition/x/samples", f"{SITE}/muni-01-002-fw/event/alert",
                          "jukimon/cascade/muni-01-002/report"):
                await collector.publish(topic, b"forged", qos=1)
            await collector.publish(SAMPLES, b"[]", qos=1)
            await collector.publish(f"{SITE}/muni-01-002-fw/event/syslog", b"{}", qos=1)
        await until(got, f"{SITE}/muni-01-002-fw/event/syslog")
    assert [t for t, _ in got] == [SAMPLES, f"{SITE}/muni-01-002-fw/event/syslog"]


async def test_console_reads_everything_and_publishes_nothing(broker: Mosquitto, pki: Path) -> None:
    async with received(broker, tls(pki, "console")) as console_view, received(broker, tls(pki, "monitor")) as got:
        async with connected(broker, tls(pki, "console")) as console:
            for topic in (SAMPLES, "jukimon/monitor/condition/x", "jukimon/control/recheck", "jukimon/alarms"):
                await console.publish(topic, b"from the console", qos=1)  # PUBACKed: the broker has dealt with it
        async with connected(broker, tls(pki, "monitor")) as monitor:
            await monitor.publish("jukimon/monitor/condition/sentinel", b"{}", qos=1)
        await until(got, "jukimon/monitor/condition/sentinel")
        await until(console_view, "jukimon/monitor/condition/sentinel")
    assert [t for t, _ in got] == ["jukimon/monitor/condition/sentinel"]


# MQTT 3.1.1 CONNECT, client id "x", clean session, keepalive 60.
CONNECT = bytes([0x10, 13, 0, 4, *b"MQTT", 4, 2, 0, 60, 0, 1, *b"x"])


async def connack(broker: Mosquitto, context: ssl.SSLContext | None) -> bytes:
    """What the broker answers a CONNECT on a fresh connection: a CONNACK, or b"" if it hangs up on us."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            broker.host, broker.port, ssl=context, server_hostname=broker.host if context else None), 5)
    except (ssl.SSLError, ConnectionError):
        return b""
    try:
        writer.write(CONNECT)
        return await asyncio.wait_for(reader.read(4), 5)  # a refusal comes at once: a timeout fails the test
    except (ssl.SSLError, ConnectionError):  # TLS 1.3: the broker's "certificate required" alert
        return b""
    finally:
        writer.close()
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await writer.wait_closed()


async def test_connection_refused_without_a_certificate_or_with_another_cas(broker: Mosquitto, pki: Path,
                                                                             tmp_path: Path) -> None:
    other = tmp_path / "other-pki"
    init(other)  # a CA of its own, with certificates named like ours
    assert await connack(broker, tls(pki, "monitor")) == bytes([0x20, 2, 0, 0])  # accepted
    no_cert = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    foreign = MqttTls(pki / "ca.crt", other / "monitor.crt", other / "monitor.key").client_context()
    for context in (no_cert, foreign, None):  # None: plain MQTT on the TLS port
        assert await connack(broker, context) == b""
    with pytest.raises(aiomqtt.MqttError):  # as our clients see it (paho notices only by its timeout)
        async with aiomqtt.Client(broker.host, broker.port, tls_context=no_cert, timeout=2):
            pass
    # The broker is checked too: a client that trusts only the other CA refuses ours before sending anything.
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.open_connection(broker.host, broker.port, ssl=tls(other, "monitor"))


async def test_a_second_collector_issued_later_gets_the_collectors_rights_after_a_restart(
        broker: Mosquitto, pki: Path) -> None:
    issue(pki, "collector-osaka", ["collector"])
    broker.restart()  # the ACL is rendered from the certificates at start
    async with received(broker, tls(pki, "monitor")) as got:
        async with connected(broker, tls(pki, "collector-osaka")) as collector:
            await collector.publish("jukimon/monitor/condition/forged", b"x", qos=1)
            await collector.publish(SAMPLES, b"[]", qos=1)
        await until(got, SAMPLES)
    assert [t for t, _ in got] == [SAMPLES]


async def test_publisher_over_tls_delivers_qos1_events_to_the_monitor(broker: Mosquitto, pki: Path) -> None:
    certs = MqttTls(pki / "ca.crt", pki / "collector.crt", pki / "collector.key")
    publisher = MqttPublisher(broker.host, broker.port, client_id="tls-collector", tls=certs.client_context())
    events = [Event(EventType.SYSLOG, 1_700_000_000.0 + i, "collector.syslog", FW, Severity.WARNING, f"deny {i}")
              for i in range(200)]
    async with received(broker, tls(pki, "monitor"), "jukimon/+/+/+/event/#") as got:
        await publisher.start()
        try:
            for event in events:
                assert publisher.publish(event)
            assert await publisher.drain(20), publisher.stats()
        finally:
            await publisher.stop()
        deadline = time.monotonic() + 10
        while len(got) < len(events) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    assert publisher.stats()["published"] == len(events) and publisher.stats()["failures"] == 0
    assert [decode(payload).message for _, payload in got] == [e.message for e in events]  # all, in order


async def test_sharded_collectors_see_each_other_and_take_rechecks_over_tls(broker: Mosquitto, pki: Path) -> None:
    """Heartbeats, Wills and re-check requests all pass the collectors' ACL; the console cannot forge a member."""
    issue(pki, "collector-kobe", ["collector"])
    broker.restart()
    rechecks: list[str] = []
    members = [Membership(broker.host, broker.port, name, lambda view: None, rechecks.append, tls=tls(pki, name))
               for name in ("collector", "collector-kobe")]
    for member in members:
        await member.start(timeout=10)
    try:
        async with connected(broker, tls(pki, "console")) as console:
            forged = b'{"id": "intruder", "alive": true, "weight": 1.0, "heartbeat": 2.0}'  # a valid heartbeat
            await console.publish("jukimon/collectors/intruder/alive", forged, qos=1, retain=True)
        async with connected(broker, tls(pki, "monitor")) as monitor:
            await monitor.publish("jukimon/control/recheck", b'{"device": "muni-01-002-cs1"}', qos=1)
        deadline = time.monotonic() + 10
        while (len(rechecks) < 2 or any(len(m.members) < 2 for m in members)) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert [sorted(m.members) for m in members] == [["collector", "collector-kobe"]] * 2
        assert rechecks == ["muni-01-002-cs1"] * 2
    finally:
        for member in members:
            await member.stop()


async def test_notifications_reach_jukimon_alarms_only_from_the_monitors_certificate(broker: Mosquitto,
                                                                                      pki: Path) -> None:
    note = Notification("device_down:muni-01-002-cs1|noc|0|1", "noc", "device_down:muni-01-002-cs1",
                        ("device_down:muni-01-002-cs1",), "【障害】小樽市 CS1", "本文", 1_700_000_000.0)
    async with received(broker, tls(pki, "console"), "jukimon/alarms") as got:
        with pytest.raises(DeliveryError, match="refused jukimon/alarms: Not authorized"):  # not "delivered"
            await MqttReceiver(broker.host, broker.port, "jukimon/alarms", timeout=1,
                               tls=tls(pki, "collector")).deliver(note)
        await MqttReceiver(broker.host, broker.port, "jukimon/alarms", tls=tls(pki, "monitor")).deliver(note)
        await until(got, "jukimon/alarms")
        await asyncio.sleep(0.2)  # room for a second copy, if the collector's had been let through
    assert len(got) == 1 and json.loads(got[0][1])["id"] == note.id


async def test_publisher_counts_and_logs_once_what_the_broker_refuses(broker: Mosquitto, pki: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    """A certificate without the rights: the broker PUBACKs "Not authorized" — counted, said once, not silent."""
    publisher = MqttPublisher(broker.host, broker.port, client_id="tls-console", tls=tls(pki, "console"))
    await publisher.start()
    try:
        for i in range(20):
            publisher.publish(Event(EventType.SYSLOG, 1_700_000_000.0 + i, "collector.syslog", FW,
                                    Severity.WARNING, f"deny {i}"))
        assert await publisher.drain(20), publisher.stats()
    finally:
        await publisher.stop()
    assert publisher.stats()["refused"] == 20
    refusals = [r for r in caplog.records if "refused a message" in r.getMessage()]
    assert len(refusals) == 1
    assert refusals[0].fields["topic"] == f"{SITE}/muni-01-002-fw/event/syslog"  # type: ignore[attr-defined]


@contextlib.asynccontextmanager
async def tls_cascade(broker: Mosquitto, pki: Path, name: str, tmp_path: Path,
                      inventory: Inventory) -> AsyncIterator[Cascade]:
    with smtp_sink() as sink:
        async with await Store.open(f"sqlite+aiosqlite:///{tmp_path}/{name}.db") as store:
            cascade = await open_cascade(store, inventory, cascade_settings(tmp_path / name, sink.port),
                                         mqtt=(broker.host, broker.port), mqtt_tls=tls(pki, name), clock=SimClock())
            try:
                yield cascade
            finally:
                await cascade.close()


async def test_the_cascade_over_tls_each_organisation_reads_and_confirms_only_its_own(
        broker: Mosquitto, pki: Path, tmp_path: Path, small_inventory: Inventory) -> None:
    for org in ("muni-01-002", "muni-01-003"):
        if not (pki / f"{org}.crt").exists():
            issue(pki, org, ["organisation"])
    broker.restart()
    otaru = "jukimon/cascade/muni-01-002"
    async with tls_cascade(broker, pki, "cascade", tmp_path, small_inventory) as cascade, \
            received(broker, tls(pki, "muni-01-002"), f"{otaru}/report") as own, \
            received(broker, tls(pki, "muni-01-002"), "jukimon/cascade/muni-01-003/report") as others:
        await cascade.issue(DRILL, FIRST)
        await until(own, f"{otaru}/report")
        report = json.loads(own[0][1])
        async with connected(broker, tls(pki, "muni-01-003")) as neighbour:  # confirming for Otaru: refused
            await neighbour.publish(f"{otaru}/ack", json.dumps({"token": report["token"], "by": "隣町"}), qos=1)
        async with connected(broker, tls(pki, "muni-01-002")) as municipality:
            await municipality.publish(f"{otaru}/ack", json.dumps({"token": report["token"], "by": "小樽市"}), qos=1)
        deadline = time.monotonic() + 10
        while cascade.tracker.counts(FIRST.id).confirmed < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        delivery = cascade.tracker.delivery(FIRST.id, "muni-01-002")
        assert delivery is not None and (delivery.confirmed_via, delivery.confirmed_by) == ("mqtt", "小樽市")
        assert others == [] and cascade.channels[0].counts["refused"] == 0


async def test_a_cascade_without_the_cascade_role_is_told_its_reports_are_refused(
        broker: Mosquitto, pki: Path, tmp_path: Path, small_inventory: Inventory) -> None:
    async with tls_cascade(broker, pki, "monitor", tmp_path, small_inventory) as cascade:
        await cascade.issue(DRILL, FIRST)
        channel = cascade.channels[0]
        assert channel.counts["published"] == 14 and channel.counts["refused"] == 14


async def test_a_revoked_certificate_is_refused_after_the_broker_restarts(broker: Mosquitto, pki: Path) -> None:
    issue(pki, "collector-nara", ["collector"])
    stolen = tls(pki, "collector-nara")  # what the thief holds: certificate and key, loaded before the revocation
    broker.restart()
    assert await connack(broker, stolen) == bytes([0x20, 2, 0, 0])
    assert main(["pki", "revoke", str(pki), "collector-nara"]) == 0
    broker.restart()  # the CRL and the ACL are read at start
    assert await connack(broker, stolen) == b""
    assert await connack(broker, tls(pki, "collector")) == bytes([0x20, 2, 0, 0])  # the others are unaffected
    issue(pki, "collector-nara", ["collector"])  # the component gets a new certificate under its old name
    broker.restart()
    assert await connack(broker, tls(pki, "collector-nara")) == bytes([0x20, 2, 0, 0])


async def test_operation_ids_replay_publishes_its_alerts_with_the_ids_certificate(broker: Mosquitto, pki: Path,
                                                                                   tmp_path: Path,
                                                                                   monkeypatch: pytest.MonkeyPatch
                                                                                   ) -> None:
    """`jukimon opsids replay --config` takes the broker and the client certificate from outputs.mqtt."""
    from tests.test_opsids_canary import plant

    monkeypatch.setenv("JUKIMON_OPSIDS_KEY", "tls:tls-test-key-0123456789")
    audit = tmp_path / "audit.jsonl"
    plant(audit)
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"outputs": {"mqtt": {
        "host": broker.host, "port": broker.port,
        "tls": {"ca": str(pki / "ca.crt"), "cert": str(pki / "ids.crt"), "key": str(pki / "ids.key")}}}}))
    async with received(broker, tls(pki, "monitor"), "jukimon/+/+/+/event/alert") as got:
        assert await asyncio.to_thread(main, ["opsids", "replay", str(audit), "--config", str(config)]) == 0
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # the rest of a burst
    types = {json.loads(payload)["alert"]["type"] for _, payload in got}
    assert "enumeration" in types, got
