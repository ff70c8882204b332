"""The state engine over the running simulation: real SNMPv3 polls, real faults, real judgement.

One simulated network (Hokkaidō and Okinawa, four municipalities each) and one
collector service at a fast cadence feed several engines at once; they differ
only in the day and hour their operating calendar believes it is (a weekday at
10:00, a Sunday, a weekday at 23:00, 2 January), so one fault is judged in every
calendar situation. The restart tests give an engine a store (SQLite, PostgreSQL).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from typing import Callable

import pytest
import pytest_asyncio

from collectors.service import CollectorService
from collectors.snmp.client import Credentials
from collectors.snmp.udp_client import SnmpUdpClient
from monitor.config import CollectorSettings
from monitor.inventory.model import Inventory
from monitor.inventory.subset import subset_by_prefecture
from monitor.maintenance import MaintenanceBook, MaintenanceWindow
from monitor.state.engine import StateEngine
from monitor.state.health import HealthSettings, Threshold
from monitor.state.model import Condition, ConditionKind, State, SubjectKind
from monitor.state.settings import MonitorSettings
from monitor.store import Store
from simnet.network import SimNetwork, SimnetConfig
from tests.servers import free_port, free_udp_port

pytestmark = pytest.mark.asyncio(loop_scope="module")
SNMP_PORT, TLS_PORT = free_udp_port(), free_port()
V3 = Credentials("3", user="jukimon", auth_key="jukimon-auth-key", priv_key="jukimon-priv-key")
JST = dt.timezone(dt.timedelta(hours=9))
CALENDARS = {
    "weekday-10h": dt.datetime(2026, 12, 2, 10, 0, tzinfo=JST),
    "sunday-10h": dt.datetime(2026, 12, 6, 10, 0, tzinfo=JST),
    "weekday-23h": dt.datetime(2026, 12, 2, 23, 0, tzinfo=JST),
    "2-january": dt.datetime(2027, 1, 2, 10, 0, tzinfo=JST),
}
SETTINGS = MonitorSettings(
    health=HealthSettings(down_after=2, up_after=1, cpu_pct=Threshold(90.0, 0.0), disk_pct=Threshold(90.0, 0.0),
                          rtt_ms=Threshold(400.0, 0.0), poll_loss=Threshold(0.15, 0.0)),
    settle=0.2, tick=0.5, hold_max=8.0, event_hold=4.0, checkpoint_every=1.0)


@pytest.fixture(scope="module")
def inventory(full_inventory: Inventory) -> Inventory:
    return subset_by_prefecture(full_inventory, ["01", "47"], max_municipalities=4)


def calendar_clock(moment: dt.datetime) -> Callable[[], float]:
    offset = moment.timestamp() - time.time()
    return lambda: time.time() + offset


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def chain(inventory: Inventory, tmp_path_factory: pytest.TempPathFactory):
    net = SimNetwork(inventory, SimnetConfig(snmp_port=SNMP_PORT, tls_port=TLS_PORT,
                                             state_dir=tmp_path_factory.mktemp("simnet")))
    await net.start()
    settings = dataclasses.replace(CollectorSettings(), intervals={}, default_interval=1.0, tls_interval=2.0,
                                   timeout=1.0, retries=0)
    service = CollectorService(inventory, settings, SnmpUdpClient(V3, timeout=1.0, retries=0), [],
                               snmp_port=SNMP_PORT, tls_port=TLS_PORT)
    engines = {}
    for name, moment in CALENDARS.items():
        engine = StateEngine(inventory, SETTINGS, calendar_clock=calendar_clock(moment), recheck=service.recheck,
                             maintenance=MaintenanceBook(inventory))
        engine.raised_log: list[Condition] = []  # type: ignore[attr-defined]
        engine.listeners.append(lambda changes, e=engine: e.raised_log.extend(changes.raised))
        service.sinks.append(engine.sink)
        await engine.start()
        engines[name] = engine
    service.start()
    main = engines["weekday-10h"]
    await until(lambda: all(r.state is State.UP for (k, _), r in main.states.items() if k is SubjectKind.DEVICE)
                and len(main.states) > 0, 30, "every device UP at start")
    yield net, service, engines
    await service.stop()
    for engine in engines.values():
        await engine.stop()
    await net.stop()


async def until(check: Callable[[], bool], timeout: float, what: str | Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what if isinstance(what, str) else what()}")
        await asyncio.sleep(0.2)


def state(engine: StateEngine, subject: str, kind: SubjectKind = SubjectKind.DEVICE) -> State | None:
    record = engine.state_of(kind, subject)
    return record.state if record else None


def alarms(engine: StateEngine, since: int = 0) -> list[tuple[ConditionKind, str]]:
    """Conditions raised since a mark, certificate findings of the simulation's weak certificates left out."""
    return [(c.kind, c.subject) for c in engine.raised_log[since:] if c.kind is not ConditionKind.LIFECYCLE]


async def recovered(net: SimNetwork, engines: dict[str, StateEngine]) -> None:
    net.clear_all()
    for engine in engines.values():
        def left(e: StateEngine = engine) -> list[str]:  # (flapping ends by itself, a window after the last change)
            return [c.fingerprint for c in e.conditions.values()
                    if c.kind not in (ConditionKind.LIFECYCLE, ConditionKind.FLAPPING)]
        await until(lambda: not left(), 40, lambda: f"conditions still active after the faults were cleared: {left()}")


def marks(engines: dict[str, StateEngine]) -> dict[str, int]:
    return {name: len(e.raised_log) for name, e in engines.items()}


async def test_cs_stopped_is_down_on_a_weekday_and_off_schedule_outside_the_window(chain) -> None:
    net, _, engines = chain
    mark = marks(engines)
    net.inject("device_down", "muni-01-001-cs1")
    weekday = engines["weekday-10h"]
    await until(lambda: state(weekday, "muni-01-001-cs1") is State.DOWN, 20, "CS DOWN on a weekday at 10:00")
    assert alarms(weekday, mark["weekday-10h"]) == [(ConditionKind.DEVICE_DOWN, "muni-01-001-cs1")]
    for name in ("sunday-10h", "weekday-23h", "2-january"):
        await until(lambda e=engines[name]: state(e, "muni-01-001-cs1") is State.OFF_SCHEDULE, 10, name)
        assert alarms(engines[name], mark[name]) == [], name
    await recovered(net, engines)
    assert state(weekday, "muni-01-001-cs1") is State.UP


async def test_one_line_cut_is_redundancy_lost_only(chain) -> None:
    net, _, engines = chain
    engine, mark = engines["weekday-10h"], marks(engines)["weekday-10h"]
    net.inject("line_cut", "line-muni-01-002-rt1")
    await until(lambda: engine.active([ConditionKind.REDUNDANCY_LOST]), 25, "redundancy lost")
    await asyncio.sleep(2)  # nothing else follows
    assert alarms(engine, mark) == [(ConditionKind.REDUNDANCY_LOST, "muni-01-002")]
    assert state(engine, "line-muni-01-002-rt1", SubjectKind.LINK) is State.DOWN
    assert state(engine, "muni-01-002-cs1") is State.UP
    await recovered(net, engines)


async def test_both_lines_cut_is_one_site_alarm_with_fw_and_cs_unreachable(chain) -> None:
    net, _, engines = chain
    engine, mark = engines["weekday-10h"], marks(engines)["weekday-10h"]
    net.inject("site_lines_cut", "muni-01-003")
    await until(lambda: state(engine, "muni-01-003-cs1") is State.UNREACHABLE
                and engine.active([ConditionKind.SITE_UNREACHABLE]), 25, "site unreachable")
    await asyncio.sleep(2)
    assert alarms(engine, mark) == [(ConditionKind.SITE_UNREACHABLE, "muni-01-003")]
    site = engine.active([ConditionKind.SITE_UNREACHABLE])[0]
    assert {"muni-01-003-fw", "muni-01-003-cs1"} <= set(site.suppressed)
    assert state(engine, "muni-01-003-fw") is State.UNREACHABLE
    await recovered(net, engines)


async def test_prefecture_network_cut_is_one_root_cause_with_every_municipality_suppressed(
        chain, inventory: Inventory) -> None:
    net, _, engines = chain
    engine, mark = engines["weekday-10h"], marks(engines)["weekday-10h"]
    net.inject("site_lines_cut", "pref-47")
    behind = {d.id for d in inventory.polled_devices() if d.prefecture == "47" and d.site != "aggregation"
              and not d.id.startswith("pref-47-rt")}
    await until(lambda: all(state(engine, d) is State.UNREACHABLE for d in behind), 30, "all of Okinawa unreachable")
    await asyncio.sleep(2)
    assert alarms(engine, mark) == [(ConditionKind.SITE_UNREACHABLE, "pref-47")]
    root = engine.active([ConditionKind.SITE_UNREACHABLE])[0]
    assert set(root.suppressed) == behind
    assert {inventory.devices[d].site for d in root.suppressed} >= {f"muni-47-00{i}" for i in range(1, 5)}
    await recovered(net, engines)


@pytest.mark.parametrize("kind, target, params, expected, condition", [
    ("isolate", "muni-47-001-cs2", {}, State.DOWN, ConditionKind.DEVICE_DOWN),
    ("cpu_exhaustion", "muni-47-002-cs1", {}, State.DEGRADED, ConditionKind.DEGRADED),
    ("disk_exhaustion", "muni-47-002-cs2", {}, State.DEGRADED, ConditionKind.DEGRADED),
    ("interface_down", "pref-47-core", {"if_index": 1}, State.DEGRADED, ConditionKind.DEGRADED),
    ("link_latency", "line-muni-47-003-rt1", {"latency_ms": 600}, State.DEGRADED, ConditionKind.DEGRADED),
    ("cert_expired", "muni-47-004-cs1", {}, State.UP, ConditionKind.LIFECYCLE),
], ids=lambda v: v if isinstance(v, str) else None)
async def test_each_fault_kind_leads_to_the_right_state(chain, kind, target, params, expected, condition) -> None:
    net, _, engines = chain
    engine = engines["weekday-10h"]
    subject = target if not target.startswith("line-") else target.removeprefix("line-")
    net.inject(kind, target, **params)
    await until(lambda: any(c.kind is condition and c.subject == subject for c in engine.conditions.values()),
                25, f"{condition} on {subject}")
    assert state(engine, subject) is expected
    await recovered(net, engines)


async def test_reboot_is_seen(chain) -> None:
    net, _, engines = chain
    engine = engines["weekday-10h"]
    net.inject("reboot", "muni-01-004-fw")
    await until(lambda: engine.active([ConditionKind.REBOOTED]), 20, "reboot condition")
    assert engine.active([ConditionKind.REBOOTED])[0].subject == "muni-01-004-fw"
    assert state(engine, "muni-01-004-fw") is State.UP


async def test_lossy_line_degrades_without_a_stream_of_down_alarms(chain) -> None:
    net, _, engines = chain
    engine, mark = engines["weekday-10h"], marks(engines)["weekday-10h"]
    net.inject("link_loss", "line-muni-47-004-rt2", loss=0.3)
    await until(lambda: state(engine, "muni-47-004-rt2") in (State.DEGRADED, State.DOWN)
                or engine.state_of(SubjectKind.DEVICE, "muni-47-004-rt2").flapping, 40, "lossy line noticed")
    await asyncio.sleep(3)
    downs = [a for a in alarms(engine, mark) if a[0] in (ConditionKind.REDUNDANCY_LOST, ConditionKind.DEVICE_DOWN)]
    assert len(downs) <= 3  # a 30 % loss may briefly cost the line, but never a stream
    await recovered(net, engines)


async def test_start_up_order_violation_is_flagged(chain) -> None:
    net, _, engines = chain
    engine = engines["weekday-10h"]
    unit = net.inject("device_down", "aggregation-pu-01")
    cs = net.inject("device_down", "muni-01-001-cs2")
    await until(lambda: state(engine, "aggregation-pu-01") is State.DOWN and state(engine, "muni-01-001-cs2")
                in (State.DOWN,), 25, "prefecture unit and CS down")
    net.clear(cs.id)  # the CS comes back while its prefecture unit is still down
    # (the unit stopping while its CSs ran was already a shut-down order violation of its own)
    fingerprint = "order_violation:muni-01-001-cs2:cs_before_prefecture"
    await until(lambda: fingerprint in engine.conditions, 20, lambda: f"order violation: {list(engine.conditions)}")
    assert "起動順序違反" in engine.conditions[fingerprint].summary
    net.clear(unit.id)
    await recovered(net, engines)


async def test_maintenance_suppresses(chain) -> None:
    net, _, engines = chain
    engine = engines["weekday-10h"]
    now = time.time()
    engine.maintenance.add(MaintenanceWindow("M-live", "site", "muni-47-001", now - 10, now + 600, "保守太郎",
                                             "機器更改"))
    net.inject("device_down", "muni-47-001-cs1")
    await until(lambda: engine.active([ConditionKind.DEVICE_DOWN]), 25, "condition recorded")
    assert state(engine, "muni-47-001-cs1") is State.MAINTENANCE
    assert all(c.in_maintenance for c in engine.active([ConditionKind.DEVICE_DOWN]))
    engine.maintenance.remove("M-live")
    await recovered(net, engines)



@pytest.mark.parametrize("backend, cs", [("sqlite", "muni-47-003-cs1"), ("postgresql", "muni-47-003-cs2")])
async def test_restart_keeps_states_and_conditions_without_re_raising(chain, backend, cs, tmp_path, request,
                                                                      inventory: Inventory) -> None:
    net, service, engines = chain
    url = (f"sqlite+aiosqlite:///{tmp_path}/jukimon.db" if backend == "sqlite"
           else request.getfixturevalue("postgres").create_database("restart"))

    async def engine_on(store: Store) -> StateEngine:
        engine = StateEngine(inventory, SETTINGS, store=store, recheck=service.recheck,
                             calendar_clock=calendar_clock(CALENDARS["weekday-10h"]))
        engine.raised_log = []  # type: ignore[attr-defined]
        engine.listeners.append(lambda changes: engine.raised_log.extend(changes.raised))
        await engine.start()
        service.sinks.append(engine.sink)
        return engine

    async def stop(engine: StateEngine, store: Store) -> None:
        service.sinks.remove(engine.sink)
        await engine.stop()
        await store.close()

    store = await Store.open(url)
    first = await engine_on(store)
    net.inject("device_down", cs)
    await until(lambda: first.active([ConditionKind.DEVICE_DOWN]), 25, "condition before the restart")
    before = first.active([ConditionKind.DEVICE_DOWN])[0]
    await stop(first, store)

    store = await Store.open(url)
    second = await engine_on(store)
    assert [c.fingerprint for c in second.active([ConditionKind.DEVICE_DOWN])] == [before.fingerprint]
    assert state(second, cs) is State.DOWN
    await asyncio.sleep(4)  # polls keep coming: same judgement, nothing raised again
    assert alarms(second) == []
    assert second.active([ConditionKind.DEVICE_DOWN])[0].started == before.started
    net.clear_all()
    await until(lambda: not second.active([ConditionKind.DEVICE_DOWN]), 25, "cleared after the restart")
    await stop(second, store)
    await recovered(net, engines)
