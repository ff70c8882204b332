"""Scaling the collectors from 1 to 4 processes sharing one simulated network through one broker.

    .venv/bin/python bench/bench_shards.py [--quick] [--processes 4] [--seconds 60] [--warmup 60]
        [--settle 15] [--interval 10] [--prefectures 13,27] [--output FILE] [--keep DIR]

One private Mosquitto, one simulated network (SNMPv3, no TLS services) in a child process, and
``jukimon collector run`` processes added one at a time: 1, then 2, 3, 4. After each start the
shares settle (``--settle``; the first start also learns every device's tables, ``--warmup``), then
``--seconds`` are measured from the bus — every ``…/samples`` message is one poll, as the monitor
sees it:

- polls/s achieved against demanded (devices / interval);
- missed cycles: for every device, each wait of more than 1.5 intervals between polls (or from the
  window's start / to its end) counts the intervals it skipped;
- double polls: two polls of one device less than half an interval apart, the first one answered
  (two owners at once; re-checks after a failed poll are on purpose and not counted);
- per process: its share (the same rendezvous function the processes use), its CPU from /proc,
  CPU-seconds per 1,000 of its polls, RSS.

``--quick`` (≤ 2 minutes; what bench/run_all.py runs): prefectures 13 and 27 (555 devices) every
5 s. The default is the full national network every 10 s — on a 2-core machine that is more than
the simulation and four collectors can share, which is the point of the figures.
Prints a table, writes JSON (default bench/results/shards.json). Every process started here is
stopped in a finally.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timezone
from itertools import pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._proc import loadavg, machine, proc_cpu, proc_rss_mb  # noqa: E402
from bench._sim import free_port, stop_process  # noqa: E402
from collectors.shard import assign  # noqa: E402
from monitor.inventory import default_inventory, save_inventory  # noqa: E402
from monitor.inventory.subset import subset_by_prefecture  # noqa: E402
from monitor.localservers import Mosquitto  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "shards.json"


# --- the simulated network, in a child process -------------------------------------------

def simulate(inventory_file: str, snmp_port: int, state_dir: str, ready: Any) -> None:
    """Child: serve the inventory's agents until SIGTERM."""
    from monitor.inventory import load_inventory
    from simnet.network import SimnetConfig
    from simnet.service import start_simulation, wait_for_signal

    async def main() -> None:
        config = SimnetConfig(snmp_port=snmp_port, tls_port=free_port(), tls=False, state_dir=Path(state_dir))
        sim = await start_simulation(load_inventory(inventory_file), config, None)
        ready.set()
        try:
            await wait_for_signal()
        finally:
            await sim.stop()

    asyncio.run(main())


# --- what the bus says -----------------------------------------------------------------------

class Polls:
    """When each poll was made (the sample's own time: a listener that falls behind must not move
    polls from one window into the next) and its outcome, per device, from ``…/samples``."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        self.ok: dict[str, list[bool]] = defaultdict(list)
        self.failed = 0

    def add(self, topic: str, payload: bytes) -> None:
        device = topic.split("/")[-2]
        for record in json.loads(payload):
            if record.get("measurement") == "poll":
                ok = bool(record["fields"].get("ok", False))
                self.times[device].append(float(record["ts"]))
                self.ok[device].append(ok)
                self.failed += not ok


async def listen(host: str, port: int, polls: Polls, ready: asyncio.Event) -> None:
    import aiomqtt

    async with aiomqtt.Client(host, port, identifier="bench-shards", protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe("jukimon/+/+/+/samples")
        ready.set()
        async for message in client.messages:
            polls.add(message.topic.value, message.payload)


def window_figures(polls: Polls, devices: list[str], interval: float, start: float, end: float) -> dict[str, Any]:
    missed = double = count = 0
    for device in devices:
        seen = [(t, ok) for t, ok in zip(polls.times[device], polls.ok[device], strict=True) if start <= t < end]
        count += len(seen)
        for a, b in pairwise([start, *(t for t, _ in seen), end]):
            if b - a > 1.5 * interval:
                missed += round((b - a) / interval) - 1
        # Two polls half an interval apart, the first one answered: two owners at once (a re-check after
        # a failed poll is on purpose and not counted).
        double += sum(1 for (a, ok), (b, _) in pairwise(seen) if ok and b - a < 0.5 * interval)
    return {"polls": count, "missed": missed, "double_polls": double}


# --- one collector process -------------------------------------------------------------------

class Collector:
    def __init__(self, member_id: str, broker: Mosquitto, files: Path, snmp_port: int) -> None:
        self.member_id = member_id
        self.log_path = files / f"{member_id}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "monitor.cli", "--log-json", "collector", "run", "--id", member_id,
                 "--broker", f"{broker.host}:{broker.port}", "--inventory", str(files / "inventory.yaml"),
                 "--config", str(files / "config.yaml"), "--snmp-port", str(snmp_port)],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)

    def cpu(self) -> float:
        return proc_cpu(self.proc.pid)

    def joined(self) -> bool:
        return '"share changed"' in self.log_path.read_text(errors="replace")


# --- the run ---------------------------------------------------------------------------------------

async def measure(args: argparse.Namespace, files: Path) -> dict[str, Any]:
    inventory = default_inventory()
    if args.prefectures:
        inventory = subset_by_prefecture(inventory, args.prefectures.split(","))
    devices = sorted(d.id for d in inventory.polled_devices() if d.address is not None)
    save_inventory(inventory, files / "inventory.yaml")
    (files / "config.yaml").write_text(
        f"collectors:\n  intervals: {{}}\n  default_interval: {args.interval}\n  tls_interval: 3600\n")
    demanded = len(devices) / args.interval
    print(f"{len(devices)} devices every {args.interval:g} s: {demanded:.1f} polls/s demanded", flush=True)

    broker = Mosquitto(files / "mosquitto")
    snmp_port = free_port()
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    sim = ctx.Process(target=simulate, args=(str(files / "inventory.yaml"), snmp_port, str(files / "simnet"), ready),
                      daemon=True)
    collectors: list[Collector] = []
    rows: list[dict[str, Any]] = []
    listener: asyncio.Task[None] | None = None
    try:
        await asyncio.to_thread(broker.start)
        sim.start()
        if not await asyncio.to_thread(ready.wait, 300):
            raise RuntimeError("the simulated network did not start within 300 s")
        polls, subscribed = Polls(), asyncio.Event()
        listener = asyncio.get_running_loop().create_task(listen(broker.host, broker.port, polls, subscribed))
        await asyncio.wait_for(subscribed.wait(), 20)
        for n in range(1, args.processes + 1):
            collectors.append(Collector(f"shard-{n}", broker, files, snmp_port))
            deadline = time.monotonic() + 60
            while not collectors[-1].joined():  # bounded: a collector that cannot join fails the run
                if time.monotonic() > deadline or collectors[-1].proc.poll() is not None:
                    raise RuntimeError(f"collector {n} did not join (see {collectors[-1].log_path})")
                await asyncio.sleep(0.2)
            await asyncio.sleep(args.warmup if n == 1 else args.settle)
            cpu_before = [c.cpu() for c in collectors]
            failed_before, start = polls.failed, time.time()
            await asyncio.sleep(args.seconds)
            end = time.time()
            cpu = [c.cpu() - b for c, b in zip(collectors, cpu_before, strict=True)]
            await asyncio.sleep(1.0)  # polls made before the end may still be on their way
            shares = assign(devices, {c.member_id: 1.0 for c in collectors})
            per_process = []
            for collector, used in zip(collectors, cpu, strict=True):
                share = sorted(shares[collector.member_id])
                own = window_figures(polls, share, args.interval, start, end)["polls"]
                per_process.append({"id": collector.member_id, "devices": len(share), "polls": own,
                                    "cpu_cores": round(used / (end - start), 3),
                                    "cpu_s_per_1000_polls": round(used / own * 1000, 3) if own else None,
                                    **proc_rss_mb(collector.proc.pid)})
            figures = window_figures(polls, devices, args.interval, start, end)
            row = {"processes": n, "devices": len(devices), "demanded_polls_per_s": round(demanded, 1),
                   "polls_per_s": round(figures["polls"] / (end - start), 1), "missed": figures["missed"],
                   "double_polls": figures["double_polls"], "failed_polls": polls.failed - failed_before,
                   "cpu_cores_total": round(sum(cpu) / (end - start), 3),
                   "cpu_s_per_1000_polls": round(sum(cpu) / figures["polls"] * 1000, 3) if figures["polls"] else None,
                   "seconds": round(end - start, 1), "loadavg": loadavg(), "per_process": per_process}
            rows.append(row)
            print(f"  {n} process(es): {row['polls_per_s']} polls/s of {row['demanded_polls_per_s']}, "
                  f"missed {row['missed']}, double {row['double_polls']}, "
                  f"{row['cpu_s_per_1000_polls']} CPU-s/1,000 polls", flush=True)
    finally:
        for collector in collectors:  # all at once: each says goodbye and sends what it has queued
            if collector.proc.poll() is None:
                collector.proc.terminate()
        for collector in collectors:
            try:
                collector.proc.wait(30)
            except subprocess.TimeoutExpired:
                stop_process(collector.proc, signal.SIGKILL)
        if listener is not None:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        if sim.pid is not None and sim.is_alive():
            sim.terminate()  # SIGTERM: the simulation stops cleanly
            sim.join(30)
            if sim.is_alive():
                sim.kill()
                sim.join(10)
        await asyncio.to_thread(broker.stop)
    return {"benchmark": "shards", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(), "interval_s": args.interval, "quick": args.quick,
            "prefectures": args.prefectures or "all", "snmp_version": "v3", "rows": rows}


def table(result: dict[str, Any]) -> str:
    lines = [f"{'processes':>9} {'polls/s':>8} {'demanded':>8} {'missed':>6} {'double':>6} {'failed':>6} "
             f"{'cores':>6} {'CPU-s/1k polls':>14}  per process (devices, CPU-s/1k polls)"]
    for row in result["rows"]:
        each = ", ".join(f"{p['devices']}:{p['cpu_s_per_1000_polls']}" for p in row["per_process"])
        lines.append(f"{row['processes']:>9} {row['polls_per_s']:>8} {row['demanded_polls_per_s']:>8} "
                     f"{row['missed']:>6} {row['double_polls']:>6} {row['failed_polls']:>6} "
                     f"{row['cpu_cores_total']:>6} {row['cpu_s_per_1000_polls']!s:>14}  {each}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="555 devices every 5 s, short windows (≤ 2 min)")
    parser.add_argument("--processes", type=int, default=4, help="scale from 1 to this many (default 4)")
    parser.add_argument("--seconds", type=float, help="measured seconds per step (default 60; quick 12)")
    parser.add_argument("--warmup", type=float, help="seconds before the first window (default 60; quick 10)")
    parser.add_argument("--settle", type=float, help="seconds after each later start (default 15; quick 6)")
    parser.add_argument("--interval", type=float, help="every device's poll interval (default 10; quick 5)")
    parser.add_argument("--prefectures", help="comma-separated prefecture codes (default all; quick 13,27)")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON file (default {RESULTS})")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep inventory, config and collector logs here")
    args = parser.parse_args()
    quick = {"seconds": 12.0, "warmup": 10.0, "settle": 6.0, "interval": 5.0, "prefectures": "13,27"}
    full = {"seconds": 60.0, "warmup": 60.0, "settle": 15.0, "interval": 10.0, "prefectures": None}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = asyncio.run(measure(args, args.keep.resolve()))
    else:
        with tempfile.TemporaryDirectory(prefix="bench-shards-") as tmp:
            result = asyncio.run(measure(args, Path(tmp)))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"written: {args.output}")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a timeout of the suite still runs the finally
    raise SystemExit(main())
