"""The monitor's own polling is known to the traffic IDS: it leaves from the network monitor's address
(or a configured source), which the matrix and the scan and flood detectors take for the monitor."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from collectors.icmp_probe import check_icmp
from collectors.snmp.client import Credentials, SnmpTimeout
from collectors.snmp.udp_client import SnmpUdpClient
from collectors.tls_probe import check_tls
from ids.traffic import Engine
from ids.traffic.matrix import Matrix, network_monitor
from monitor.config import CollectorSettings, ConfigError
from monitor.inventory import Role
from simnet.traffic_gen import tcp, udp

SOURCE = "127.66.0.1"


def test_the_snmp_client_polls_from_its_source_address():
    async def scenario() -> str:
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        server.bind(("127.0.0.1", 0))
        server.setblocking(False)
        client = SnmpUdpClient(Credentials("2c", community="public"), timeout=0.3, retries=0, source=SOURCE)
        try:
            request = asyncio.ensure_future(client.get("127.0.0.1", server.getsockname()[1], [(1, 3, 6, 1, 2, 1, 1, 3, 0)]))
            _, sender = await asyncio.wait_for(asyncio.get_running_loop().sock_recvfrom(server, 2048), 3)
            with pytest.raises(SnmpTimeout):
                await request
            return sender[0]
        finally:
            await client.close()
            server.close()

    assert asyncio.run(scenario()) == SOURCE


def test_the_tls_check_connects_from_its_source_address():
    async def scenario() -> str:
        peers: list[str] = []

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peers.append(writer.get_extra_info("peername")[0])
            writer.close()

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        try:
            check = await check_tls("127.0.0.1", server.sockets[0].getsockname()[1], timeout=2, source=SOURCE)
        finally:
            server.close()
            await server.wait_closed()
        assert not check.ok  # no TLS there: the point is where the connection came from
        return peers[0]

    assert asyncio.run(scenario()) == SOURCE


@pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP sockets need root")
def test_the_icmp_check_pings_from_its_source_address():
    check = asyncio.run(check_icmp("127.0.0.1", count=2, interval=0.05, timeout=1, source=SOURCE))
    assert check.received == 2 and check.error is None


def test_the_source_address_is_checked():
    CollectorSettings(source_address="127.0.0.1").check("collectors")
    with pytest.raises(ConfigError, match=r"collectors\.source_address"):
        CollectorSettings(source_address="monitor.local").check("collectors")


def test_a_monitor_source_is_the_network_monitor_as_a_client_only(small_inventory):
    matrix = Matrix(small_inventory, monitor_sources=["127.0.0.1"])
    cs = next(d for d in small_inventory.devices.values() if d.role is Role.CS and d.address)
    assert matrix.judged("127.0.0.1", cs.address)
    assert matrix.rule_for("127.0.0.1", cs.address, 17, 161).name == "operations polling (SNMP)"
    assert matrix.rule_for("127.0.0.1", cs.address, 6, 22) is None  # the monitor logging in: a violation
    assert not matrix.judged(cs.address, "127.0.0.1")  # traps and syslog to the monitor's own ports
    assert not Matrix(small_inventory).judged("127.0.0.1", cs.address)


def _polling(source: str, targets: list[str], t: float) -> list[tuple[float, bytes]]:
    """One SNMP get and its answer, and one TLS certificate check, to every target within a second."""
    frames = []
    for i, address in enumerate(targets):
        ts = t + i / len(targets)
        frames += [(ts, udp(source, 40000, address, 161, b"\x30\x29" + bytes(41))),
                   (ts + 0.0005, udp(address, 161, source, 40000, b"\x30\x5a" + bytes(90))),
                   (ts + 0.001, tcp(source, 50000 + i, address, 443, 0x02))]
    return frames


def _alerts(inventory, frames, **options) -> list[str]:
    alerts: list[dict] = []
    engine = Engine(alerts.append, inventory=inventory, **options)
    for ts, frame in frames:
        engine.frame(ts, 1, frame)
    engine.close()
    return sorted({a["alert"]["metadata"]["jukimon_type"][0] for a in alerts})


def test_polling_every_device_from_the_monitor_is_no_scan_or_flood(small_inventory):
    targets = [d.address for d in small_inventory.devices.values() if d.role.serves_tls and d.address]
    assert len(targets) > 40
    monitor = network_monitor(small_inventory)
    rounds = [f for k in range(3) for f in _polling(monitor.address, targets * 6, 100.0 + 10 * k)]
    assert _alerts(small_inventory, rounds) == []  # > 500 answers a second to the monitor: no flood either
    assert _alerts(small_inventory, _polling("127.0.0.1", targets, 100.0), monitor_sources=frozenset({"127.0.0.1"})) == []
    assert _alerts(small_inventory, _polling("127.0.0.1", targets, 100.0)) == ["scan"]  # unknown: a scan


def test_the_monitoring_hosts_own_plumbing_is_not_judged(small_inventory):
    """127.0.0.1 ↔ 127.0.0.1 (store, broker, TSDB, a browser on the console) is the host's, not the network's."""
    console = [(100.0 + k / 100, tcp("127.0.0.1", 40000 + k, "127.0.0.1", 8080, 0x02)) for k in range(30)]
    probes = [(100.0 + k / 100, tcp("127.0.0.1", 50000, "127.0.0.1", 20000 + k, 0x02)) for k in range(30)]
    assert _alerts(small_inventory, console + probes) == ["brute_force", "scan"]  # as anyone's, they would be
    assert _alerts(small_inventory, console + probes, monitor_sources=frozenset({"127.0.0.1"})) == []
