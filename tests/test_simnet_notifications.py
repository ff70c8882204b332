"""The simulation's SNMP notifications and v3 refusals, checked with net-snmp (snmptrapd, snmpget)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path

import pytest
import pytest_asyncio

from monitor.inventory.model import Inventory
from simnet.network import SimNetwork, SimnetConfig
from simnet.snmp.engine import engine_id_for
from tests.snmptools import snmp

pytestmark = pytest.mark.asyncio(loop_scope="module")
SNMP_PORT = 22161


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TrapDaemon:
    """snmptrapd in the foreground, printing every notification it accepts to stdout."""

    def __init__(self, directory: Path, port: int, engine_ids: list[bytes]):
        users = "\n".join(f"createUser -e 0x{e.hex()} jukimon SHA jukimon-auth-key AES jukimon-priv-key"
                          for e in engine_ids)
        conf = directory / "snmptrapd.conf"
        conf.write_text(f"disableAuthorization yes\n{users}\n")
        self.output = directory / "traps.log"
        self.proc = subprocess.Popen(
            ["snmptrapd", "-f", "-n", "-On", "-C", "-c", str(conf), "-Lf", str(self.output),
             f"udp:127.0.0.1:{port}"],
            env={"MIBS": "", "PATH": "/usr/sbin:/usr/bin:/bin", "SNMP_PERSISTENT_DIR": str(directory)})

    async def wait_for(self, text: str, timeout: float = 5.0) -> str:
        for _ in range(int(timeout / 0.05)):
            content = self.output.read_text(errors="replace") if self.output.exists() else ""
            if text in content:
                return content
            await asyncio.sleep(0.05)
        raise AssertionError(f"{text!r} not received; snmptrapd logged:\n{content}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest_asyncio.fixture(loop_scope="module", scope="module", params=["2c", "3"])
async def sim_and_traps(request, small_inventory: Inventory, tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp(f"traps-v{request.param}")
    port = free_udp_port()
    engines = [engine_id_for(d) for d in small_inventory.devices]
    daemon = TrapDaemon(directory, port, engines)
    await daemon.wait_for("NET-SNMP version")  # logged once it listens
    net = SimNetwork(small_inventory, SimnetConfig(snmp_port=SNMP_PORT, tls=False,
                                                   trap_receivers=(("127.0.0.1", port),),
                                                   trap_version=request.param))
    await net.start()
    yield net, daemon
    await net.stop()
    daemon.stop()


async def test_line_cut_sends_link_down_then_link_up_from_the_far_end(sim_and_traps) -> None:
    net, daemon = sim_and_traps
    line = next(l for l in net.inventory.links.values() if l.a == "muni-01-002-rt1")
    core = net.devices[line.b]
    port = next(i.index for i in core.interfaces if i.link_id == line.id)
    fault = net.inject("line_cut", line.id)
    log = await daemon.wait_for(".1.3.6.1.6.3.1.1.5.3")  # linkDown
    assert f"[{core.device.address}]:{SNMP_PORT}" in log  # sent by the core router, from its agent socket
    assert f".1.3.6.1.2.1.2.2.1.1.{port}" in log
    net.clear(fault.id)
    await daemon.wait_for(".1.3.6.1.6.3.1.1.5.4")  # linkUp


async def test_power_cycle_sends_cold_start_and_reboot_warm_start(sim_and_traps) -> None:
    net, daemon = sim_and_traps
    fault = net.inject("device_down", "muni-01-001-cs2")
    net.clear(fault.id)
    await daemon.wait_for(".1.3.6.1.6.3.1.1.5.1")
    net.inject("reboot", "muni-01-001-fw")
    await daemon.wait_for(".1.3.6.1.6.3.1.1.5.2")


async def test_wrong_community_sends_authentication_failure(sim_and_traps) -> None:
    net, daemon = sim_and_traps
    address = net.devices["pref-01-core"].device.address
    proc = await asyncio.create_subprocess_exec("snmpget", "-v2c", "-c", "guess", "-t", "0.3", "-r", "0",
                                                f"{address}:{SNMP_PORT}", "1.3.6.1.2.1.1.3.0",
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    await proc.wait()
    await daemon.wait_for(".1.3.6.1.6.3.1.1.5.5")


async def test_v3_refusals_are_reported_not_silent(sim_and_traps) -> None:
    net, _ = sim_and_traps
    address = net.devices["muni-01-001-cs1"].device.address
    wrong_key = ["-v3", "-l", "authPriv", "-u", "jukimon", "-a", "SHA", "-A", "not-the-auth-key",
                 "-x", "AES", "-X", "jukimon-priv-key"]
    for args, expected in ((wrong_key, "Authentication failure"),
                           (["-v3", "-l", "authNoPriv", "-u", "stranger", "-a", "SHA", "-A", "whatever-key"],
                            "Unknown user name"),
                           (["-v3", "-l", "noAuthNoPriv", "-u", "jukimon"], "Unsupported security level")):
        proc = await asyncio.create_subprocess_exec("snmpget", *args, "-t", "1", "-r", "0",
                                                    f"{address}:{SNMP_PORT}", "1.3.6.1.2.1.1.3.0",
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                                                    env={"MIBS": "", "PATH": "/usr/bin:/bin"})
        out, _ = await proc.communicate()
        assert proc.returncode != 0 and expected in out.decode(), out.decode()
    code, out = await snmp("snmpget", address, SNMP_PORT, "1.3.6.1.2.1.1.3.0", v3=True)
    assert code == 0, out  # and the right user still gets in
