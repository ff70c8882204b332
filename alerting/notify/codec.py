"""A ``Notification`` as JSON and back: the outbox's stored payload and the MQTT/webhook message body.

Also the notification's delivery key: a short ASCII digest of its id, for the
places an id must fit (Message-ID, Idempotency-Key) — the same notification
delivered twice carries the same key, so a receiver can drop the second copy.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from alerting.model import Notification


def notification_dict(n: Notification) -> dict[str, Any]:
    """JSON-ready fields of ``n`` (the alarm fingerprints as a list)."""
    return {**dataclasses.asdict(n), "alarms": list(n.alarms)}


def notification_from_dict(data: dict[str, Any]) -> Notification:
    return Notification(**{**data, "alarms": tuple(data["alarms"])})


def delivery_key(n: Notification) -> str:
    return hashlib.sha256(n.id.encode()).hexdigest()[:32]
