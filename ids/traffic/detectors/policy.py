"""Policy detectors judged once per new flow: communication matrix, forbidden protocols, new peers,
and cleartext on the first client payload to a TLS port."""

from __future__ import annotations

from ids.traffic.config import IdsConfig
from ids.traffic.decode import PROTO_NAMES, Packet
from ids.traffic.detectors.sink import AlertSink
from ids.traffic.eve import AlertType, make_alert
from ids.traffic.flows import Flow
from ids.traffic.matrix import Matrix, MatrixRule

Verdict = MatrixRule | bool | None  # allowing rule, False: violation, None: not judged (unknown host or no inventory)


class MatrixDetector:
    def __init__(self, matrix: Matrix, config: IdsConfig, sink: AlertSink):
        self.matrix = matrix
        self.sink = sink

    def judge(self, pkt: Packet, flow: Flow) -> Verdict:
        """The verdict on a new flow, alerting on a violation (once per host pair per hold time)."""
        if not self.matrix.judged(pkt.src, pkt.dst):
            return None
        rule = self.matrix.rule_for(pkt.src, pkt.dst, pkt.proto, pkt.dport)
        if rule is not None:
            return rule
        key = (AlertType.MATRIX_VIOLATION, pkt.src, pkt.dst)
        if self.sink.due(key, pkt.ts):
            s, d = self.matrix.clients[pkt.src], self.matrix.hosts[pkt.dst]
            service = f"{PROTO_NAMES[pkt.proto]}/{pkt.dport}"
            self.sink.emit(key, pkt.ts, make_alert(
                AlertType.MATRIX_VIOLATION, pkt, f"JUKIMON matrix violation {s.role} → {d.role} {service}",
                "communication matrix: no rule allows this role pair and service",
                {"src_device": s.id, "src_role": str(s.role), "dest_device": d.id, "dest_role": str(d.role),
                 "service": service}, flow=flow))
        return False


class ForbiddenProtocolDetector:
    def __init__(self, config: IdsConfig, sink: AlertSink):
        self.ports = config.forbidden_ports
        self.sink = sink

    def flow_start(self, pkt: Packet, flow: Flow, verdict: Verdict) -> None:
        name = self.ports.get(pkt.dport)
        if name is None or verdict:
            return
        key = (AlertType.FORBIDDEN_PROTOCOL, pkt.src, pkt.dst, pkt.dport)
        if self.sink.due(key, pkt.ts):
            self.sink.emit(key, pkt.ts, make_alert(
                AlertType.FORBIDDEN_PROTOCOL, pkt, f"JUKIMON forbidden protocol {name}",
                f"protocol policy: {name} ({PROTO_NAMES[pkt.proto]}/{pkt.dport}) does not exist on this network",
                {"protocol": name, "port": pkt.dport}, flow=flow))


class NewPeerDetector:
    """Two hosts that both talked while learning, talking to each other for the first time.

    Pairs the matrix forbids are left to the matrix alert, pairs of an any-to-any rule (CS ↔ CS
    notices between any two towns) are normal when new; hosts never seen while learning
    (spoofed flood sources, an intruder's own machine) are left to the other detectors, or
    every spoofed packet would be a "new peer".
    """

    def __init__(self, peers: set[tuple[str, str]], sink: AlertSink):
        self.peers = set(peers)
        self.hosts = {host for pair in peers for host in pair}
        self.sink = sink

    def flow_start(self, pkt: Packet, flow: Flow, verdict: Verdict) -> None:
        pair = (pkt.src, pkt.dst)
        if pair in self.peers or verdict is False or pkt.src not in self.hosts or pkt.dst not in self.hosts \
                or (isinstance(verdict, MatrixRule) and verdict.any_peer):
            return
        self.peers.add(pair)
        self.sink.emit((AlertType.NEW_PEER, pkt.src, pkt.dst), pkt.ts, make_alert(
            AlertType.NEW_PEER, pkt, "JUKIMON new peer pair", "baseline: host pair not seen while learning",
            {"service": f"{PROTO_NAMES[pkt.proto]}/{pkt.dport}",
             "matrix_rule": verdict.name if isinstance(verdict, MatrixRule) else None}, flow=flow))


class CleartextDetector:
    """The first client payload to a TLS port must be a TLS record (content type 20–23, major version 3)."""

    def __init__(self, config: IdsConfig, sink: AlertSink):
        self.ports = config.tls_ports
        self.sink = sink

    def first_payload(self, pkt: Packet, flow: Flow) -> None:
        data = pkt.payload
        if pkt.dport not in self.ports or (len(data) >= 3 and 20 <= data[0] <= 23 and data[1] == 3):
            return
        key = (AlertType.CLEARTEXT, pkt.src, pkt.dst, pkt.dport)
        if self.sink.due(key, pkt.ts):
            self.sink.emit(key, pkt.ts, make_alert(
                AlertType.CLEARTEXT, pkt, "JUKIMON cleartext on a TLS-required port",
                "protocol policy: payload to a TLS port does not start with a TLS record",
                {"first_bytes_hex": bytes(data[:16]).hex(), "first_bytes_text": bytes(data[:48]).decode("latin-1")},
                flow=flow))
