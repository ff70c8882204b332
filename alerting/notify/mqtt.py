"""The MQTT receiver: the notification as JSON on one topic, QoS 1, for any subscriber (other sites, bots).

Returns only once the broker acknowledged the message (PUBACK). The payload is
the whole notification (``codec.notification_dict``): a subscriber deduplicates
on ``id`` across a redelivery.
"""

from __future__ import annotations

import json
import ssl

import aiomqtt

from alerting.model import Notification
from alerting.notify.codec import notification_dict
from alerting.notify.receivers import DeliveryError


class MqttReceiver:
    def __init__(self, host: str, port: int, topic: str, qos: int = 1, *, timeout: float = 10.0,
                 tls: ssl.SSLContext | None = None) -> None:
        self.host, self.port, self.topic, self.qos = host, port, topic, qos
        self.timeout, self.tls = timeout, tls  # tls: monitor.mqtt_tls.MqttTls.client_context()

    def __repr__(self) -> str:
        return f"MqttReceiver({self.host}:{self.port} {self.topic} qos={self.qos})"

    async def deliver(self, n: Notification) -> None:
        payload = json.dumps(notification_dict(n), ensure_ascii=False).encode()
        try:
            async with aiomqtt.Client(self.host, self.port, timeout=self.timeout, tls_context=self.tls,
                                      protocol=aiomqtt.ProtocolVersion.V5) as client:
                await client.publish(self.topic, payload, qos=self.qos)
        except aiomqtt.MqttError as exc:
            raise DeliveryError(f"mqtt {self.host}:{self.port}: {exc}") from None
