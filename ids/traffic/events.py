"""IDS alerts as the project's ``Event`` envelope (event type ``alert``), for the bus, alerting and the console.

The origin is the host the alert accuses (the source; for a flood, whose sources are
spoofed, the victim), located in the inventory when its address is known.
"""

from __future__ import annotations

from typing import Any, Mapping

from ids.traffic.eve import AlertType, alert_time, jukimon_type
from monitor.envelope import Event, EventType, Origin, Severity, origin_of
from monitor.inventory import Device, Inventory

SOURCE = "ids.traffic"
_SEVERITY = {1: Severity.CRITICAL, 2: Severity.WARNING, 3: Severity.NOTICE}


def to_event(alert: Mapping[str, Any], inventory: Inventory | None = None,
             hosts: Mapping[str, Device] | None = None) -> Event:
    """The envelope of one EVE alert; ``hosts`` (address → device, e.g. ``Matrix.hosts``) places it."""
    accused = alert["dest_ip"] if jukimon_type(alert) == AlertType.FLOOD else alert["src_ip"]
    device = (hosts or {}).get(accused)
    origin = origin_of(inventory, device) if device is not None else Origin()
    return Event(EventType.ALERT, alert_time(alert), SOURCE, origin,
                 _SEVERITY.get(alert["alert"]["severity"], Severity.NOTICE), alert["alert"]["signature"],
                 alert["src_ip"], alert["dest_ip"], dict(alert))
