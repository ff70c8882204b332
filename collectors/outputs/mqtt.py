"""MQTT publisher: every Sample and Event onto the bus, so collectors, IDS and console can live apart.

Topic tree (``<prefix>`` = ``jukimon`` by default; see README.md beside this file)::

    <prefix>/<tier>/<site>/<device>/sample/<measurement>   Sample         QoS 0, not retained
    <prefix>/<tier>/<site>/<device>/samples                one poll's Samples, a JSON array (QoS 0)
    <prefix>/<tier>/<site>/<device>/event/<event_type>     Event          QoS 1, not retained
    <prefix>/<tier>/<site>/<device>/state                  poll outcome   QoS 1, retained
                                                           (Sample "poll" or Event "poll")

A poller publishes each device poll's samples as one ``samples`` message
(``publish_poll``): ~10 records in one message instead of ten, which is what
lets one process poll the whole national network and publish everything.

Why: samples are the high-volume stream and the TSDB is their record, so losing one across a
broker restart costs nothing (QoS 0). Events are few and each may matter (a trap, a syslog line,
an IDS judgement): QoS 1. A poll outcome is the device's current state: retained, so a console
that subscribes later gets the latest state of every device at once.

``publish()`` is synchronous and never blocks: it routes and encodes the record and appends it to
a bounded queue (oldest dropped first when full: for a live console the newest data matters most;
the first drop and the recovery are logged once). A background task owns the connection
(MQTT v5 via aiomqtt), publishes in queue order, and reconnects with jittered exponential backoff
when the broker goes away (capped at 2 s: back within seconds of the broker); records queued
meanwhile are sent after the reconnect. QoS 1 messages
are pipelined (up to ``max_inflight`` awaiting PUBACK); those not acknowledged when the
connection broke are re-queued in front, in order — at-least-once, as QoS 1 promises.
A connection loss is noticed on the next publish, by paho, or within a second when idle.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import random
import socket
import ssl
import time
from typing import Any

from collectors.outputs.worker import finish_or_cancel
from monitor.envelope import Event, EventType, Sample, encode
from monitor.logs import fields as log_fields
from monitor.mqtt_tls import watch_refusals
from monitor.waiting import wait_event

log = logging.getLogger("collectors.outputs.mqtt")

UNKNOWN = "_"
_Item = tuple[str, bytes, int, bool]  # topic, payload, qos, retain
_BURST = 256  # messages handed to paho per event-loop turn


@functools.lru_cache(maxsize=65536)
def topic_level(value: str | None) -> str:
    """One topic level from free text: no wildcards (``+`` ``#``), no separator (``/``), no NUL, not empty.

    Unknown (None or empty) parts become ``_`` so that every record has the same number of levels
    and ``jukimon/+/+/+/event/#`` style filters always work.
    """
    if not value:
        return UNKNOWN
    text = value.translate(_LEVEL_TABLE)
    if text.startswith("$"):  # $-topics are the broker's ($SYS); keep ours out of that namespace
        text = "_" + text[1:]
    return text.encode("utf-8", "replace").decode("utf-8")


_LEVEL_TABLE = str.maketrans({"+": "_", "#": "_", "/": "_", "\0": "_"})


def route(record: Sample | Event, prefix: str = "jukimon") -> tuple[str, int, bool]:
    """(topic, qos, retain) for a record — the whole topic-tree policy in one place."""
    origin = record.origin
    base = f"{prefix}/{topic_level(origin.tier)}/{topic_level(origin.site)}/{topic_level(origin.device)}"
    if isinstance(record, Sample):
        return f"{base}/sample/{topic_level(record.measurement)}", 0, False
    if record.event_type == EventType.POLL:  # first poll and every reachability change: the current state
        return f"{base}/state", 1, True
    return f"{base}/event/{topic_level(str(record.event_type))}", 1, False


class MqttPublisher:
    """Background MQTT publisher with a bounded queue and automatic reconnect."""

    def __init__(self, host: str, port: int = 1883, *, client_id: str, topic_prefix: str = "jukimon",
                 tls: ssl.SSLContext | None = None, username: str | None = None, password: str | None = None,
                 max_queue: int = 100_000, max_inflight: int = 1000, keepalive: int = 30,
                 ack_timeout: float = 10.0, backoff_initial: float = 0.2, backoff_max: float = 2.0) -> None:
        if not topic_prefix or any(c in topic_prefix for c in "+#\0") or topic_prefix.startswith(("/", "$")):
            raise ValueError(f"bad topic prefix {topic_prefix!r}")
        self.host, self.port, self.client_id = host, port, client_id
        self.topic_prefix = topic_prefix.rstrip("/")
        # tls: monitor.mqtt_tls.MqttTls.client_context(); public so the process's other MQTT clients
        # (cascade, MQTT receivers) reach the same broker with the same certificate.
        self.tls, self._username, self._password = tls, username, password
        self.max_queue, self.max_inflight, self.keepalive = max_queue, max_inflight, keepalive
        self.ack_timeout = ack_timeout
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self._queue: collections.deque[_Item] = collections.deque()
        self._wake = asyncio.Event()
        self._inflight: collections.deque[tuple[Any, _Item, float]] = collections.deque()  # (paho info, item, sent)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._stop_deadline = 0.0
        self._connected = False
        self._failing = False
        self._dropping = False
        self._logged_reasons: set[str] = set()
        self._counts = dict(published=0, dropped=0, rejected=0, refused=0, connects=0, failures=0, requeued=0)
        self.last_error = ""

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=f"mqtt-publisher-{self.client_id}")

    async def stop(self, timeout: float = 5.0) -> None:
        """Publish what is queued (if connected) within ``timeout``, then disconnect."""
        if self._task is None:
            return
        self._stopping = True
        self._stop_deadline = time.monotonic() + timeout
        self._wake.set()
        await finish_or_cancel(self._task, timeout + self.ack_timeout + 1)
        self._task = None
        if self._queue:
            log.warning("mqtt publisher stopped with unsent records",
                        extra=log_fields(broker=f"{self.host}:{self.port}", unsent=len(self._queue)))

    # -- producer side -------------------------------------------------------------------------

    def publish(self, record: Sample | Event) -> bool:
        """Queue a record for publishing; False if it could not be encoded (reason logged once)."""
        try:
            topic, qos, retain = route(record, self.topic_prefix)
            payload = encode(record)
        except Exception as exc:  # a body that is not JSON-serialisable must not hurt the producer
            self._reject(exc)
            return False
        self._enqueue(topic, payload, qos, retain)
        return True

    def publish_poll(self, samples: list[Sample]) -> bool:
        """Queue one device poll's samples as one message on ``…/<device>/samples``."""
        if not samples:
            return True
        try:
            topic = route(samples[0], self.topic_prefix)[0].rsplit("/sample/", 1)[0] + "/samples"
            payload = b"[" + b",".join(encode(s) for s in samples) + b"]"
        except Exception as exc:
            self._reject(exc)
            return False
        self._enqueue(topic, payload, 0, False)
        return True

    def publish_records(self, records: list[Sample | Event]) -> None:
        """A poll's output as the collectors' sink: its samples as one message, its events one by one
        (they have their own topics and QoS)."""
        self.publish_poll([r for r in records if isinstance(r, Sample)])
        for record in records:
            if isinstance(record, Event):
                self.publish(record)

    def publish_message(self, subtopic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Queue any message under the prefix (the monitor's states and conditions use this)."""
        self._enqueue(f"{self.topic_prefix}/{subtopic}", payload, qos, retain)

    def _refused(self, mid: int, reason: str) -> None:
        """The broker acknowledged a QoS 1 message with a failure code (its ACL: "Not authorized"): dropped there."""
        self._counts["refused"] += 1
        topic = next((item[0] for info, item, _ in self._inflight if info.mid == mid), "?")
        key = f"refused {reason}"
        if key not in self._logged_reasons and len(self._logged_reasons) < 1000:  # once per reason
            self._logged_reasons.add(key)
            log.warning("mqtt broker refused a message (check this certificate's roles and the broker's ACL)",
                        extra=log_fields(broker=f"{self.host}:{self.port}", topic=topic, reason=reason))

    def _reject(self, exc: Exception) -> None:
        self._counts["rejected"] += 1
        reason = f"{type(exc).__name__}: {exc}"[:300]
        if reason not in self._logged_reasons and len(self._logged_reasons) < 1000:
            self._logged_reasons.add(reason)
            log.warning("mqtt record rejected", extra=log_fields(reason=reason))

    def _enqueue(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        if len(self._queue) >= self.max_queue:
            self._queue.popleft()
            self._counts["dropped"] += 1
            if not self._dropping:
                self._dropping = True
                log.warning("mqtt queue full, dropping oldest records",
                            extra=log_fields(broker=f"{self.host}:{self.port}", max_queue=self.max_queue))
        self._queue.append((topic, payload, qos, retain))
        self._wake.set()

    def stats(self) -> dict[str, Any]:
        return {**self._counts, "queued": len(self._queue), "inflight": len(self._inflight),
                "connected": self._connected, "last_error": self.last_error}

    async def drain(self, timeout: float = 10.0) -> bool:
        """Wait until the queue is empty and every QoS 1 message is acknowledged (tests, hand-over)."""
        deadline = time.monotonic() + timeout
        while self._queue or self._inflight:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    # -- connection ----------------------------------------------------------------------------

    async def _run(self) -> None:
        import aiomqtt

        backoff = self.backoff_initial
        while True:
            client = aiomqtt.Client(
                self.host, self.port, identifier=self.client_id, protocol=aiomqtt.ProtocolVersion.V5,
                username=self._username, password=self._password, tls_context=self.tls,
                keepalive=self.keepalive, timeout=self.ack_timeout, max_inflight_messages=self.max_inflight,
                logger=logging.getLogger("collectors.outputs.mqtt.client"),
                # A lone event goes out at once instead of waiting for the previous segment's ACK (Nagle).
                socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),))
            try:
                async with client:
                    self._on_connected()
                    backoff = self.backoff_initial
                    await self._pump(client)
                    return  # stopping, and everything sent
            except aiomqtt.MqttError as exc:
                self._on_failure(exc)
            finally:
                await self._requeue_inflight()
                _consume_disconnect_error(client)
            if self._stopping and time.monotonic() >= self._stop_deadline:
                return
            delay = backoff * random.uniform(0.8, 1.2)
            backoff = min(backoff * 2, self.backoff_max)
            if self._stopping:
                delay = min(delay, max(0.0, self._stop_deadline - time.monotonic()))
            await asyncio.sleep(delay)

    def _on_connected(self) -> None:
        self._connected = True
        self._counts["connects"] += 1
        if self._failing:
            self._failing = False
            log.info("mqtt publisher reconnected", extra=log_fields(broker=f"{self.host}:{self.port}",
                                                                     queued=len(self._queue)))
        elif self._counts["connects"] == 1:
            log.info("mqtt publisher connected", extra=log_fields(broker=f"{self.host}:{self.port}"))

    def _on_failure(self, exc: BaseException) -> None:
        self._connected = False
        self._counts["failures"] += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        if not self._failing:
            self._failing = True
            log.warning("mqtt publisher disconnected, queueing", extra=log_fields(
                broker=f"{self.host}:{self.port}", error=self.last_error))

    async def _pump(self, client: Any) -> None:
        """Publish from the queue head while connected; return when stopping and all is sent.

        Publishing goes through aiomqtt's underlying paho client (``client._client.publish``),
        which only queues the packet for aiomqtt's event-loop writer: awaiting aiomqtt's own
        ``publish()`` per message costs a future, a ``wait_for`` and a loop round trip each
        (~4k msg/s on the dev machine against ~12k/s this way). Completion is read from paho's
        ``MQTTMessageInfo`` (written, for QoS 0; PUBACK received, for QoS 1), oldest first.
        """
        import aiomqtt

        paho = client._client
        watch_refusals(paho, self._refused)
        inflight = self._inflight
        while True:
            while inflight and inflight[0][0].is_published():
                inflight.popleft()
                self._sent()
            if not paho.is_connected():
                raise aiomqtt.MqttError(self.last_error or "connection lost")
            if inflight and time.monotonic() - inflight[0][2] > self.ack_timeout:
                self.last_error = "no PUBACK within ack_timeout"
                raise aiomqtt.MqttError(self.last_error)
            if self._stopping and time.monotonic() >= self._stop_deadline:
                return
            if not self._queue or len(inflight) >= self.max_inflight:
                if self._stopping and not self._queue and not inflight:
                    return
                if inflight:  # acknowledgements come in on the loop's reader: look again shortly
                    await asyncio.sleep(0.002)
                    continue
                self._wake.clear()
                await wait_event(self._wake, 1.0)  # wake up now and then to notice a connection lost while idle
                continue
            for _ in range(min(_BURST, self.max_inflight - len(inflight), len(self._queue))):
                item = self._queue.popleft()
                topic, payload, qos, retain = item
                try:
                    info = paho.publish(topic, payload, qos, retain)
                except ValueError as exc:  # paho's own checks (topic, payload size): the message is unpublishable
                    self._counts["rejected"] += 1
                    log.warning("mqtt publish refused", extra=log_fields(topic=topic, error=str(exc)[:300]))
                    continue
                if info.rc != 0:  # not connected (any more): keep it for the next connection
                    self._queue.appendleft(item)
                    self.last_error = f"publish rc={info.rc}"
                    raise aiomqtt.MqttError(f"publish failed rc={info.rc}")
                inflight.append((info, item, time.monotonic()))
            await asyncio.sleep(0)  # let aiomqtt's writer put the burst on the wire

    def _sent(self) -> None:
        self._counts["published"] += 1
        if self._dropping and len(self._queue) < self.max_queue // 2:
            self._dropping = False
            log.info("mqtt queue accepting again", extra=log_fields(broker=f"{self.host}:{self.port}"))

    async def _requeue_inflight(self) -> None:
        """After a broken connection: put messages not yet written/acknowledged back in front, in order."""
        self._connected = False
        unsent = [item for info, item, _ in self._inflight if not info.is_published()]
        sent = len(self._inflight) - len(unsent)
        self._inflight.clear()
        for _ in range(sent):
            self._sent()
        self._queue.extendleft(reversed(unsent))
        self._counts["requeued"] += len(unsent)


def _consume_disconnect_error(client: Any) -> None:
    """Mark aiomqtt's "unexpected disconnection" future as seen.

    When the broker drops us, aiomqtt stores the error in a future that only its message iterator
    reads; a publish-only client never does, and asyncio then logs "Future exception was never
    retrieved" at garbage collection — one spurious ERROR per broker restart.
    """
    future = getattr(client, "_disconnected", None)
    if isinstance(future, asyncio.Future) and future.done() and not future.cancelled():
        future.exception()
