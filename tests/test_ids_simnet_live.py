"""The live sensor on ``lo`` beside a running simulation whose devices talk to each other (root only).

The story: a small network (Hokkaido and Okinawa) runs with its devices chattering over mutual TLS
and the collectors polling it (SNMP from the network monitor's address, TLS certificate checks), the
clock at 60× from 10:00 JST on a weekday; 45 real seconds are 45 minutes of a business morning and
raise no alert about the simulation's hosts. Then an intruder acts, on real sockets where the attack
is a conversation (connect scan, UDP scan, brute force against a simulated TLS service, a CS talking
to another prefecture's unit over mutual TLS, cleartext to a TLS port, SMB), with crafted frames
where it is not (tunnels, ARP spoofing, a signature in syslog, a SYN flood): each is detected with
its type and endpoints.

The three types that need what normal looks like run live too. A second sensor learns a baseline
from the quiet window itself (``FrameLearner`` fed by ``live.capture``); a third judges with it
from then on, while the chatter goes on: the national business server opens a TLS connection to a CS
it never talked to while learning (new peer), a CS sends 4 MB to its prefecture unit over mutual TLS
(volume anomaly), and an implant on a CS checks in with the intruder's server every second (beacon).
The time-based thresholds are scaled from hours to the test's minutes (``_config``).

Other processes' loopback traffic is captured too, and other tests run simulations of the same
inventory on the same addresses with other ports: the quiet checks count the alerts about this
simulation's hosts on this simulation's SNMP and TLS ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import os
import random
import socket
import threading
import time
from typing import AsyncIterator

import pytest

from collectors.service import CollectorService
from collectors.snmp.client import Credentials
from collectors.snmp.udp_client import SnmpUdpClient
from ids.traffic import DEFAULT_RULES, Baseline, Engine, FrameLearner, IdsConfig, load_rules
from ids.traffic.live import FrameSink, capture
from ids.traffic.matrix import host_index, network_monitor
from monitor.config import CollectorSettings
from monitor.inventory import Device, Inventory, Role, Subsystem
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
C2 = "127.203.0.10"  # the intruder's command-and-control server
V3 = Credentials("3", user="jukimon", auth_key="jukimon-auth-key", priv_key="jukimon-priv-key")
FRAMED = (attacks.dns_tunnel, attacks.icmp_tunnel, attacks.arp_spoof, attacks.signature, attacks.flood)
BULK = 4_000_000  # bytes of the bulk transfer: 4× the test's volume floor
BEACONS, BEACON_PERIOD = 16, 1.0  # check-ins and seconds between them (fewer than brute_attempts in a minute)
LEARNED = ("new peer", "bulk transfer")  # judged by the sensor with the learned baseline
log = logging.getLogger(__name__)

Truth = dict[str, tuple[str, str | None, str | None]]  # name → (type, src, dst)


@dataclasses.dataclass
class Run:
    normal: list[dict]  # alerts during the quiet window
    ports: frozenset[int]  # this simulation's SNMP and TLS ports
    attacks: Truth
    alerts: list[dict]  # alerts while attacking
    judged: list[dict]  # alerts while attacking, of the sensor with the baseline learned in the quiet window
    baseline: Baseline
    chatter: dict[str, int]
    polls: int
    packets: int


def _morning() -> float:
    day = dt.date(2026, 12, 2)  # a Wednesday
    return dt.datetime.combine(day, dt.time(10, 0), JST).timestamp()


def _config(snmp_port: int, tls_port: int) -> IdsConfig:
    """The defaults with the simulation's ports, and the time-based thresholds scaled from hours to minutes.

    A real implant checks in every few minutes, so the beacon detector ignores intervals below 5 s; the test's
    implant checks in every second. The volume floor (20 MB a minute) is for the national links' real bulk
    provision; the small simulation's links carry a few kB a minute, so 1 MB a minute is far above them.
    """
    base = IdsConfig()
    return dataclasses.replace(base, tls_ports=base.tls_ports | {tls_port}, snmp_ports=base.snmp_ports | {snmp_port},
                               beacon_min_interval=0.5, volume_floor=1_000_000)


@pytest.fixture(scope="module")
def run(small_inventory: Inventory, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return asyncio.run(_scenario(small_inventory, tmp_path_factory.mktemp("simnet")))


@contextlib.asynccontextmanager
async def _sensor(sink: FrameSink) -> AsyncIterator[None]:
    """``sink`` fed with every frame on ``lo`` while inside; closed (its flows ended) on the way out."""
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=capture, args=(sink, "lo", stop, ready), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, 10)


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
    config = _config(snmp_port, tls_port)
    sensor = {"inventory": inventory, "rules": load_rules(DEFAULT_RULES), "config": config,
              "monitor_sources": frozenset({monitor.address, "127.0.0.1"})}  # as the main job: see _monitor_sources
    alerts: list[dict] = []
    judged: list[dict] = []
    engine = Engine(alerts.append, **sensor)
    learner = FrameLearner(config)
    async with _sensor(engine):
        try:
            collectors.start()
            await chatter.start()
            async with _sensor(learner):
                await asyncio.sleep(NORMAL_SECONDS)
            normal = list(alerts)
            del alerts[:]
            baseline = learner.baseline()
            async with _sensor(Engine(judged.append, baseline=baseline, **sensor)):
                truth = await _attack(inventory, net, tls_port)
                truth |= await _against_the_baseline(inventory, net, tls_port, baseline)
                await asyncio.sleep(1.5)
        finally:
            await chatter.stop()
            await collectors.stop()
            await net.stop()
    polls = sum(1 for s in collectors.status.values() if s.ok)
    return Run(normal, frozenset({snmp_port, tls_port}), truth, alerts, judged, baseline, dict(chatter.stats), polls,
               engine.stats.packets)


async def _attack(inventory: Inventory, net: SimNetwork, tls_port: int) -> Truth:
    devices = list(inventory.devices.values())
    unit01 = next(d for d in devices if d.role is Role.PREFECTURE_UNIT and d.prefecture == "01")
    unit47 = next(d for d in devices if d.role is Role.PREFECTURE_UNIT and d.prefecture == "47")
    cs01, cs01b = [d for d in devices if d.role is Role.CS and d.prefecture == "01"][:2]
    agency = next(d for d in devices if d.role is Role.AGENCY_SERVER)
    provision = next(d for d in devices if d.role is Role.NATIONAL_SERVER and d.subsystem.value == "provision")
    truth: Truth = {}

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

    await _tls_exchange(net, cs01, unit47, tls_port)  # a real, valid device certificate: only the policy is wrong
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

    # Last and alone: the sensor's time stamps are taken when it reads a frame, so a burst of frames would jitter them.
    server = await asyncio.start_server(_command_and_control, C2, 0)
    try:
        await asyncio.to_thread(_implant, cs01b.address, server.sockets[0].getsockname()[:2])
    finally:
        server.close()
    truth["beacon"] = ("beacon", cs01b.address, C2)
    return truth


async def _against_the_baseline(inventory: Inventory, net: SimNetwork, tls_port: int, baseline: Baseline) -> Truth:
    """Two allowed conversations the quiet window did not have: a new pair of hosts, and a link's bulk transfer."""
    devices = list(inventory.devices.values())
    units = {d.prefecture: d for d in devices if d.role is Role.PREFECTURE_UNIT}
    cs = [d for d in devices if d.role is Role.CS]
    business = next(d for d in devices if d.role is Role.NATIONAL_SERVER and d.subsystem is Subsystem.BUSINESS)
    hosts = {host for pair in baseline.peers for host in pair}
    # file delivery is allowed business server → CS, but runs at 06:00 JST: at 10:45 no such pair has talked
    target = next(d for d in cs if (business.address, d.address) not in baseline.peers and d.address in hosts)
    assert business.address in hosts  # polled while learning: a known host, not an intruder's
    await _tls_exchange(net, business, target, tls_port, b"\x00" * 2000)
    truth: Truth = {"new peer": ("new_peer", business.address, target.address)}

    def learned(d: Device) -> int:
        return max(baseline.peaks.get((d.address, units[d.prefecture].address), {}).values(), default=0)

    sender = max(cs, key=learned)  # the busiest change-notification link of the quiet window
    assert learned(sender) > 0
    await _tls_exchange(net, sender, units[sender.prefecture], tls_port, random.Random(3).randbytes(BULK))
    truth["bulk transfer"] = ("volume_anomaly", sender.address, units[sender.prefecture].address)
    return truth


async def _tls_exchange(net: SimNetwork, client: Device, server: Device, tls_port: int, data: bytes = b"") -> None:
    """One exchange as the devices make them: from the client's address, with its own device certificate."""
    pool = net.tls_pool
    assert pool is not None
    context = await pool.client_context_for(client)
    reader, writer = await asyncio.open_connection(server.address, tls_port, ssl=context,
                                                   local_addr=(client.address, 0))
    assert (await reader.readuntil(b"\r\n")).startswith(b"JUKI ")
    writer.write(data)
    await writer.drain()
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


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


def _implant(src: str, server: tuple[str, int]) -> None:
    """An implant on a compromised host: the same check-in every BEACON_PERIOD ± 2 %.

    A thread with a blocking socket, on a schedule of its own (not delayed by the event loop's work).
    """
    rng = random.Random(11)
    start = time.monotonic()
    for i in range(BEACONS):
        time.sleep(max(0.0, start + (i + rng.uniform(-0.02, 0.02)) * BEACON_PERIOD - time.monotonic()))
        with socket.create_connection(server, timeout=3, source_address=(src, 0)) as sock:
            sock.sendall(b"JUKI-UPDATE-CHECK " + bytes(48))


async def _command_and_control(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The intruder's server: takes a check-in, closes when the implant does."""
    with contextlib.suppress(OSError, asyncio.TimeoutError):
        await asyncio.wait_for(reader.read(), 5)
    writer.close()


def _about_us(alerts: list[dict], run: Run, inventory: Inventory) -> list[dict]:
    """Alerts about this simulation's hosts on its SNMP or TLS ports (not other processes' loopback traffic)."""
    hosts = host_index(inventory)
    return [a for a in alerts if (a["src_ip"] in hosts or a.get("dest_ip") in hosts)
            and (a.get("src_port") in run.ports or a.get("dest_port") in run.ports)]


def _hits(alerts: list[dict], truth: tuple[str, str | None, str | None]) -> list[dict]:
    kind, src, dst = truth
    return [a for a in alerts if a["alert"]["metadata"]["jukimon_type"] == [kind]
            and (src is None or a["src_ip"] == src) and (dst is None or a["dest_ip"] == dst)]


def _seen(alerts: list[dict]) -> list[tuple]:
    return [(a["alert"]["metadata"]["jukimon_type"], a["src_ip"], a.get("dest_ip")) for a in alerts]


def test_a_normal_morning_raises_no_alert_about_the_simulation(run: Run, small_inventory: Inventory):
    """With the beacon threshold scaled to seconds (``_config``); new peers and volume are judged after this
    window, against the baseline learned from it (the last tests)."""
    ours = _about_us(run.normal, run, small_inventory)
    log.warning("normal window: %d alerts about the simulation, %d in all (other processes' traffic), %d packets, "
                "chatter %s", len(ours), len(run.normal), run.packets, run.chatter)
    assert ours == [], [(a["alert"]["signature"], a["src_ip"], a.get("dest_ip")) for a in ours]


def test_the_simulation_really_talked_and_was_polled(run: Run, small_inventory: Inventory):
    assert run.chatter["change_notification"] >= 5 and run.chatter["notification_forward"] >= 5
    assert not [k for k in run.chatter if k.endswith("_failed")], run.chatter
    assert run.polls >= 0.9 * sum(1 for _ in small_inventory.polled_devices())
    assert run.packets > 5000


@pytest.mark.parametrize("name", ["connect scan", "udp scan", "brute force", "cross-prefecture notification",
                                  "cleartext", "smb", *(a.__name__ for a in FRAMED), "beacon"])
def test_each_attack_is_detected_live_with_type_and_endpoints(run: Run, name: str):
    assert _hits(run.alerts, run.attacks[name]), f"{name}: no {run.attacks[name]}; got {_seen(run.alerts)}"


@pytest.mark.parametrize("name", LEARNED)
def test_with_the_baseline_learned_live_each_attack_is_detected(run: Run, name: str):
    hits = _hits(run.judged, run.attacks[name])
    assert hits, f"{name}: no {run.attacks[name]}; got {_seen(run.judged)}"
    if name == "bulk transfer":  # far above what the link carried while learning, not merely above the floor
        evidence = hits[0]["evidence"]
        assert 0 < IdsConfig().volume_factor * evidence["learned_peak_bytes_per_minute"] < evidence["bytes_this_minute"]


def test_the_beacon_is_the_implant_s_check_ins(run: Run):
    evidence = _hits(run.alerts, run.attacks["beacon"])[0]["evidence"]
    log.warning("beacon: %s", evidence)
    assert abs(evidence["interval_s"] - BEACON_PERIOD) < 0.1
    assert evidence["connections"] == IdsConfig().beacon_intervals + 1


def test_the_chatter_after_learning_is_no_volume_anomaly_and_new_peers_are_allowed_pairs(run: Run,
                                                                                       small_inventory: Inventory):
    """What the learned baseline makes of the traffic after it: the chatter goes on while the intruder acts.

    45 minutes do not show every pair that talks in a day: a pair first used after learning (an agency's
    first query, a CS's first notification, the intruder's cleartext login) is a new peer, as it would be in
    production after a short learning window; it is always one the matrix allows.
    """
    ours = _about_us(run.judged, run, small_inventory)
    volume = [a for a in ours if a["alert"]["metadata"]["jukimon_type"] == ["volume_anomaly"]]
    assert volume == _hits(ours, run.attacks["bulk transfer"]), _seen(volume)
    peers = [a for a in ours if a["alert"]["metadata"]["jukimon_type"] == ["new_peer"]
             and a not in _hits(ours, run.attacks["new peer"])]
    log.warning("learned %d peers and %d links (with other processes' loopback traffic); the bulk transfer: %s; "
                "%d other new peers after learning: %s", len(run.baseline.peers), len(run.baseline.peaks),
                volume and volume[0]["evidence"], len(peers), _seen(peers))
    assert all(a["evidence"]["matrix_rule"] for a in peers), _seen(peers)
