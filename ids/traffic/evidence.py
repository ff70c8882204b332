"""Evidence for the live sensor's alerts: the packets of each alert's flow, as a pcap to download.

Every flow keeps a small ring of its latest frames (``per_flow``, each cut to ``snap``
bytes — headers and the first payload bytes, as a headers-only sensor keeps); when an alert
is raised the ring of its flow (or, for alerts about no one flow — ARP, floods — the frame
that tipped it) is frozen under the alert's key. Memory is bounded three ways: frames per
flow, bytes per frame, and frozen alerts (``alerts``, oldest dropped first); a flow's ring
goes when the flow ends.

The capture thread writes; the console reads (``alert_frames``, ``flow_frames``): single
dict operations and list copies, which the GIL keeps whole.
"""

from __future__ import annotations

import hashlib
import io
from collections import OrderedDict, deque
from typing import Any, Mapping

from ids.traffic.eve import jukimon_type
from ids.traffic.pcapio import write_pcap_to

Frame = tuple[float, bytes]


def evidence_key(alert: Mapping[str, Any]) -> str:
    """A short stable name for one alert (type, endpoints, time): the download's URL part."""
    text = f"{jukimon_type(alert)}|{alert.get('src_ip')}|{alert.get('dest_ip')}|{alert.get('timestamp')}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class Evidence:
    def __init__(self, per_flow: int = 16, snap: int = 256, alerts: int = 1000):
        self.per_flow = per_flow
        self.snap = snap
        self.keep_alerts = alerts
        self._rings: dict[int, deque[Frame]] = {}
        self._alerts: OrderedDict[str, list[Frame]] = OrderedDict()

    def record(self, flow_id: int, ts: float, frame: bytes) -> None:
        ring = self._rings.get(flow_id)
        if ring is None:
            ring = self._rings[flow_id] = deque(maxlen=self.per_flow)
        ring.append((ts, frame[:self.snap]))

    def flow_ended(self, flow_id: int) -> None:
        self._rings.pop(flow_id, None)

    def alert(self, alert: Mapping[str, Any], current: Frame | None) -> None:
        """Freeze the packets behind ``alert``: its flow's ring, else the frame being judged."""
        ring = self._rings.get(alert.get("flow_id", -1))
        frames = list(ring) if ring else ([(current[0], current[1][:self.snap])] if current else [])
        self._alerts[evidence_key(alert)] = frames
        while len(self._alerts) > self.keep_alerts:
            self._alerts.popitem(last=False)

    def alert_frames(self, key: str) -> list[Frame] | None:
        return self._alerts.get(key)

    def flow_frames(self, flow_id: int) -> list[Frame] | None:
        ring = self._rings.get(flow_id)
        return list(ring) if ring is not None else None

    @property
    def flows(self) -> int:
        return len(self._rings)


def pcap_bytes(frames: list[Frame]) -> bytes:
    """Frames as a classic pcap file in memory."""
    buffer = io.BytesIO()
    write_pcap_to(buffer, frames)
    return buffer.getvalue()
