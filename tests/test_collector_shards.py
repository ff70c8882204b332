"""Three collector processes share a simulated network through a real broker; one is SIGKILLed, a fourth joins.

What the monitor sees is measured from the bus (every device's ``…/samples`` message is one poll):
in steady state each device is polled once per interval (nobody polls it twice), a killed collector's
devices are taken over so that no device waits more than 2 intervals, and a newcomer takes a share
from everybody without a gap.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Iterator

import aiomqtt
import pytest
import pytest_asyncio

from collectors.shard import Membership
from monitor.config import ShardSettings
from monitor.envelope import Sample, decode_batch
from monitor.inventory import save_inventory
from monitor.inventory.model import Inventory
from monitor.inventory.subset import subset_by_prefecture
from simnet.network import SimNetwork, SimnetConfig
from tests.servers import Mosquitto, free_port, free_udp_port, mosquitto_server, victoria_metrics_server

pytestmark = pytest.mark.asyncio(loop_scope="module")
ROOT = Path(__file__).resolve().parents[1]
INTERVAL = 5.0  # every device's poll interval here (10 s in production): short, to keep the test short
CONFIG = f"""
collectors:
  intervals: {{}}
  default_interval: {INTERVAL}
  tls_interval: 600
  timeout: 1.5
  retries: 1
  shard: {{heartbeat: 0.5, keepalive: 1, expire_after: 4}}
"""


@pytest.fixture(scope="module")
def inventory(full_inventory: Inventory) -> Inventory:
    return subset_by_prefecture(full_inventory, ["01", "47"], max_municipalities=6)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    with mosquitto_server(tmp_path_factory.mktemp("broker")) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def net(inventory: Inventory, tmp_path_factory: pytest.TempPathFactory):
    network = SimNetwork(inventory, SimnetConfig(snmp_port=free_udp_port(), tls_port=free_port(), tls=False,
                                                 state_dir=tmp_path_factory.mktemp("simnet")))
    await network.start()
    yield network
    await network.stop()


class Polls:
    """Every poll seen on the bus: device → arrival times (monotonic), and failed polls."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        self.failed: dict[str, list[float]] = defaultdict(list)

    def add(self, payload: bytes) -> None:
        now = time.monotonic()
        for sample in decode_batch(payload):  # one poll's samples
            if isinstance(sample, Sample) and sample.measurement == "poll" and sample.origin.device:
                self.times[sample.origin.device].append(now)
                if not sample.fields["ok"]:
                    self.failed[sample.origin.device].append(now)

    def between(self, device: str, start: float, end: float) -> list[float]:
        return [t for t in self.times[device] if start <= t < end]

    def max_gap(self, device: str, start: float, end: float) -> float:
        """The longest wait for a poll in [start, end], counting from the last poll before start."""
        before = [t for t in self.times[device] if t < start]
        points = ([before[-1]] if before else [start]) + self.between(device, start, end) + [end]
        return max(b - a for a, b in pairwise(points))


async def listen(broker: Mosquitto, polls: Polls, ready: asyncio.Event) -> None:
    async with aiomqtt.Client(broker.host, broker.port, identifier="shard-test-listener",
                              protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe("jukimon/+/+/+/samples")
        ready.set()
        async for message in client.messages:
            polls.add(message.payload)


class Collector:
    """``jukimon collector run`` as a child process, its JSON log in a file."""

    def __init__(self, member_id: str, broker: Mosquitto, net: SimNetwork, files: Path, *extra: str) -> None:
        self.member_id = member_id
        self.log = files / f"{member_id}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "monitor.cli", "--log-json", "collector", "run",
                 "--broker", f"{broker.host}:{broker.port}", "--id", member_id,
                 "--inventory", str(files / "inventory.yaml"), "--config", str(files / "config.yaml"),
                 "--snmp-port", str(net.config.snmp_port), "--tls-port", str(net.config.tls_port), *extra],
                cwd=files, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})

    def logged(self, message: str) -> list[dict]:
        return [entry for line in self.log.read_text(errors="replace").splitlines() if line.startswith("{")
                for entry in [json.loads(line)] if entry["msg"] == message]

    def share(self) -> int | None:
        """Devices in this collector's share, from its last 'share changed' log line."""
        changes = self.logged("share changed")
        return changes[-1]["devices"] if changes else None

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


async def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.2)


def assert_polled_once_per_interval(polls: Polls, devices: list[str], start: float, end: float) -> None:
    cycles = (end - start) / INTERVAL
    for device in devices:
        seen = polls.between(device, start, end)
        assert cycles - 1.5 <= len(seen) <= cycles + 1.5, (device, len(seen), cycles)
        if not polls.failed[device]:  # a failed poll is re-checked soon on purpose; otherwise never twice
            gaps = [b - a for a, b in pairwise(seen)]
            assert min(gaps, default=INTERVAL) > 0.5 * INTERVAL, (device, gaps)


def assert_no_device_waited_over_2_intervals(polls: Polls, devices: list[str], since: float, what: str) -> None:
    gaps = {d: polls.max_gap(d, since, time.monotonic()) for d in devices}
    worst = max(gaps, key=gaps.__getitem__)
    print(f"{what}: worst wait {gaps[worst]:.2f} s ({worst}), interval {INTERVAL} s")
    assert gaps[worst] <= 2 * INTERVAL, (what, worst, gaps[worst])


async def test_killed_collector_is_taken_over_and_a_new_one_gets_a_share(
        inventory: Inventory, broker: Mosquitto, net: SimNetwork, tmp_path: Path) -> None:
    save_inventory(inventory, tmp_path / "inventory.yaml")
    (tmp_path / "config.yaml").write_text(CONFIG)
    devices = sorted(d.id for d in inventory.polled_devices() if d.address is not None)
    polls, ready = Polls(), asyncio.Event()
    listener = asyncio.get_running_loop().create_task(listen(broker, polls, ready))
    await asyncio.wait_for(ready.wait(), 10)
    collectors = {name: Collector(name, broker, net, tmp_path) for name in ("c1", "c2", "c3")}
    try:
        # Three collectors, every device polled, each by one of them.
        await wait_for(lambda: all(len(polls.times[d]) >= 2 for d in devices), 60, "every device polled twice")
        await wait_for(lambda: all(c.share() for c in collectors.values())
                       and sum(c.share() or 0 for c in collectors.values()) == len(devices), 20, "three shares")
        shares3 = {name: c.share() for name, c in collectors.items()}
        start = time.monotonic()
        await asyncio.sleep(3 * INTERVAL)
        assert_polled_once_per_interval(polls, devices, start, time.monotonic())

        # SIGKILL one while it polls: the others take its devices over within 2 intervals.
        killed_at, killed_wall = time.monotonic(), time.time()
        collectors["c2"].proc.kill()
        collectors["c2"].proc.wait(10)
        await asyncio.sleep(4 * INTERVAL)
        noticed = min(e["ts"] for e in collectors["c1"].logged("collectors changed") if e["left"] == "c2")
        print(f"kill: c1 noticed after {noticed - killed_wall:.2f} s (its socket closed: the broker sent its Will)")
        assert noticed - killed_wall < INTERVAL
        assert_no_device_waited_over_2_intervals(polls, devices, killed_at, "kill")
        assert collectors["c1"].share() + collectors["c3"].share() == len(devices)
        start = time.monotonic() - 2 * INTERVAL
        assert_polled_once_per_interval(polls, devices, start, time.monotonic())

        # A fourth joins: it takes a share from each, nobody's devices wait longer than usual.
        joined_at = time.monotonic()
        collectors["c4"] = Collector("c4", broker, net, tmp_path)
        await wait_for(lambda: bool(collectors["c4"].share()), 30, "c4 has a share")
        await asyncio.sleep(3 * INTERVAL)
        after = {name: collectors[name].share() for name in ("c1", "c3", "c4")}
        print(f"shares: with 3 {shares3}, after the kill and the join {after}")
        assert sum(after.values()) == len(devices)
        assert after["c4"] >= len(devices) / 3 / 2
        assert_no_device_waited_over_2_intervals(polls, devices, joined_at, "join")
        start = time.monotonic() - 2 * INTERVAL
        assert_polled_once_per_interval(polls, devices, start, time.monotonic())

        # The monitor asks for a fresh answer: the owner polls the device at once, off its grid.
        device = devices[0]
        await wait_for(lambda: polls.times[device] and time.monotonic() - polls.times[device][-1] < 0.5, 2 * INTERVAL,
                       "a regular poll of the device")
        asked, count = time.monotonic(), len(polls.times[device])
        async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as client:
            await client.publish("jukimon/control/recheck", json.dumps({"device": device}), qos=1)
        await wait_for(lambda: len(polls.times[device]) > count, INTERVAL / 2, "a re-check poll")
        assert len(polls.between(device, asked, time.monotonic())) == 1  # one owner answered, not everybody

        # A hung host (SIGSTOP: no FIN, the connection stays up) is noticed by keepalive and heartbeat age.
        stopped_at, stopped_wall = time.monotonic(), time.time()
        collectors["c3"].proc.send_signal(signal.SIGSTOP)
        await asyncio.sleep(3 * INTERVAL)
        noticed = min(e["ts"] for e in collectors["c1"].logged("collectors changed") if "c3" in e["left"].split(","))
        print(f"hang: c1 noticed after {noticed - stopped_wall:.2f} s (keepalive 1 s, heartbeat 0.5 s x 4)")
        assert noticed - stopped_wall < INTERVAL
        assert_no_device_waited_over_2_intervals(polls, devices, stopped_at, "hang")
        collectors["c3"].proc.send_signal(signal.SIGCONT)  # it reconnects and takes its share back
        await wait_for(lambda: sum(collectors[n].share() or 0 for n in ("c1", "c3", "c4")) == len(devices)
                       and collectors["c3"].share() > 0, 30, "c3 back with a share")
        await asyncio.sleep(3 * INTERVAL)
        start = time.monotonic() - 2 * INTERVAL
        assert_polled_once_per_interval(polls, devices, start, time.monotonic())

        # A clean stop says goodbye: the others take over at once, and the process exits 0.
        assert collectors["c4"].stop() == 0
        await wait_for(lambda: collectors["c1"].share() + collectors["c3"].share() == len(devices), 10,
                       "c4's devices back with c1 and c3")
    finally:
        for collector in collectors.values():
            collector.stop()
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)


async def test_a_member_that_stops_heartbeating_but_stays_connected_expires(broker: Mosquitto) -> None:
    """A hung collector keeps its TCP connection (the broker sees no problem): its heartbeat age gives it away."""
    changes: list[dict[str, float]] = []
    settings = ShardSettings(heartbeat=0.3, keepalive=5, expire_after=3)
    membership = Membership(broker.host, broker.port, "watcher", changes.append, lambda device: None, settings,
                            prefix="expiry")
    async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as hung:
        beat = {"id": "hung", "alive": True, "weight": 1.0, "heartbeat": 0.3}
        await hung.publish("expiry/collectors/hung/alive", json.dumps(beat), qos=1, retain=True)
        await membership.start()
        try:
            assert membership.members == {"watcher": 1.0, "hung": 1.0}  # learnt from the retained heartbeat
            began = time.monotonic()
            await wait_for(lambda: "hung" not in membership.members, 5, "the silent member expired")
            assert 0.5 < time.monotonic() - began < 3.0  # about expire_after × heartbeat = 0.9 s after its beat
            await hung.publish("expiry/collectors/hung/alive", json.dumps(beat), qos=1, retain=True)
            await wait_for(lambda: "hung" in membership.members, 5, "back when it beats again")
        finally:
            await membership.stop()
            await hung.publish("expiry/collectors/hung/alive", b"", qos=1, retain=True)
    assert changes[0] == {"watcher": 1.0, "hung": 1.0} and {"watcher": 1.0} in changes
    async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as late:
        await late.subscribe("expiry/collectors/+/alive")
        with pytest.raises(asyncio.TimeoutError):  # the goodbye cleared the retained heartbeat: no ghost
            await asyncio.wait_for(anext(aiter(late.messages)), 1.0)


async def test_with_tsdb_samples_also_reach_the_tsdb(inventory: Inventory, broker: Mosquitto, net: SimNetwork,
                                                     tmp_path: Path) -> None:
    save_inventory(inventory, tmp_path / "inventory.yaml")
    (tmp_path / "config.yaml").write_text(CONFIG)
    devices = {d.id for d in inventory.polled_devices() if d.address is not None}
    with victoria_metrics_server(tmp_path) as tsdb:
        collector = Collector("alone", broker, net, tmp_path, "--tsdb", tsdb.url)
        try:
            await wait_for(lambda: collector.share() == len(devices), 30, "all devices")
            await asyncio.sleep(INTERVAL + 2)
        finally:
            assert collector.stop() == 0  # SIGTERM: flushes the TSDB writer, exits 0
        polled = {dict(labels)["device"] for (_, labels) in tsdb.points('{__name__="poll_duration_ms"}')}
    assert polled == devices


async def test_a_stalled_poller_withholds_its_heartbeat_and_the_others_take_over(broker: Mosquitto) -> None:
    """The heartbeat vouches for the polling loop (its watchdog tick), not just for the MQTT connection."""
    settings = ShardSettings(heartbeat=0.3, keepalive=5, expire_after=3)
    polling = {"ok": True}
    stalled = Membership(broker.host, broker.port, "stalled", lambda members: None, lambda device: None, settings,
                         prefix="watchdog", healthy=lambda: polling["ok"])
    watcher = Membership(broker.host, broker.port, "watcher", lambda members: None, lambda device: None, settings,
                         prefix="watchdog")
    await stalled.start()
    await watcher.start()
    try:
        await wait_for(lambda: "stalled" in watcher.members, 5, "both members seen")
        polling["ok"] = False
        await wait_for(lambda: "stalled" not in watcher.members, 5, "the stalled one expired")
        polling["ok"] = True
        await wait_for(lambda: "stalled" in watcher.members, 5, "back once its poller ticks again")
    finally:
        await watcher.stop()
        await stalled.stop()


async def test_after_a_broker_restart_a_collector_announces_itself_again(broker: Mosquitto) -> None:
    """The broker forgets retained heartbeats (no persistence): each collector's next session re-announces it."""
    settings = ShardSettings(heartbeat=0.3, keepalive=2, expire_after=3)
    membership = Membership(broker.host, broker.port, "survivor", lambda members: None, lambda device: None, settings,
                            prefix="restart")
    await membership.start()
    try:
        await asyncio.to_thread(broker.restart)
        async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as late:
            await late.subscribe("restart/collectors/+/alive")
            message = await asyncio.wait_for(anext(aiter(late.messages)), 15)
        assert json.loads(message.payload)["id"] == "survivor"
        assert membership.members == {"survivor": 1.0}
    finally:
        await membership.stop()
