"""The monitor's intake from the bus: collectors' samples and events in, the same sinks as in one process.

When collectors run as their own processes (``jukimon collector run``), the
monitor no longer calls them: it subscribes to what they publish
(collectors/outputs/mqtt.py) and hands every record to the sinks the
in-process ``CollectorService`` feeds — history, ``StateEngine.sink``,
lifecycle::

    <prefix>/+/+/+/samples         one poll's Samples, a JSON array (QoS 0)
    <prefix>/+/+/+/sample/+        a single Sample (QoS 0)
    <prefix>/+/+/+/event/#         an Event (QoS 1)
    <prefix>/+/+/+/state           a device's latest poll outcome, an Event (QoS 1, retained)

Retained ``…/state`` messages are not asked for (retain handling 2): they repeat
poll outcomes the monitor judged already, and at national scale a reconnect would
replay thousands of them; live ones arrive as published.

The subscription is MQTT v5 with a persistent session (``clean_start`` false,
``session_expiry`` seconds): the broker keeps the QoS-1 events published while
the monitor is reconnecting — or restarting within that time under the same
``client_id`` — and delivers them when it is back. Samples are QoS 0: a
missed poll is the next poll's to tell.

A malformed payload is counted by reason and logged once per reason, never
raised; a sink that fails is logged once per sink and the next record goes on.

``recheck(device_id)`` is the ``StateEngine``'s recheck callback in this mode: it
publishes ``{"device": "<id>"}`` on ``<prefix>/control/recheck`` (QoS 1) for the
collector that polls the device.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
from collections import Counter
from typing import Any, Callable, Protocol, Sequence

import aiomqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from monitor.envelope import EnvelopeError, Event, Sample, decode, decode_batch
from monitor.logs import fields
from monitor.mqtt_session import RECONNECT_BACKOFF_MAX, persistent_session

log = logging.getLogger("monitor.intake")

Sink = Callable[[list[Sample | Event]], None]
RECHECK_TOPIC = "control/recheck"


class MessagePublisher(Protocol):
    def publish_message(self, subtopic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None: ...


def subscriptions(prefix: str) -> list[tuple[str, int]]:
    """(topic filter, QoS) for everything collectors publish under ``prefix``."""
    return [(f"{prefix}/+/+/+/samples", 0), (f"{prefix}/+/+/+/sample/+", 0),
            (f"{prefix}/+/+/+/event/#", 1), (f"{prefix}/+/+/+/state", 1)]


def parse(topic: str, payload: bytes) -> list[Sample | Event]:
    """The records of one message; ``EnvelopeError`` naming the reason when it is not what the topic says."""
    if not topic.endswith("/samples"):
        return [decode(payload)]
    records = decode_batch(payload)
    if not all(isinstance(r, Sample) for r in records):
        raise EnvelopeError("a samples message holds samples only")
    return records


class BusIntake:
    """Subscribe, decode, feed the sinks; reconnect with jittered backoff until stopped."""

    def __init__(self, host: str, port: int, sinks: Sequence[Sink], *, client_id: str, prefix: str = "jukimon",
                 publisher: MessagePublisher | None = None, tls: ssl.SSLContext | None = None,
                 session_expiry: int = 3600, backoff_initial: float = 0.2, backoff_max: float = RECONNECT_BACKOFF_MAX,
                 keepalive: int = 15) -> None:
        self.host, self.port, self.client_id, self.prefix = host, port, client_id, prefix.rstrip("/")
        self.tls = tls  # monitor.mqtt_tls.client_context(): the monitor's certificate (read jukimon/#)
        self.sinks = list(sinks)
        self.publisher = publisher
        self.session_expiry = session_expiry
        self.backoff_initial, self.backoff_max, self.keepalive = backoff_initial, backoff_max, keepalive
        self.connected = asyncio.Event()
        self.counts: Counter[str] = Counter()  # messages, records, connects, malformed, sink_errors, rechecks
        self.malformed: Counter[str] = Counter()  # by reason
        self._logged: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="monitor-intake")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.connected.clear()

    def recheck(self, device_id: str) -> None:
        """Ask the collector that polls ``device_id`` to poll it now (the engine's recheck callback)."""
        if self.publisher is None:
            return
        self.counts["rechecks"] += 1
        self.publisher.publish_message(RECHECK_TOPIC, json.dumps({"device": device_id}).encode(), qos=1)

    # --- receiving ----------------------------------------------------------------

    def handle(self, topic: str, payload: bytes) -> None:
        """One message: decode it and hand its records to every sink."""
        self.counts["messages"] += 1
        try:
            records = parse(topic, payload)
        except EnvelopeError as exc:
            self._malformed(str(exc), topic)
            return
        self.counts["records"] += len(records)
        for sink in self.sinks:
            try:
                sink(records)
            except Exception:  # one sink's bug must not starve the others, nor stop the intake
                self.counts["sink_errors"] += 1
                name = getattr(sink, "__qualname__", repr(sink))
                if f"sink:{name}" not in self._logged:
                    self._logged.add(f"sink:{name}")
                    log.exception("intake sink failed", extra=fields(sink=name))

    def _malformed(self, reason: str, topic: str) -> None:
        self.counts["malformed"] += 1
        reason = reason[:200]
        self.malformed[reason] += 1
        if reason not in self._logged and len(self._logged) < 1000:
            self._logged.add(reason)
            log.warning("malformed message from the bus skipped", extra=fields(reason=reason, topic=topic))

    async def _run(self) -> None:
        backoff = self.backoff_initial
        failing = False
        while True:
            client = aiomqtt.Client(self.host, self.port, identifier=self.client_id,
                                    protocol=aiomqtt.ProtocolVersion.V5, clean_start=False,
                                    properties=persistent_session(self.session_expiry),
                                    keepalive=self.keepalive, tls_context=self.tls,
                                    logger=logging.getLogger("monitor.intake.client"))
            try:
                async with client:
                    for topic, qos in subscriptions(self.prefix):
                        await client.subscribe(topic, options=SubscribeOptions(qos=qos, retainHandling=2))
                    self.counts["connects"] += 1
                    self.connected.set()
                    if failing or self.counts["connects"] == 1:
                        log.info("intake subscribed", extra=fields(broker=f"{self.host}:{self.port}",
                                                                   prefix=self.prefix, client_id=self.client_id))
                    failing, backoff = False, self.backoff_initial
                    async for message in client.messages:
                        self.handle(str(message.topic), _bytes(message.payload))
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                if not failing:
                    failing = True
                    log.warning("intake disconnected, reconnecting", extra=fields(
                        broker=f"{self.host}:{self.port}", error=str(exc)[:300]))
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, self.backoff_max)


def _bytes(payload: Any) -> bytes:
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload)
    return str(payload).encode() if payload is not None else b""
