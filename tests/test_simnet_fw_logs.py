"""Simulated firewall logs end to end: the simulation's firewalls → real sockets → the syslog listener.

A small network (national and aggregation centres, Hokkaido with three
municipalities: six firewalls) runs on loopback; the collector must see every
answering firewall's traffic logs parsed, attributed to the right device, and
nothing from a firewall that has gone silent.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter

import pytest
import pytest_asyncio

from collectors.syslog import parse_syslog
from collectors.syslog.listener import SyslogListener
from monitor.envelope import Event
from monitor.inventory.model import Inventory
from monitor.inventory.subset import subset_by_prefecture
from simnet.fw_logs import FIREWALL_ROLES, VENDORS, FirewallLogSource, Flow, format_line
from simnet.network import SimNetwork, SimnetConfig

module_loop = pytest.mark.asyncio(loop_scope="module")  # the simulation lives for the whole module

FW_ROLE_NAMES = {r.value for r in FIREWALL_ROLES}
PORTS_ALLOWED = {443, 161, 162, 123, 0}
PORTS_FORBIDDEN = {22, 23, 135, 139, 445, 3389, 1433, 5900, 8080, 21, 137, 1900, 53, 0}


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def net(full_inventory: Inventory) -> SimNetwork:
    inventory = subset_by_prefecture(full_inventory, ["01"], max_municipalities=3)
    network = SimNetwork(inventory, SimnetConfig(snmp_port=free_udp_port(), tls=False))
    await network.start()
    yield network
    await network.stop()


@pytest_asyncio.fixture(loop_scope="module", autouse=True)
async def no_faults_left(net: SimNetwork):
    yield
    net.clear_all()


class Collector:
    """A listener plus the events it got, by sending device."""

    def __init__(self, net: SimNetwork, transport: str):
        self.events: list[Event] = []
        kind = {transport: ("127.0.0.1", 0)}
        self.listener = SyslogListener(self.events.append, net.inventory, **kind)
        self.transport = transport

    def by_device(self) -> Counter[str | None]:
        return Counter(e.origin.device for e in self.events)

    async def wait(self, condition, timeout: float = 6.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out; got {self.by_device()}"
            await asyncio.sleep(0.05)


async def run_source(net: SimNetwork, transport: str, **kw) -> tuple[Collector, FirewallLogSource]:
    collector = Collector(net, transport)
    await collector.listener.start()
    source = FirewallLogSource(net, collector.listener.address(transport), transport=transport,
                               rate_per_fw=kw.pop("rate_per_fw", 1200.0), seed=7, **kw)
    await source.start()
    return collector, source


async def stop(collector: Collector, source: FirewallLogSource) -> None:
    await source.stop()
    await collector.listener.stop()


@module_loop
@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_every_firewall_logs_parsed_events_with_its_origin(net: SimNetwork, transport: str) -> None:
    collector, source = await run_source(net, transport)
    try:
        firewalls = set(source.firewalls)
        assert firewalls == {d.id for d in net.inventory.devices.values() if d.role in FIREWALL_ROLES}
        assert len(firewalls) == 6
        await collector.wait(lambda: all(collector.by_device()[fw] >= 5 for fw in firewalls))
    finally:
        await stop(collector, source)
    stats = collector.listener.stats()
    assert stats["received"] == stats["events"], stats  # nothing rejected
    inventory = net.inventory
    now = net.clock.now()
    actions = Counter()
    for event in collector.events:
        device = inventory.devices[event.origin.device]  # type: ignore[index]
        assert event.origin.role in FW_ROLE_NAMES and event.origin.site == device.site
        assert event.body["peer"] == device.address  # sent from the firewall's own address
        record = event.body["firewall"]
        assert record["vendor"] == source.vendor_of(device.id)
        assert event.src_ip == record["src_ip"] and event.dest_ip == record["dst_ip"]
        assert abs(event.ts - now) < 10
        actions[record["action"]] += 1
        if record["action"] == "allow":
            assert record.get("dst_port", 0) in PORTS_ALLOWED, record
        else:
            assert record.get("dst_port", 0) in PORTS_FORBIDDEN, record
    assert actions["allow"] > actions["deny"] > 0


@module_loop
async def test_municipal_flows_are_between_plausible_endpoints(net: SimNetwork) -> None:
    collector, source = await run_source(net, "udp")
    try:
        await collector.wait(lambda: collector.by_device()["muni-01-001-fw"] >= 25)
    finally:
        await stop(collector, source)
    inventory = net.inventory
    known = {d.address for d in inventory.devices.values() if d.address}
    pu = inventory.devices["aggregation-pu-01"].address
    allowed = [e.body["firewall"] for e in collector.events
               if e.origin.device == "muni-01-001-fw" and e.body["firewall"]["action"] == "allow"]
    assert allowed
    for record in allowed:
        assert record["src_ip"] in known and record["dst_ip"] in known, record
    cs = {d.address for d in inventory.devices_by_site["muni-01-001"] if d.role.value == "cs"}
    assert any(r["src_ip"] in cs and r["dst_ip"] == pu and r.get("dst_port") == 443 for r in allowed)


@module_loop
@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_a_silent_firewall_sends_nothing(net: SimNetwork, transport: str) -> None:
    collector, source = await run_source(net, transport)
    target = "muni-01-002-fw"
    try:
        await collector.wait(lambda: collector.by_device()[target] >= 3)
        fault = net.inject("device_down", target)
        await asyncio.sleep(0.3)  # what was in flight arrives
        collector.events.clear()
        await asyncio.sleep(1.5)
        counts = collector.by_device()
        assert counts[target] == 0
        assert counts["muni-01-001-fw"] > 5 and counts["national-fw"] > 5  # the others carry on
        assert source.stats["silent"] > 0
        net.clear(fault.id)  # back up: it logs again (over TCP it reconnects)
        await collector.wait(lambda: collector.by_device()[target] >= 3)
    finally:
        await stop(collector, source)


@module_loop
async def test_firewall_behind_cut_lines_is_silent_too(net: SimNetwork) -> None:
    collector, source = await run_source(net, "udp")
    try:
        net.inject("site_lines_cut", "muni-01-003")
        await asyncio.sleep(0.3)
        collector.events.clear()
        await asyncio.sleep(1.0)
        assert collector.by_device()["muni-01-003-fw"] == 0 and collector.by_device()["muni-01-001-fw"] > 0
    finally:
        await stop(collector, source)


@module_loop
async def test_the_rate_stays_bounded(net: SimNetwork) -> None:
    collector, source = await run_source(net, "udp", rate_per_fw=60.0)  # 1 msg/s per firewall
    try:
        await asyncio.sleep(2.0)
    finally:
        await stop(collector, source)
    assert source.total_rate == pytest.approx(6.0)
    assert 4 <= len(collector.events) <= 20


def test_national_fleet_mix_and_total_rate(full_inventory: Inventory) -> None:
    network = SimNetwork(full_inventory, SimnetConfig(tls=False))  # not started: only the plan is needed
    source = FirewallLogSource(network, ("127.0.0.1", 5514))
    assert len(source.firewalls) == 1741 + 47 + 2
    assert 50 <= source.total_rate < 200
    mix = Counter(source.vendor_of(fw) for fw in source.firewalls)
    assert set(mix) == set(VENDORS) and min(mix.values()) > 50
    assert source.vendor_of("national-fw") == "paloalto" and source.vendor_of("aggregation-fw") == "juniper_srx"
    again = FirewallLogSource(network, ("127.0.0.1", 5514), seed=99)
    assert all(again.vendor_of(fw) == source.vendor_of(fw) for fw in source.firewalls[::50])  # per device, stable
    capped = FirewallLogSource(network, ("127.0.0.1", 5514), rate_per_fw=600.0)
    assert capped.total_rate == 150.0


def test_vendor_overrides(net: SimNetwork) -> None:
    source = FirewallLogSource(net, ("127.0.0.1", 5514), vendors={
        "muni-01-001-fw": "netfilter", "muni-01-002": "cisco_asa", "prefecture_fw": "fortigate"})
    assert source.vendor_of("muni-01-001-fw") == "netfilter"
    assert source.vendor_of("muni-01-002-fw") == "cisco_asa"
    assert source.vendor_of("pref-01-fw") == "fortigate"
    with pytest.raises(ValueError):
        FirewallLogSource(net, ("127.0.0.1", 5514), vendors={"fw": "checkpoint"})
    with pytest.raises(ValueError):
        FirewallLogSource(net, ("127.0.0.1", 5514), transport="sctp")


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("variant", [0, 1])
def test_every_format_parses_back(vendor: str, variant: int) -> None:
    ts = 1_704_417_072.25  # 2024-01-05 10:11:12.25 JST
    flows = [
        Flow("allow", "tcp", "127.11.1.4", 40512, "127.1.1.11", 443, "cs-to-pu", 1, True, False, 1001),
        Flow("allow", "tcp", "127.1.1.11", 51000, "127.11.1.4", 443, "pu-to-cs", 2, False, True, 1002),
        Flow("allow", "udp", "127.1.0.2", 40161, "127.11.1.5", 161, "nms-snmp", 4, False, True, 1003),
        Flow("allow", "icmp", "127.1.0.2", 0, "127.11.1.5", 0, "nms-ping", 8, False, True, 1004),
        Flow("deny", "tcp", "192.168.7.7", 50123, "127.11.1.4", 445, "default-deny", 0, False, True, 1005),
        Flow("deny", "udp", "127.11.1.200", 137, "127.11.1.4", 137, "default-deny", 0, True, True, 1006),
        Flow("deny", "icmp", "10.1.2.3", 0, "127.11.1.5", 0, "default-deny", 0, False, True, 1007),
    ]
    for flow in flows:
        line = format_line(vendor, variant, flow, ts, "muni-01-001-fw")
        msg = parse_syslog(line, received=ts + 0.5)
        record = msg.firewall
        assert record is not None and record.vendor == vendor, line
        got = (record.action, record.protocol, record.src_ip, record.dst_ip)
        assert got == (flow.action, flow.proto, flow.src, flow.dst), line
        if flow.proto != "icmp":
            assert (record.src_port, record.dst_port) == (flow.sport, flow.dport), line
        assert abs(msg.timestamp - ts) < 1.0, line
        assert msg.hostname == "muni-01-001-fw" or record.device_name == "muni-01-001-fw", line
