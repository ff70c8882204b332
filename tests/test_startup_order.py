"""起動・停止順序: national → prefecture → CS up, CS → prefecture → national down."""

from __future__ import annotations

import pytest

from monitor.inventory.model import Inventory, Role
from monitor.schedule import OrderChecker, OrderRule

SAPPORO_CS = "muni-01-001-cs1"
NAHA_CS = "muni-47-001-cs1"
HOKKAIDO_UNIT = "aggregation-pu-01"
OKINAWA_UNIT = "aggregation-pu-47"


def ids(inventory: Inventory, *roles: Role, prefecture: str | None = None) -> list[str]:
    return sorted(d.id for d in inventory.devices.values()
                  if d.role in roles and (prefecture is None or d.prefecture == prefecture))


def set_all(checker: OrderChecker, devices: list[str], running: bool, ts: float) -> list:
    return [v for device in devices for v in checker.observe(device, running, ts)]


@pytest.fixture
def tiers(small_inventory):
    return (ids(small_inventory, Role.NATIONAL_SERVER), ids(small_inventory, Role.PREFECTURE_UNIT),
            ids(small_inventory, Role.CS, Role.CS_RECOVERY))


@pytest.fixture
def stopped(small_inventory, tiers) -> OrderChecker:
    """Every server seen stopped once: the night before start-up."""
    checker = OrderChecker(small_inventory)
    assert set_all(checker, [d for tier in tiers for d in tier], False, 0.0) == []
    return checker


@pytest.fixture
def running(small_inventory, tiers) -> OrderChecker:
    """Every server seen running once: the middle of a business day."""
    checker = OrderChecker(small_inventory)
    assert set_all(checker, [d for tier in tiers for d in tier], True, 0.0) == []
    return checker


def test_morning_start_up_and_evening_shut_down_in_order_raise_nothing(stopped, tiers):
    national, units, cs = tiers
    assert set_all(stopped, national + units + cs, True, 100.0) == []
    assert set_all(stopped, cs + units + national, False, 200.0) == []


def test_cs_started_before_its_prefecture_server(stopped, tiers):
    national, _, _ = tiers
    set_all(stopped, national, True, 100.0)
    stopped.observe(OKINAWA_UNIT, True, 101.0)
    [violation] = stopped.observe(SAPPORO_CS, True, 102.0)
    assert violation.rule is OrderRule.CS_BEFORE_PREFECTURE
    assert violation.device == SAPPORO_CS
    assert violation.counterparts == (HOKKAIDO_UNIT,)
    assert violation.counterpart_count == 1
    assert violation.ts == 102.0
    assert "起動順序違反" in violation.summary and "札幌市 CS1" in violation.summary
    assert stopped.observe(NAHA_CS, True, 103.0) == []  # Okinawa's unit is up


def test_prefecture_server_and_cs_started_before_any_national_server(stopped, tiers):
    national, _, _ = tiers
    [unit_violation] = stopped.observe(HOKKAIDO_UNIT, True, 100.0)
    assert unit_violation.rule is OrderRule.PREFECTURE_BEFORE_NATIONAL
    assert unit_violation.counterparts == tuple(national[:10])
    [cs_violation] = stopped.observe(SAPPORO_CS, True, 101.0)
    assert cs_violation.rule is OrderRule.CS_BEFORE_NATIONAL
    rules = {v.rule for v in stopped.observe(NAHA_CS, True, 102.0)}
    assert rules == {OrderRule.CS_BEFORE_NATIONAL, OrderRule.CS_BEFORE_PREFECTURE}


def test_one_national_node_running_is_enough_for_the_tier_below(stopped, tiers):
    national, _, _ = tiers
    stopped.observe(national[0], True, 100.0)
    assert stopped.observe(HOKKAIDO_UNIT, True, 101.0) == []


def test_national_cluster_stopped_while_cs_and_prefecture_servers_run(running, small_inventory, tiers):
    national, units, cs = tiers
    assert set_all(running, national[:-1], False, 100.0) == []  # the cluster still runs on its last node
    violations = {v.rule: v for v in running.observe(national[-1], False, 101.0)}
    assert set(violations) == {OrderRule.NATIONAL_STOP_BEFORE_CS, OrderRule.NATIONAL_STOP_BEFORE_PREFECTURE}
    cs_violation = violations[OrderRule.NATIONAL_STOP_BEFORE_CS]
    assert cs_violation.counterpart_count == len(cs) > 10
    assert cs_violation.counterparts == tuple(cs[:10])  # bounded for the console
    assert "停止順序違反" in cs_violation.summary
    assert violations[OrderRule.NATIONAL_STOP_BEFORE_PREFECTURE].counterparts == tuple(units)


def test_prefecture_server_stopped_while_its_cs_run(running, small_inventory):
    hokkaido_cs = ids(small_inventory, Role.CS, Role.CS_RECOVERY, prefecture="01")
    [violation] = running.observe(HOKKAIDO_UNIT, False, 100.0)
    assert violation.rule is OrderRule.PREFECTURE_STOP_BEFORE_CS
    assert violation.counterparts == tuple(hokkaido_cs[:10])
    assert violation.counterpart_count == len(hokkaido_cs)
    okinawa_cs = ids(small_inventory, Role.CS, Role.CS_RECOVERY, prefecture="47")
    set_all(running, okinawa_cs, False, 101.0)
    assert running.observe(OKINAWA_UNIT, False, 102.0) == []


def test_first_observation_only_sets_the_state(small_inventory, tiers):
    national, _, _ = tiers
    checker = OrderChecker(small_inventory)
    set_all(checker, national, False, 0.0)
    checker.observe(HOKKAIDO_UNIT, False, 0.0)
    assert checker.observe(SAPPORO_CS, True, 1.0) == []  # first sight of this CS: already running


def test_servers_never_observed_are_not_assumed_stopped(small_inventory):
    checker = OrderChecker(small_inventory)
    checker.observe(SAPPORO_CS, False, 0.0)
    assert checker.observe(SAPPORO_CS, True, 1.0) == []
    checker.observe(HOKKAIDO_UNIT, False, 2.0)
    [violation] = checker.observe(SAPPORO_CS, False, 3.0) + checker.observe(SAPPORO_CS, True, 4.0)
    assert violation.rule is OrderRule.CS_BEFORE_PREFECTURE  # the national tier is still unknown


def test_repeated_state_and_other_devices_are_ignored(stopped, small_inventory):
    stopped.observe(SAPPORO_CS, True, 1.0)
    assert stopped.observe(SAPPORO_CS, True, 2.0) == []
    fw = ids(small_inventory, Role.FW)[0]
    assert stopped.observe(fw, True, 3.0) == []
    assert stopped.observe("no-such-device", True, 4.0) == []
