"""Soak: the main job at full scale for hours on an accelerated clock — does memory or the task count creep?

    .venv/bin/python bench/bench_soak.py [--minutes 120] [--clock-speed 12] [--sample-every 60]
    .venv/bin/python bench/bench_soak.py --quick        # ≤ 3 minutes: does it run? (not a measurement)

Starts `jukimon run` as the README's command does (full-scale simulated network,
private Mosquitto and VictoriaMetrics, every output), with the simulation's clock
running ``--clock-speed`` times real time so two hours cover a whole simulated day
(the operating window opening and closing, the evening batch, the night). Every
``--sample-every`` seconds it records the job's RSS (from /proc) and its asyncio
task count, polls/s and missed cycles (from the job's own status line). After the
warm-up (discovery, table learning, the first TLS round) it reports:

- RSS growth in % from the first measured samples to the last ones (goal < 10 %);
- task growth: the task count at the end minus at the start of the measured window
  (goal: no growth — a leak of one task per poll or per alarm shows at once), and the
  least-squares trend of tasks and RSS per hour over every measured sample: in-flight polls
  make single task counts swing by thousands when the job is busy, a trend does not.

Prints a summary and writes bench/results/soak.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._proc import loadavg, machine, proc_rss_mb  # noqa: E402
from bench.bench_mainjob import StatusReader, children_of, stop_job  # noqa: E402
from monitor.localservers import die_with_parent  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "soak.json"
RSS_GOAL_PCT = 10.0
EDGE = 3  # samples averaged at each end of the window: one GC cycle or burst does not decide the result


def sample(job: subprocess.Popen[bytes], reader: StatusReader, began: float) -> dict[str, Any]:
    """The job's memory now and its latest status line (task count, polls/s, missed cycles)."""
    status = reader.statuses[-1] if reader.statuses else {}
    sim = children_of(job.pid).get("simulation")
    return {"t_s": round(time.monotonic() - began, 1), "rss_mb": proc_rss_mb(job.pid)["rss_mb"],
            "simulation_rss_mb": proc_rss_mb(sim)["rss_mb"] if sim else None,
            "tasks": status.get("tasks"), "polls_per_s": status.get("polls_per_s"), "missed": status.get("missed"),
            "conditions": status.get("conditions")}


def per_hour(samples: list[dict[str, Any]], key: str) -> float:
    """Least-squares slope of ``key`` against time, per hour."""
    xs, ys = [s["t_s"] for s in samples], [s[key] for s in samples]
    mx, my = mean(xs), mean(ys)
    spread = sum((x - mx) ** 2 for x in xs)
    return 3600 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / spread if spread else 0.0


def run(args: argparse.Namespace) -> dict[str, Any]:
    state_dir = Path(tempfile.mkdtemp(prefix="jukimon-bench-soak-"))
    command = [str(ROOT / ".venv" / "bin" / "jukimon"), "--log-json", "run", "--state-dir", str(state_dir / "simnet"),
               "--clock-speed", str(args.clock_speed), "--status-every", str(args.sample_every)]
    job = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           preexec_fn=die_with_parent)  # a killed bench leaves no main job behind
    reader = StatusReader(job.stderr)
    reader.start()
    began = time.monotonic()
    samples: list[dict[str, Any]] = []
    try:
        end = began + args.warmup + args.minutes * 60
        while time.monotonic() < end:
            # Sample a second after each status line, so the task count read is the fresh one.
            next_at = began + (len(samples) + 1) * args.sample_every + 1
            time.sleep(max(0.0, min(next_at, end) - time.monotonic()))
            if job.poll() is not None:
                raise RuntimeError("the main job stopped:\n" + "\n".join(reader.tail))
            samples.append(sample(job, reader, began))
            last = samples[-1]
            print(f"  {last['t_s']:7.0f} s  RSS {last['rss_mb']:7.1f} MB  tasks {last['tasks']}  "
                  f"polls/s {last['polls_per_s']}  missed {last['missed']}", flush=True)
    finally:
        stop_job(job, state_dir)
    measured = [s for s in samples if s["t_s"] >= args.warmup and s["tasks"] is not None]
    if len(measured) < 2:
        raise RuntimeError("fewer than two samples after the warm-up; raise --minutes or lower --sample-every")
    edge = max(1, min(EDGE, len(measured) // 3))
    rss_start, rss_end = mean(s["rss_mb"] for s in measured[:edge]), mean(s["rss_mb"] for s in measured[-edge:])
    tasks_start, tasks_end = measured[0]["tasks"], measured[-1]["tasks"]
    growth = round(100 * (rss_end - rss_start) / rss_start, 2)
    return {
        "machine": machine(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "minutes": args.minutes, "warmup_s": args.warmup, "clock_speed": args.clock_speed,
        "simulated_hours": round((args.warmup + args.minutes * 60) * args.clock_speed / 3600, 1),
        "sample_every_s": args.sample_every,
        "rss_start_mb": round(rss_start, 1), "rss_end_mb": round(rss_end, 1), "rss_growth_pct": growth,
        "rss_goal_pct": RSS_GOAL_PCT, "rss_ok": growth < RSS_GOAL_PCT,
        "tasks_start": tasks_start, "tasks_end": tasks_end, "tasks_growth": tasks_end - tasks_start,
        "tasks_max": max(s["tasks"] for s in measured), "tasks_min": min(s["tasks"] for s in measured),
        "tasks_trend_per_hour": round(per_hour(measured, "tasks"), 1),
        "rss_trend_mb_per_hour": round(per_hour(measured, "rss_mb"), 2),
        "missed_cycles_in_window": (measured[-1]["missed"] or 0) - (measured[0]["missed"] or 0),
        "polls_per_second_mean": round(mean(s["polls_per_s"] for s in measured if s["polls_per_s"] is not None), 1),
        "loadavg_end": loadavg(), "samples": samples,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=120.0, help="measured time after the warm-up (default 120)")
    parser.add_argument("--warmup", type=float, default=300.0, help="seconds not measured (start-up, table learning)")
    parser.add_argument("--clock-speed", type=float, default=12.0,
                        help="simulated seconds per real second (default 12: two hours are a simulated day)")
    parser.add_argument("--sample-every", type=float, default=60.0, help="seconds between samples (default 60)")
    parser.add_argument("--quick", action="store_true",
                        help="a check that it runs: 75 s warm-up, 100 s measured, a sample every 15 s")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.warmup, args.sample_every = 100 / 60, 75.0, 15.0
    print(f"soak: full scale, clock ×{args.clock_speed:g}, {args.warmup:.0f} s warm-up + {args.minutes:g} min, "
          f"a sample every {args.sample_every:.0f} s", flush=True)
    result = run(args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"RSS {result['rss_start_mb']} → {result['rss_end_mb']} MB: {result['rss_growth_pct']:+.2f} % "
          f"(goal < {RSS_GOAL_PCT:g} %) {'ok' if result['rss_ok'] else 'TOO MUCH'}")
    print(f"asyncio tasks {result['tasks_start']} → {result['tasks_end']} (growth {result['tasks_growth']:+d}, "
          f"{result['tasks_min']}…{result['tasks_max']}, trend {result['tasks_trend_per_hour']:+.0f}/h; "
          f"RSS trend {result['rss_trend_mb_per_hour']:+.1f} MB/h); "
          f"missed cycles in the window: {result['missed_cycles_in_window']}; "
          f"polls/s {result['polls_per_second_mean']}; {result['simulated_hours']} simulated hours")
    print(f"written: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
