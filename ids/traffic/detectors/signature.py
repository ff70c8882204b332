"""Signature matching of loaded rules against each payload packet (no stream reassembly)."""

from __future__ import annotations

from ids.traffic.config import IdsConfig
from ids.traffic.decode import Packet
from ids.traffic.detectors.sink import AlertSink
from ids.traffic.eve import AlertType, make_alert
from ids.traffic.flows import Flow
from ids.traffic.rules import Rule


class SignatureDetector:
    def __init__(self, rules: list[Rule], config: IdsConfig, sink: AlertSink):
        self.rules = rules
        self.sink = sink
        self.hold = config.hold
        self.counts: dict[tuple[int, str], list[float]] = {}  # (sid, tracked ip) → [window start, count]

    def payload(self, pkt: Packet, flow: Flow, to_server: bool) -> None:
        data = bytes(pkt.payload)
        lowered: bytes | None = None
        for rule in self.rules:  # cheapest tests first: most payloads fail the content check
            if pkt.proto not in rule.protos:
                continue
            if lowered is None and any(c.nocase for c in rule.contents):
                lowered = data.lower()
            if all((c.pattern in (lowered if c.nocase else data)) != c.negated for c in rule.contents) \
                    and all(p.search(data) for p in rule.pcres) and self._header(rule, pkt) \
                    and self._flow(rule, flow, to_server) and self._threshold(rule, pkt):
                self._alert(rule, pkt, flow, data)

    @staticmethod
    def _header(rule: Rule, pkt: Packet) -> bool:
        forward = (rule.src.addr(pkt.src) and rule.sport.port(pkt.sport)
                   and rule.dst.addr(pkt.dst) and rule.dport.port(pkt.dport))
        return forward or (rule.bidirectional and rule.src.addr(pkt.dst) and rule.sport.port(pkt.dport)
                           and rule.dst.addr(pkt.src) and rule.dport.port(pkt.sport))

    @staticmethod
    def _flow(rule: Rule, flow: Flow, to_server: bool) -> bool:
        wants = rule.flow
        if not wants:
            return True
        if ({"to_server", "from_client"} & wants and not to_server) or \
                ({"to_client", "from_server"} & wants and to_server):
            return False
        return "established" not in wants or flow.pkts_tc > 0

    def _threshold(self, rule: Rule, pkt: Packet) -> bool:
        """Suricata threshold semantics: limit = first N per window, threshold = every Nth, both = once at N."""
        t = rule.threshold
        if t is None:
            return True
        tracked = pkt.src if t.get("track", "by_src") == "by_src" else pkt.dst
        count, seconds = int(t.get("count", 1)), float(t.get("seconds", 60))
        state = self.counts.get((rule.sid, tracked))
        if state is None or pkt.ts - state[0] > seconds:
            self.counts[(rule.sid, tracked)] = state = [pkt.ts, 0]
        state[1] += 1
        kind = t.get("type", "limit")
        if kind == "limit":
            return state[1] <= count
        if kind == "threshold":
            return state[1] % count == 0
        return state[1] == count

    def _alert(self, rule: Rule, pkt: Packet, flow: Flow, data: bytes) -> None:
        key = (AlertType.SIGNATURE, rule.sid, pkt.src, pkt.dst)
        if self.sink.due(key, pkt.ts):
            self.sink.emit(key, pkt.ts, make_alert(
                AlertType.SIGNATURE, pkt, rule.msg, f"rule sid {rule.sid}: {rule.text}",
                {"payload_printable": data[:120].decode("latin-1"), "sid": rule.sid},
                flow=flow, sid=rule.sid, severity=rule.priority, category=rule.classtype))
