"""The flow table: one entry per bidirectional 5-tuple, oriented by who sent the first packet.

Counts packets, bytes and TCP flags each way with first/last seen. A flow ends on
idle timeout, on active timeout (long-lived flows are cut so their records appear),
or shortly after a TCP close; a SYN on a closed 5-tuple starts a new flow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ids.traffic.decode import FIN, RST, SYN, TCP, Packet
from ids.traffic.eve import timestamp

FlowKey = tuple[int, str, int, str, int]  # proto, client ip, client port, server ip, server port


@dataclass(frozen=True, slots=True)
class FlowTimeouts:
    tcp_idle: float = 300.0
    udp_idle: float = 60.0
    active: float = 1800.0
    closed: float = 5.0  # linger after FIN/RST so the last ACKs stay in the flow
    sweep_every: float = 10.0  # packet-time seconds between expiry sweeps


class Flow:
    __slots__ = ("id", "key", "start", "last", "pkts_ts", "pkts_tc", "bytes_ts", "bytes_tc",
                 "flags_ts", "flags_tc", "closed", "payloads_ts", "verdict")

    def __init__(self, flow_id: int, key: FlowKey, ts: float):
        self.id = flow_id
        self.key = key
        self.start = ts
        self.last = ts
        self.pkts_ts = self.pkts_tc = self.bytes_ts = self.bytes_tc = 0
        self.flags_ts = self.flags_tc = 0
        self.closed = False
        self.payloads_ts = 0  # client payload packets seen: detectors judge the first one
        self.verdict: object = None  # the communication matrix's judgement at the first packet

    def eve(self) -> dict[str, object]:
        """The EVE ``flow`` object."""
        return {"pkts_toserver": self.pkts_ts, "pkts_toclient": self.pkts_tc,
                "bytes_toserver": self.bytes_ts, "bytes_toclient": self.bytes_tc,
                "start": timestamp(self.start), "tcp_flags_ts": f"{self.flags_ts:02x}",
                "tcp_flags_tc": f"{self.flags_tc:02x}"}


class FlowTable:
    def __init__(self, timeouts: FlowTimeouts = FlowTimeouts(), on_end: Callable[[Flow], None] | None = None):
        self.timeouts = timeouts
        self.flows: dict[FlowKey, Flow] = {}
        self.on_end = on_end
        self.next_id = 1
        self.ended = 0
        self._next_sweep = 0.0

    def update(self, pkt: Packet) -> tuple[Flow, bool, bool]:
        """The packet's flow, whether the packet created it, and whether it goes client → server."""
        flows = self.flows
        key = (pkt.proto, pkt.src, pkt.sport, pkt.dst, pkt.dport)
        flow = flows.get(key)
        forward = True
        if flow is None:
            flow = flows.get((pkt.proto, pkt.dst, pkt.dport, pkt.src, pkt.sport))
            forward = False
        new = flow is None or (flow.closed and forward and pkt.flags & SYN and not pkt.flags & 0x10)
        if new:
            if flow is not None:
                self._end(flow)
            flow = Flow(self.next_id, key, pkt.ts)
            self.next_id += 1
            flows[key] = flow
            forward = True
        assert flow is not None
        flow.last = pkt.ts
        if forward:
            flow.pkts_ts += 1
            flow.bytes_ts += pkt.length
            flow.flags_ts |= pkt.flags
        else:
            flow.pkts_tc += 1
            flow.bytes_tc += pkt.length
            flow.flags_tc |= pkt.flags
        if pkt.proto == TCP and pkt.flags & (FIN | RST):
            flow.closed = True
        if pkt.ts >= self._next_sweep:
            self.expire(pkt.ts)
        return flow, new, forward

    def expire(self, now: float) -> None:
        """End flows past their idle, close or active timeout at packet time ``now``."""
        t = self.timeouts
        self._next_sweep = now + t.sweep_every
        for key, flow in list(self.flows.items()):
            idle = t.closed if flow.closed else (t.tcp_idle if key[0] == TCP else t.udp_idle)
            if now - flow.last > idle or now - flow.start > t.active:
                del self.flows[key]
                self._end(flow)

    def flush(self) -> None:
        """End every flow (end of a capture)."""
        for flow in self.flows.values():
            self._end(flow)
        self.flows.clear()

    def _end(self, flow: Flow) -> None:
        self.ended += 1
        if self.on_end is not None:
            self.on_end(flow)
