"""What every long-lived MQTT subscriber of Jukimon asks of the broker, in one place.

A subscriber whose messages matter (the monitor's intake, the cascade's receipts) connects
with MQTT v5 ``clean_start`` off and a session expiry, so the broker keeps its subscriptions
and queues its QoS-1 messages while it is away (a broker restart, a monitor restart). It
reconnects with jittered exponential backoff capped at ``RECONNECT_BACKOFF_MAX``: after a
long outage a client must be back within seconds of the broker, not tens of seconds.
"""

from __future__ import annotations

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

RECONNECT_BACKOFF_MAX = 2.0  # s; the promise: reconnected and resubscribed within 5 s


def persistent_session(expiry_s: int) -> Properties:
    """CONNECT properties asking the broker to keep the session ``expiry_s`` seconds after a disconnect."""
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = expiry_s
    return properties
