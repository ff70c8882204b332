"""The main job at national scale, as an operator starts it: `jukimon run` in its own process.

Every tier answers real SNMP (v2c and v3) with sane values, the TLS services
present certificates, faults go in and out through the CLI, and Ctrl-C stops it
cleanly.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.inventory.model import Inventory, Tier
from tests.servers import free_port, free_udp_port
from tests.snmptools import number, snmp, values

ROOT = Path(__file__).resolve().parents[1]
SNMP_PORT, TLS_PORT, CONTROL_PORT = free_udp_port(), free_port(), free_port()  # nothing else may hold them
SYS_DESCR, SYS_UPTIME, SYS_NAME = ".1.3.6.1.2.1.1.1.0", ".1.3.6.1.2.1.1.3.0", ".1.3.6.1.2.1.1.5.0"


@pytest.fixture(scope="module")
def main_job(tmp_path_factory: pytest.TempPathFactory):
    state = tmp_path_factory.mktemp("state")
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "run", "--snmp-port", str(SNMP_PORT), "--tls-port", str(TLS_PORT),
         "--control", f"127.0.0.1:{CONTROL_PORT}", "--state-dir", str(state)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    banner: list[str] = []
    while not any("firewall syslog to" in line for line in banner):  # the banner's last line
        line = proc.stdout.readline()
        if not line:
            break
        banner.append(line)
    assert any("devices up" in line for line in banner), banner
    yield proc, "".join(banner)
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def sample(inv: Inventory, per_tier: int = 6) -> list[str]:
    rng = random.Random(3)
    chosen = []
    for tier in Tier:
        candidates = [d.id for d in inv.polled_devices() if inv.sites[d.site].tier is tier]
        chosen += rng.sample(candidates, min(per_tier, len(candidates)))
    return chosen


def test_banner_names_every_tier(main_job, full_inventory: Inventory) -> None:
    _, banner = main_job
    polled = sum(1 for _ in full_inventory.polled_devices())
    assert f"{polled} devices up" in banner
    for tier in ("national", "aggregation", "agency", "prefecture", "municipality"):
        assert tier in banner


@pytest.mark.parametrize("v3", [False, True], ids=["v2c", "v3-authPriv"])
def test_every_tier_answers_with_sane_values(main_job, full_inventory: Inventory, v3: bool) -> None:
    async def ask_all() -> None:
        for device_id in sample(full_inventory):
            device = full_inventory.devices[device_id]
            code, out = await snmp("snmpget", device.address, SNMP_PORT, SYS_DESCR, SYS_UPTIME, SYS_NAME,
                                   v3=v3, timeout=2, retries=1)
            assert code == 0, (device_id, out)
            got = values(out)
            assert got[SYS_NAME] == f'STRING: "{device_id}"'
            assert number(got[SYS_UPTIME]) > 360_000  # booted more than an hour ago
            assert device.lifecycle.model in got[SYS_DESCR]

    asyncio.run(ask_all())


def test_walk_of_a_prefecture_core_router(main_job, full_inventory: Inventory) -> None:
    core = full_inventory.devices["pref-13-core"]
    lines = [l for l in full_inventory.links.values() if l.b == core.id]
    code, out = asyncio.run(snmp("snmpbulkwalk", core.address, SNMP_PORT, ".1.3.6.1.2.1.31.1.1.1.18", timeout=3))
    aliases = {v.split('"')[1] for v in values(out).values() if '"' in v}
    assert {l.circuit_id for l in lines} <= aliases  # every leased line shows up by its circuit id


def test_fault_round_trip_through_the_cli_and_clean_stop(main_job, full_inventory: Inventory) -> None:
    proc, _ = main_job
    target = full_inventory.devices["muni-13-001-cs1"]

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "monitor.cli", "simnet", *args,
                               "--control", f"127.0.0.1:{CONTROL_PORT}"],
                              cwd=ROOT, capture_output=True, text=True, timeout=30)

    injected = cli("fault", "inject", "device_down", target.id)
    assert injected.returncode == 0, injected.stderr
    code, _ = asyncio.run(snmp("snmpget", target.address, SNMP_PORT, SYS_UPTIME, timeout=0.5))
    assert code != 0
    assert cli("fault", "clear", "--all").returncode == 0
    code, out = asyncio.run(snmp("snmpget", target.address, SNMP_PORT, SYS_UPTIME, timeout=2))
    assert code == 0 and number(values(out)[SYS_UPTIME]) < 2000  # back, freshly booted

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    code, _ = asyncio.run(snmp("snmpget", target.address, SNMP_PORT, SYS_UPTIME, timeout=0.3))
    assert code != 0  # nothing left listening
    assert os.path.isdir(ROOT)  # (module fixture finalises a stopped process)
