"""The MQTT receiver: the notification as JSON on one topic, QoS 1, for any subscriber (other sites, bots).

Returns only once the broker acknowledged the message (PUBACK). A broker away for
less than ``timeout`` seconds (a restart) is ridden out within the delivery, asking
again every 2 s at most, so the message goes out within seconds of its return; a
longer outage is the outbox's to retry. The payload is
the whole notification (``codec.notification_dict``): a subscriber deduplicates
on ``id`` across a redelivery.
"""

from __future__ import annotations

import asyncio
import json
import ssl

import aiomqtt

from alerting.model import Notification
from alerting.notify.codec import notification_dict
from alerting.notify.receivers import DeliveryError
from monitor.mqtt_tls import watch_refusals


# Seconds one attempt (connect, PUBACK) may take: a broker that dies after the PUBLISH resets the connection,
# but the PUBACK wait would last the whole timeout and hold the retry that would find the broker back.
ATTEMPT_TIMEOUT = 3.0


class MqttReceiver:
    def __init__(self, host: str, port: int, topic: str, qos: int = 1, *, timeout: float = 10.0,
                 tls: ssl.SSLContext | None = None) -> None:
        self.host, self.port, self.topic, self.qos = host, port, topic, qos
        self.timeout, self.tls = timeout, tls  # tls: monitor.mqtt_tls.MqttTls.client_context()

    def __repr__(self) -> str:
        return f"MqttReceiver({self.host}:{self.port} {self.topic} qos={self.qos})"

    async def deliver(self, n: Notification) -> None:
        loop = asyncio.get_running_loop()
        deadline, backoff = loop.time() + self.timeout, 0.2
        while True:
            try:
                return await self._publish_once(n)
            except DeliveryError:
                if loop.time() + backoff >= deadline:
                    raise
            await asyncio.sleep(backoff)
            backoff = min(2 * backoff, 2.0)

    async def _publish_once(self, n: Notification) -> None:
        payload = json.dumps(notification_dict(n), ensure_ascii=False).encode()
        refused: list[str] = []
        try:
            async with aiomqtt.Client(self.host, self.port, timeout=min(self.timeout, ATTEMPT_TIMEOUT), tls_context=self.tls,
                                      protocol=aiomqtt.ProtocolVersion.V5) as client:
                watch_refusals(client._client, lambda mid, reason: refused.append(reason))  # e.g. the broker's ACL
                await client.publish(self.topic, payload, qos=self.qos)
        except aiomqtt.MqttError as exc:
            raise DeliveryError(f"mqtt {self.host}:{self.port}: {exc}") from None
        if refused:
            raise DeliveryError(f"mqtt {self.host}:{self.port}: the broker refused {self.topic}: {refused[0]}")
