"""Comparing a drill with a previous run (前回比較): the headline metrics side by side, better or worse.

The previous run is read from its ``metrics.json`` (what ``drills.report`` writes), so
runs of different versions, days or scenarios can be put side by side; a metric the
previous run does not have is shown without a comparison.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drills.scoring import Metrics

TIERS = (("prefecture", "都道府県"), ("municipality", "市区町村"), ("all", "計"))


@dataclass(frozen=True)
class Change:
    what: str
    unit: str  # "s" (seconds), "%" or "" (a count)
    before: float | None
    now: float | None
    lower_is_better: bool

    @property
    def verdict(self) -> str:
        """改善 / 悪化 / 変化なし, or "" when one side is missing."""
        if self.before is None or self.now is None:
            return ""
        if self.now == self.before:
            return "変化なし"
        return "改善" if (self.now < self.before) == self.lower_is_better else "悪化"


def load_previous(path: Path) -> dict[str, Any]:
    """A previous run's metrics: its report directory or its metrics.json."""
    path = path / "metrics.json" if path.is_dir() else path
    return json.loads(path.read_text(encoding="utf-8"))


def compare(now: Metrics, before: dict[str, Any]) -> list[Change]:
    current = now.to_json()
    changes = [
        Change("得点", "%", before.get("percent"), current["percent"], False),
        Change("検知までの時間", "s", before.get("time_to_detect"), now.time_to_detect, True),
        Change("初報までの時間", "s", before.get("time_to_first_report"), now.time_to_first_report, True),
        Change("期限未達の期待行動", "", _count(before, "deadlines_missed"), len(now.deadlines_missed), True),
        Change("遅延・未確認（延べ）", "", _count(before, "stragglers"), len(now.stragglers), True),
    ]
    previous_reports = {r["label"]: r for r in before.get("reports", [])}
    for report in current["reports"]:
        old = previous_reports.get(report["label"], {}).get("tiers", {})
        for tier, name in TIERS:
            stats, old_stats = report["tiers"][tier], old.get(tier, {})
            changes.append(Change(f"{report['label']} {name} 確認率", "%", _percent(old_stats.get("rate")),
                                  _percent(stats["rate"]), False))
            changes.append(Change(f"{report['label']} {name} 中央値", "s", old_stats.get("latency_median"),
                                  stats["latency_median"], True))
    return changes


def _count(metrics: dict[str, Any], key: str) -> float | None:
    return float(len(metrics[key])) if key in metrics else None


def _percent(rate: float | None) -> float | None:
    return None if rate is None else 100.0 * rate
