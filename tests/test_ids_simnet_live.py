"""The live sensor on ``lo`` beside a running simulation whose devices talk to each other (root only).

The story: a small network (Hokkaido and Okinawa) runs with its devices chattering over mutual TLS
and the collectors polling it (SNMP from the network monitor's address, TLS certificate checks), the
clock at 60× from 10:00 JST on a weekday; 45 real seconds are 45 minutes of a business morning and
raise no alert about the simulation's hosts. Then an intruder acts, on real sockets where the attack
is a conversation (connect scan, UDP scan, brute force against a simulated TLS service, a CS talking
to another prefecture's unit over mutual TLS, cleartext to a TLS port, SMB), with crafted frames
where it is not (tunnels, ARP spoofing, a signature in syslog, a SYN flood): each is detected with
its type and endpoints.

Other processes' loopback traffic is captured too, and other tests run simulations of the same
inventory on the same addresses with other ports: the quiet check counts the alerts about this
simulation's hosts on this simulation's SNMP and TLS ports.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import os
import random
import socket
import threading
import time

import pytest

from collectors.service import CollectorService
from collectors.snmp.client import Credentials
from collectors.snmp.udp_client import SnmpUdpClient
from ids.traffic import DEFAULT_RULES, Engine, IdsConfig, load_rules
from ids.traffic.live import capture
from ids.traffic.matrix import host_index, network_monitor
from monitor.config import CollectorSettings
from monitor.inventory import Inventory, Role
from monitor.japan_time import JST
from monitor.localservers import free_port
from simnet import attacks
from simnet.chatter import Chatter, ChatterConfig
from simnet.clock import SimClock
from simnet.network import SimNetwork, SimnetConfig
from simnet.traffic_gen import Sample, arp, mac_of
from tests.servers import free_udp_port

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="capturing on lo needs root")

NORMAL_SECONDS = 45.0
INTRUDER = "127.203.0.7"  # no device of the inventory: an intruder's own machine on the network
V3 = Credentials("3", user="jukimon", auth_key="jukimon-auth-key", priv_key="jukimon-priv-key")
FRAMED = (attacks.dns_tunnel, attacks.icmp_tunnel, attacks.arp_spoof, attacks.signature, attacks.flood)
log = logging.getLogger(__name__)


@dataclasses.dataclass
class Run:
    normal: list[dict]  # alerts during the quiet window
    ports: frozenset[int]  # this simulation's SNMP and TLS ports
    attacks: dict[str, tuple[str, str | None, str | None]]  # name → (type, src, dst)
    alerts: list[dict]  # alerts while attacking
    chatter: dict[str, int]
    polls: int
    packets: int


def _morning() -> float:
    day = dt.date(2026, 12, 2)  # a Wednesday
    return dt.datetime.combine(day, dt.time(10, 0), JST).timestamp()


@pytest.fixture(scope="module")
def run(small_inventory: Inventory, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return asyncio.run(_scenario(small_inventory, tmp_path_factory.mktemp("simnet")))


async def _scenario(inventory: Inventory, state_dir) -> Run:
    snmp_port, tls_port = free_udp_port(), free_port()
    net = SimNetwork(inventory, SimnetConfig(snmp_port=snmp_port, tls_port=tls_port, state_dir=state_dir),
                     clock=SimClock(speed=60, start=_morning()))
    await net.start()
    monitor = network_monitor(inventory)
    assert monitor is not None and monitor.address
    settings = dataclasses.replace(CollectorSettings(), tls_interval=15.0, timeout=1.0, retries=0)
    collectors = CollectorService(inventory, settings, SnmpUdpClient(V3, timeout=1.0, retries=0,
                                                                     source=monitor.address),
                                  [], snmp_port=snmp_port, tls_port=tls_port)
    chatter = Chatter(net, ChatterConfig(max_per_second=1.0, seed=7))
    config = IdsConfig(tls_ports=IdsConfig().tls_ports | {tls_port}, snmp_ports=IdsConfig().snmp_ports | {snmp_port})
    alerts: list[dict] = []
    engine = Engine(alerts.append, inventory=inventory, rules=load_rules(DEFAULT_RULES), config=config,
                    monitor_sources=frozenset({monitor.address, "127.0.0.1"}))  # as the main job: see _monitor_sources
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=capture, args=(engine, "lo", stop, ready), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        collectors.start()
        await chatter.start()
        await asyncio.sleep(NORMAL_SECONDS)
        normal = list(alerts)
        del alerts[:]
        truth = await _attack(inventory, net, tls_port)
        await asyncio.sleep(1.5)
    finally:
        await chatter.stop()
        await collectors.stop()
        await net.stop()
        stop.set()
        await asyncio.to_thread(thread.join, 10)
    polls = sum(1 for s in collectors.status.values() if s.ok)
    return Run(normal, frozenset({snmp_port, tls_port}), truth, alerts, dict(chatter.stats), polls,
               engine.stats.packets)


async def _attack(inventory: Inventory, net: SimNetwork, tls_port: int) -> dict[str, tuple[str, str | None, str | None]]:
    devices = list(inventory.devices.values())
    unit01 = next(d for d in devices if d.role is Role.PREFECTURE_UNIT and d.prefecture == "01")
    unit47 = next(d for d in devices if d.role is Role.PREFECTURE_UNIT and d.prefecture == "47")
    cs01, cs01b = [d for d in devices if d.role is Role.CS and d.prefecture == "01"][:2]
    agency = next(d for d in devices if d.role is Role.AGENCY_SERVER)
    provision = next(d for d in devices if d.role is Role.NATIONAL_SERVER and d.subsystem.value == "provision")
    truth: dict[str, tuple[str, str | None, str | None]] = {}

    for port in range(20001, 20031):  # connect scan: closed ports answer RST
        await _connect(INTRUDER, unit01.address, port)
    truth["connect scan"] = ("scan", INTRUDER, unit01.address)

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.203.0.8", 0))
        for port in range(30001, 30026):
            udp.sendto(b"\x00" * 8, (cs01.address, port))
    truth["udp scan"] = ("scan", "127.203.0.8", cs01.address)

    for _ in range(25):  # password guessing against the unit's TLS service
        await _connect("127.203.0.9", unit01.address, tls_port)
    truth["brute force"] = ("brute_force", "127.203.0.9", unit01.address)

    pool = net.tls_pool
    assert pool is not None
    context = await pool.client_context_for(cs01)  # a real, valid device certificate: only the policy is wrong
    reader, writer = await asyncio.open_connection(unit47.address, tls_port, ssl=context,
                                                   local_addr=(cs01.address, 0))
    assert (await reader.readuntil(b"\r\n")).startswith(b"JUKI ")
    writer.close()
    truth["cross-prefecture notification"] = ("matrix_violation", cs01.address, unit47.address)

    await _connect(agency.address, provision.address, tls_port, b"LOGIN provision-admin secret\r\n")
    truth["cleartext"] = ("cleartext", agency.address, provision.address)

    await _connect(cs01.address, cs01b.address, 445)
    truth["smb"] = ("forbidden_protocol", cs01.address, cs01b.address)

    sample = Sample.of(inventory, prefectures=("01", "47"), municipalities=6)
    rng = random.Random(5)
    for attack in FRAMED:
        frames, injected = attack(sample, time.time(), rng)
        if injected.type == "arp_spoof":  # the unit's own announcement first: the binding the spoof changes
            attacks.send_frames([(0, arp(2, injected.src, mac_of(injected.src), injected.dst))])
        frames = frames[:1200] if injected.type == "flood" else frames
        await asyncio.to_thread(attacks.send_frames, sorted(frames, key=lambda f: f[0]))
        truth[attack.__name__] = (injected.type, injected.src, injected.dst)
    return truth


async def _connect(src: str, dst: str, port: int, payload: bytes = b"") -> None:
    """One TCP connection from ``src``; refused is fine (a closed port answers RST, which is what a scan sees)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(dst, port, local_addr=(src, 0)), 3)
    except (OSError, asyncio.TimeoutError):
        return
    if payload:
        writer.write(payload)
        await writer.drain()
        await asyncio.sleep(0.05)
    writer.close()


def test_a_normal_morning_raises_no_alert_about_the_simulation(run: Run, small_inventory: Inventory):
    hosts = host_index(small_inventory)
    ours = [a for a in run.normal if (a["src_ip"] in hosts or a.get("dest_ip") in hosts)
            and (a.get("src_port") in run.ports or a.get("dest_port") in run.ports)]
    log.warning("normal window: %d alerts about the simulation, %d in all (other processes' traffic), %d packets, "
                "chatter %s", len(ours), len(run.normal), run.packets, run.chatter)
    assert ours == [], [(a["alert"]["signature"], a["src_ip"], a.get("dest_ip")) for a in ours]


def test_the_simulation_really_talked_and_was_polled(run: Run, small_inventory: Inventory):
    assert run.chatter["change_notification"] >= 5 and run.chatter["notification_forward"] >= 5
    assert not [k for k in run.chatter if k.endswith("_failed")], run.chatter
    assert run.polls >= 0.9 * sum(1 for _ in small_inventory.polled_devices())
    assert run.packets > 5000


@pytest.mark.parametrize("name", ["connect scan", "udp scan", "brute force", "cross-prefecture notification",
                                  "cleartext", "smb", *(a.__name__ for a in FRAMED)])
def test_each_attack_is_detected_live_with_type_and_endpoints(run: Run, name: str):
    kind, src, dst = run.attacks[name]
    hits = [a for a in run.alerts if a["alert"]["metadata"]["jukimon_type"] == [kind]
            and (src is None or a["src_ip"] == src) and (dst is None or a["dest_ip"] == dst)]
    assert hits, f"{name}: no {kind} alert {src} → {dst}; got " + repr(
        [(a["alert"]["metadata"]["jukimon_type"], a["src_ip"], a.get("dest_ip")) for a in run.alerts])
