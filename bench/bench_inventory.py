"""Inventory at national scale: generate, save and load times, file size.

    .venv/bin/python bench/bench_inventory.py

Prints a summary and writes bench/results/inventory.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.inventory import generate_inventory, load_inventory, save_inventory  # noqa: E402


def timed(fn, *args):
    began_cpu, began = time.process_time(), time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - began, time.process_time() - began_cpu


def main() -> int:
    inventory, gen_wall, gen_cpu = timed(lambda: generate_inventory(seed=1))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "inventory.yaml"
        _, save_wall, save_cpu = timed(save_inventory, inventory, path)
        size = path.stat().st_size
        lines = path.read_text(encoding="utf-8").count("\n")
        loaded, load_wall, load_cpu = timed(load_inventory, path)
    assert len(loaded.devices) == len(inventory.devices)
    report = {
        "benchmark": "inventory", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "devices": len(inventory.devices), "sites": len(inventory.sites), "links": len(inventory.links),
        "file_lines": lines, "file_mb": round(size / 1e6, 2),
        "generate_s": round(gen_wall, 2), "generate_cpu_s": round(gen_cpu, 2),
        "save_s": round(save_wall, 2), "save_cpu_s": round(save_cpu, 2),
        "load_s": round(load_wall, 2), "load_cpu_s": round(load_cpu, 2),
    }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "inventory.json").write_text(json.dumps(report, indent=2) + "\n")
    for key, value in report.items():
        print(f"{key:<16} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
