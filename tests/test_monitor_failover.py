"""Active/standby monitors: the lease in a private PostgreSQL, then two real monitor processes on one broker.

The story: two monitors watch the same collectors (here a tiny publisher in the test, polling nothing,
publishing what CollectorService would) and share one PostgreSQL. Only one of them mails the NOC. A
server goes silent: one mail. The active monitor is killed (SIGKILL: no goodbye); within the lease's
ttl the standby takes over; another server goes silent: one mail, from the new active — and the
first fault is not mailed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest
import yaml
from sqlalchemy import text

from alerting.model import Notification
from alerting.notify import ConsoleReceiver, DurableOutbox, MailSink
from alerting.service import AlertingService
from collectors.outputs.mqtt import MqttPublisher
from monitor.envelope import Sample, origin_of
from monitor.inventory.model import Inventory
from monitor.inventory.subset import subset_by_prefecture
from monitor.inventory.yaml_io import save_inventory
from monitor.lease import FencedOut, Lease
from monitor.mainjob import sync_maintenance
from monitor.maintenance import MaintenanceBook, MaintenanceWindow
from monitor.state.engine import Changes
from monitor.state.model import Condition, ConditionKind, State, StateRecord, SubjectKind
from monitor.store import PrivatePostgres, Store
from simnet.network import SimNetwork, SimnetConfig
from tests.servers import Mosquitto, free_port, free_udp_port, mosquitto_server
from tests.test_outputs_mqtt import Listener

ROOT = Path(__file__).resolve().parent.parent
TTL, MARGIN = 6.0, 1.5
BEFORE_KILL, AFTER_KILL = "agency-01-server", "agency-02-server"  # leaves, outside the operating-window rules


class Clock:
    """A monotonic clock the test moves by hand (the database's clock stays real)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def open_store(postgres: PrivatePostgres) -> Store:
    return await Store.open(postgres.create_database(f"test_lease_{uuid.uuid4().hex[:10]}"))


# --- the lease ------------------------------------------------------------------------------------------------------

async def test_one_holder_renews_and_the_other_is_refused(postgres: PrivatePostgres) -> None:
    store = await open_store(postgres)
    try:
        a, b = (Lease(store.engine, "monitor", name, ttl=5.0, margin=1.0) for name in ("a", "b"))
        assert await a.renew() and a.active and a.epoch == 1
        assert not await b.renew() and not b.active
        assert await a.renew() and a.epoch == 1  # renewing is not a new term
        row = await a.read()
        assert row is not None and (row.holder, row.epoch, row.live) == ("a", 1, True)
        other = Lease(store.engine, "second-pair", "b", ttl=5.0, margin=1.0)
        assert await other.renew()  # leases by name: another pair of monitors is independent
    finally:
        await store.close()


async def test_expiry_lets_the_other_take_over_with_a_new_epoch_and_the_stale_holder_cannot_renew(
        postgres: PrivatePostgres) -> None:
    store = await open_store(postgres)
    try:
        a, b = (Lease(store.engine, "monitor", name, ttl=1.0, margin=0.3) for name in ("a", "b"))
        assert await a.renew()
        assert not await b.renew()
        await asyncio.sleep(1.2)  # a, frozen, renews no more
        assert not a.active  # past start + ttl − margin on its own clock
        assert await b.renew() and b.epoch == 2
        assert not await a.renew() and not a.active  # a stale holder cannot renew
        assert (await b.read()).holder == "b"  # type: ignore[union-attr]
        await b.release()
        assert not b.active
        assert await a.renew() and a.epoch == 3  # released: taken at once, a new term
    finally:
        await store.close()


async def test_the_holder_stops_acting_margin_seconds_before_its_lease_can_expire(postgres: PrivatePostgres) -> None:
    store = await open_store(postgres)
    try:
        clock = Clock()
        changes: list[bool] = []
        lease = Lease(store.engine, "monitor", "a", ttl=10.0, margin=2.0, clock=clock)
        lease.listeners.append(changes.append)
        assert await lease.renew()
        clock.now += 7.99
        assert lease.active and 0 < lease.remaining() < 0.02
        clock.now += 0.01
        assert not lease.active and lease.remaining() == 0  # renewal start + ttl − margin
        assert await lease.renew() and lease.epoch == 1  # still its own in the database: renewed, same term
        assert changes == [True]
    finally:
        await store.close()


def up(device: str) -> StateRecord:
    return StateRecord(SubjectKind.DEVICE, device, State.UP, 1_700_000_000.0)


async def test_a_write_of_an_ended_term_is_refused_and_lands_nowhere(postgres: PrivatePostgres) -> None:
    """The epoch fences the store: a holder paused past its term (it never asked ``active`` again) writes nothing."""
    store = await open_store(postgres)
    try:
        a, b = (Lease(store.engine, "monitor", name, ttl=1.0, margin=0.3) for name in ("a", "b"))
        assert await a.renew()
        as_a = store.fenced(a.hold)
        await as_a.save_states([up("written-in-its-term")])
        await asyncio.sleep(1.2)  # a paused: its term runs out and b takes over
        assert await b.renew() and b.epoch == 2
        with pytest.raises(FencedOut, match="epoch 1 of a"):
            await as_a.save_states([up("written-after-its-term")])
        with pytest.raises(FencedOut):
            await DurableOutbox(as_a, {"mail": ConsoleReceiver()}).start()  # its outbox cannot even start
        await store.fenced(b.hold).save_states([up("written-by-the-new-holder")])
        await as_a.close()  # a view: the pool stays open
        assert {r.subject for r in await store.load_states()} == {"written-in-its-term", "written-by-the-new-holder"}
    finally:
        await store.close()


async def test_a_write_in_flight_ends_before_the_next_term_begins(postgres: PrivatePostgres) -> None:
    """The fence share-locks the lease row: taking over waits for the old holder's open transaction."""
    store = await open_store(postgres)
    try:
        a = Lease(store.engine, "monitor", "a", ttl=1.0, margin=0.3)
        b = Lease(store.engine, "monitor", "b", ttl=6.0, margin=1.0)  # its renewal may wait up to ttl/3 = 2 s
        assert await a.renew()
        async with store.fenced(a.hold).begin() as conn:
            await asyncio.sleep(1.2)  # expired in the database meanwhile, but the row is locked
            taking = asyncio.create_task(b.renew())
            await asyncio.sleep(0.4)
            assert not taking.done()
            await conn.execute(text("INSERT INTO checkpoints (key, value, updated) VALUES ('last-of-a', '1', 0)"))
        assert await taking and b.epoch == 2
        assert await store.get_checkpoint("last-of-a") == 1
    finally:
        await store.close()


async def test_sqlite_a_single_monitor_is_always_active(tmp_path: Path) -> None:
    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path}/j.db") as store:
        lease = Lease(store.engine, "monitor", "solo")
        assert lease.solo and lease.active and await lease.renew()
        assert await lease.read() is None
    with pytest.raises(ValueError):
        Lease(store.engine, "monitor", "x", ttl=5.0, margin=5.0)


async def test_maintenance_windows_set_on_either_console_reach_the_other_monitor(
        tmp_path: Path, small_inventory: Inventory, caplog: pytest.LogCaptureFixture) -> None:
    """Windows live in the store; each monitor's book follows it: added, changed, removed; a window it cannot
    use (a device not in its inventory) is warned about once, not at every round."""
    now = time.time()
    window = MaintenanceWindow("mw-1", "device", "muni-01-002-cs1", now, now + 3600, "noc", "UPS 交換")
    stranger = MaintenanceWindow("mw-2", "device", "no-such-device", now, now + 3600, "noc", "?")
    book = MaintenanceBook(small_inventory)
    skipped: set[str] = set()
    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path}/j.db") as store:
        for w in (window, stranger):
            await store.save_maintenance(w.id, w.to_json(), w.start, w.end)
        caplog.set_level(logging.WARNING, logger="jukimon")
        for _ in range(2):
            await sync_maintenance(book, store, skipped)
        assert book.windows() == [window]
        assert [r.getMessage() for r in caplog.records].count("maintenance window skipped") == 1
        longer = replace(window, end=now + 7200)
        await store.save_maintenance(longer.id, longer.to_json(), longer.start, longer.end)
        await sync_maintenance(book, store, skipped)
        assert book.windows() == [longer]
        await store.delete_maintenance(window.id)
        await sync_maintenance(book, store, skipped)
        assert book.windows() == []


# --- the gate: nothing leaves a monitor whose fence is down ---------------------------------------------------------

async def test_the_outbox_holds_deliveries_while_the_fence_is_down_and_sends_each_once_after(tmp_path: Path) -> None:
    active = False
    inbox = ConsoleReceiver()
    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path}/j.db") as store:
        outbox = DurableOutbox(store, {"console": inbox}, tick=0.05, fence=lambda: active)
        await outbox.start()
        try:
            for i in range(3):
                await outbox.enqueue(Notification(f"g|console|0|{i}", "console", "g", ("fp",), "s", "b", time.time()))
            await asyncio.sleep(0.5)
            assert inbox.recent() == []  # rows wait in the table for whoever holds the lease
            active = True
            deadline = time.monotonic() + 10
            while len(inbox.recent()) < 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            await outbox.enqueue(Notification("g|console|0|1", "console", "g", ("fp",), "s", "b", time.time()))
            await asyncio.sleep(0.3)
        finally:
            await outbox.stop()
    assert [n.id for n in reversed(inbox.recent())] == ["g|console|0|0", "g|console|0|1", "g|console|0|2"]


async def test_the_new_active_outbox_sends_what_the_old_one_left_pending_once(postgres: PrivatePostgres) -> None:
    """The old active enqueued and died before delivering; the new one resumes the rows, and the alerting
    service replaying the same dispatch (same deterministic id) adds nothing."""
    store = await open_store(postgres)
    old_inbox, new_inbox = ConsoleReceiver(), ConsoleReceiver()
    try:
        old = DurableOutbox(store, {"console": old_inbox}, tick=0.05, fence=lambda: False)  # lost its lease
        await old.start()
        ids = [f"g|console|0|{i}" for i in range(3)]
        for id_ in ids:
            await old.enqueue(Notification(id_, "console", "g", ("fp",), "s", "b", time.time()))
        new = DurableOutbox(store, {"console": new_inbox}, tick=0.05, fence=lambda: True)
        await new.start()
        try:
            await new.enqueue(Notification(ids[0], "console", "g", ("fp",), "s", "b", time.time()))  # replayed
            deadline = time.monotonic() + 10
            while len(new_inbox.recent()) < 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)
        finally:
            await new.stop()
            await old.stop()
        assert [n.id for n in reversed(new_inbox.recent())] == ids and old_inbox.recent() == []
        assert {e.status.value for e in await new.entries()} == {"sent"}
    finally:
        await store.close()


async def test_alerting_neither_ticks_nor_saves_while_the_fence_is_down(small_inventory: Inventory) -> None:
    sent: list[Notification] = []

    class Outbox:
        async def enqueue(self, n: Notification) -> None:
            sent.append(n)

    active, clock = False, Clock()
    alerting = AlertingService(small_inventory, None, Outbox(), clock=clock, fence=lambda: active)
    alerting.on_changes(Changes(raised=[Condition("device_down:national-fw", ConditionKind.DEVICE_DOWN, "national-fw",
                                                  "critical", clock.now, "全国FW 応答なし")]))
    for _ in range(3):
        clock.now += 60  # far past the built-in routing's group_wait
        await alerting.tick()
    assert sent == []
    active = True
    await alerting.tick()  # the episode starts
    clock.now += 60
    await alerting.tick()
    assert {n.receiver for n in sent} == {"noc-console", "noc-mail"}


# --- two monitor processes ------------------------------------------------------------------------------------------

@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with mosquitto_server(tmp_path) as server:
        yield server


class Collector:
    """Publishes one SNMP poll outcome per device every second, as a collector process would."""

    def __init__(self, inventory: Inventory, broker: Mosquitto) -> None:
        self.devices = list(inventory.polled_devices())
        self.origins = {d.id: origin_of(inventory, d) for d in self.devices}
        self.silent: set[str] = set()
        self.publisher = MqttPublisher(broker.host, broker.port, client_id="test-collector")
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> Collector:
        await self.publisher.start()
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self.publisher.stop()

    async def _run(self) -> None:
        while True:
            now = time.time()
            for device in self.devices:
                ok = device.id not in self.silent
                error = {} if ok else {"error": "timeout"}
                self.publisher.publish_poll([Sample("poll", now, self.origins[device.id],
                                                    {"ok": ok, "duration_ms": 2.0, **error}, {"probe": "snmp"})])
            await asyncio.sleep(1.0)


class MonitorProcess:
    """``jukimon monitor run`` in a child process, its output in a file."""

    def __init__(self, name: str, tmp: Path, broker: Mosquitto, store_url: str, config: Path,
                 inventory: Path) -> None:
        self.name = name
        self.log = tmp / f"monitor-{name}.log"
        self.argv = [sys.executable, "-m", "monitor.cli", "--log-level", "INFO", "monitor", "run",
                     "--broker", f"{broker.host}:{broker.port}", "--store", store_url, "--config", str(config),
                     "--inventory", str(inventory), "--name", name, "--state-dir", str(tmp / f"state-{name}"),
                     "--status-every", "2"]
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(self.argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def count(self, text: str) -> int:
        return self.output().count(text)

    async def wait_for(self, text: str, timeout: float) -> float:
        """Wait until the output holds ``text``; returns when (monotonic)."""
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.proc is not None and self.proc.poll() is None, f"monitor {self.name} exited:\n{self.output()}"
            assert time.monotonic() < deadline, f"monitor {self.name}: no {text!r} in {timeout}s:\n{self.output()}"
            await asyncio.sleep(0.05)
        return time.monotonic()

    def stop(self) -> int | None:
        return stop_process(self.proc) if self.proc is not None else None


def stop_process(proc: subprocess.Popen, timeout: float = 30.0) -> int:
    """SIGTERM (SIGKILL after ``timeout``); the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def mails_about(sink: MailSink, device_id: str) -> int:
    return sum(device_id in str(m["Subject"]) + m.get_body(("plain",)).get_content() for m in sink.messages())


async def wait_mails(sink: MailSink, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while sink.count < count:
        assert time.monotonic() < deadline, f"{sink.count} mails, expected {count}"
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def two_monitors(tmp_path: Path, postgres: PrivatePostgres, broker: Mosquitto,
                       full_inventory: Inventory) -> AsyncIterator[tuple[MailSink, Collector, MonitorProcess,
                                                                         MonitorProcess]]:
    """Monitor a active, b standing by, both judging the collector's polls; mail into the sink."""
    inventory = subset_by_prefecture(full_inventory, ["47"], max_municipalities=2)
    inventory_file = tmp_path / "inventory.yaml"
    save_inventory(inventory, inventory_file)
    routing = tmp_path / "routing.yml"
    routing.write_text(yaml.safe_dump({
        "receivers": {"noc-mail": {"type": "email", "to": ["noc@localhost"]}},
        "route": {"receivers": ["noc-mail"], "group_by": ["subject", "kind"], "group_wait": "1s",
                  "group_interval": "1h", "repeat_interval": "24h"}}))
    store_url = postgres.create_database(f"test_failover_{uuid.uuid4().hex[:10]}")
    async with MailSink(tmp_path / "mail") as sink, Collector(inventory, broker) as collector:
        config = tmp_path / "jukimon.yaml"
        config.write_text(yaml.safe_dump({
            "notify": {"smtp": {"host": sink.host, "port": sink.port}, "retry_initial": 0.5},
            "alerting": {"routing_file": str(routing)},
            "lease": {"ttl": TTL, "margin": MARGIN},
            "monitor": {"tick": 1.0}}))
        a, b = (MonitorProcess(n, tmp_path, broker, store_url, config, inventory_file) for n in ("a", "b"))
        try:
            a.start()
            await a.wait_for("monitor a: ACTIVE (epoch 1)", 90)
            b.start()
            await b.wait_for("monitor b: lease", 90)
            await asyncio.sleep(3)  # both judging: every device answered at least twice
            yield sink, collector, a, b
        finally:
            for monitor in (a, b):
                if monitor.proc is not None and monitor.proc.poll() is None:
                    monitor.proc.send_signal(signal.SIGCONT)
                with contextlib.suppress(Exception):
                    monitor.stop()


async def fault_mailed_once(sink: MailSink, collector: Collector, device_id: str, mails: int) -> None:
    """Silence the device; exactly one more mail (about it) arrives, and no other for a while."""
    collector.silent.add(device_id)
    await wait_mails(sink, mails, 30)
    await asyncio.sleep(4)  # a second mail would have come by now (group_wait 1 s, tick 1 s)
    assert sink.count == mails and mails_about(sink, device_id) == 1


async def test_one_active_monitor_mails_and_the_standby_takes_over_when_it_is_killed(
        tmp_path: Path, postgres: PrivatePostgres, broker: Mosquitto, full_inventory: Inventory) -> None:
    async with two_monitors(tmp_path, postgres, broker, full_inventory) as (sink, collector, a, b):
        await fault_mailed_once(sink, collector, BEFORE_KILL, 1)
        assert a.count("notifications enqueued") == 1 and b.count("notifications enqueued") == 0
        assert "ACTIVE" not in b.output()

        assert a.proc is not None
        a.proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        a.proc.wait(10)
        collector.silent.add(AFTER_KILL)  # a fault while nobody is active
        took_over = await b.wait_for("monitor b: ACTIVE (epoch 2)", TTL + TTL / 3 + 10)
        takeover_s = took_over - killed
        await wait_mails(sink, 2, 30)
        await asyncio.sleep(4)
        print(f"takeover {takeover_s:.2f}s after SIGKILL (ttl {TTL:g}s, margin {MARGIN:g}s)")
        assert takeover_s < TTL + TTL / 3 + 3  # the lease expires ≤ ttl after the kill; b asks every ttl/3; 3 s slack
        assert sink.count == 2
        assert mails_about(sink, AFTER_KILL) == 1 and mails_about(sink, BEFORE_KILL) == 1  # not told again
        assert b.count("notifications enqueued") == 1
        assert b.stop() == 0


async def test_a_paused_active_wakes_up_as_standby_and_sends_nothing(
        tmp_path: Path, postgres: PrivatePostgres, broker: Mosquitto, full_inventory: Inventory) -> None:
    """The split-brain case: the active is frozen (SIGSTOP: a long GC, a VM pause), not dead. When it wakes up
    after the standby has taken over, its fence is already down: it stands by without sending anything."""
    async with two_monitors(tmp_path, postgres, broker, full_inventory) as (sink, collector, a, b):
        await fault_mailed_once(sink, collector, BEFORE_KILL, 1)
        assert a.proc is not None
        a.proc.send_signal(signal.SIGSTOP)
        paused = time.monotonic()
        took_over = await b.wait_for("monitor b: ACTIVE (epoch 2)", TTL + TTL / 3 + 10)
        print(f"takeover {took_over - paused:.2f}s after SIGSTOP")
        await fault_mailed_once(sink, collector, AFTER_KILL, 2)

        a.proc.send_signal(signal.SIGCONT)
        await a.wait_for("monitor a: standby", 20)
        await fault_mailed_once(sink, collector, "agency-03-server", 3)
        assert a.count("notifications enqueued") == 1  # only the first fault, before the pause
        assert b.count("notifications enqueued") == 2
        assert "monitor b: standby" not in b.output()
        assert mails_about(sink, BEFORE_KILL) == 1
        assert a.stop() == 0 and b.stop() == 0


async def test_the_monitor_alone_judges_a_real_collector_process_and_mails_a_device_switched_off(
        tmp_path: Path, broker: Mosquitto, full_inventory: Inventory) -> None:
    """The whole distributed chain on loopback: simulated devices ← `jukimon collector run` → broker →
    `jukimon monitor run` (SQLite store: a single monitor, always active) → mail. The monitor's parent
    re-checks go back to the collector over the bus."""
    inventory = subset_by_prefecture(full_inventory, ["47"], max_municipalities=2)
    network = SimNetwork(inventory, SimnetConfig(snmp_port=free_udp_port(), tls_port=free_port(), tls=False,
                                                 state_dir=tmp_path / "simnet"))
    await network.start()
    save_inventory(inventory, tmp_path / "inventory.yaml")
    routing = tmp_path / "routing.yml"
    routing.write_text(yaml.safe_dump({
        "receivers": {"noc-mail": {"type": "email", "to": ["noc@localhost"]}},
        "route": {"receivers": ["noc-mail"], "group_by": ["subject", "kind"], "group_wait": "1s",
                  "group_interval": "1h", "repeat_interval": "24h"}}))
    collector_log = tmp_path / "collector.log"
    try:
        async with MailSink(tmp_path / "mail") as sink:
            config = tmp_path / "jukimon.yaml"
            config.write_text(yaml.safe_dump({
                "collectors": {"intervals": {}, "default_interval": 2.0, "tls_interval": 600, "timeout": 1.0},
                "notify": {"smtp": {"host": sink.host, "port": sink.port}},
                "alerting": {"routing_file": str(routing)}, "monitor": {"tick": 1.0}}))
            monitor = MonitorProcess("solo", tmp_path, broker, f"sqlite+aiosqlite:///{tmp_path}/jukimon.db", config,
                                     tmp_path / "inventory.yaml")
            with collector_log.open("wb") as out:
                collector = subprocess.Popen(
                    [sys.executable, "-m", "monitor.cli", "collector", "run", "--broker", f"{broker.host}:{broker.port}",
                     "--id", "c1", "--inventory", str(tmp_path / "inventory.yaml"), "--config", str(config),
                     "--snmp-port", str(network.config.snmp_port), "--tls-port", str(network.config.tls_port)],
                    cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
            try:
                monitor.start()
                await monitor.wait_for("monitor solo: ACTIVE", 90)
                await asyncio.sleep(6)  # every device polled a few times: all up
                assert sink.count == 0
                async with Listener(broker, "jukimon/control/recheck") as rechecks:
                    network.inject("device_down", BEFORE_KILL)
                    began = time.monotonic()
                    await wait_mails(sink, 1, 40)
                    print(f"device switched off → mail {time.monotonic() - began:.1f}s (polls every 2 s)")
                    await asyncio.sleep(3)
                assert sink.count == 1 and mails_about(sink, BEFORE_KILL) == 1
                parent = inventory.devices[BEFORE_KILL].parents[0]  # asked again before the server is blamed
                assert {"device": parent} in [json.loads(m.payload) for m in rechecks.messages]
                assert "status role=active epoch=0 bus_connected=True" in monitor.output()
                assert monitor.stop() == 0
            finally:
                monitor.stop()
                stop_process(collector)
    finally:
        await network.stop()
