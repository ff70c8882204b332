"""Protocol anomaly detectors: tunnelling in ICMP or DNS, and ARP bindings that change."""

from __future__ import annotations

import math
from collections import Counter

from ids.traffic.config import IdsConfig
from ids.traffic.decode import Packet
from ids.traffic.detectors.sink import AlertSink
from ids.traffic.eve import AlertType, make_alert


def entropy(data: bytes) -> float:
    """Shannon entropy in bits per byte."""
    n = len(data)
    return -sum(c / n * math.log2(c / n) for c in Counter(data).values()) if n else 0.0


def dns_labels(payload: bytes) -> list[bytes]:
    """The labels of the first question's name; stops quietly at anything malformed."""
    labels: list[bytes] = []
    at = 12
    while at < len(payload):
        size = payload[at]
        if size == 0 or size & 0xC0:
            break
        labels.append(payload[at + 1:at + 1 + size])
        at += 1 + size
    return labels


class TunnelDetector:
    def __init__(self, config: IdsConfig, sink: AlertSink):
        self.config = config
        self.sink = sink

    def icmp(self, pkt: Packet) -> None:
        """Echo payloads far larger than a ping's, or random-looking ones, carry data."""
        data = pkt.payload
        if pkt.icmp_type not in (0, 8) or len(data) < 64:
            return
        size_bad = len(data) > self.config.icmp_payload_max
        bits = entropy(bytes(data))
        if size_bad or bits >= self.config.icmp_entropy_min:
            self._alert(pkt, "ICMP", {"payload_bytes": len(data), "entropy_bits_per_byte": round(bits, 2)})

    def dns(self, pkt: Packet) -> None:
        """Queries with long labels or names encode data in the name."""
        labels = dns_labels(pkt.payload)
        longest = max((len(label) for label in labels), default=0)
        name_length = sum(len(label) + 1 for label in labels)
        if longest > self.config.dns_label_max or name_length > self.config.dns_name_max:
            name = b".".join(labels).decode("latin-1")
            self._alert(pkt, "DNS", {"query": name[:200], "longest_label": longest, "name_length": name_length})

    def _alert(self, pkt: Packet, carrier: str, evidence: dict) -> None:
        key = (AlertType.TUNNEL, pkt.src, pkt.dst, carrier)
        if self.sink.due(key, pkt.ts):
            c = self.config
            rule = (f"tunnel: ICMP echo payload > {c.icmp_payload_max} B or entropy ≥ {c.icmp_entropy_min} bit/B"
                    if carrier == "ICMP" else
                    f"tunnel: DNS label > {c.dns_label_max} or name > {c.dns_name_max} characters")
            self.sink.emit(key, pkt.ts, make_alert(AlertType.TUNNEL, pkt, f"JUKIMON {carrier} tunnel", rule,
                                                   {"carrier": carrier, **evidence}))


class ArpSpoofDetector:
    """An IP address announced from a second MAC address (ARP cache poisoning)."""

    def __init__(self, sink: AlertSink):
        self.sink = sink
        self.bindings: dict[str, bytes] = {}

    def arp(self, pkt: Packet) -> None:
        if pkt.src == "0.0.0.0":  # ARP probes (RFC 5227) claim nothing
            return
        known = self.bindings.get(pkt.src)
        if known is None:
            self.bindings[pkt.src] = pkt.src_mac
            return
        if known == pkt.src_mac:
            return
        key = (AlertType.ARP_SPOOF, pkt.src, pkt.src_mac)
        if self.sink.due(key, pkt.ts):
            self.sink.emit(key, pkt.ts, make_alert(
                AlertType.ARP_SPOOF, pkt, "JUKIMON ARP binding changed", "ARP: IP address claimed by a second MAC",
                {"ip": pkt.src, "known_mac": known.hex(":"), "claimed_mac": pkt.src_mac.hex(":"),
                 "arp_op": "reply" if pkt.arp_op == 2 else "request"}))
