"""Full-scale simulation benchmark: start-up time, RSS, and SNMP GETs per second served.

Starts `jukimon simnet run` (the whole national network, TLS included) as a child
process, then drives SNMPv2c GETs at every device from a separate load process
(the other core) for a bounded time, and reads the simulation's CPU time from
/proc. Also times the agent's request handling in-process, per message.

    .venv/bin/python bench/bench_simnet.py [--seconds 20] [--window 256]

Prints a summary and writes bench/results/simnet.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import random
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.inventory import default_inventory  # noqa: E402
from monitor.snmp import ber  # noqa: E402

SNMP_PORT = 18161
TLS_PORT = 18443
CONTROL_PORT = 18100
SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
IF_HC_IN_1 = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 1)


def get_request(request_id: int) -> bytes:
    varbinds = b"".join(ber.sequence(ber.encode_oid(o), ber.NULL_VALUE) for o in (SYS_UPTIME, IF_HC_IN_1))
    pdu = ber.tlv(ber.GET_REQUEST, ber.encode_integer(request_id) + ber.encode_integer(0)
                  + ber.encode_integer(0) + ber.tlv(ber.SEQUENCE, varbinds))
    return ber.sequence(ber.encode_integer(1), ber.encode_octets(b"public"), pdu)


def load(addresses: list[str], seconds: float, window: int, out: "mp.Queue[dict]") -> None:
    """Keep ``window`` GETs in flight across all devices for ``seconds``; count answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.setblocking(False)
    requests = [get_request(i) for i in range(window)]
    rng = random.Random(7)
    sent = received = timeouts = 0
    in_flight: dict[int, float] = {}
    deadline = time.monotonic() + seconds
    next_slot = 0
    next_sweep = 0.0
    while time.monotonic() < deadline:
        now = time.monotonic()
        if now >= next_sweep:  # give up on answers older than 1 s, twice a second
            next_sweep = now + 0.5
            for slot, when in list(in_flight.items()):
                if now - when > 1.0:
                    del in_flight[slot]
                    timeouts += 1
        while len(in_flight) < window:
            slot = next_slot % window
            next_slot += 1
            if slot in in_flight:
                continue
            sock.sendto(requests[slot], (rng.choice(addresses), SNMP_PORT))
            in_flight[slot] = now
            sent += 1
        readable, _, _ = select.select([sock], [], [], 0.05)
        while readable:
            try:
                data = sock.recv(2048)
            except BlockingIOError:
                break
            received += 1
            # v2c 'public' response: request-id INTEGER at a fixed offset after the short headers
            in_flight.pop(_request_id(data), None)
    out.put({"sent": sent, "received": received, "timeouts": timeouts, "seconds": seconds})


def _request_id(data: bytes) -> int:
    start, stop = ber.expect(data, 0, len(data), ber.SEQUENCE)
    _, p = ber.read_integer(data, start, stop)
    _, _, p = ber.read_octets(data, p, stop)
    p_start, p_stop = ber.expect(data, p, stop, ber.RESPONSE)
    return ber.read_integer(data, p_start, p_stop)[0]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def in_process_handling_cost(n: int = 20000) -> float:
    """Microseconds per v2c GET (two varbinds) through engine + MIB, no sockets."""
    from simnet.network import SimNetwork, SimnetConfig
    from simnet.mib import DeviceView, layout_for
    from simnet.snmp.engine import handle_request
    from monitor.inventory.subset import subset_by_prefecture

    net = SimNetwork(subset_by_prefecture(default_inventory(), ["01"], max_municipalities=3), SimnetConfig())
    sim = net.devices["muni-01-001-cs1"]
    config = net.config.agent_config()
    layout = layout_for(sim)
    request = get_request(1)
    began = time.perf_counter()
    for _ in range(n):
        handle_request(request, DeviceView(sim, net.clock.now(), layout), sim.identity, config)
    return (time.perf_counter() - began) / n * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--window", type=int, default=256, help="GETs kept in flight")
    args = parser.parse_args()

    inventory = default_inventory()
    addresses = [d.address for d in inventory.polled_devices() if d.address]
    per_message_us = in_process_handling_cost()

    began = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "--log-level", "WARNING", "simnet", "run",
         "--snmp-port", str(SNMP_PORT), "--tls-port", str(TLS_PORT), "--control", f"127.0.0.1:{CONTROL_PORT}",
         "--state-dir", str(ROOT / "state" / "bench-simnet")],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first_line = proc.stdout.readline()
        if "devices up" not in first_line:
            raise SystemExit(f"simulation did not start: {first_line!r}")
        startup = time.monotonic() - began
        rss_idle = rss_mb(proc.pid)

        results: mp.Queue = mp.Queue()
        cpu_before = cpu_seconds(proc.pid)
        loader = mp.Process(target=load, args=(addresses, args.seconds, args.window, results))
        loader.start()
        outcome = results.get(timeout=args.seconds + 60)
        loader.join()
        cpu_used = cpu_seconds(proc.pid) - cpu_before
        rss_loaded = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    report = {
        "benchmark": "simnet",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "devices_snmp": len(addresses),
        "devices_tls": sum(1 for d in inventory.polled_devices() if d.role.serves_tls),
        "startup_seconds": round(startup, 2),
        "rss_mb_idle": round(rss_idle, 1),
        "rss_mb_after_load": round(rss_loaded, 1),
        "load_seconds": args.seconds,
        "gets_sent": outcome["sent"],
        "gets_answered": outcome["received"],
        "gets_per_second": round(outcome["received"] / args.seconds, 1),
        "timeouts": outcome["timeouts"],
        "simulation_cpu_seconds": round(cpu_used, 2),
        "cpu_ms_per_1000_gets": round(cpu_used / max(outcome["received"], 1) * 1e6, 1),
        "in_process_us_per_get": round(per_message_us, 1),
    }
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "simnet.json").write_text(json.dumps(report, indent=2) + "\n")
    width = max(len(k) for k in report)
    for key, value in report.items():
        if key != "machine":
            print(f"{key:<{width}}  {value}")
    print(f"written to {out_dir / 'simnet.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
