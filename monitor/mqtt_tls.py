"""MQTT over TLS with a client certificate: one settings type and one way to build the ssl context.

Every MQTT client of Jukimon (the collectors' publisher, the monitor's intake, the cascade's
channel, the MQTT notification receiver, the shard membership) takes an optional ``MqttTls``
and calls ``client_context()``; none builds its own ``SSLContext``. The broker (Mosquitto with
``deploy/mosquitto/jukimon.conf``) requires the certificate and takes its CN as the user name
for its ACLs, so the certificate decides what a component may publish and read.

A message the ACL refuses is still acknowledged (PUBACK "Not authorized"), which aiomqtt takes for
success: ``watch_refusals`` lets a client notice and say so instead of losing it in silence.

Configured as ``outputs.mqtt.tls: {ca: …, cert: …, key: …}``; the defaults are the files that
``jukimon pki init state/pki`` makes for the monitor.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from monitor.configerror import ConfigError


@dataclass(frozen=True)
class MqttTls:
    """Files for a TLS connection to the broker: the CA that signed it, and this component's cert and key."""

    ca: Path = Path("state/pki/ca.crt")
    cert: Path = Path("state/pki/monitor.crt")
    key: Path = Path("state/pki/monitor.key")

    def check(self, key: str) -> None:
        for name in ("ca", "cert", "key"):
            path = getattr(self, name)
            if not Path(path).is_file():
                raise ConfigError(f"{key}.{name}: {path} is not a file (make one with: jukimon pki init DIR)")

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only our CA, checks the broker's name and presents our certificate.

        TLS 1.2 at least; the broker's host name (or IP address) must be in its certificate's SAN.
        """
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(self.cert), str(self.key))
        return context


def client_context(tls: MqttTls | None) -> ssl.SSLContext | None:
    """The context for ``aiomqtt.Client(tls_context=…)``: None means plain MQTT."""
    return tls.client_context() if tls is not None else None


def watch_refusals(paho: Any, refused: Callable[[int, str], None]) -> None:
    """Have ``refused(mid, reason)`` called for a PUBACK with a failure reason code.

    aiomqtt and paho's ``MQTTMessageInfo`` treat any PUBACK as success; MQTT v5 brokers say in it that
    the ACL refused the message, which would otherwise be counted as published and lost in silence.
    """
    delivered = paho.on_publish

    def on_publish(client: Any, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        if getattr(reason_code, "is_failure", False):
            refused(mid, str(reason_code))
        delivered(client, userdata, mid, reason_code, properties)

    paho.on_publish = on_publish
