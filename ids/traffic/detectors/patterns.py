"""Behaviour detectors over time windows: scans, brute force, floods and beacons."""

from __future__ import annotations

import math
from collections import deque

from ids.traffic.config import IdsConfig
from ids.traffic.decode import ICMP, PROTO_NAMES, SYN, TCP, UDP, Packet
from ids.traffic.detectors.policy import Verdict
from ids.traffic.detectors.sink import AlertSink, Window
from ids.traffic.eve import AlertType, make_alert
from ids.traffic.flows import Flow
from ids.traffic.matrix import MatrixRule


class ScanDetector:
    """Many ports on one host (vertical) or one port on many hosts (horizontal) from one source.

    Flows the communication matrix allows are not probes: the network monitor polling every
    device over SNMP is not a horizontal scan.
    """

    def __init__(self, config: IdsConfig, sink: AlertSink):
        self.config = config
        self.sink = sink
        self.vertical: dict[tuple[str, str], Window] = {}
        self.horizontal: dict[tuple[str, int, int], Window] = {}

    def flow_start(self, pkt: Packet, flow: Flow, verdict: Verdict) -> None:
        if verdict:
            return
        c = self.config
        kind = "SYN" if pkt.proto == TCP else PROTO_NAMES[pkt.proto]
        v = self.vertical.setdefault((pkt.src, pkt.dst), Window(pkt.ts))
        if v.add(pkt.ts, c.scan_window, (pkt.proto, pkt.dport)) >= c.scan_ports and not v.fired:
            v.fired = True
            self._alert(pkt, flow, f"vertical {kind}", {"ports": sorted(p for _, p in v.items)[:50],
                                                        "distinct_ports": len(v.items)}, pkt.dst)
        h = self.horizontal.setdefault((pkt.src, pkt.proto, pkt.dport), Window(pkt.ts))
        if h.add(pkt.ts, c.scan_window, pkt.dst) >= c.scan_hosts and not h.fired:
            h.fired = True
            self._alert(pkt, flow, f"horizontal {kind}", {"hosts": sorted(h.items)[:50],
                                                          "distinct_hosts": len(h.items)}, None)

    def _alert(self, pkt: Packet, flow: Flow, kind: str, evidence: dict, target: str | None) -> None:
        key = (AlertType.SCAN, pkt.src, target, kind)
        if self.sink.due(key, pkt.ts):
            evidence.update(kind=kind, window_s=self.config.scan_window)
            self.sink.emit(key, pkt.ts, make_alert(
                AlertType.SCAN, pkt, f"JUKIMON {kind} port scan",
                f"scan: ≥{self.config.scan_ports} ports or ≥{self.config.scan_hosts} hosts in {self.config.scan_window:g} s",
                evidence, flow=flow))


class BruteForceDetector:
    """Many TCP connections from one source to one service in a window (password guessing)."""

    def __init__(self, config: IdsConfig, sink: AlertSink):
        self.config = config
        self.sink = sink
        self.counts: dict[tuple[str, str, int], list[float]] = {}  # [window start, attempts]

    def flow_start(self, pkt: Packet, flow: Flow, verdict: Verdict) -> None:
        if pkt.proto != TCP:
            return
        c = self.config
        key = (pkt.src, pkt.dst, pkt.dport)
        state = self.counts.get(key)
        if state is None or pkt.ts - state[0] > c.brute_window:
            self.counts[key] = state = [pkt.ts, 0]
        state[1] += 1
        if state[1] == c.brute_attempts:
            alert_key = (AlertType.BRUTE_FORCE, *key)
            if self.sink.due(alert_key, pkt.ts):
                self.sink.emit(alert_key, pkt.ts, make_alert(
                    AlertType.BRUTE_FORCE, pkt, f"JUKIMON brute force against TCP/{pkt.dport}",
                    f"brute force: ≥{c.brute_attempts} connections to one service in {c.brute_window:g} s",
                    {"attempts": int(state[1]), "window_s": c.brute_window, "first_attempt": state[0]}, flow=flow))


class FloodDetector:
    """SYNs, echo requests or UDP datagrams to one host above a rate, from any number of sources."""

    def __init__(self, config: IdsConfig, sink: AlertSink):
        self.limit = config.flood_pps
        self.sink = sink
        self.seconds: dict[str, list] = {}  # dst → [second, count, sources]

    def packet(self, pkt: Packet) -> None:
        proto = pkt.proto
        if not ((proto == TCP and pkt.flags & 0x12 == SYN) or (proto == ICMP and pkt.icmp_type == 8) or proto == UDP):
            return
        second = int(pkt.ts)
        state = self.seconds.get(pkt.dst)
        if state is None or state[0] != second:
            self.seconds[pkt.dst] = state = [second, 0, {}]
        state[1] += 1
        sources = state[2]
        if len(sources) < 1000:
            sources[pkt.src] = sources.get(pkt.src, 0) + 1
        if state[1] == self.limit:
            key = (AlertType.FLOOD, pkt.dst)
            if self.sink.due(key, pkt.ts):
                top = max(sources, key=sources.get)
                self.sink.emit(key, pkt.ts, make_alert(
                    AlertType.FLOOD, pkt, f"JUKIMON {PROTO_NAMES[proto]} flood",
                    f"flood: ≥{self.limit} connection attempts/datagrams per second to one host",
                    {"packets_in_second": state[1], "distinct_sources": len(sources), "top_source": top}))


class BeaconDetector:
    """Connections of one shape from one host to one service at near-fixed intervals (command-and-control).

    Judged when a flow ends, grouped by its client's packets and bytes (in 256-byte steps): an
    implant's check-ins are alike, so they stand out even inside a busy legitimate service whose
    own connections come at random times and sizes.
    """

    def __init__(self, config: IdsConfig, sink: AlertSink):
        self.config = config
        self.sink = sink
        self.starts: dict[tuple[str, str, int, int, int], deque[float]] = {}

    def flow_end(self, flow: Flow) -> None:
        c = self.config
        proto, src, sport, dst, dport = flow.key
        verdict = flow.verdict
        if proto not in (TCP, UDP) or dport in c.periodic_ports or (
                isinstance(verdict, MatrixRule) and verdict.periodic):
            return
        key = (src, dst, dport, flow.pkts_ts, flow.bytes_ts >> 8)
        starts = self.starts.get(key)
        if starts is None:
            self.starts[key] = starts = deque(maxlen=c.beacon_intervals + 1)
        starts.append(flow.start)
        if len(starts) <= c.beacon_intervals:
            return
        ordered = sorted(starts)  # flows end out of start order
        gaps = [b - a for a, b in zip(ordered, ordered[1:], strict=False)]
        mean = sum(gaps) / len(gaps)
        jitter = math.sqrt(sum((g - mean) ** 2 for g in gaps) / len(gaps))  # statistics.pstdev is exact but slow
        if mean < c.beacon_min_interval or jitter > c.beacon_jitter * mean:
            return
        alert_key = (AlertType.BEACON, src, dst, dport)
        if self.sink.due(alert_key, flow.last):
            pkt = Packet(flow.last, proto, src, dst, sport, dport, 0, b"", 0)
            self.sink.emit(alert_key, flow.last, make_alert(
                AlertType.BEACON, pkt, "JUKIMON periodic beacon",
                f"beacon: {c.beacon_intervals} intervals between alike connections with jitter below "
                f"{c.beacon_jitter:.0%} of the mean",
                {"interval_s": round(mean, 3), "jitter_s": round(jitter, 3), "connections": len(starts),
                 "packets_to_server": flow.pkts_ts, "bytes_to_server": flow.bytes_ts}, flow=flow))
