"""Every benchmark, one after the other, with one command: results JSON and a readable summary.

    .venv/bin/python bench/run_all.py [--only collectors,state,...] [--out DIR]
    (or scripts/bench.sh, which first installs what the benchmarks need)

One benchmark at a time — the machine's cores are the thing being measured, so
nothing else of ours runs beside a benchmark. Each runs in its own process with the
suite's settings (shorter than each benchmark's own defaults, so the whole suite
fits in ~15 minutes on 2 cores; run a benchmark alone for longer windows), writes
its JSON into ``DIR`` (default ``bench/results/suite-<UTC time>/``), and a failing
or overrunning benchmark is recorded and the suite goes on. At the end the headline
figures of all of them go into ``summary.json`` and ``summary.md`` in ``DIR``
(machine, date, each figure with its goal) and are printed. docs/PERFORMANCE.md
records a run of this suite.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._proc import loadavg, machine  # noqa: E402

Figures = list[tuple[str, Any, str]]  # (what, value, goal or note)


@dataclass(frozen=True)
class Step:
    name: str
    script: str
    args: tuple[str, ...]
    timeout_s: float
    figures: Callable[[dict[str, Any]], Figures]


def _collectors(r: dict[str, Any]) -> Figures:
    ratio = next(iter(r.get("ratio_polls_per_cpu_second", {}).values()), {})
    ours = [run for run in r["runs"] if run["side"] == "jukimon"]
    theirs = [run for run in r["runs"] if run["side"] != "jukimon"]
    out: Figures = [("collectors / prometheus-snmp-exporter, polls per CPU-second (same run, SNMPv2c GET)",
                     ratio.get("ratio"), "≥ 1.0×")]
    for run in ours:
        version = f"SNMP{run['snmp_version']}"
        out += [(f"collectors {version}: polls/s (demanded {run['target_polls_per_second']})",
                 run["polls_per_second"], "all demanded"),
                (f"collectors {version}: CPU-seconds per 1,000 polls", run["cpu_s_per_1000_polls"], "lower is better"),
                (f"collectors {version}: missed cycles", run["missed_cycles"], "0")]
    for run in theirs:
        out.append((f"exporter {run['mode']}: CPU-seconds per 1,000 scrapes",
                    round(1000 * run["cpu_seconds"] / max(1, run["scrapes_ok"]), 3), "for comparison"))
    return out


def _state(r: dict[str, Any]) -> Figures:
    single, storm = r["single_failure"], r["storm"]
    return [("single CS failure: first failed poll → alarm p50 / p95 (s)",
             f"{single['first_failed_poll_to_alarm_p50_s']} / {single['first_failed_poll_to_alarm_p95_s']}", "p95 ≤ 3 s"),
            ("single CS failure: fault → alarm p50 / p95 (s, incl. 10 s interval and timeouts)",
             f"{single['fault_to_alarm_p50_s']} / {single['fault_to_alarm_p95_s']}", "—"),
            (f"storm: prefecture {storm['prefecture']} cut ({storm['devices_behind']} devices) → root-cause alarm (s)",
             storm["cut_to_root_cause_s"], "≤ 5 s"),
            (f"storm: leaked alarms within {storm['watch_seconds']:.0f} s", storm["leaked_conditions"], "0")]


def _mainjob(r: dict[str, Any]) -> Figures:
    busy = r["cores_busy_by_process"]
    return [("main job, full scale: polls/s (mean)", r["polls_per_second_mean"], "all demanded"),
            ("main job: missed cycles during the window", r["missed_cycles_at_end"] - r["missed_cycles_at_start"], "0"),
            ("main job: monitor process RSS (MB)", r["job_rss_mb"]["rss_mb"], "—"),
            ("main job: cores busy (job / machine)", f"{busy.get('job')} / {r['cores_busy_machine']} of {r['cores']}",
             "—")]


def _outputs(r: dict[str, Any]) -> Figures:
    tsdb, mqtt = r["tsdb"], r["mqtt"]
    return [("TSDB (InfluxDB write API → VictoriaMetrics): points/s, all read back", tsdb["points_per_s"],
             "≥ 10,000 (full scale)"),
            ("MQTT: messages/s delivered through Mosquitto (10 samples each)", mqtt["messages_per_s_delivered"],
             "≥ 900 (full scale)"),
            ("MQTT: messages lost", mqtt["lost"], "0")]


def _ids(r: dict[str, Any]) -> Figures:
    per_type = r["labelled_day"]["per_type"].values()
    return [("traffic IDS: pkt/s, decode + flows + all detectors, one core", r["replay"]["pkt_per_s_cpu"],
             "≥ 100,000"),
            ("traffic IDS: min precision / min recall over types",
             f"{min(t['precision'] for t in per_type):.2f} / {min(t['recall'] for t in per_type):.2f}", "≥ 0.95"),
            ("traffic IDS: alerts on a normal day", r["normal_day_alerts"], "0")]


def _opsids(r: dict[str, Any]) -> Figures:
    return [("operation IDS: records/s, one core", r["records_per_s_one_core"], f"≥ {r['goal_records_per_s']:,}"),
            ("operation IDS: min precision / min recall", f"{r['min_precision']} / {r['min_recall']}", "≥ 0.95")]


def _console(r: dict[str, Any]) -> Figures:
    return [(f"console {name} ({r['scale']['open_alarms']} open alarms): median / p95 ms",
             f"{page['median_ms']} / {page['p95_ms']}", "< 1,000 ms") for name, page in r["pages"].items()]


def _shards(r: dict[str, Any]) -> Figures:
    return [(f"{row['processes']} collector process(es): polls/s (demanded {row.get('demanded_polls_per_s', '—')})"
             f", missed cycles", f"{row.get('polls_per_s')}, {row.get('missed')}", "all demanded, 0")
            for row in r.get("rows", [])]


STEPS = (
    Step("collectors", "bench_collectors.py", ("--version", "v2c", "--exporter-modes", "get", "--seconds", "70",
                                               "--warmup", "30"), 540, _collectors),
    Step("state", "bench_state.py", ("--trials", "10", "--watch", "20"), 420, _state),
    Step("mainjob", "bench_mainjob.py", ("--seconds", "45", "--warmup", "75", "--status-every", "15"), 300, _mainjob),
    Step("outputs", "bench_outputs.py", (), 180, _outputs),
    Step("ids", "bench_ids.py", (), 300, _ids),
    Step("opsids", "bench_opsids.py", ("--days", "3", "--per-type", "2"), 240, _opsids),
    Step("console", "bench_console.py", ("--repeat", "10"), 240, _console),
    Step("shards", "bench_shards.py", ("--quick",), 240, _shards),
)
# bench_soak.py is not a step: its point is hours (growth after warm-up), not the suite's minutes.


def run_step(step: Step, out: Path) -> dict[str, Any]:
    script = ROOT / "bench" / step.script
    result_file = out / f"{step.name}.json"
    entry: dict[str, Any] = {"name": step.name, "command": f"bench/{step.script} {' '.join(step.args)}".strip()}
    if not script.exists():
        return entry | {"status": "missing"}
    began = time.monotonic()
    log_path = out / f"{step.name}.log"
    print(f"── {step.name}: {entry['command']}", flush=True)
    try:
        with log_path.open("w") as log:
            proc = subprocess.run([sys.executable, str(script), *step.args, "--output", str(result_file)],
                                  cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, timeout=step.timeout_s)
        entry["status"] = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
    except subprocess.TimeoutExpired:  # subprocess.run kills it; the benchmark's own finally stops its servers
        entry["status"] = f"timeout after {step.timeout_s:.0f} s"
    entry["seconds"] = round(time.monotonic() - began, 1)
    entry["log"] = str(log_path)
    if result_file.exists():
        try:
            entry["figures"] = step.figures(json.loads(result_file.read_text()))
        except (KeyError, TypeError, ValueError, StopIteration) as exc:
            entry["figures_error"] = f"{type(exc).__name__}: {exc}"
    print("   " + entry["status"] + f" in {entry['seconds']} s", flush=True)
    return entry


def summary_markdown(suite: dict[str, Any]) -> str:
    m = suite["machine"]
    lines = [f"# Benchmark suite — {suite['date']}", "",
             f"Machine: {m.get('cpu_model', '?')}, {m.get('cpus', '?')} cores, {m.get('memory_gb', '?')} GB, "
             f"Python {m.get('python', '?')}; whole suite {suite['seconds'] / 60:.1f} min; "
             f"load average at start {suite['loadavg_start']}.", "",
             "| benchmark | figure | measured | goal |", "|---|---|---|---|"]
    for entry in suite["steps"]:
        figures = entry.get("figures") or [("(no figures)", entry.get("figures_error", "—"), "—")]
        for what, value, goal in figures:
            lines.append(f"| {entry['name']} ({entry['status']}, {entry.get('seconds', 0):.0f} s) | {what} | "
                         f"{value} | {goal} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma list of: " + ", ".join(s.name for s in STEPS))
    parser.add_argument("--out", type=Path, help="results directory (default bench/results/suite-<UTC time>)")
    args = parser.parse_args()
    chosen = [s for s in STEPS if not args.only or s.name in args.only.split(",")]
    if args.only and len(chosen) != len(args.only.split(",")):
        parser.error(f"--only: unknown name in {args.only!r}")
    out = args.out or ROOT / "bench" / "results" / time.strftime("suite-%Y%m%dT%H%M%SZ", time.gmtime())
    out.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    suite: dict[str, Any] = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine(),
                             "loadavg_start": loadavg(), "steps": []}
    for step in chosen:
        suite["steps"].append(run_step(step, out))
    suite["seconds"] = round(time.monotonic() - began, 1)
    suite["loadavg_end"] = loadavg()
    (out / "summary.json").write_text(json.dumps(suite, indent=2, ensure_ascii=False) + "\n")
    text = summary_markdown(suite)
    (out / "summary.md").write_text(text)
    print()
    print(text)
    print(f"written {out}/summary.json and summary.md")
    return 0 if all(e["status"] == "ok" for e in suite["steps"]) else 1


if __name__ == "__main__":
    sys.exit(main())
