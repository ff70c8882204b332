"""The traffic IDS on generated days: packets per second and precision/recall per alert type.

    .venv/bin/python bench/bench_ids.py [--keep DIR]

1. generates three Mondays of the simulated network's traffic (three prefectures, six
   municipalities each, every national server, agency and the operations polling): a
   normal day to learn the baseline from, a labelled day with every attack mixed in twice by
   different hosts (ground truth as JSON), and another normal day;
2. decoding speed: the IDS's struct decoder against scapy's full dissection (``Ether(frame)``)
   on the same frames;
3. replay speed: pcap reading + decode + flow table + every detector (matrix from the
   inventory, baseline, Jukimon's rules) over the labelled day, on one core (goal ≥ 100,000 pkt/s);
4. precision and recall per alert type on the labelled day (goal ≥ 0.95 each), and the alert
   count of the second normal day (goal 0).

Prints a summary and writes bench/results/ids.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._proc import machine  # noqa: E402
from ids.traffic import DEFAULT_RULES, learn_baseline, load_rules, replay_alerts  # noqa: E402
from ids.traffic.decode import decode  # noqa: E402
from ids.traffic.evaluate import score  # noqa: E402
from ids.traffic.pcapio import read_capture, write_pcap  # noqa: E402
from monitor.inventory import generate_inventory  # noqa: E402
from simnet.attacks import write_labelled_day  # noqa: E402
from simnet.traffic_gen import Sample, normal_day  # noqa: E402

LEARN_DAY, ATTACK_DAY, QUIET_DAY = dt.date(2026, 11, 23), dt.date(2026, 11, 30), dt.date(2026, 12, 7)
DECODE_SAMPLE = 20_000
ROUNDS = 2  # every attack twice, by other hosts


def _timed(fn, *args, **kwargs) -> tuple[Any, float, float]:
    """Result, wall seconds and CPU seconds of this process."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _decode_speed(pcap: Path) -> dict[str, float]:
    from scapy.layers.l2 import Ether

    frames = []
    for record in read_capture(pcap):
        frames.append(record)
        if len(frames) == DECODE_SAMPLE:
            break
    _, _, ours = _timed(lambda: [decode(*r) for r in frames])
    _, _, theirs = _timed(lambda: [Ether(f) for _, _, f in frames])
    return {"frames": len(frames), "struct_pkt_per_s": round(len(frames) / ours),
            "scapy_pkt_per_s": round(len(frames) / theirs), "speedup": round(theirs / ours, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="directory to keep the generated pcaps and ground truth in")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "ids.json")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="bench_ids_"))
    workdir.mkdir(parents=True, exist_ok=True)
    inventory = generate_inventory(seed=1)
    sample = Sample.of(inventory)

    learn, attack, quiet = workdir / "learn.pcap", workdir / "labelled.pcap", workdir / "quiet.pcap"
    _, gen_wall, _ = _timed(lambda: (write_pcap(learn, normal_day(sample, LEARN_DAY, seed=2)),
                                     write_pcap(quiet, normal_day(sample, QUIET_DAY, seed=4))))
    truth = [asdict(t) for t in write_labelled_day(sample, ATTACK_DAY, attack, workdir / "truth.json", seed=3,
                                                   rounds=ROUNDS)]
    baseline, learn_wall, _ = _timed(learn_baseline, learn)
    options = {"inventory": inventory, "baseline": baseline, "rules": load_rules(DEFAULT_RULES)}

    (alerts, stats), wall, cpu = _timed(replay_alerts, attack, **options)
    (quiet_alerts, _), _, _ = _timed(replay_alerts, quiet, **options)
    scores = score(alerts, truth)
    results = {
        "machine": machine(),
        "traffic": {"hosts_sampled": len(sample.polled) + len(sample.terminals), "generate_s": round(gen_wall, 1),
                    "labelled_day_packets": stats.packets, "attacks": len(truth),
                    "capture_mb": round(attack.stat().st_size / 1e6, 1)},
        "decode": _decode_speed(attack),
        "replay": {"packets": stats.packets, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                   "pkt_per_s_cpu": round(stats.packets / cpu), "pkt_per_s_wall": round(stats.packets / wall),
                   "malformed": stats.malformed, "goal_pkt_per_s": 100_000},
        "learn_baseline_s": round(learn_wall, 2),
        "labelled_day": {"alerts": len(alerts), "per_type": scores},
        "normal_day_alerts": len(quiet_alerts),
        "goal": {"precision": 0.95, "recall": 0.95},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    _print(results)
    if args.keep is None:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"written {args.output}" + (f"; captures in {workdir}" if args.keep else ""))
    return 0


def _print(r: dict[str, Any]) -> None:
    d, p = r["decode"], r["replay"]
    print(f"decode: struct {d['struct_pkt_per_s']:,} pkt/s, scapy {d['scapy_pkt_per_s']:,} pkt/s "
          f"({d['speedup']}x) over {d['frames']:,} frames")
    print(f"replay: {p['packets']:,} packets, {p['pkt_per_s_cpu']:,} pkt/s per CPU second "
          f"({p['pkt_per_s_wall']:,} wall), goal {p['goal_pkt_per_s']:,}")
    print(f"{'type':<20}{'alerts':>7}{'correct':>8}{'attacks':>8}{'found':>6}{'precision':>10}{'recall':>8}")
    for kind, s in r["labelled_day"]["per_type"].items():
        prec = "-" if s["precision"] is None else f"{s['precision']:.2f}"
        rec = "-" if s["recall"] is None else f"{s['recall']:.2f}"
        print(f"{kind:<20}{s['alerts']:>7}{s['correct']:>8}{s['attacks']:>8}{s['detected']:>6}{prec:>10}{rec:>8}")
    print(f"normal day: {r['normal_day_alerts']} alerts")


if __name__ == "__main__":
    sys.exit(main())
