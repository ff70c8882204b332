"""The cascade's MQTT channel: reports out on ``<prefix>/cascade/<org>/report``, receipts in on ``…/<org>/ack``.

Beside the e-mail, each organisation's report is published (QoS 1, retained: a
recipient that connects later still finds the latest report) as JSON with the
same Japanese subject and body, the confirm token, and an Ed25519 signature over
the canonical JSON of all other fields (``verify_report_payload``).

A receipt is a JSON message ``{"token": "<token from the report>", "by": "<name>"}``
on the organisation's ack topic. The token proves the report reached that
organisation; a token for another organisation, a forged or expired one is
rejected (each kind logged once per organisation). The subscription uses a
persistent session (MQTT v5, clean start off, a session expiry of ``SESSION_EXPIRY``
seconds, QoS 1) under a fixed client id, so receipts published while Jukimon is
reconnecting or restarting are delivered when it is back (with broker persistence
on, across a broker restart too). E-mail stays the channel of record: a report
that cannot be published because the broker is away is logged, not retried.

Broker setting: Mosquitto holds at most ``max_queued_messages`` (1,000 by
default) QoS 1 messages per client beyond those in flight and drops the rest.
Up to 1,788 receipts can arrive within seconds, so give Jukimon's client room
(``max_queued_messages 0`` or at least twice the organisations). A receipt lost
anyway is not fatal: the recipient is reminded and confirms again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
from collections import Counter
from typing import TYPE_CHECKING, Any, Sequence

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from alerting.cascade.links import LinkError
from alerting.cascade.model import Channel, Delivery
from alerting.cascade.signing import verify_bytes
from alerting.cascade.tracker import ConfirmOutcome
from monitor.logs import fields as log_fields
from monitor.mqtt_session import RECONNECT_BACKOFF_MAX, persistent_session
from monitor.mqtt_tls import watch_refusals
from monitor.waiting import wait_event

if TYPE_CHECKING:  # the sender builds this channel: no import cycle at run time
    from alerting.cascade.sender import MailComposer

log = logging.getLogger("alerting.cascade.mqtt")

_PUBLISH_CHUNK = 500  # publishes awaiting PUBACK at once
SESSION_EXPIRY = 7 * 24 * 3600  # s the broker keeps our subscription and queued receipts while we are away


def report_topic(prefix: str, org: str) -> str:
    return f"{prefix}/cascade/{org}/report"


def ack_topic(prefix: str, org: str) -> str:
    return f"{prefix}/cascade/{org}/ack"


def canonical_json(payload: dict[str, Any]) -> bytes:
    """What the signature covers: every field but ``signature``, keys sorted, no spaces, UTF-8."""
    fields = {k: v for k, v in payload.items() if k != "signature"}
    return json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def verify_report_payload(payload: bytes, public_key: Ed25519PublicKey) -> dict[str, Any] | None:
    """The report message if its signature verifies with the national centre's key, else None."""
    try:
        message = json.loads(payload)
        signature = message["signature"]
        signed = canonical_json(message)  # UnicodeEncodeError (a ValueError) for a lone surrogate "\ud800"
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    return message if verify_bytes(signed, signature, public_key) else None


class MqttChannel:
    """Publishes reports and takes receipts over one MQTT connection, reconnecting with backoff."""

    def __init__(self, host: str, port: int, composer: MailComposer, *, prefix: str = "jukimon",
                 client_id: str = "jukimon-cascade", backoff_max: float = RECONNECT_BACKOFF_MAX,
                 tls: ssl.SSLContext | None = None) -> None:
        self.host, self.port, self.prefix, self.client_id = host, port, prefix, client_id
        self.tls = tls  # monitor.mqtt_tls.MqttTls.client_context(): the broker's ACL gives "cascade" its topics
        self.composer = composer
        self.tracker = composer.tracker
        self.backoff_max = backoff_max
        self.counts: Counter[str] = Counter()  # published, refused (by the broker), confirmed, already, rejected
        self.connected = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._handlers: set[asyncio.Task[None]] = set()
        self._logged: set[tuple[str, str]] = set()

    async def start(self, wait: float = 10.0) -> None:
        """Connect and subscribe; waits up to ``wait`` seconds for the first connection."""
        self._task = asyncio.create_task(self._run(), name="cascade-mqtt")
        if not await wait_event(self.connected, wait):
            log.warning("cascade mqtt not connected yet", extra=log_fields(broker=f"{self.host}:{self.port}"))

    async def stop(self) -> None:
        self._stopping = True  # aiomqtt may turn our cancellation into an MqttError: do not reconnect then
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)

    async def publish(self, deliveries: Sequence[Delivery]) -> None:
        client = self._client
        if client is None:
            log.warning("cascade mqtt not connected: reports not published (e-mail is sent)",
                        extra=log_fields(broker=f"{self.host}:{self.port}", reports=len(deliveries)))
            return
        messages = [(report_topic(self.prefix, d.org), self.report_payload(d)) for d in deliveries]
        try:
            for start in range(0, len(messages), _PUBLISH_CHUNK):
                await asyncio.gather(*(client.publish(topic, payload, qos=1, retain=True)
                                       for topic, payload in messages[start:start + _PUBLISH_CHUNK]))
                self.counts["published"] += len(messages[start:start + _PUBLISH_CHUNK])
        except aiomqtt.MqttError as exc:
            log.warning("cascade mqtt publish failed (e-mail is sent)", extra=log_fields(
                broker=f"{self.host}:{self.port}", error=str(exc)[:300]))

    def report_payload(self, delivery: Delivery) -> bytes:
        composer, tracker = self.composer, self.tracker
        report = tracker.reports[delivery.report]
        incident = tracker.incidents[report.incident]
        org = tracker.directory[delivery.org]
        message: dict[str, Any] = {
            "report": report.id, "incident": incident.id, "label": report.label, "final": report.final,
            "org": org.id, "drill": incident.drill, "issued_at": report.issued_at, "sent_by": delivery.sent_by,
            "subject": composer.subject(incident, report),
            "body": composer.body(incident, report, org, delivery, composer.links.url(report.id, org.id)),
            "token": composer.links.token(report.id, org.id), "ack_topic": ack_topic(self.prefix, org.id),
            "key": composer.signer.key_id}
        message["signature"] = composer.signer.sign_bytes(canonical_json(message))
        return json.dumps(message, ensure_ascii=False).encode("utf-8")

    async def _run(self) -> None:
        backoff = 0.2
        while not self._stopping:
            client = aiomqtt.Client(self.host, self.port, identifier=self.client_id,
                                    protocol=aiomqtt.ProtocolVersion.V5, clean_start=False,
                                    properties=persistent_session(SESSION_EXPIRY),
                                    max_inflight_messages=_PUBLISH_CHUNK, tls_context=self.tls,
                                    logger=logging.getLogger("alerting.cascade.mqtt.client"))
            client.pending_calls_threshold = 2 * _PUBLISH_CHUNK  # we publish in chunks on purpose: no warning
            try:
                async with client:
                    watch_refusals(client._client, self._refused)
                    await client.subscribe(f"{self.prefix}/cascade/+/ack", qos=1)
                    self._client = client
                    self.connected.set()
                    backoff = 0.2
                    log.info("cascade mqtt connected", extra=log_fields(broker=f"{self.host}:{self.port}"))
                    async for message in client.messages:
                        self._spawn(str(message.topic), bytes(message.payload))  # type: ignore[arg-type]
            except aiomqtt.MqttError as exc:
                if self._stopping:
                    return
                if self.connected.is_set():
                    log.warning("cascade mqtt disconnected", extra=log_fields(
                        broker=f"{self.host}:{self.port}", error=str(exc)[:300]))
            finally:
                self._client = None
                self.connected.clear()
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, self.backoff_max)

    def _spawn(self, topic: str, payload: bytes) -> None:
        """Handle each receipt in its own task, so that their saves share commits."""
        task = asyncio.create_task(self.handle_ack(topic, payload))
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def handle_ack(self, topic: str, payload: bytes) -> ConfirmOutcome | None:
        """One receipt from ``<prefix>/cascade/<org>/ack``; None if rejected."""
        org = topic.split("/")[-2]
        try:
            message = json.loads(payload)
            token, by = str(message["token"]), str(message.get("by") or org)[:200]
        except (ValueError, KeyError, TypeError, RecursionError):  # RecursionError: JSON nested too deeply
            return self._reject(org, "malformed")
        try:
            claim = self.composer.links.verify(token)
        except LinkError as exc:
            return self._reject(org, exc.reason)
        if claim.org != org:
            return self._reject(org, "token of another organisation")
        result = await self.tracker.confirm(claim.report, claim.org, Channel.MQTT, by)
        if result is None:
            return self._reject(org, "not sent to this organisation")
        self.counts[result.outcome.value] += 1
        return result.outcome

    def _refused(self, mid: int, reason: str) -> None:
        """A report the broker acknowledged as refused (its ACL: this certificate lacks the cascade role)."""
        self.counts["refused"] += 1
        if ("*", reason) not in self._logged:
            self._logged.add(("*", reason))
            log.warning("cascade mqtt report refused by the broker (e-mail is sent; check the certificate's roles)",
                        extra=log_fields(broker=f"{self.host}:{self.port}", reason=reason))

    def _reject(self, org: str, reason: str) -> None:
        self.counts["rejected"] += 1
        if (org, reason) not in self._logged:
            self._logged.add((org, reason))
            log.warning("cascade mqtt receipt rejected", extra=log_fields(org=org, reason=reason))
        return None
