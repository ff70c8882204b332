"""Each fault of the simulation, checked from outside over real SNMP and TLS — and undone.

The simulation runs in this module's event loop on loopback; the checks use
Debian's net-snmp tools and Python's ssl client, as an operator's tools would.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import time
from pathlib import Path

import pytest
import pytest_asyncio
from cryptography import x509

from monitor.inventory.model import Inventory
from simnet.faults import FaultError
from simnet.network import SimnetConfig
from simnet.service import RunningSimulation, start_simulation
from tests.snmptools import number, snmp, values

pytestmark = pytest.mark.asyncio(loop_scope="module")

SNMP_PORT = 17161
TLS_PORT = 17443
UPTIME = ".1.3.6.1.2.1.1.3.0"
IF_OPER = ".1.3.6.1.2.1.2.2.1.8"
HR_CPU = ".1.3.6.1.2.1.25.3.3.1.2"
HR_STORAGE_SIZE = ".1.3.6.1.2.1.25.2.3.1.5"
HR_STORAGE_USED = ".1.3.6.1.2.1.25.2.3.1.6"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sim(small_inventory: Inventory, tmp_path_factory: pytest.TempPathFactory) -> RunningSimulation:
    config = SimnetConfig(snmp_port=SNMP_PORT, tls_port=TLS_PORT,
                          state_dir=tmp_path_factory.mktemp("simnet"))
    running = await start_simulation(small_inventory, config, control=("127.0.0.1", 0))
    yield running
    await running.stop()


@pytest_asyncio.fixture(loop_scope="module", autouse=True)
async def no_faults_left(sim: RunningSimulation):
    yield
    sim.network.clear_all()


def addr(sim: RunningSimulation, device_id: str) -> str:
    return sim.network.devices[device_id].device.address  # type: ignore[return-value]


async def answers(sim: RunningSimulation, device_id: str) -> bool:
    code, out = await snmp("snmpget", addr(sim, device_id), SNMP_PORT, UPTIME, timeout=0.4)
    return code == 0 and UPTIME in values(out)


async def uptime(sim: RunningSimulation, device_id: str) -> int:
    code, out = await snmp("snmpget", addr(sim, device_id), SNMP_PORT, UPTIME)
    assert code == 0, out
    return number(values(out)[UPTIME])


def redundant_site(inv: Inventory) -> str:
    return next(s.id for s in inv.sites.values() if s.tier == "municipality" and s.redundant_lines)


async def test_device_down_goes_silent_and_comes_back_rebooted(sim: RunningSimulation) -> None:
    before = await uptime(sim, "muni-01-001-cs1")
    fault = sim.network.inject("device_down", "muni-01-001-cs1")
    assert not await answers(sim, "muni-01-001-cs1")
    assert await answers(sim, "muni-01-001-fw")  # its neighbours are unaffected
    sim.network.clear(fault.id)
    after = await uptime(sim, "muni-01-001-cs1")
    assert after < before and after < 1000  # a fresh boot: less than 10 s of uptime


async def test_reboot_resets_uptime_and_counters(sim: RunningSimulation) -> None:
    device = "pref-01-core"
    hc_in = ".1.3.6.1.2.1.31.1.1.1.6.1"
    sim.network.clock.advance(600)  # ten simulated minutes of traffic
    code, out = await snmp("snmpget", addr(sim, device), SNMP_PORT, UPTIME, hc_in)
    before = values(out)
    assert number(before[hc_in]) > 0
    sim.network.inject("reboot", device)
    code, out = await snmp("snmpget", addr(sim, device), SNMP_PORT, UPTIME, hc_in)
    after = values(out)
    assert number(after[UPTIME]) < number(before[UPTIME])
    assert number(after[hc_in]) < number(before[hc_in])
    assert not sim.network.faults()  # a reboot is an event, nothing to clear


async def test_one_line_cut_silences_its_router_only_and_downs_the_core_port(sim: RunningSimulation) -> None:
    inv = sim.network.inventory
    site = redundant_site(inv)
    line = next(l for l in inv.links.values() if l.a == f"{site}-rt1")
    core = sim.network.devices[line.b]
    port = next(i.index for i in core.interfaces if i.link_id == line.id)
    fault = sim.network.inject("line_cut", line.id)
    assert not await answers(sim, f"{site}-rt1")
    assert await answers(sim, f"{site}-rt2")
    assert await answers(sim, f"{site}-fw") and await answers(sim, f"{site}-cs1")  # via the other line
    code, out = await snmp("snmpget", core.device.address, SNMP_PORT, f"{IF_OPER}.{port}")
    assert values(out)[f"{IF_OPER}.{port}"] == "INTEGER: 2"
    sim.network.clear(fault.id)
    assert await answers(sim, f"{site}-rt1")
    code, out = await snmp("snmpget", core.device.address, SNMP_PORT, f"{IF_OPER}.{port}")
    assert values(out)[f"{IF_OPER}.{port}"] == "INTEGER: 1"


async def test_both_lines_cut_silences_the_whole_municipality(sim: RunningSimulation) -> None:
    site = redundant_site(sim.network.inventory)
    fault = sim.network.inject("site_lines_cut", site)
    for suffix in ("rt1", "rt2", "fw", "cs1"):
        assert not await answers(sim, f"{site}-{suffix}"), suffix
    assert await answers(sim, "pref-01-core")
    sim.network.clear(fault.id)
    assert await answers(sim, f"{site}-cs1")


async def test_prefecture_fw_down_silences_everything_behind_it(sim: RunningSimulation) -> None:
    fault = sim.network.inject("device_down", "pref-47-fw")
    assert not await answers(sim, "pref-47-core")
    assert not await answers(sim, "muni-47-001-cs1")
    assert await answers(sim, "pref-47-rt1")  # in front of the FW
    assert await answers(sim, "muni-01-001-cs1")  # another prefecture
    sim.network.clear(fault.id)
    assert await answers(sim, "muni-47-001-cs1")


async def test_interface_down(sim: RunningSimulation) -> None:
    fault = sim.network.inject("interface_down", "muni-01-001-fw", if_index=2)
    code, out = await snmp("snmpwalk", addr(sim, "muni-01-001-fw"), SNMP_PORT, IF_OPER)
    status = values(out)
    assert status[f"{IF_OPER}.2"] == "INTEGER: 2" and status[f"{IF_OPER}.1"] == "INTEGER: 1"
    sim.network.clear(fault.id)
    code, out = await snmp("snmpget", addr(sim, "muni-01-001-fw"), SNMP_PORT, f"{IF_OPER}.2")
    assert values(out)[f"{IF_OPER}.2"] == "INTEGER: 1"


async def test_latency_on_a_line_delays_everything_behind_it(sim: RunningSimulation) -> None:
    site = redundant_site(sim.network.inventory)
    lines = [l.id for l in sim.network.inventory.links.values() if l.a.startswith(f"{site}-rt")]
    faults = [sim.network.inject("link_latency", line, latency_ms=400) for line in lines]
    began = time.monotonic()
    code, out = await snmp("snmpget", addr(sim, f"{site}-cs1"), SNMP_PORT, UPTIME, timeout=3)
    assert code == 0 and UPTIME in values(out), out
    assert time.monotonic() - began >= 0.38  # the answer came, but late
    for fault in faults:
        sim.network.clear(fault.id)
    began = time.monotonic()
    assert await answers(sim, f"{site}-cs1")
    assert time.monotonic() - began < 0.35


async def test_loss_on_a_line(sim: RunningSimulation) -> None:
    line = next(l for l in sim.network.inventory.links.values() if l.a == "muni-01-001-rt1")
    total = sim.network.inject("link_loss", line.id, loss=1.0)
    assert not await answers(sim, "muni-01-001-rt1")
    sim.network.clear(total.id)
    partial = sim.network.inject("link_loss", line.id, loss=0.5)
    results = [await answers(sim, "muni-01-001-rt1") for _ in range(16)]
    sim.network.clear(partial.id)
    assert 0 < sum(results) < 16  # some lost, some answered (P(fail) ≈ 2·2⁻¹⁶)


async def test_cpu_and_disk_exhaustion(sim: RunningSimulation) -> None:
    device = "aggregation-pu-01"
    cpu = sim.network.inject("cpu_exhaustion", device)
    disk = sim.network.inject("disk_exhaustion", device)
    code, out = await snmp("snmpwalk", addr(sim, device), SNMP_PORT, HR_CPU)
    assert set(values(out).values()) == {"INTEGER: 100"}
    code, out = await snmp("snmpbulkwalk", addr(sim, device), SNMP_PORT, ".1.3.6.1.2.1.25.2.3.1")
    table = values(out)
    disk_rows = [k.rsplit(".", 1)[1] for k, v in table.items()
                 if k.startswith(".1.3.6.1.2.1.25.2.3.1.2.") and v.endswith("25.2.1.4")]
    assert disk_rows
    for row in disk_rows:
        assert number(table[f"{HR_STORAGE_USED}.{row}"]) / number(table[f"{HR_STORAGE_SIZE}.{row}"]) > 0.99
    sim.network.clear(cpu.id)
    sim.network.clear(disk.id)
    code, out = await snmp("snmpwalk", addr(sim, device), SNMP_PORT, HR_CPU)
    assert all(number(v) < 100 for v in values(out).values())


async def tls_certificate(address: str) -> x509.Certificate:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    reader, writer = await asyncio.wait_for(asyncio.open_connection(address, TLS_PORT, ssl=ctx), 5)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    return x509.load_der_x509_certificate(der)


async def test_certificate_expiry(sim: RunningSimulation) -> None:
    device = "muni-01-001-cs1"
    now = dt.datetime.now(dt.timezone.utc)
    assert (await tls_certificate(addr(sim, device))).not_valid_after_utc > now
    fault = sim.network.inject("cert_expired", device)
    assert (await tls_certificate(addr(sim, device))).not_valid_after_utc < now
    sim.network.clear(fault.id)
    assert (await tls_certificate(addr(sim, device))).not_valid_after_utc > now


async def test_isolating_a_processing_unit(sim: RunningSimulation) -> None:
    device = "aggregation-pu-47"
    before = await uptime(sim, device)
    fault = sim.network.inject("isolate", device)
    assert not await answers(sim, device)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(tls_certificate(addr(sim, device)), 0.5)
    assert await answers(sim, "aggregation-pu-01")
    sim.network.clear(fault.id)
    assert await uptime(sim, device) > before  # still running while cut off: no reboot


async def test_bad_fault_requests_are_refused_with_reasons(sim: RunningSimulation) -> None:
    with pytest.raises(FaultError, match="unknown fault kind"):
        sim.network.inject("meteor", "muni-01-001-cs1")
    with pytest.raises(FaultError, match="no simulated device"):
        sim.network.inject("device_down", "muni-99-001-cs1")
    with pytest.raises(FaultError, match="between"):
        sim.network.inject("link_loss", next(iter(sim.network.inventory.links)), loss=3)
    with pytest.raises(FaultError, match="no TLS service"):
        sim.network.inject("cert_expired", "muni-01-001-fw")
    assert not sim.network.faults()


async def test_fault_cli_against_the_running_simulation(sim: RunningSimulation) -> None:
    import sys

    control = f"127.0.0.1:{sim.control.port}"  # type: ignore[union-attr]

    async def cli(*args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monitor.cli", "simnet", *args, "--control", control,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[1])
        out, _ = await proc.communicate()
        return proc.returncode or 0, out.decode()

    code, out = await cli("fault", "inject", "device_down", "muni-47-002-cs1")
    assert code == 0, out
    fault_id = out.split()[0]
    assert not await answers(sim, "muni-47-002-cs1")
    code, out = await cli("fault", "list")
    assert fault_id in out and "device_down" in out
    code, out = await cli("fault", "clear", fault_id)
    assert code == 0, out
    assert await answers(sim, "muni-47-002-cs1")
    code, out = await cli("fault", "inject", "device_down", "no-such-device")
    assert code == 1 and "no simulated device" in out
