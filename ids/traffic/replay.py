"""Running the IDS over capture files: alerts from a replay, and a baseline learned from normal traffic."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ids.traffic.baseline import Baseline, BaselineLearner
from ids.traffic.config import DEFAULT_CONFIG, IdsConfig
from ids.traffic.decode import ARP, Malformed, decode
from ids.traffic.engine import Alert, Engine, EngineStats
from ids.traffic.flows import FlowTable
from ids.traffic.pcapio import read_capture
from ids.traffic.rules import Rule
from monitor.inventory import Inventory


def replay(path: str | Path, on_alert: Callable[[Alert], None], *, inventory: Inventory | None = None,
           baseline: Baseline | None = None, rules: list[Rule] | None = None,
           config: IdsConfig = DEFAULT_CONFIG) -> EngineStats:
    """Run every detector over the capture; returns the packet counts."""
    engine = Engine(on_alert, inventory=inventory, baseline=baseline, rules=rules, config=config)
    frame = engine.frame
    for ts, linktype, data in read_capture(path):
        frame(ts, linktype, data)
    engine.close()
    return engine.stats


def replay_alerts(path: str | Path, **options) -> tuple[list[Alert], EngineStats]:
    alerts: list[Alert] = []
    stats = replay(path, alerts.append, **options)
    return alerts, stats


class FrameLearner:
    """Learns what normal looks like from frames: a capture file's (``learn_baseline``) or an interface's, fed
    by ``live.capture`` like an ``Engine`` (a sensor learning the quiet minutes it watches)."""

    def __init__(self, config: IdsConfig = DEFAULT_CONFIG):
        self.stats = EngineStats()
        self._learner = BaselineLearner()
        self._flows = FlowTable(config.flows)

    def frame(self, ts: float, linktype: int, data: bytes) -> None:
        stats = self.stats
        stats.packets += 1
        try:
            pkt = decode(ts, linktype, data)
        except Malformed:
            stats.malformed += 1
            return
        if pkt is None or pkt.proto == ARP:
            stats.ignored += 1
            return
        stats.decoded += 1
        self._learner.packet(pkt, self._flows.update(pkt)[1])

    def close(self) -> None:
        """Nothing to end: flows only tell the learner which packets open a conversation."""

    def baseline(self) -> Baseline:
        return self._learner.baseline()


def learn_baseline(path: str | Path, config: IdsConfig = DEFAULT_CONFIG) -> Baseline:
    """Peers and per-link hour-of-week volume peaks of a capture of normal traffic."""
    learner = FrameLearner(config)
    for ts, linktype, data in read_capture(path):
        learner.frame(ts, linktype, data)
    return learner.baseline()
