"""The collectors at full scale, side by side with Debian's prometheus-snmp-exporter.

    .venv/bin/python bench/bench_collectors.py [--seconds 180] [--warmup 60]
        [--version v3|v2c|both] [--exporter-version v2c|v3] [--exporter-modes get,walk]
        [--rounds 1] [--cadence uniform|settings] [--skip-exporter] [--tls]

One run, one simulated national network (`jukimon simnet run`, 8,798 SNMP agents on
127.x, in a child process), then one phase after the other against it — never two at
once, the machine has two cores:

1. Jukimon: `CollectorService` (every device every 10 s, 879.8 polls/s — or with
   --cadence settings the collectors' per-role defaults) and a counting sink, in a fresh
   process per phase. The first `--warmup` seconds (SNMPv3 discovery, table learning for every device) are not
   measured; the steady state after them is: polls/s, CPU seconds per 1,000 polls of the
   collector process (time.process_time()) and of the simulation (/proc), missed
   cycles, failures, start lag, RSS.
2. prometheus-snmp-exporter (Debian's /usr/bin/prometheus-snmp-exporter, 0.21) with
   bench/snmp_exporter/snmp.yml (v2c and v3 modules), written by this script from the collectors' own
   per-device poll plans (collectors/snmp/probe.py, as learned in phase 1): sysUpTime.0,
   eight IF-MIB columns per interface, hrProcessorLoad, hrStorageAllocationUnits/Size/Used.
   Two kinds of module: `get` — one per device shape, a GET of exactly the instances the
   collectors GET (the like-for-like), and `walk` — a GET of sysUpTime and a GETBULK walk
   of each polled column, what the exporter's generator emits for tables. The exporter is
   checked first: for a few devices it must return one sample per object the collectors poll.
   A scraper (its own process, asyncio, HTTP/1.1 keep-alive, no gzip, at most
   --concurrency requests in flight) asks GET /snmp?target=ADDR:PORT&module=M for
   every device at the same cadence on the same evenly spread grid. The exporter's CPU per
   1,000 successful scrapes (HTTP 200) is read from /proc; the scraper's own CPU is
   reported but counted for neither side.

The ratio reported: Jukimon polls per CPU-second / exporter scrapes per CPU-second, same
SNMP version (v2c by default). Prints a table and writes bench/results/collectors.json.
Every wait is bounded; every process started here is stopped in a finally.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
import zlib
from heapq import heapify, heapreplace
from math import floor
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._proc import loadavg, machine, machine_cpu, proc_cpu, proc_rss_mb  # noqa: E402
from bench._sim import Simulation, free_port, stop_process  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "collectors.json"
EXPORTER_DIR = ROOT / "bench" / "snmp_exporter"
EXPORTER_BIN = "/usr/bin/prometheus-snmp-exporter"
INTERVAL = 10.0  # --cadence uniform: every device every 10 s, on both sides; also the timeline's step

COMMUNITY = "public"
V3_USER = "jukimon"
AUTH_KEY = "jukimon-auth-key"
PRIV_KEY = "jukimon-priv-key"


# --- /proc ---------------------------------------------------------------------

class Window:
    """CPU of given processes and of the machine between two moments."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids
        self.wall = time.monotonic()
        self.self_cpu = time.process_time()
        self.cpu = {name: proc_cpu(pid) for name, pid in pids.items()}
        self.machine = machine_cpu()

    def close(self) -> dict[str, Any]:
        wall = time.monotonic() - self.wall
        busy, total = machine_cpu()
        cpu = {name: proc_cpu(pid) - self.cpu[name] for name, pid in self.pids.items()}
        cpu["self"] = time.process_time() - self.self_cpu
        machine_busy = busy - self.machine[0]
        return {"wall": wall, "cpu": cpu, "machine_busy_cores": machine_busy / wall,
                "machine_cores": (total - self.machine[1]) / wall, "loadavg": loadavg()}


async def timeline(samples: list[dict[str, float]], count: Any, cpu: Any, seconds: float) -> None:
    """Every INTERVAL: polls done and CPU used in it, to show how steady the steady state is."""
    last_count, last_cpu, last = count(), cpu(), time.monotonic()
    for _ in range(int(seconds / INTERVAL) + 1):  # bounded
        await asyncio.sleep(INTERVAL)
        now_count, now_cpu, now = count(), cpu(), time.monotonic()
        polls = now_count - last_count
        samples.append({"polls_per_second": round(polls / (now - last), 1),
                         "cpu_s_per_1000_polls": round((now_cpu - last_cpu) / polls * 1000, 4) if polls else None})
        last_count, last_cpu, last = now_count, now_cpu, now


def spread(samples: list[dict[str, float]]) -> dict[str, Any]:
    values = sorted(v["cpu_s_per_1000_polls"] for v in samples if v["cpu_s_per_1000_polls"] is not None)
    if not values:
        return {}
    return {"per_interval_cpu_s_per_1000_polls": {"min": values[0], "median": values[len(values) // 2],
                                                  "max": values[-1], "n": len(values)}}


# --- the simulation --------------------------------------------------------------

# --- child processes -----------------------------------------------------------------

def run_child(target: Any, args: tuple[Any, ...], timeout: float) -> dict[str, Any]:
    """Run target(*args, queue) in a fresh (spawned) process; its result, bounded in time."""
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    child = ctx.Process(target=target, args=(*args, results), daemon=True)
    child.start()
    try:
        status, payload = results.get(timeout=timeout)
    except queue.Empty:
        raise RuntimeError(f"{target.__name__} gave no result in {timeout:.0f} s") from None
    finally:
        child.join(timeout=30)
        if child.is_alive():
            child.terminate()
            child.join(timeout=10)
    if status != "ok":
        raise RuntimeError(f"{target.__name__} failed:\n{payload}")
    return payload


def _child_main(coro_fn: Any, args: tuple[Any, ...], results: Any) -> None:
    import logging
    logging.basicConfig(level=logging.WARNING)
    try:
        results.put(("ok", asyncio.run(coro_fn(*args))))
    except BaseException:
        results.put(("error", traceback.format_exc()))


# --- cadence -----------------------------------------------------------------------------

def collector_settings(cadence: str) -> Any:
    """uniform: every device every INTERVAL s (the full-scale worst case); settings: the product's
    per-role defaults (CollectorSettings()). The exporter's scraper follows the same intervals."""
    from monitor.config import CollectorSettings

    return CollectorSettings() if cadence == "settings" else CollectorSettings(intervals={}, default_interval=INTERVAL)


def device_intervals(cadence: str) -> dict[str, float]:
    from monitor.inventory import default_inventory

    settings = collector_settings(cadence)
    return {d.id: settings.interval_for(d.id, d.role) for d in default_inventory().polled_devices()
            if d.address is not None}


# --- 1. Jukimon ------------------------------------------------------------------------

def jukimon_child(version: str, sim_pid: int, snmp_port: int, tls_port: int, seconds: float,
                  warmup: float, tls: bool, cadence: str, results: Any) -> None:
    _child_main(jukimon_phase, (version, sim_pid, snmp_port, tls_port, seconds, warmup, tls, cadence), results)


async def jukimon_phase(version: str, sim_pid: int, snmp_port: int, tls_port: int, seconds: float,
                        warmup: float, tls: bool, cadence: str) -> dict[str, Any]:
    from collectors.service import CollectorService
    from collectors.snmp.client import Credentials
    from collectors.snmp.udp_client import SnmpUdpClient
    from monitor.inventory import default_inventory

    inventory = default_inventory()
    devices = [d for d in inventory.polled_devices() if d.address is not None]
    counts: Counter[str] = Counter()

    def sink(records: Any) -> None:  # what every sink gets, counted: the cheapest possible consumer
        for record in records if isinstance(records, list) else [records]:  # one list per poll (or one record)
            measurement = getattr(record, "measurement", None)
            counts[measurement or "event"] += 1
            if measurement == "poll":
                counts["poll_ok" if record.fields["ok"] else "poll_failed"] += 1

    if version == "v3":
        credentials = Credentials("3", user=V3_USER, auth_key=AUTH_KEY, priv_key=PRIV_KEY)
    else:
        credentials = Credentials("2c", community=COMMUNITY)
    settings = collector_settings(cadence)
    client = SnmpUdpClient(credentials, timeout=settings.timeout, retries=settings.retries)
    service = CollectorService(inventory, settings, client, [sink], snmp_port=snmp_port, tls_port=tls_port)
    if not tls:  # the exporter has nothing like the TLS probes: SNMP only, unless asked
        for device in devices:
            service.scheduler.remove((device.id, "tls"))
    stats = service.scheduler.stats
    total = Window({"simulation": sim_pid})
    service.start()
    try:
        await asyncio.sleep(warmup)
        before = (Counter(counts), stats.started, stats.completed, stats.failed, stats.missed, Counter(client.stats))
        stats.max_start_lag, stats.lag_sum, stats.lag_count = 0.0, 0.0, 0  # steady-state lag only
        window = Window({"simulation": sim_pid})
        steps: list[dict[str, float]] = []
        sampler = asyncio.get_running_loop().create_task(
            timeline(steps, lambda: counts["poll_ok"], time.process_time, seconds - warmup))
        await asyncio.sleep(seconds - warmup)
        measured = window.close()
        sampler.cancel()
        after = (Counter(counts), stats.started, stats.completed, stats.failed, stats.missed, Counter(client.stats))
    finally:
        await service.stop()
    whole = total.close()
    plans: dict[tuple[tuple[str, str], ...], int] = {}  # distinct poll plans: ((dotted oid, table), ...)
    device_plan: dict[str, int] = {}
    varbinds = 0
    for device in devices:
        tables = service.converter.history(device.id).tables
        if tables is not None:
            plan = tuple((".".join(map(str, entry[0])), str(entry[1])) for entry in tables.plan)
            device_plan[device.id] = plans.setdefault(plan, len(plans))
            varbinds += len(plan)
    polls = after[0]["poll_ok"] - before[0]["poll_ok"]
    failed_polls = after[0]["poll_failed"] - before[0]["poll_failed"]
    wall = measured["wall"]
    cpu = measured["cpu"]["self"]
    sim_cpu = measured["cpu"]["simulation"]
    client_stats = {k: after[5][k] - before[5].get(k, 0) for k in after[5]}
    return {
        "side": "jukimon",
        "snmp_version": version,
        "devices": len(devices),
        "tls_probes": tls,
        "seconds": seconds,
        "warmup_seconds": warmup,
        "measured_seconds": round(wall, 1),
        "cadence": cadence,
        "target_polls_per_second": round(sum(1 / settings.interval_for(d.id, d.role) for d in devices), 1),
        "polls_per_second": round(polls / wall, 1),
        "polls_ok": polls,
        "polls_failed": failed_polls,
        "missed_cycles": after[4] - before[4],
        "scheduler_failed": after[3] - before[3],
        "max_start_lag_s": round(stats.max_start_lag, 3),
        "mean_start_lag_s": round(stats.mean_start_lag(), 4),
        "client_requests": client_stats.get("sent", None),
        "client_stats": client_stats,
        "cpu_seconds": round(cpu, 2),
        "cpu_cores": round(cpu / wall, 3),
        "cpu_s_per_1000_polls": round(cpu / polls * 1000, 4) if polls else None,
        "polls_per_cpu_second": round(polls / cpu, 1) if cpu else None,
        "simulation_cpu_seconds": round(sim_cpu, 2),
        "simulation_cpu_s_per_1000_polls": round(sim_cpu / polls * 1000, 4) if polls else None,
        "varbinds_per_cycle": varbinds,
        "machine_busy_cores": round(measured["machine_busy_cores"], 2),
        "other_load_cores": round(measured["machine_busy_cores"] - (cpu + sim_cpu) / wall, 2),
        "loadavg_end": measured["loadavg"],
        "whole_run": {"cpu_seconds": round(whole["cpu"]["self"], 2),
                      "simulation_cpu_seconds": round(whole["cpu"]["simulation"], 2),
                      "polls_ok": after[0]["poll_ok"], "records": dict(after[0])},
        **proc_rss_mb(),
        **spread(steps),
        "timeline": steps,
        "_plans": {"plans": [list(plan) for plan in plans], "device_plan": device_plan},
    }


# --- 2. prometheus-snmp-exporter ---------------------------------------------------------

# What the collectors may GET (collectors/snmp/probe.py), named as in the MIBs. The modules below are
# built from the collectors' own per-device plans, so the exporter asks for exactly the same objects.
COLUMNS: dict[str, tuple[str, str]] = {
    "1.3.6.1.2.1.1.3": ("sysUpTime", "gauge"),
    "1.3.6.1.2.1.2.2.1.5": ("ifSpeed", "gauge"),
    "1.3.6.1.2.1.2.2.1.8": ("ifOperStatus", "gauge"),
    "1.3.6.1.2.1.2.2.1.10": ("ifInOctets", "counter"),
    "1.3.6.1.2.1.2.2.1.13": ("ifInDiscards", "counter"),
    "1.3.6.1.2.1.2.2.1.14": ("ifInErrors", "counter"),
    "1.3.6.1.2.1.2.2.1.16": ("ifOutOctets", "counter"),
    "1.3.6.1.2.1.2.2.1.19": ("ifOutDiscards", "counter"),
    "1.3.6.1.2.1.2.2.1.20": ("ifOutErrors", "counter"),
    "1.3.6.1.2.1.31.1.1.1.6": ("ifHCInOctets", "counter"),
    "1.3.6.1.2.1.31.1.1.1.10": ("ifHCOutOctets", "counter"),
    "1.3.6.1.2.1.31.1.1.1.15": ("ifHighSpeed", "gauge"),
    "1.3.6.1.2.1.25.3.3.1.2": ("hrProcessorLoad", "gauge"),
    "1.3.6.1.2.1.25.2.3.1.4": ("hrStorageAllocationUnits", "gauge"),
    "1.3.6.1.2.1.25.2.3.1.5": ("hrStorageSize", "gauge"),
    "1.3.6.1.2.1.25.2.3.1.6": ("hrStorageUsed", "gauge"),
}
TABLE_INDEX = {"interface": "ifIndex", "processor": "hrDeviceIndex", "storage": "hrStorageIndex"}
SCALAR_TABLES = ("system",)


def metric_name(column: str) -> str:
    return COLUMNS.get(column, ("oid_" + column.replace(".", "_"), "gauge"))[0]


def _auth(version: str) -> dict[str, Any]:
    if version == "v3":
        return {"version": 3, "auth": {"username": V3_USER, "security_level": "authPriv", "password": AUTH_KEY,
                                       "auth_protocol": "SHA", "priv_protocol": "AES", "priv_password": PRIV_KEY}}
    return {"version": 2, "auth": {"community": COMMUNITY}}


def exporter_config(plans: list[list[tuple[str, str]]]) -> tuple[str, dict[str, dict[str, list[str]]]]:
    """snmp.yml (exporter 0.21 format: module name -> get/walk/metrics/version/auth, no `modules:` key)
    and, per version and mode, the module of each plan. Same timeout (2 s) and retries (1) as the
    collectors. get: one module per distinct plan — a GET of exactly the instances the collectors GET;
    walk: one module per distinct set of columns — GET sysUpTime.0, GETBULK-walk each column.
    The v3 modules are the v2c ones (YAML merge keys) with v3 auth."""
    def columns_of(plan: list[tuple[str, str]]) -> list[tuple[str, str, bool]]:
        out: dict[str, tuple[str, str, bool]] = {}
        for oid, table in plan:
            column = oid.rsplit(".", 1)[0]
            out.setdefault(column, (column, table, table in SCALAR_TABLES))
        return list(out.values())

    metric_anchors: dict[tuple[tuple[str, str, bool], ...], str] = {}

    def metric_yaml(columns: list[tuple[str, str, bool]]) -> list[str]:
        key = tuple(columns)
        if key in metric_anchors:
            return [f"  metrics: *{metric_anchors[key]}"]
        anchor = metric_anchors[key] = f"metrics{len(metric_anchors):02d}"
        out = [f"  metrics: &{anchor}"]
        for column, table, scalar in columns:
            name, kind = COLUMNS.get(column, (metric_name(column), "gauge"))
            out += [f"  - name: {name}", f"    oid: {column}", f"    type: {kind}"]
            if not scalar:
                out += ["    indexes:", f"    - labelname: {TABLE_INDEX.get(table, 'index')}", "      type: gauge"]
        return out

    def auth_yaml(version: str) -> list[str]:
        auth = _auth(version)
        return [f"  version: {auth['version']}", "  auth:"] + [f"    {k}: {v}" for k, v in auth["auth"].items()]

    def common(max_repetitions: int) -> list[str]:
        return [f"  max_repetitions: {max_repetitions}", "  retries: 1", "  timeout: 2s"]

    lines = ["# Written by bench/bench_collectors.py from the collectors' own poll plans — do not edit.",
             "# prometheus-snmp-exporter 0.21 (Debian) format. The generator needs MIB files Debian does not",
             "# ship, so modules are spelled out with numeric OIDs.",
             "#   jukimon_<version>_walkNN: GET sysUpTime.0 and GETBULK-walk each polled column (what the",
             "#     generator emits for tables); one per set of columns;",
             "#   jukimon_<version>_getNN: GET exactly the instances the collectors GET each cycle, one per",
             "#     device shape — the like-for-like.",
             "# gosnmp refuses more than 60 objects in one GET (the collectors send up to 64): max_repetitions 60.",
             ""]
    base: dict[str, list[str]] = {"get": [], "walk": []}  # v2c module of each plan
    walk_names: dict[tuple[tuple[str, str, bool], ...], str] = {}
    for plan in plans:
        columns = columns_of(plan)
        key = tuple(columns)
        if key not in walk_names:
            name = walk_names[key] = f"walk{len(walk_names):02d}"
            scalars = [oid for oid, table in plan if table in SCALAR_TABLES]
            lines += [f"jukimon_v2c_{name}: &{name}  # {len(columns)} columns", "  get:"]
            lines += [f"  - {oid}" for oid in scalars]
            lines += ["  walk:"] + [f"  - {column}" for column, _, scalar in columns if not scalar]
            lines += metric_yaml(columns) + common(25) + auth_yaml("v2c") + [""]
        base["walk"].append(walk_names[key])
    for n, plan in enumerate(plans):
        name = f"get{n:02d}"
        counts = Counter(table for _, table in plan)
        lines += [f"jukimon_v2c_{name}: &{name}  # {len(plan)} objects: "
                  + ", ".join(f"{v} {k}" for k, v in counts.items()), "  get:"]
        lines += [f"  - {oid}" for oid, _ in plan]
        lines += metric_yaml(columns_of(plan)) + common(60) + auth_yaml("v2c") + [""]
        base["get"].append(name)
    lines += ["# SNMPv3 (authPriv, SHA/AES): the same modules with v3 auth", ""]
    for name in [*dict.fromkeys(base["walk"]), *base["get"]]:
        lines += [f"jukimon_v3_{name}:", f"  <<: *{name}"] + auth_yaml("v3") + [""]
    modules = {version: {mode: [f"jukimon_{version}_{name}" for name in names] for mode, names in base.items()}
               for version in ("v2c", "v3")}
    return "\n".join(lines), modules


def exporter_config_path() -> Path:
    return EXPORTER_DIR / "snmp.yml"


class Exporter:
    def __init__(self, config: Path, log_path: Path):
        self.config = config
        self.port = free_port(socket.SOCK_STREAM)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> None:
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([EXPORTER_BIN, f"--config.file={self.config}",
                                      f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                                     stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exporter exited with {self.proc.returncode} (see {self.log_path})")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("exporter did not listen")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        stop_process(self.proc)
        if hasattr(self, "_log"):
            self._log.close()


class HttpConnection:
    """Minimal HTTP/1.1 keep-alive client: GET, Content-Length or chunked bodies."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        headers = {}
        for line in header_lines:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            for _ in range(1_000_000):
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                parts.append((await self.reader.readexactly(size + 2))[:-2])
            body = b"".join(parts)
        else:
            body = await self.reader.read()
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def count_samples(body: bytes) -> int:
    """Sample lines of the collectors' metrics (not the exporter's own snmp_scrape_* nor comments)."""
    return sum(1 for line in body.split(b"\n") if line and not line.startswith((b"#", b"snmp_scrape_")))


def scraper_child(exporter_pid: int, exporter_port: int, sim_pid: int, targets: list[tuple[str, str, str, float]],
                  seconds: float, warmup: float, concurrency: int, results: Any) -> None:
    _child_main(scraper_phase, (exporter_pid, exporter_port, sim_pid, targets, seconds, warmup, concurrency),
                results)


async def scraper_phase(exporter_pid: int, exporter_port: int, sim_pid: int,
                        targets: list[tuple[str, str, str, float]], seconds: float, warmup: float,
                        concurrency: int) -> dict[str, Any]:
    """targets: (device id, "addr:port", module, interval s). Each on its own fixed grid, as the collectors."""
    idle: list[HttpConnection] = []
    limit = asyncio.Semaphore(concurrency)
    running: set[int] = set()
    tasks: set[asyncio.Task[None]] = set()
    counts: Counter[str] = Counter()
    lags: list[float] = []
    latencies: list[float] = []
    measuring = False

    async def scrape(i: int, due: float) -> None:
        device_id, target, module, _ = targets[i]
        try:
            async with limit:
                started = time.time()
                if measuring:
                    lags.append(max(0.0, started - due))
                conn = idle.pop() if idle else HttpConnection("127.0.0.1", exporter_port)
                try:
                    status, body = await asyncio.wait_for(conn.get(f"/snmp?target={target}&module={module}"), 15.0)
                except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError):
                    conn.close()
                    counts["http_error"] += 1
                    return
                idle.append(conn)
                counts["ok" if status == 200 else f"http_{status}"] += 1
                counts["bytes"] += len(body)
                if measuring:
                    latencies.append(time.time() - started)
        finally:
            running.discard(i)

    start = time.time()
    end = start + seconds
    window: Window | None = None
    before: Counter[str] = Counter()
    steps: list[dict[str, float]] = []
    sampler: asyncio.Task[None] | None = None
    heap = []
    for i, (device_id, _, _, interval) in enumerate(targets):
        offset = _grid_offset(device_id, interval)
        heap.append((offset + (floor((start - offset) / interval) + 1) * interval, i))
    heapify(heap)
    for _ in range(int(sum(seconds / t[3] + 2 for t in targets))):  # bounded: at most every due time once
        due, i = heap[0]
        if due >= end:
            break
        heapreplace(heap, (due + targets[i][3], i))
        now = time.time()
        if not measuring and now >= start + warmup:
            measuring = True
            before = Counter(counts)
            window = Window({"exporter": exporter_pid, "simulation": sim_pid})
            sampler = asyncio.get_running_loop().create_task(
                timeline(steps, lambda: counts["ok"], lambda: proc_cpu(exporter_pid), end - now))
        if due > now:
            await asyncio.sleep(due - now)
        if i in running:
            counts["missed"] += 1
            continue
        running.add(i)
        task = asyncio.get_running_loop().create_task(scrape(i, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if time.time() < end:
        await asyncio.sleep(end - time.time())
    assert window is not None, "--seconds must exceed --warmup"
    measured = window.close()
    after = Counter(counts)
    if sampler is not None:
        sampler.cancel()
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for conn in idle:
        conn.close()
    wall = measured["wall"]
    ok = after["ok"] - before["ok"]
    failed = sum(after[k] - before[k] for k in after if k.startswith("http_"))
    exporter_cpu = measured["cpu"]["exporter"]
    sim_cpu = measured["cpu"]["simulation"]
    lags.sort()
    latencies.sort()
    return {
        "scrapes_per_second": round(ok / wall, 1),
        "scrapes_ok": ok,
        "scrapes_failed": failed,
        "failures": {k: after[k] - before[k] for k in after if k.startswith("http_") and after[k] - before[k]},
        "missed_cycles": after["missed"] - before["missed"],
        "max_start_lag_s": round(lags[-1], 3) if lags else None,
        "mean_start_lag_s": round(sum(lags) / len(lags), 4) if lags else None,
        "latency_p50_ms": round(latencies[len(latencies) // 2] * 1000, 1) if latencies else None,
        "latency_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1) if latencies else None,
        "bytes_per_scrape": round((after["bytes"] - before["bytes"]) / ok) if ok else None,
        "measured_seconds": round(wall, 1),
        "cpu_seconds": round(exporter_cpu, 2),
        "cpu_cores": round(exporter_cpu / wall, 3),
        "cpu_s_per_1000_polls": round(exporter_cpu / ok * 1000, 4) if ok else None,
        "polls_per_cpu_second": round(ok / exporter_cpu, 1) if exporter_cpu else None,
        "simulation_cpu_seconds": round(sim_cpu, 2),
        "simulation_cpu_s_per_1000_polls": round(sim_cpu / ok * 1000, 4) if ok else None,
        "scraper_cpu_seconds": round(measured["cpu"]["self"], 2),
        "scraper_cpu_s_per_1000_polls": round(measured["cpu"]["self"] / ok * 1000, 4) if ok else None,
        "machine_busy_cores": round(measured["machine_busy_cores"], 2),
        "other_load_cores": round(measured["machine_busy_cores"]
                                  - (exporter_cpu + sim_cpu + measured["cpu"]["self"]) / wall, 2),
        "loadavg_end": measured["loadavg"],
        "scraper_rss_mb": proc_rss_mb()["rss_mb"],
        **spread(steps),
        "timeline": steps,
    }


def _grid_offset(device_id: str, interval: float) -> float:
    """Where in its interval a device is scraped: the same spread as the collectors' scheduler."""
    digest = zlib.crc32(repr((device_id, "snmp")).encode())
    return (digest % 10_000) / 10_000 * interval


def verify_exporter(port: int, checks: list[tuple[str, str, int]]) -> list[dict[str, Any]]:
    """Scrape a few devices once; the exporter must return as many samples as the collectors' GET has objects."""
    async def run() -> list[dict[str, Any]]:
        out = []
        conn = HttpConnection("127.0.0.1", port)
        try:
            for target, module, expected in checks:
                status, body = await asyncio.wait_for(conn.get(f"/snmp?target={target}&module={module}"), 15.0)
                out.append({"target": target, "module": module, "status": status, "samples": count_samples(body),
                            "expected": expected, "bytes": len(body)})
        finally:
            conn.close()
        return out
    return asyncio.run(run())


def exporter_phase(mode: str, version: str, sim: Simulation, plans: dict[str, Any], modules: dict[str, list[str]],
                   args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from monitor.inventory import default_inventory

    devices = [d for d in default_inventory().polled_devices() if d.address is not None]
    device_plan = plans["device_plan"]
    missing = [d.id for d in devices if d.id not in device_plan]
    if missing:
        raise RuntimeError(f"{len(missing)} devices without a learned plan (e.g. {missing[:3]})")
    intervals = device_intervals(args.cadence)
    targets = [(d.id, f"{d.address}:{sim.snmp_port}", modules[mode][device_plan[d.id]], intervals[d.id])
               for d in devices]
    exporter = Exporter(exporter_config_path(), work / f"exporter-{mode}-{version}.log")
    try:
        exporter.start()
        by_id = {t[0]: t for t in targets}
        checks = [(by_id[i][1], by_id[i][2], len(plans["plans"][device_plan[i]]))
                  for i in ("muni-01-001-cs1", "agency-01-rt1", "pref-01-fw", "pref-01-core", "aggregation-fw")
                  if i in by_id]
        verification = verify_exporter(exporter.port, checks)
        for check in verification:
            if check["status"] != 200 or check["samples"] != check["expected"]:
                raise RuntimeError(f"exporter does not return what the collectors poll: {check}")
        result = run_child(scraper_child, (exporter.pid, exporter.port, sim.pid, targets, args.seconds,
                                           args.warmup, args.concurrency), timeout=args.seconds + 120)
        result.update(proc_rss_mb(exporter.pid))
    finally:
        exporter.stop()
    return {"side": "prometheus-snmp-exporter", "mode": mode, "snmp_version": version, "devices": len(targets),
            "modules": len({t[2] for t in targets}), "cadence": args.cadence,
            "target_polls_per_second": round(sum(1 / t[3] for t in targets), 1),
            "seconds": args.seconds, "warmup_seconds": args.warmup, "concurrency": args.concurrency,
            "verification": verification, **result}


# --- report -----------------------------------------------------------------------------

def exporter_version() -> str:
    try:
        out = subprocess.run([EXPORTER_BIN, "--version"], capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).splitlines()[0].strip()
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "unknown"


def table(rows: list[dict[str, Any]]) -> str:
    head = ["round", "side", "SNMP", "polls/s", "target/s", "CPU s/1000", "polls/CPU-s", "cores", "sim CPU s/1000",
            "missed", "failed", "max lag s", "RSS MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        name = "Jukimon" if r["side"] == "jukimon" else f"snmp-exporter ({r['mode']})"
        failed = r.get("polls_failed", r.get("scrapes_failed"))
        rate = r.get("polls_per_second", r.get("scrapes_per_second"))
        lines.append("| " + " | ".join(str(v) for v in (
            r.get("round") or "-", name, r["snmp_version"], rate, r["target_polls_per_second"], r["cpu_s_per_1000_polls"],
            r["polls_per_cpu_second"], r["cpu_cores"], r["simulation_cpu_s_per_1000_polls"],
            r["missed_cycles"], failed, r["max_start_lag_s"], r.get("peak_rss_mb"))) + " |")
    return "\n".join(lines)


def summarize(report: dict[str, Any], modes: list[str], version: str) -> dict[str, Any]:
    """Jukimon polls per CPU-second / the exporter's, pooled over the rounds (and per round)."""
    ratios: dict[str, Any] = {}
    compared_runs = [r for r in report["runs"] if r.get("round") is not None]
    ours = [r for r in compared_runs if r["side"] == "jukimon"]
    for mode in modes:
        theirs = [r for r in compared_runs if r["side"] != "jukimon" and r["mode"] == mode]
        if not ours or not theirs:
            continue
        pooled_ours = sum(r["polls_ok"] for r in ours) / sum(r["cpu_seconds"] for r in ours)
        pooled_theirs = sum(r["scrapes_ok"] for r in theirs) / max(1e-9, sum(r["cpu_seconds"] for r in theirs))
        per_round = {}
        for r in theirs:
            mine = next((o for o in ours if o["round"] == r["round"]), None)
            if mine and r["polls_per_cpu_second"]:
                per_round[r["round"]] = round(mine["polls_per_cpu_second"] / r["polls_per_cpu_second"], 2)
        ratios[f"{mode}_{version}"] = {
            "ratio": round(pooled_ours / pooled_theirs, 2), "per_round": per_round,
            "jukimon_polls_per_cpu_second": round(pooled_ours, 1),
            "exporter_polls_per_cpu_second": round(pooled_theirs, 1)}
    report["ratio_polls_per_cpu_second"] = ratios
    return ratios


def partial_path(output: Path) -> Path:
    return output.with_name(output.stem + ".partial.json")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="length of each phase, warm-up included")
    parser.add_argument("--warmup", type=float, default=60.0, help="first seconds of each phase, not measured")
    parser.add_argument("--version", choices=("v3", "v2c", "both"), default="both",
                        help="Jukimon's SNMP version(s); v2c is needed for the comparison (default both)")
    parser.add_argument("--exporter-version", choices=("v2c", "v3"), default="v2c")
    parser.add_argument("--exporter-modes", default="get,walk", help="comma list of get, walk")
    parser.add_argument("--concurrency", type=int, default=512, help="scrapes in flight at most")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat the comparison (Jukimon, then the exporter; order alternates)")
    parser.add_argument("--skip-exporter", action="store_true")
    parser.add_argument("--tls", action="store_true", help="keep the collectors' TLS probes (not compared)")
    parser.add_argument("--cadence", choices=("uniform", "settings"), default="uniform",
                        help="uniform: every device every 10 s (the full-scale worst case, default); settings: "
                             "the collectors' per-role defaults — both sides follow it")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.seconds <= args.warmup:
        parser.error("--seconds must exceed --warmup")
    modes = [m for m in args.exporter_modes.split(",") if m]
    if any(m not in ("get", "walk") for m in modes):
        parser.error("--exporter-modes: get and/or walk")
    versions = ["v3", "v2c"] if args.version == "both" else [args.version]
    if not args.skip_exporter and not Path(EXPORTER_BIN).exists():
        parser.error(f"{EXPORTER_BIN} missing: apt-get install -y prometheus-snmp-exporter (or --skip-exporter)")
    if args.rounds < 1:
        parser.error("--rounds: at least 1")

    def terminated(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)  # so that the finally below stops what was started

    signal.signal(signal.SIGTERM, terminated)
    work = Path(f"/tmp/bench-collectors-{os.getpid()}")
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"benchmark": "collectors", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                              "command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": machine(),
                              "loadavg_start": loadavg(), "cadence": args.cadence, "runs": []}
    sim = Simulation(args.tls, work / "simnet-state", work / "simnet.log")
    try:
        began = time.monotonic()
        sim.start()
        report["simulation"] = {"banner": sim.banner, "startup_s": round(time.monotonic() - began, 1)}
        idle = Window({"simulation": sim.pid})
        time.sleep(10)
        idle_cpu = idle.close()
        report["simulation"]["idle_cpu_cores"] = round(idle_cpu["cpu"]["simulation"] / idle_cpu["wall"], 3)
        report["idle_machine_busy_cores"] = round(idle_cpu["machine_busy_cores"], 2)
        print(f"{sim.banner}; idle: simulation {report['simulation']['idle_cpu_cores']} cores, "
              f"machine busy {report['idle_machine_busy_cores']} of {os.cpu_count()} cores, load {loadavg()}",
              flush=True)
        plans: dict[str, Any] = {}
        modules: dict[str, list[str]] = {}

        def save_partial() -> None:  # what is done so far survives an interrupted run
            summarize(report, modes, args.exporter_version)
            args.output.parent.mkdir(parents=True, exist_ok=True)
            partial_path(args.output).write_text(json.dumps({**report, "complete": False}, indent=1,
                                                            ensure_ascii=False) + "\n")

        def jukimon(version: str, round_: int | None) -> None:
            print(f"Jukimon {version}: {args.seconds:.0f} s ...", flush=True)
            result = run_child(jukimon_child, (version, sim.pid, sim.snmp_port, sim.tls_port, args.seconds,
                                               args.warmup, args.tls, args.cadence), timeout=args.seconds + 180)
            learned = result.pop("_plans")
            if not plans:
                plans.update(learned)
            result["round"] = round_
            report["runs"].append(result)
            save_partial()
            print(table([result]).splitlines()[-1], flush=True)

        def exporter(mode: str, round_: int) -> None:
            print(f"prometheus-snmp-exporter {mode} {args.exporter_version}: {args.seconds:.0f} s ...", flush=True)
            if not modules:
                write_config()
            result = exporter_phase(mode, args.exporter_version, sim, plans, modules, args, work)
            result["round"] = round_
            report["runs"].append(result)
            save_partial()
            print(table([result]).splitlines()[-1], flush=True)

        def write_config() -> None:
            text, new_modules = exporter_config(plans["plans"])
            modules.update(new_modules[args.exporter_version])
            report["exporter_modules"] = {mode: len(set(names)) for mode, names in modules.items()}
            path = exporter_config_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            report["exporter_config"] = str(path.relative_to(ROOT))
            dry = subprocess.run([EXPORTER_BIN, f"--config.file={path}", "--dry-run"],
                                 capture_output=True, text=True, timeout=30)
            if dry.returncode != 0:
                raise RuntimeError(f"exporter rejects snmp.yml: {dry.stdout}{dry.stderr}")

        compared = None if args.skip_exporter else args.exporter_version
        for version in versions:  # the headline runs, once
            if version != compared:
                jukimon(version, None)
        if compared is not None:
            report["exporter_version"] = exporter_version()
            report["exporter_env"] = {k: os.environ[k] for k in ("GOMAXPROCS", "GOGC", "GODEBUG") if k in os.environ}
            for round_ in range(1, args.rounds + 1):  # Jukimon and the exporter, one after the other
                steps = [("jukimon", compared)] + [("exporter", mode) for mode in modes]
                if round_ % 2 == 0 and plans:
                    steps.reverse()  # alternate the order so that a drift in the machine's load evens out
                for kind, what in steps:
                    if kind == "jukimon":
                        jukimon(what, round_)
                    else:
                        exporter(what, round_)
    finally:
        sim.stop()
    report["loadavg_end"] = loadavg()
    report["complete"] = True
    ratios = summarize(report, modes, args.exporter_version)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    partial_path(args.output).unlink(missing_ok=True)
    print()
    print(table(report["runs"]))
    for key, ratio in ratios.items():
        print(f"ratio Jukimon / exporter ({key}), polls per CPU-second: {ratio['ratio']}x "
              f"({ratio['jukimon_polls_per_cpu_second']} / {ratio['exporter_polls_per_cpu_second']}; "
              f"per round {ratio['per_round']})")
    print(f"load average start {report['loadavg_start']}, end {report['loadavg_end']}; wrote {args.output}")
    shutil.rmtree(work, ignore_errors=True)  # logs of a failed run stay for a look
    return 0


if __name__ == "__main__":
    sys.exit(main())
