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


def learn_baseline(path: str | Path, config: IdsConfig = DEFAULT_CONFIG) -> Baseline:
    """Peers and per-link hour-of-week volume peaks of a capture of normal traffic."""
    learner = BaselineLearner()
    flows = FlowTable(config.flows)
    for ts, linktype, data in read_capture(path):
        try:
            pkt = decode(ts, linktype, data)
        except Malformed:
            continue
        if pkt is not None and pkt.proto != ARP:
            learner.packet(pkt, flows.update(pkt)[1])
    return learner.baseline()
