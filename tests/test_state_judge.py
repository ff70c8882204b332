"""The state engine's judgement as pure logic: health fed directly, no network (tests of the live chain are in
test_state_live.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from monitor.envelope import Event, EventType, Origin, Sample, Severity
from monitor.inventory.model import Inventory, Role
from monitor.maintenance import MaintenanceBook, MaintenanceWindow
from monitor.state.engine import MonitorSettings, StateEngine
from monitor.state.health import HealthSettings
from monitor.state.model import ConditionKind, State, SubjectKind

JST = dt.timezone(dt.timedelta(hours=9))
WEEKDAY_10 = dt.datetime(2026, 12, 2, 10, 0, tzinfo=JST).timestamp()  # Wednesday
WEEKDAY_23 = dt.datetime(2026, 12, 2, 23, 0, tzinfo=JST).timestamp()
SUNDAY_10 = dt.datetime(2026, 12, 6, 10, 0, tzinfo=JST).timestamp()
JAN_2 = dt.datetime(2027, 1, 2, 10, 0, tzinfo=JST).timestamp()


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_engine(inventory: Inventory, now: float, **kwargs) -> tuple[StateEngine, Clock]:
    clock = Clock(now)
    settings = MonitorSettings(health=HealthSettings(down_after=2, up_after=1, flap_changes=4), hold_max=20.0)
    return StateEngine(inventory, settings, clock=clock, **kwargs), clock


def poll(engine: StateEngine, device_id: str, ok: bool, ts: float) -> None:
    device = engine.inventory.devices[device_id]
    engine.sink([Sample("poll", ts, Origin(device.id, device.site, device.prefecture, None, device.role.value),
                        {"ok": ok})])


def all_answer(engine: StateEngine, ts: float, silent: set[str] = frozenset()) -> None:
    for device_id in engine.topology.devices:
        poll(engine, device_id, device_id not in silent, ts)


def behind(inventory: Inventory, device_ids: set[str]) -> set[str]:
    """Every polled device whose paths all go through the given ones (for building the silent set)."""
    out = set(device_ids)
    changed = True
    polled = {d.id: d for d in inventory.polled_devices()}
    while changed:
        changed = False
        for d in polled.values():
            if d.id not in out and d.parents and all(p in out for p in d.parents):
                out.add(d.id)
                changed = True
    return out


def settle(engine: StateEngine, clock: Clock, silent: set[str], rounds: int = 3, step: float = 2.0):
    """Every device polled `rounds` times (the silent ones fail), judging after each round."""
    raised = []
    for _ in range(rounds):
        clock.now += step
        all_answer(engine, clock.now, silent)
        raised += engine.evaluate().raised
    return raised


def site_devices(inventory: Inventory, site: str) -> list[str]:
    return [d.id for d in inventory.devices_by_site[site] if d.role is not Role.TERMINAL]


def test_all_up_raises_nothing(small_inventory: Inventory) -> None:
    engine, clock = make_engine(small_inventory, WEEKDAY_10)
    assert settle(engine, clock, set()) == []
    assert engine.state_of(SubjectKind.DEVICE, "national-fw").state is State.UP
    assert engine.state_of(SubjectKind.SITE, "muni-01-001").state is State.UP


def test_one_failed_poll_is_not_down(small_inventory: Inventory) -> None:
    engine, clock = make_engine(small_inventory, WEEKDAY_10)
    settle(engine, clock, set(), rounds=1)
    clock.now += 2
    all_answer(engine, clock.now, {"muni-01-001-cs1"})
    engine.evaluate()
    assert engine.state_of(SubjectKind.DEVICE, "muni-01-001-cs1").state is State.UP


def test_cs_silent_on_weekday_morning_is_down_with_one_condition(small_inventory: Inventory) -> None:
    engine, clock = make_engine(small_inventory, WEEKDAY_10)
    settle(engine, clock, set(), rounds=1)
    raised = settle(engine, clock, {"muni-01-001-cs1"})
    assert [c.fingerprint for c in raised] == ["device_down:muni-01-001-cs1"]
    assert engine.state_of(SubjectKind.DEVICE, "muni-01-001-cs1").state is State.DOWN
    cleared = []
    for _ in range(2):
        clock.now += 2
        all_answer(engine, clock.now)
        cleared += engine.evaluate().cleared
    assert [c.fingerprint for c in cleared] == ["device_down:muni-01-001-cs1"]
    assert engine.state_of(SubjectKind.DEVICE, "muni-01-001-cs1").state is State.UP


@pytest.mark.parametrize("when", [WEEKDAY_23, SUNDAY_10, JAN_2], ids=["weekday-23h", "sunday", "2-january"])
def test_cs_stopped_outside_the_window_is_off_schedule(small_inventory: Inventory, when: float) -> None:
    engine, clock = make_engine(small_inventory, when)
    settle(engine, clock, set(), rounds=1)
    raised = settle(engine, clock, {"muni-01-001-cs1"})
    assert engine.state_of(SubjectKind.DEVICE, "muni-01-001-cs1").state is State.OFF_SCHEDULE
    assert raised == []


def test_router_outside_the_window_is_still_down(small_inventory: Inventory) -> None:
    engine, clock = make_engine(small_inventory, SUNDAY_10)
    settle(engine, clock, set(), rounds=1)
    silent = behind(small_inventory, {"muni-01-001-rt1", "muni-01-001-rt2"})
    raised = settle(engine, clock, silent)
    assert [c.kind for c in raised] == [ConditionKind.SITE_UNREACHABLE]


def test_one_of_two_lines_is_redundancy_lost_only(small_inventory: Inventory) -> None:
    engine, clock = make_engine(small_inventory, WEEKDAY_10)
    settle(engine, clock, set(), rounds=1)
    raised = settle(engine, clock, {"muni-01-001-rt1"})
    assert [(c.kind, c.subject, c.severity) for c in raised] == [
        (ConditionKind.REDUNDANCY_LOST, "muni-01-001", Severity.WARNING.value)]
    assert "二重化喪失" in raised[0].summary
    assert engine.state_of(SubjectKind.LINK, "line-muni-01-001-rt1").state is State.DOWN
    assert engine.state_of(SubjectKind.DEVICE, "muni-01-001-cs1").state is State.UP


def test_both_lines_cut_is_one_site_alarm_with_cs_and_fw_unreachable(small_inventory: Inventory) -> None:
    engine, clock = make_engine(small_inventory, WEEKDAY_10)
    settle(engine, clock, set(), rounds=1)
    silent = behind(small_inventory, {"muni-01-001-rt1", "muni-01-001-rt2"})
    raised = settle(engine, clock, silent)
    assert [(c.kind, c.subject) for c in raised] == [(ConditionKind.SITE_UNREACHABLE, "muni-01-001")]
    site = raised[0]
    assert {"muni-01-001-fw", "muni-01-001-cs1", "muni-01-001-cs2"} <= set(site.suppressed)
    for device_id in ("muni-01-001-fw", "muni-01-001-cs1"):
        assert engine.state_of(SubjectKind.DEVICE, device_id).state is State.UNREACHABLE


def test_prefecture_cut_is_one_root_cause_even_when_children_fail_first(small_inventory: Inventory) -> None:
    """The storm: every device behind the prefecture falls silent, and is polled before its routers are."""
    engine, clock = make_engine(small_inventory, WEEKDAY_10)
    settle(engine, clock, set(), rounds=1)
    lines = {"pref-01-rt1", "pref-01-rt2"}
    silent = behind(small_inventory, lines)
    children = silent - lines
    raised = []
    for _ in range(3):  # children fail three times while the routers still answer from before the cut
        clock.now += 2
        for device_id in children:
            poll(engine, device_id, False, clock.now)
        raised += engine.evaluate().raised
    assert raised == []
    recheck: list[str] = []
    engine.recheck = recheck.append
    engine.evaluate()
    assert lines <= set(recheck)  # the monitor asks for the parents' fresh answer
    raised += settle(engine, clock, silent)
    assert [(c.kind, c.subject) for c in raised] == [(ConditionKind.SITE_UNREACHABLE, "pref-01")]
    municipalities = {d.site for d in small_inventory.devices.values() if d.id in raised[0].suppressed}
    assert len([s for s in municipalities if s.startswith("muni-01-")]) == 6
    assert raised[0].details["suppressed_count"] == len(children)


def test_failure_with_a_parent_answering_after_it_is_judged_at_once(small_inventory: Inventory) -> None:
    engine, clock = make_engine(small_inventory, WEEKDAY_10)
    settle(engine, clock, set(), rounds=1)
    clock.now += 2
    poll(engine, "muni-01-001-cs1", False, clock.now)
    poll(engine, "muni-01-001-fw", True, clock.now + 0.1)
    clock.now += 2
    poll(engine, "muni-01-001-cs1", False, clock.now)
    assert [c.fingerprint for c in engine.evaluate().raised] == ["device_down:muni-01-001-cs1"]


def test_core_router_down_is_root_cause_with_children_counted(small_inventory: Inventory) -> None:
    engine, clock = make_engine(small_inventory, WEEKDAY_10)
    settle(engine, clock, set(), rounds=1)
    silent = behind(small_inventory, {"pref-47-core"})
    raised = settle(engine, clock, silent)
    assert [(c.kind, c.subject) for c in raised] == [(ConditionKind.ROOT_CAUSE, "pref-47-core")]
    assert raised[0].details["suppressed_count"] == len(silent) - 1


def test_maintenance_window_suppresses(small_inventory: Inventory) -> None:
    book = MaintenanceBook(small_inventory)
    book.add(MaintenanceWindow("M1", "site", "muni-01-002", WEEKDAY_10 - 60, WEEKDAY_10 + 3600, "山田", "機器更改"))
    engine, clock = make_engine(small_inventory, WEEKDAY_10, maintenance=book)
    settle(engine, clock, set(), rounds=1)
    raised = settle(engine, clock, {"muni-01-002-cs1"})
    assert engine.state_of(SubjectKind.DEVICE, "muni-01-002-cs1").state is State.MAINTENANCE
    assert [(c.kind, c.in_maintenance) for c in raised] == [(ConditionKind.DEVICE_DOWN, True)]


def test_flapping_becomes_one_condition(small_inventory: Inventory) -> None:
    engine, clock = make_engine(small_inventory, WEEKDAY_10)
    settle(engine, clock, set(), rounds=1)
    kinds = []
    for _ in range(3):
        kinds += [c.kind for c in settle(engine, clock, {"muni-01-003-cs1"}, rounds=2)]
        kinds += [c.kind for c in settle(engine, clock, set(), rounds=1)]
    assert kinds.count(ConditionKind.FLAPPING) == 1
    assert engine.state_of(SubjectKind.DEVICE, "muni-01-003-cs1").flapping
    assert engine.active([ConditionKind.DEVICE_DOWN]) == []


def test_reboot_event_raises_a_timed_condition(small_inventory: Inventory) -> None:
    engine, clock = make_engine(small_inventory, WEEKDAY_10)
    settle(engine, clock, set(), rounds=1)
    device = small_inventory.devices["muni-01-001-fw"]
    engine.on_event(Event(EventType.STATE, clock.now, "collector.snmp",
                          Origin(device.id, device.site, device.prefecture, None, device.role.value),
                          Severity.WARNING, "rebooted", body={"change": "reboot", "uptime_s": 3}))
    assert [c.kind for c in engine.evaluate().raised] == [ConditionKind.REBOOTED]
    clock.now += engine.settings.event_hold + 1
    assert [c.kind for c in engine.evaluate().cleared] == [ConditionKind.REBOOTED]


def test_cs_up_before_its_prefecture_unit_is_an_order_violation(small_inventory: Inventory) -> None:
    engine, clock = make_engine(small_inventory, WEEKDAY_10 - 3 * 3600)  # 07:00, before online operation
    servers = [d.id for d in small_inventory.devices.values()
               if d.role in (Role.CS, Role.CS_RECOVERY, Role.PREFECTURE_UNIT, Role.NATIONAL_SERVER)]
    settle(engine, clock, set(servers), rounds=2)  # everything known, servers stopped overnight
    clock.now += 2
    poll(engine, "muni-01-001-cs1", True, clock.now)
    raised = engine.evaluate().raised
    assert {(c.kind, c.subject) for c in raised} == {(ConditionKind.ORDER_VIOLATION, "muni-01-001-cs1")}
    assert {c.fingerprint.rsplit(":", 1)[1] for c in raised} == {"cs_before_prefecture", "cs_before_national"}
    assert all("起動順序違反" in c.summary for c in raised)


def test_degraded_after_sustained_cpu(small_inventory: Inventory) -> None:
    engine, clock = make_engine(small_inventory, WEEKDAY_10)
    settle(engine, clock, set(), rounds=1)
    device = small_inventory.devices["muni-01-001-cs1"]
    origin = Origin(device.id, device.site, device.prefecture, None, device.role.value)
    raised = []
    for step in range(0, 91, 30):
        engine.sink([Sample("host", clock.now + step, origin, {"cpu_pct": 99.0})])
        raised += engine.evaluate(clock.now + step).raised
    assert [c.kind for c in raised] == [ConditionKind.DEGRADED]
    assert "CPU" in raised[0].summary
    assert engine.state_of(SubjectKind.DEVICE, device.id).state is State.DEGRADED


def test_devices_not_polled_since_the_cut_are_unreachable_at_once(small_inventory: Inventory) -> None:
    """CSs are polled every 30 s: when the site's lines are confirmed cut they are charged to it, not left UP."""
    engine, clock = make_engine(small_inventory, WEEKDAY_10)
    settle(engine, clock, set(), rounds=1)
    lines = {"muni-01-001-rt1", "muni-01-001-rt2"}
    raised = []
    for _ in range(3):
        clock.now += 2
        for device_id in (*lines, "muni-01-001-fw"):
            poll(engine, device_id, False, clock.now)
        for device_id in ("pref-01-core", "pref-01-fw", "pref-01-rt1", "pref-01-rt2", "aggregation-fw", "national-fw"):
            poll(engine, device_id, True, clock.now)
        raised += engine.evaluate().raised
    assert [(c.kind, c.subject) for c in raised] == [(ConditionKind.SITE_UNREACHABLE, "muni-01-001")]
    assert {"muni-01-001-cs1", "muni-01-001-cs2"} <= set(raised[0].suppressed)
    assert engine.state_of(SubjectKind.DEVICE, "muni-01-001-cs1").state is State.UNREACHABLE


def test_a_device_answering_behind_a_silent_parent_is_not_unreachable(small_inventory: Inventory) -> None:
    """A firewall whose SNMP agent hangs still forwards: the CSs behind it answer and stay UP."""
    engine, clock = make_engine(small_inventory, WEEKDAY_10)
    settle(engine, clock, set(), rounds=1)
    raised = settle(engine, clock, {"muni-01-001-fw"})
    assert [(c.kind, c.subject) for c in raised] == [(ConditionKind.DEVICE_DOWN, "muni-01-001-fw")]
    assert engine.state_of(SubjectKind.DEVICE, "muni-01-001-cs1").state is State.UP
