"""The main job at full scale, as a user runs it: does the whole chain keep every cycle?

    .venv/bin/python bench/bench_mainjob.py [--seconds 600] [--warmup 90] [--status-every 30]

Starts `jukimon run` (simulated national network in its child process, private
Mosquitto and VictoriaMetrics, collectors with every output: MQTT, TSDB,
short-term history, traps, firewall syslog) exactly as the README's command does,
with JSON logs. After the warm-up (SNMPv3 discovery and table learning of every
device) it measures, over the rest of the run:

- polls per second and missed cycles, from the job's own status lines;
- CPU of each process (job, simulation, broker, TSDB) from /proc, as cores busy,
  and of the whole machine (so foreign load shows);
- peak RSS of the job.

Prints a summary and writes bench/results/mainjob.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._proc import loadavg, machine, machine_cpu, proc_cpu, proc_rss_mb  # noqa: E402
from monitor.localservers import die_with_parent  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "mainjob.json"
SERVERS = {"simulation": "simnet run", "mqtt_broker": "/usr/sbin/mosquitto", "tsdb": "victoria-metrics"}


def children_of(pid: int) -> dict[str, int]:
    """The job's helper processes by name (direct children, found through /proc)."""
    found: dict[str, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if ppid != pid:
            continue
        for name, marker in SERVERS.items():
            if marker in cmdline:
                found[name] = int(entry)
    return found


class StatusReader(threading.Thread):
    """Collects the job's JSON status lines from its stderr (everything else is kept for the error report)."""

    def __init__(self, stream: Any):
        super().__init__(daemon=True)
        self.stream = stream
        self.statuses: list[dict[str, Any]] = []
        self.tail: list[str] = []

    def run(self) -> None:
        for raw in self.stream:
            line = raw.decode(errors="replace").rstrip()
            self.tail = (self.tail + [line])[-40:]
            if not line.startswith("{"):
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if entry.get("msg") == "status":
                entry["_at"] = time.monotonic()
                self.statuses.append(entry)


def stop_job(job: subprocess.Popen[bytes], state_dir: Path) -> None:
    """Ctrl-C as a user would (killed after a minute), then the job's scratch state goes."""
    job.send_signal(signal.SIGINT)
    try:
        job.wait(60)
    except subprocess.TimeoutExpired:
        job.kill()
        job.wait()
    shutil.rmtree(state_dir, ignore_errors=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    state_dir = Path(tempfile.mkdtemp(prefix="jukimon-bench-mainjob-"))
    command = [str(ROOT / ".venv" / "bin" / "jukimon"), "--log-json", "run", "--state-dir", str(state_dir / "simnet"),
               "--status-every", str(args.status_every)]
    job = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           preexec_fn=die_with_parent)  # a killed bench leaves no main job behind
    reader = StatusReader(job.stderr)
    reader.start()
    try:
        time.sleep(args.warmup)
        if job.poll() is not None:
            raise RuntimeError("the main job stopped during warm-up:\n" + "\n".join(reader.tail))
        pids = {"job": job.pid, **children_of(job.pid)}
        cpu_before = {name: proc_cpu(pid) for name, pid in pids.items()}
        busy_before, total_before = machine_cpu()
        began, first_status = time.monotonic(), len(reader.statuses)
        time.sleep(args.seconds)
        if job.poll() is not None:
            raise RuntimeError("the main job stopped:\n" + "\n".join(reader.tail))
        wall = time.monotonic() - began
        cpu = {name: round((proc_cpu(pid) - cpu_before[name]) / wall, 3) for name, pid in pids.items()}
        busy, total = machine_cpu()
        rss = proc_rss_mb(job.pid)
    finally:
        stop_job(job, state_dir)
    measured = reader.statuses[first_status:]
    if not measured:
        raise RuntimeError("no status line in the measured window; raise --seconds")
    rates = [s["polls_per_s"] for s in measured]
    cores = os.cpu_count() or 1
    return {
        "machine": machine(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": args.seconds, "warmup_seconds": args.warmup, "status_every": args.status_every,
        "polls_per_second_mean": round(sum(rates) / len(rates), 1),
        "polls_per_second_min": min(rates), "polls_per_second_max": max(rates),
        "missed_cycles_at_start": measured[0]["missed"] if first_status == 0 else reader.statuses[first_status - 1]["missed"],
        "missed_cycles_at_end": measured[-1]["missed"],
        "not_answering_at_end": measured[-1]["not_answering"],
        "cores_busy_by_process": cpu,
        "cores_busy_machine": round((busy - busy_before) / (total - total_before) * cores, 3),
        "cores": cores, "loadavg_end": loadavg(), "job_rss_mb": rss,
        "statuses": [{k: v for k, v in s.items() if not k.startswith("_")} for s in measured],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="measured time (default 600)")
    parser.add_argument("--warmup", type=float, default=90.0, help="not measured: start-up and table learning")
    parser.add_argument("--status-every", type=float, default=30.0, help="status line period of the job, seconds")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = run(args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"main job, full scale, {args.seconds:.0f} s measured after {args.warmup:.0f} s warm-up")
    print(f"  polls/s {result['polls_per_second_mean']} (min {result['polls_per_second_min']}, "
          f"max {result['polls_per_second_max']})")
    print(f"  missed cycles: {result['missed_cycles_at_start']} → {result['missed_cycles_at_end']}; "
          f"not answering at end: {result['not_answering_at_end']}")
    print("  cores busy: " + ", ".join(f"{k} {v}" for k, v in result["cores_busy_by_process"].items())
          + f"; machine {result['cores_busy_machine']} of {result['cores']}")
    print(f"  job RSS {result['job_rss_mb']['rss_mb']} MB (peak {result['job_rss_mb']['peak_rss_mb']})")
    print(f"written: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
