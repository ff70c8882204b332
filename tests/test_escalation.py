"""Escalation, as the NOC lives it: nobody acknowledges within ten minutes → the NOC lead is told, then system
management, then the national centre's on-call; an acknowledgement stops it; everyone told hears the resolution.

Policy ``noc`` of ``ESCALATING``: noc-operator (console) 10 min → noc-lead (mail) 15 min → system-management
(mail) 30 min → national-oncall (webhook). Simulated clock; restart mid-escalation is in test_alerting_service.
"""

from __future__ import annotations

import pytest

from alerting.escalation import engaged_receivers, step_receivers
from alerting.routing import load_routing, parse_routing
from alerting.service import AlertingService
from monitor.inventory.model import Inventory
from monitor.state.model import ConditionKind
from tests import test_alerting_service
from tests.test_alerting_service import (ESCALATING, EXAMPLE, OTARU_CS, FakeOutbox, SimClock, cleared, condition,
                                         raised, run_for)

clock, outbox = test_alerting_service.clock, test_alerting_service.outbox  # fixtures


@pytest.fixture
def service(small_inventory: Inventory, outbox: FakeOutbox, clock: SimClock) -> AlertingService:
    return AlertingService(small_inventory, parse_routing(ESCALATING.replace("    tiers:", "    repeat_interval: 30m\n    tiers:")), outbox,
                           None, clock)


async def first_notification(service: AlertingService, outbox: FakeOutbox, clock: SimClock) -> float:
    """Raise the Otaru CS fault and run until the NOC operator is told; returns when."""
    service.on_changes(raised(OTARU_CS))
    await run_for(service, clock, 40)
    [told] = outbox.kept.values()
    assert told.receiver == "noc-console" and told.kind == "firing"
    return told.created


async def test_no_ack_moves_to_the_next_tier_after_the_wait(service: AlertingService, outbox: FakeOutbox,
                                                            clock: SimClock) -> None:
    told = await first_notification(service, outbox, clock)
    await run_for(service, clock, told + 599 - clock.t)
    assert outbox.to("noc-lead-mail") == []
    await run_for(service, clock, 1)
    [lead] = outbox.to("noc-lead-mail")
    assert lead.kind == "escalation" and lead.alarms == (OTARU_CS.fingerprint,)
    assert lead.id.endswith("|noc-lead-mail|1|1")
    escalated = [e for e in service.alarm(OTARU_CS.fingerprint).timeline  # type: ignore[union-attr]
                 if e.action == "escalated"]
    assert [e.data["tier"] for e in escalated] == ["noc-lead"]

    await run_for(service, clock, 900 + 1800)
    assert [n.receiver for n in outbox.kept.values()] == ["noc-console", "noc-lead-mail", "sysmgmt-mail", "oncall"]


async def test_ack_stops_escalation(service: AlertingService, outbox: FakeOutbox, clock: SimClock) -> None:
    await first_notification(service, outbox, clock)
    await run_for(service, clock, 300)
    await service.acknowledge(OTARU_CS.fingerprint, "sato", "対応します")
    await run_for(service, clock, 6 * 3600, step=60)
    assert [n.receiver for n in outbox.kept.values()] == ["noc-console"], "no tier, no repeat after the ack"


async def test_ack_after_an_escalation_stops_the_next_one(service: AlertingService, outbox: FakeOutbox,
                                                          clock: SimClock) -> None:
    told = await first_notification(service, outbox, clock)
    await run_for(service, clock, told + 600 - clock.t)
    await service.acknowledge(OTARU_CS.fingerprint, "noc-lead", "")
    await run_for(service, clock, 6 * 3600, step=60)
    assert [n.receiver for n in outbox.kept.values()] == ["noc-console", "noc-lead-mail"]


async def test_the_last_tier_is_told_again_until_someone_acknowledges(service: AlertingService, outbox: FakeOutbox,
                                                                      clock: SimClock) -> None:
    told = await first_notification(service, outbox, clock)
    oncall_at = told + 600 + 900 + 1800
    await run_for(service, clock, oncall_at + 2 * 1800 - clock.t)
    assert [n.created - oncall_at for n in outbox.to("oncall")] == [0, 1800, 3600]
    await service.acknowledge(OTARU_CS.fingerprint, "oncall")
    await run_for(service, clock, 4 * 3600, step=60)
    assert len(outbox.to("oncall")) == 3


async def test_an_unacknowledged_alarm_joining_restarts_the_clock(service: AlertingService, outbox: FakeOutbox,
                                                                  clock: SimClock) -> None:
    await first_notification(service, outbox, clock)
    await service.acknowledge(OTARU_CS.fingerprint, "sato")
    await run_for(service, clock, 1200)
    service.on_changes(raised(condition(ConditionKind.DEVICE_DOWN, "muni-01-004-cs1", started=clock.t)))
    await run_for(service, clock, 60)
    update = outbox.to("noc-console")[-1]
    assert set(update.alarms) == {OTARU_CS.fingerprint, "device_down:muni-01-004-cs1"}
    await run_for(service, clock, update.created + 599 - clock.t)
    assert outbox.to("noc-lead-mail") == [], "ten minutes for the new alarm, although the first step was long ago"
    await run_for(service, clock, 2)
    assert len(outbox.to("noc-lead-mail")) == 1


async def test_everyone_told_hears_the_resolution(service: AlertingService, outbox: FakeOutbox,
                                                  clock: SimClock) -> None:
    told = await first_notification(service, outbox, clock)
    await run_for(service, clock, told + 600 - clock.t)
    service.on_changes(cleared(OTARU_CS, clock.t))
    await run_for(service, clock, 3 * 3600, step=10)
    assert {n.receiver for n in outbox.kept.values() if n.kind == "resolved"} == {"noc-console", "noc-lead-mail"}
    assert outbox.to("sysmgmt-mail") == [], "a resolved alarm escalates no further"


async def test_unacknowledged_group_is_repeated(small_inventory: Inventory, outbox: FakeOutbox,
                                                clock: SimClock) -> None:
    routing = parse_routing("receivers: {noc-console: {type: console}}\n"
                            "route: {receivers: [noc-console], group_wait: 30s, repeat_interval: 1h}\n")
    service = AlertingService(small_inventory, routing, outbox, None, clock)
    service.on_changes(raised(OTARU_CS))
    await run_for(service, clock, 2 * 3600 + 60, step=10)
    assert [n.kind for n in outbox.kept.values()] == ["firing", "reminder", "reminder"]
    await service.acknowledge(OTARU_CS.fingerprint, "sato")
    await run_for(service, clock, 4 * 3600, step=60)
    assert len(outbox.kept) == 3


def test_who_each_step_tells() -> None:
    routing = load_routing(EXAMPLE)
    urgent = routing.routes_by_id["urgent"]
    policy = routing.policy_of(urgent)
    assert step_receivers(urgent, policy, 0) == ("noc-console", "noc-mail")  # route's, then the first tier's
    assert step_receivers(urgent, policy, 2) == ("system-management-mail",)
    assert engaged_receivers(urgent, policy, 2) == ("noc-console", "noc-mail", "noc-lead-mail",
                                                    "system-management-mail")
    assert step_receivers(routing.routes_by_id["bus"], None, 0) == ("alarm-bus",)
