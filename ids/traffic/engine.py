"""The per-packet path: decode → flow table → detectors → EVE alerts.

Detectors are wired by hook so a packet only reaches those that judge it: new flows
(policy, scans, brute force, new peers), ended flows (beacons), the first client payload (cleartext),
payload packets (signatures), ICMP and DNS (tunnels), ARP (spoofing) and every IP
packet (floods outside the flows the matrix allows, volume).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from ids.traffic.baseline import Baseline
from ids.traffic.config import DEFAULT_CONFIG, IdsConfig
from ids.traffic.decode import ARP, ICMP, SYN, TCP, UDP, Malformed, decode
from ids.traffic.detectors.patterns import BeaconDetector, BruteForceDetector, FloodDetector, ScanDetector
from ids.traffic.detectors.policy import (CleartextDetector, ForbiddenProtocolDetector, MatrixDetector,
                                          NewPeerDetector)
from ids.traffic.detectors.protocol import ArpSpoofDetector, TunnelDetector
from ids.traffic.detectors.signature import SignatureDetector
from ids.traffic.detectors.sink import AlertSink
from ids.traffic.detectors.volume import VolumeDetector
from ids.traffic.evidence import Evidence
from ids.traffic.flows import Flow, FlowTable
from ids.traffic.matrix import Matrix
from ids.traffic.rules import Rule
from monitor.inventory import Inventory
from monitor.logs import fields

log = logging.getLogger(__name__)

Alert = dict[str, Any]


@dataclass
class EngineStats:
    packets: int = 0
    decoded: int = 0
    malformed: int = 0
    ignored: int = 0  # frames the IDS does not judge: other protocols (IPv6, LLDP, …), the monitor host's own plumbing
    alerts: int = 0


class Engine:
    """Feed it frames with ``frame()``; alerts go to ``on_alert`` as EVE dicts. Call ``close()`` at the end."""

    def __init__(self, on_alert: Callable[[Alert], None], *, inventory: Inventory | None = None,
                 baseline: Baseline | None = None, rules: list[Rule] | None = None,
                 config: IdsConfig = DEFAULT_CONFIG, monitor_sources: frozenset[str] = frozenset(),
                 evidence: Evidence | None = None):
        """``monitor_sources``: the monitoring host's own addresses (``Matrix``); traffic between two of them is
        its plumbing (store, broker, TSDB, console), not the network's, and is not judged.
        ``evidence``: keep each flow's latest frames and freeze them with every alert (the live sensor does)."""
        self.stats = EngineStats()
        self._own = monitor_sources
        self.evidence = evidence
        self._current: tuple[float, bytes] | None = None  # the frame being judged, for evidence
        self._on_alert = on_alert
        sink = AlertSink(config.hold, self._deliver)
        self.matrix = MatrixDetector(Matrix(inventory, tls_ports=config.tls_ports, snmp_ports=config.snmp_ports,
                                            monitor_sources=monitor_sources), config, sink) if inventory else None
        flow_start = [ForbiddenProtocolDetector(config, sink), ScanDetector(config, sink),
                      BruteForceDetector(config, sink)]
        self._beacon = BeaconDetector(config, sink).flow_end
        self.flows = FlowTable(config.flows, on_end=self._flow_ended if evidence is not None else self._beacon)
        if baseline is not None:
            flow_start.append(NewPeerDetector(baseline.peers, sink))
        self._flow_start = [d.flow_start for d in flow_start]
        self._cleartext = CleartextDetector(config, sink).first_payload
        self._signature = SignatureDetector(rules, config, sink).payload if rules else None
        self._tunnel = TunnelDetector(config, sink)
        self._arp = ArpSpoofDetector(sink).arp
        self._flood = FloodDetector(config, sink).packet
        self._volume = VolumeDetector(baseline, config, sink).packet if baseline is not None else None

    def _deliver(self, alert: Alert) -> None:
        self.stats.alerts += 1
        if self.evidence is not None:
            self.evidence.alert(alert, self._current)
        self._on_alert(alert)

    def _flow_ended(self, flow: Flow) -> None:
        self._beacon(flow)  # may alert, with the flow's frames still at hand
        assert self.evidence is not None
        self.evidence.flow_ended(flow.id)

    def frame(self, ts: float, linktype: int, data: bytes) -> None:
        stats = self.stats
        stats.packets += 1
        try:
            pkt = decode(ts, linktype, data)
        except Malformed as exc:
            stats.malformed += 1
            log.debug("malformed frame skipped", extra=fields(ts=ts, reason=str(exc)))
            return
        if pkt is None or (self._own and pkt.src in self._own and pkt.dst in self._own):
            stats.ignored += 1
            return
        stats.decoded += 1
        evidence = self.evidence
        if evidence is not None:
            self._current = (ts, data)
        proto = pkt.proto
        if proto == ARP:
            self._arp(pkt)
            return
        flow, new, forward = self.flows.update(pkt)
        if evidence is not None:
            evidence.record(flow.id, ts, data)
        if proto == TCP or proto == UDP:
            if new and (proto == UDP or pkt.flags & 0x12 == SYN):
                verdict = flow.verdict = self.matrix.judge(pkt, flow) if self.matrix is not None else None
                for hook in self._flow_start:
                    hook(pkt, flow, verdict)
            if pkt.payload:
                if forward and not flow.payloads_ts:
                    self._cleartext(pkt, flow)
                if forward:
                    flow.payloads_ts += 1
                if self._signature is not None:
                    self._signature(pkt, flow, forward)
                if proto == UDP and pkt.dport == 53:
                    self._tunnel.dns(pkt)
        elif proto == ICMP:
            self._tunnel.icmp(pkt)
            if pkt.payload and self._signature is not None:
                self._signature(pkt, flow, forward)
        if not flow.verdict:  # flows the matrix allows (polls and their answers, thousands a second) are no flood
            self._flood(pkt)
        if self._volume is not None:
            self._volume(pkt)

    def close(self) -> None:
        self.flows.flush()
