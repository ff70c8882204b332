"""Alerts onto the MQTT bus as envelope events (``event_type`` alert), for alerting and the console.

Topic (collectors.outputs.mqtt): ``jukimon/<tier>/<organisation>/<terminal>/event/alert``,
QoS 1. The body is the alert's JSON (docs/audit-records.md): pseudonyms at most, never
a resident code.
"""

from __future__ import annotations

from typing import Callable, Iterable

from ids.operations.alerts import Alert
from ids.operations.directory import Directory
from monitor.envelope import Event, EventType, Origin, Severity
from monitor.mqtt_tls import MqttTls, client_context

SOURCE = "ids.operations"


def alert_event(alert: Alert, directory: Directory) -> Event:
    organisation = directory.organisations.get(alert.organisation)
    origin = Origin(device=alert.terminal, site=alert.organisation,
                    prefecture=organisation.prefecture if organisation else None,
                    tier=organisation.tier if organisation else None,
                    role="terminal" if alert.terminal else None)
    return Event(EventType.ALERT, alert.end, SOURCE, origin, Severity(alert.severity),
                 f"{alert.type.value}: {alert.rule}", body=alert.as_dict())


async def publish_alerts(alerts: Iterable[Alert], directory: Directory, host: str, port: int,
                         *, tls: MqttTls | None = None, topic_prefix: str = "jukimon",
                         on_each: Callable[[Alert], None] | None = None) -> int:
    """Publish every alert (QoS 1) and wait until the broker has them; returns how many.

    ``tls``: the client certificate the broker's ACL knows (outputs.mqtt.tls); None is plain MQTT.
    """
    from collectors.outputs.mqtt import MqttPublisher

    publisher = MqttPublisher(host, port, client_id="jukimon-opsids", topic_prefix=topic_prefix,
                              tls=client_context(tls))
    await publisher.start()
    count = 0
    try:
        for alert in alerts:
            if on_each is not None:
                on_each(alert)
            publisher.publish(alert_event(alert, directory))
            count += 1
        await publisher.drain()
    finally:
        await publisher.stop()
    return count
