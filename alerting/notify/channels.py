"""Receivers from the routing configuration: each named receiver (alerting.routing.Receiver) as its channel.

The routing file says *who* (a mail address list, a webhook URL, an MQTT
topic); the ``notify:`` settings and the running process say *through what*
(the SMTP relay or the embedded sink, the monitor's MQTT broker).
"""

from __future__ import annotations

import ssl
from typing import Mapping

from alerting.notify.console import ConsoleReceiver
from alerting.notify.mqtt import MqttReceiver
from alerting.notify.receivers import Receiver
from alerting.notify.settings import NotifySettings, SmtpSettings
from alerting.notify.smtp import EmailReceiver
from alerting.notify.webhook import WebhookReceiver
from alerting.routing import Receiver as ReceiverConfig
from monitor.configerror import ConfigError


def build_receivers(configured: Mapping[str, ReceiverConfig], settings: NotifySettings, *, smtp: SmtpSettings,
                    mqtt: tuple[str, int] | None, console: ConsoleReceiver,
                    mqtt_tls: ssl.SSLContext | None = None) -> dict[str, Receiver]:
    """One channel per configured receiver; ``smtp`` is the relay to use (with its host resolved),
    ``mqtt`` the broker's (host, port) or None when the monitor runs without one, ``mqtt_tls`` its TLS."""
    return {name: _channel(config, settings, smtp, mqtt, console, mqtt_tls) for name, config in configured.items()}


def _channel(config: ReceiverConfig, settings: NotifySettings, smtp: SmtpSettings, mqtt: tuple[str, int] | None,
             console: ConsoleReceiver, mqtt_tls: ssl.SSLContext | None) -> Receiver:
    key = f"receivers.{config.name}"
    if config.type == "console":
        return console
    if config.type == "email":
        if smtp.host is None:
            raise ConfigError(f"{key}: no SMTP relay and no mail sink running")
        return EmailReceiver(smtp.host, smtp.port, smtp.sender, list(config.to), smtp.starttls, smtp.user,
                             smtp.password, smtp.timeout)
    if config.type == "webhook" and config.url:
        return WebhookReceiver(config.url, settings.webhook_timeout)
    if config.type == "mqtt" and config.topic:
        if mqtt is None:
            raise ConfigError(f"{key}: an MQTT receiver needs the monitor's broker (outputs.mqtt)")
        return MqttReceiver(mqtt[0], mqtt[1], config.topic, tls=mqtt_tls)
    raise ConfigError(f"{key}: cannot deliver to type {config.type!r} as configured")
