"""The one interface every notification channel implements, and the two ways a delivery fails.

A receiver takes a rendered ``Notification`` and puts it on its channel (mail,
webhook, MQTT, console) — or raises. The outbox owns retries and order, so a
receiver is stateless between deliveries: each one connects, sends and
disconnects, and an outage leaves no stale connection behind (notifications are
grouped, a few a minute: the connect cost does not matter).

``DeliveryError`` means "try again later" (server down, timeout, 5xx);
``RejectedError`` means the channel refused this very message for good (a
recipient that does not exist, a 4xx on the payload): retrying would block the
receiver's queue forever, so the outbox marks it failed and moves on.
"""

from __future__ import annotations

from typing import Protocol

from alerting.model import Notification


class DeliveryError(RuntimeError):
    """The channel could not take the notification now; the outbox retries it later."""


class RejectedError(DeliveryError):
    """The channel refused this notification permanently; retrying cannot help."""


class Receiver(Protocol):
    async def deliver(self, n: Notification) -> None:
        """Put ``n`` on the channel; return only once the channel accepted it, raise otherwise."""
