"""Who is alive: each collector's retained heartbeat on the broker, cleared by its Will when it dies.

Topics (``<prefix>`` = ``jukimon`` by default)::

    <prefix>/collectors/<id>/alive   retained, QoS 1: {"id", "started_at", "weight", "heartbeat", "version"}
                                     every ``heartbeat`` seconds; an empty retained message (the Will,
                                     or a clean stop) says the collector is gone
    <prefix>/control/recheck         {"device": "<id>"}: the device's current owner re-checks it now

The broker is the only shared state: no coordinator, no election. A SIGKILLed collector stops
answering MQTT pings, and the broker publishes its Will (an empty retained message on its alive
topic) when 1.5 × keepalive has passed. A collector still connected but no longer heartbeating (a
hung poller) is dropped by every other member once its last heartbeat is ``expire_after``
heartbeats old. Ages are measured on the receiver's monotonic clock, so clocks may disagree.
Heartbeats carry an MQTT v5 message expiry of the same length, so the broker itself forgets the
retained heartbeat of a collector that vanished while the broker was down (a persistent broker
would otherwise hand that ghost to every collector that starts).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from monitor.config import ShardSettings
from monitor.logs import fields

log = logging.getLogger("collectors.shard")

VERSION = "1"  # of the heartbeat payload
Members = dict[str, float]  # member id → weight
MembersChanged = Callable[[Members], None]
RecheckRequested = Callable[[str], None]


@dataclass
class _Seen:
    weight: float
    heartbeat: float
    at: float  # time.monotonic() of the last heartbeat received


@dataclass
class Membership:
    """This collector's heartbeat and its view of the live members; calls ``on_change`` when that view changes."""

    host: str
    port: int
    member_id: str
    on_change: MembersChanged
    on_recheck: RecheckRequested
    settings: ShardSettings = field(default_factory=ShardSettings)
    prefix: str = "jukimon"
    tls: ssl.SSLContext | None = None  # monitor.mqtt_tls: the broker's ACL gives collectors their topics
    healthy: Callable[[], bool] = lambda: True  # False: the poller is stalled, withhold our heartbeat
    started_at: float = field(default_factory=time.time)
    _seen: dict[str, _Seen] = field(default_factory=dict)
    _members: Members = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    _client: Any = None
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _leaving: bool = False

    def __post_init__(self) -> None:
        if not self.member_id or any(c in self.member_id for c in "/+#\0") or self.member_id.startswith("$"):
            raise ValueError(f"collector id {self.member_id!r}: one MQTT topic level (no / + # NUL, not $…)")

    def topic(self, member_id: str) -> str:
        return f"{self.prefix}/collectors/{member_id}/alive"

    @property
    def members(self) -> Members:
        return dict(self._members)

    async def start(self, timeout: float = 30.0) -> None:
        """Connect, learn who is there, announce ourselves; returns once the first view is known."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"membership-{self.member_id}")
        waiter = asyncio.ensure_future(self._ready.wait())
        await asyncio.wait({waiter, self._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if not self._ready.is_set():
            waiter.cancel()
            await self.stop()
            raise RuntimeError(f"no MQTT broker at {self.host}:{self.port} within {timeout:.0f} s")

    async def stop(self) -> None:
        """Say goodbye (clear our retained heartbeat) so the others take our devices over at once."""
        self._leaving = True  # no heartbeat after the goodbye: a clean DISCONNECT does not send the Will
        if self._client is not None:
            try:
                await asyncio.wait_for(self._client.publish(self.topic(self.member_id), b"", qos=1, retain=True), 3)
            except Exception as exc:  # the broker may already be gone: our Will says the same
                log.info("goodbye not sent", extra=fields(member=self.member_id, error=str(exc)[:200]))
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    # --- connection -------------------------------------------------------------

    async def _run(self) -> None:
        import aiomqtt

        backoff, failing = 0.2, False
        while True:
            client = aiomqtt.Client(
                self.host, self.port, identifier=f"jukimon-collector-{self.member_id}",
                protocol=aiomqtt.ProtocolVersion.V5, keepalive=self.settings.keepalive, clean_start=True,
                will=aiomqtt.Will(self.topic(self.member_id), b"", qos=1, retain=True), tls_context=self.tls,
                logger=logging.getLogger("collectors.shard.client"))
            try:
                async with client:
                    self._client = client
                    backoff = 0.2
                    if failing:
                        failing = False
                        log.info("membership reconnected", extra=fields(member=self.member_id))
                    await self._session(client)
            except aiomqtt.MqttError as exc:
                if not failing:  # once per outage, not per attempt
                    failing = True
                    log.warning("membership connection lost; polling the last share meanwhile",
                                extra=fields(member=self.member_id, broker=f"{self.host}:{self.port}",
                                             error=str(exc)[:200]))
            finally:
                self._client = None
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, 5.0)

    async def _session(self, client: Any) -> None:
        # After a reconnect the view so far stays: retained heartbeats refresh it, expiry prunes it.
        await client.subscribe(f"{self.prefix}/collectors/+/alive", qos=1)
        await client.subscribe(f"{self.prefix}/control/recheck", qos=1)
        reader = asyncio.get_running_loop().create_task(self._read(client))
        try:
            # Retained heartbeats of the others arrive right after SUBACK: collect them before joining,
            # so that we never poll everything for a moment while believing we are alone.
            await asyncio.sleep(min(self.settings.heartbeat, 1.0))
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            expiry = Properties(PacketTypes.PUBLISH)
            expiry.MessageExpiryInterval = math.ceil(self.settings.expire_after * self.settings.heartbeat)
            stalled = False
            while True:
                if self._leaving:  # stop() is saying goodbye on this connection, then cancels us
                    await asyncio.sleep(1.0)
                    continue
                if stalled != (not self.healthy()):  # logged once on the change, not every heartbeat
                    stalled = not stalled
                    log.warning("poller stalled: heartbeat withheld" if stalled else "poller going again",
                                extra=fields(member=self.member_id))
                if stalled:  # the others will expire us and take our devices: better than nobody polling them
                    await asyncio.sleep(min(0.5, self.settings.heartbeat))
                    continue
                await client.publish(self.topic(self.member_id), self._heartbeat(), qos=1, retain=True,
                                     properties=expiry)
                self._seen[self.member_id] = _Seen(self.settings.weight, self.settings.heartbeat, time.monotonic())
                self._update()
                self._ready.set()
                for _ in range(max(1, round(self.settings.heartbeat / 0.5))):  # expiry checked twice a second
                    await asyncio.sleep(min(0.5, self.settings.heartbeat))
                    if reader.done():
                        reader.result()  # the connection broke: raise its error
                    self._update()
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    def _heartbeat(self) -> bytes:
        return json.dumps({"id": self.member_id, "alive": True, "started_at": self.started_at,
                           "weight": self.settings.weight, "heartbeat": self.settings.heartbeat,
                           "version": VERSION}).encode()

    async def _read(self, client: Any) -> None:
        async for message in client.messages:
            topic = message.topic.value
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload or "").encode()
            if topic == f"{self.prefix}/control/recheck":
                self._recheck(payload)
            elif topic.endswith("/alive"):
                self._heard(topic.removeprefix(f"{self.prefix}/collectors/").removesuffix("/alive"), payload)

    def _heard(self, member_id: str, payload: bytes) -> None:
        if member_id == self.member_id:
            return  # our own echo (or our Will after a reconnect): we know we are alive
        try:
            beat = json.loads(payload) if payload else {}
            alive = bool(beat.get("alive", True)) if beat else False
            weight, heartbeat = float(beat.get("weight", 1.0)), float(beat.get("heartbeat", self.settings.heartbeat))
        except (ValueError, TypeError, AttributeError):
            log.warning("bad heartbeat ignored", extra=fields(member=member_id))
            return
        if alive and weight > 0 and heartbeat > 0:
            self._seen[member_id] = _Seen(weight, heartbeat, time.monotonic())
        else:
            self._seen.pop(member_id, None)
        if self._ready.is_set():
            self._update()

    def _recheck(self, payload: bytes) -> None:
        try:
            device = json.loads(payload)["device"]
        except (ValueError, TypeError, KeyError):
            log.warning("bad recheck request ignored", extra=fields(member=self.member_id))
            return
        if isinstance(device, str):
            self.on_recheck(device)

    def _update(self) -> None:
        """Drop members whose heartbeat is too old, and tell the owner if the live set changed."""
        now = time.monotonic()
        for member_id, seen in list(self._seen.items()):
            if member_id != self.member_id and now - seen.at > self.settings.expire_after * seen.heartbeat:
                log.warning("collector expired: no heartbeat", extra=fields(member=member_id,
                                                                             age_s=round(now - seen.at, 1)))
                del self._seen[member_id]
        members = {member_id: seen.weight for member_id, seen in self._seen.items()}
        if members != self._members:
            joined, left = sorted(members.keys() - self._members), sorted(self._members.keys() - members)
            log.info("collectors changed", extra=fields(member=self.member_id, live=len(members),
                                                         joined=",".join(joined), left=",".join(left)))
            self._members = members
            self.on_change(dict(members))
