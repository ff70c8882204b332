"""Notification delivery (通知): rendering, the durable outbox, and the channels (mail, webhook, MQTT, console).

Alarm logic (alerting's core) decides *what* to notify and to whom and builds a
``Notification`` with ``render``; this package makes sure it arrives exactly
once: ``DurableOutbox.enqueue`` persists it, a worker per receiver delivers it
with retries. ``MailSink`` is the embedded SMTP server of the demo and tests.

Names are imported on first use, so that ``monitor.config`` can read
``alerting.notify.settings`` without loading SMTP, HTTP, MQTT and jinja2.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "ConsoleReceiver": "console", "era_year": "jpdate", "wareki": "jpdate", "MailSink": "mailsink",
    "MqttReceiver": "mqtt", "DurableOutbox": "outbox", "OutboxEntry": "outbox", "OutboxStatus": "outbox",
    "DeliveryError": "receivers", "Receiver": "receivers", "RejectedError": "receivers", "KINDS": "compose",
    "is_drill": "compose", "mark_drill": "compose", "render": "compose", "webhook_payload": "compose",
    "EmailReceiver": "smtp", "WebhookReceiver": "webhook", "build_receivers": "channels",
    "NotifySettings": "settings", "SmtpSettings": "settings",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
