"""Operation-pattern IDS: records per second through ingestion + detection, and precision/recall
on a labelled month of the whole network with every scenario type.

    .venv/bin/python bench/bench_opsids.py [--days 28] [--per-type 5]

The simulated stream is generated in chunks; only the time spent feeding chunks to the
IDS (JSON parsing, validation, pseudonymisation, all ten detectors) counts for the
rate, as CPU time of this one-threaded process. Prints a summary and writes
bench/results/opsids.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._proc import proc_rss_mb  # noqa: E402
from ids.operations import OperationsIds, OpsIdsSettings  # noqa: E402
from ids.operations.scoring import score  # noqa: E402
from monitor.inventory import default_inventory  # noqa: E402
from simnet.audit_stream import AuditStream  # noqa: E402

CHUNK = 50_000
GOAL_RATE = 50_000
GOAL_SCORE = 0.95


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 11, 2))
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--per-type", type=int, default=5)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "opsids.json")
    args = parser.parse_args()

    inventory = default_inventory()
    stream = AuditStream(inventory, seed=7)
    injection = stream.plan_scenarios(args.start, args.days, per_type=args.per_type)
    ids = OperationsIds(inventory, OpsIdsSettings(pseudonym_key_id="bench", pseudonym_keys={"bench": "b" * 32}))
    lines = stream.lines(args.start, args.days, injection)
    alerts = []
    records = 0
    ids_cpu = 0.0
    began = time.perf_counter()
    while chunk := list(itertools.islice(lines, CHUNK)):
        cpu = time.process_time()
        alerts.extend(ids.feed(chunk))
        ids_cpu += time.process_time() - cpu
        records += len(chunk)
    wall = time.perf_counter() - began

    by_type = score(alerts, injection.labels)
    rate = records / ids_cpu
    report = {
        "benchmark": "opsids", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "period": f"{args.start} + {args.days} days", "records": records,
        "rejected": sum(ids.ingestor.rejected.values()), "labels": len(injection.labels), "alerts": len(alerts),
        "ids_cpu_s": round(ids_cpu, 2), "records_per_s_one_core": round(rate),
        "total_wall_s_incl_generation": round(wall, 1), **proc_rss_mb(),
        "goal_records_per_s": GOAL_RATE, "rate_goal_met": rate >= GOAL_RATE,
        "min_precision": round(min(row["precision"] for row in by_type.values()), 3),
        "min_recall": round(min(row["recall"] for row in by_type.values()), 3),
        "per_type": {kind: {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}
                     for kind, row in by_type.items()},
    }
    report["score_goal_met"] = report["min_precision"] >= GOAL_SCORE and report["min_recall"] >= GOAL_SCORE
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    for key, value in report.items():
        if key != "per_type":
            print(f"{key:<30} {value}")
    print(f"{'type':<22} {'labels':>6} {'found':>6} {'alerts':>6} {'FP':>4} {'precision':>9} {'recall':>7}")
    for kind, row in by_type.items():
        print(f"{kind:<22} {row['labels']:>6} {row['found']:>6} {row['alerts']:>6} {row['false_positives']:>4} "
              f"{row['precision']:>9.3f} {row['recall']:>7.3f}")
    return 0 if report["rate_goal_met"] and report["score_goal_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
