"""What normal looks like, learned from a capture of normal traffic: the host pairs that talk
(for new-peer alerts) and each link's peak bytes per minute by hour of week (for volume anomalies).

A "link" here is a directed host pair: on the closed network each pair of servers is one
logical circuit. Hours of week are counted in Japan time (the operating window is Japanese).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ids.traffic.decode import ARP, TCP, Packet

JST = 9 * 3600
WEEK = 7 * 86_400


def hour_of_week(ts: float) -> int:
    """0 = Monday 00:00–01:00 JST."""
    return int(((ts + JST - 4 * 86_400) % WEEK) // 3600)  # 1970-01-01 (day 0) was a Thursday


@dataclass
class Baseline:
    peers: set[tuple[str, str]] = field(default_factory=set)
    peaks: dict[tuple[str, str], dict[int, int]] = field(default_factory=dict)  # link → hour of week → bytes/min

    def peak(self, link: tuple[str, str], how: int) -> int:
        """The learned peak for this hour of week; an unlearned hour falls back to the link's overall peak."""
        hours = self.peaks.get(link)
        if not hours:
            return 0
        return hours.get(how, max(hours.values()))

    def save(self, path: str | Path) -> None:
        data = {"peers": sorted(f"{a}>{b}" for a, b in self.peers),
                "peaks": {f"{a}>{b}": {str(h): v for h, v in hours.items()} for (a, b), hours in self.peaks.items()}}
        Path(path).write_text(json.dumps(data, indent=1))

    @classmethod
    def load(cls, path: str | Path) -> "Baseline":
        data = json.loads(Path(path).read_text())
        peers = {tuple(p.split(">", 1)) for p in data["peers"]}
        peaks = {tuple(k.split(">", 1)): {int(h): v for h, v in hours.items()} for k, hours in data["peaks"].items()}
        return cls(peers, peaks)  # type: ignore[arg-type]


class BaselineLearner:
    """Feed it every decoded packet of normal traffic, then take ``baseline()``."""

    def __init__(self) -> None:
        self._peers: set[tuple[str, str]] = set()
        self._minute: dict[tuple[str, str], list[int]] = {}  # link → [minute, bytes]
        self._peaks: dict[tuple[str, str], dict[int, int]] = {}

    def packet(self, pkt: Packet, new_flow: bool) -> None:
        if pkt.proto == ARP:
            return
        link = (pkt.src, pkt.dst)
        if new_flow and (pkt.proto != TCP or pkt.flags & 0x12 == 0x02):
            self._peers.add(link)
        minute = int(pkt.ts // 60)
        state = self._minute.get(link)
        if state is None or state[0] != minute:
            if state is not None:
                self._close(link, state)
            self._minute[link] = state = [minute, 0]
        state[1] += pkt.length

    def _close(self, link: tuple[str, str], state: list[int]) -> None:
        hours = self._peaks.setdefault(link, {})
        how = hour_of_week(state[0] * 60)
        hours[how] = max(hours.get(how, 0), state[1])

    def baseline(self) -> Baseline:
        for link, state in self._minute.items():
            self._close(link, state)
        self._minute.clear()
        return Baseline(set(self._peers), {k: dict(v) for k, v in self._peaks.items()})
