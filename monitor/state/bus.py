"""The monitor's judgement on the bus, so the console, alerting on another host and tools can follow it.

Topics (under the publisher's prefix, ``jukimon`` by default):

    monitor/state/<kind>/<subject>        the current state of a device, link or site — QoS 1, retained
    monitor/condition/<fingerprint>       an active condition — QoS 1, retained; emptied when it clears
    monitor/cleared/<fingerprint>         a condition that cleared — QoS 1, not retained

Retained messages let a subscriber that joins late get the whole current picture at once;
the cleared stream lets it see the end of a condition it was following.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Protocol

from monitor.state.engine import Changes


class MessagePublisher(Protocol):
    def publish_message(self, subtopic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None: ...


class StateBus:
    """A StateEngine listener: every change, published."""

    def __init__(self, publisher: MessagePublisher):
        self.publisher = publisher

    def __call__(self, changes: Changes) -> None:
        publish = self.publisher.publish_message
        for record in changes.states:
            publish(f"monitor/state/{record.kind.value}/{record.subject}",
                    _json({"state": record.state, "since": record.since, "reason": record.reason,
                           "flapping": record.flapping}), retain=True)
        for condition in (*changes.raised, *changes.updated):
            publish(f"monitor/condition/{condition.fingerprint}", _json(asdict(condition)), retain=True)
        for condition in changes.cleared:
            publish(f"monitor/condition/{condition.fingerprint}", b"", retain=True)
            publish(f"monitor/cleared/{condition.fingerprint}", _json(asdict(condition)))


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()  # StrEnums are str, tuples lists
