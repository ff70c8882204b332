"""The alerting service, as the NOC lives it: a fault becomes one notification per receiver, a burst becomes
one, silences and root causes keep the noise down, a cleared fault is told resolved, and a restart (SQLite and
PostgreSQL) goes on where it stopped — no step lost, none repeated.

Simulated clock, ``tick()`` called by hand, the example routing file, and an in-memory outbox that keeps each
notification once by id (as the durable outbox does). The helpers here serve the other alerting tests too.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
import pytest

from alerting.alarms import AlarmError
from alerting.model import AlarmStatus, Notification
from alerting.routing import RoutingConfig, load_routing, parse_routing
from alerting.service import AlertingService
from monitor.inventory.model import Inventory
from monitor.state.engine import Changes
from monitor.state.model import Condition, ConditionKind, ConditionStatus
from monitor.store import Store

T0 = 1_700_000_000.0
EXAMPLE = Path(__file__).parent / "data" / "routing.yml"


class SimClock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class FakeOutbox:
    """The durable outbox's contract in memory: each id kept once, however often it is offered."""

    def __init__(self) -> None:
        self.kept: dict[str, Notification] = {}
        self.offered: list[str] = []

    async def enqueue(self, n: Notification) -> None:
        self.offered.append(n.id)
        self.kept.setdefault(n.id, n)

    def to(self, receiver: str, kind: str | None = None) -> list[Notification]:
        return [n for n in self.kept.values() if n.receiver == receiver and (kind is None or n.kind == kind)]

    def receivers(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for n in self.kept.values():
            counts[n.receiver] = counts.get(n.receiver, 0) + 1
        return counts


def condition(kind: ConditionKind, subject: str, severity: str = "error", started: float = T0,
              summary: str | None = None, **kw: object) -> Condition:
    fingerprint = f"{kind.value}:{subject}"
    return Condition(fingerprint, kind, subject, severity, started, summary or f"{subject} 応答なし",
                     **kw)  # type: ignore[arg-type]


def raised(*conditions: Condition) -> Changes:
    return Changes(raised=list(conditions))


def cleared(c: Condition, at: float) -> Changes:
    return Changes(cleared=[replace(c, status=ConditionStatus.CLEARED, cleared=at)])


async def run_for(service: AlertingService, clock: SimClock, seconds: float, step: float = 1.0) -> None:
    """Tick once a (simulated) second for ``seconds``, as the background loop does."""
    end = clock.t + seconds
    while clock.t < end:
        clock.advance(step)
        await service.tick()


@pytest.fixture
def clock() -> SimClock:
    return SimClock()


@pytest.fixture
def outbox() -> FakeOutbox:
    return FakeOutbox()


@pytest.fixture
def routing() -> RoutingConfig:
    return load_routing(EXAMPLE)


@pytest.fixture
def service(small_inventory: Inventory, routing: RoutingConfig, outbox: FakeOutbox, clock: SimClock) -> AlertingService:
    return AlertingService(small_inventory, routing, outbox, None, clock)



OTARU_CS = condition(ConditionKind.DEVICE_DOWN, "muni-01-003-cs1")


# --- one fault, one notification ---------------------------------------------------------------------------------


async def test_one_fault_is_one_notification_per_routed_receiver(service: AlertingService, outbox: FakeOutbox,
                                                                 clock: SimClock) -> None:
    service.on_changes(raised(OTARU_CS))
    await run_for(service, clock, 29)
    assert outbox.kept == {}, "group_wait (30 s) holds the first notification"

    await run_for(service, clock, 500)  # and nothing more before the escalation's 10 minutes
    # The bus route (continue) and the urgent route (console, plus the NOC policy's first tier: console + mail).
    assert outbox.receivers() == {"alarm-bus": 1, "noc-console": 1, "noc-mail": 1}
    mail = outbox.to("noc-mail")[0]
    assert mail.kind == "firing" and mail.alarms == (OTARU_CS.fingerprint,)
    assert mail.id == "urgent{prefecture=01,kind=device_down}|noc-mail|0|0"
    assert "muni-01-003-cs1 応答なし" in mail.subject
    alarm = service.alarm(OTARU_CS.fingerprint)
    assert alarm is not None and alarm.labels["site"] == "muni-01-003" and alarm.labels["role"] == "cs"
    assert [e.action for e in alarm.timeline].count("notified") == 2  # once per group (bus, urgent)


async def test_default_routing_without_a_file(small_inventory: Inventory, outbox: FakeOutbox,
                                              clock: SimClock) -> None:
    service = AlertingService(small_inventory, None, outbox, None, clock)
    service.on_changes(raised(OTARU_CS, condition(ConditionKind.DEGRADED, "muni-47-001-cs1", "warning")))
    await run_for(service, clock, 31)
    assert {n.receiver: n.alarms for n in outbox.kept.values() if n.alarms == (OTARU_CS.fingerprint,)} == {
        "noc-console": (OTARU_CS.fingerprint,), "noc-mail": (OTARU_CS.fingerprint,)}
    assert [n.receiver for n in outbox.kept.values() if n.alarms == ("degraded:muni-47-001-cs1",)] == ["noc-console"]


async def test_a_burst_of_50_becomes_one_notification(full_inventory: Inventory, routing: RoutingConfig,
                                                      outbox: FakeOutbox, clock: SimClock) -> None:
    service = AlertingService(full_inventory, routing, outbox, None, clock)
    hokkaido_cs = sorted(d.id for d in full_inventory.devices.values()
                         if d.prefecture == "01" and d.role.value == "cs")[:50]
    for batch in range(5):  # five judgements, two seconds apart: the storm as the state engine reports it
        service.on_changes(raised(*(condition(ConditionKind.DEVICE_DOWN, d, started=clock.t)
                                    for d in hokkaido_cs[batch * 10:(batch + 1) * 10])))
        await run_for(service, clock, 2)
    await run_for(service, clock, 60)
    assert outbox.receivers() == {"alarm-bus": 1, "noc-console": 1, "noc-mail": 1}
    assert len(outbox.to("noc-mail")[0].alarms) == 50
    assert "他49件" in outbox.to("noc-mail")[0].subject


async def test_changes_within_group_interval_go_out_together(service: AlertingService, outbox: FakeOutbox,
                                                             clock: SimClock) -> None:
    service.on_changes(raised(OTARU_CS))
    await run_for(service, clock, 60)
    first = outbox.to("noc-mail")[0]
    service.on_changes(raised(condition(ConditionKind.DEVICE_DOWN, "muni-01-004-cs1", started=clock.t)))
    await run_for(service, clock, 120)
    service.on_changes(raised(condition(ConditionKind.DEVICE_DOWN, "muni-01-005-cs1", started=clock.t)))
    await run_for(service, clock, first.created + 299 - clock.t)
    assert outbox.to("noc-mail") == [first], "the group waits group_interval (5 min) after its last send"
    await run_for(service, clock, 1)
    update = outbox.to("noc-mail")[-1]
    assert len(outbox.to("noc-mail")) == 2 and update.kind == "firing"
    assert set(update.alarms) == {OTARU_CS.fingerprint, "device_down:muni-01-004-cs1", "device_down:muni-01-005-cs1"}


# --- what mutes -------------------------------------------------------------------------------------------------


async def test_a_silence_suppresses_while_it_lasts(service: AlertingService, outbox: FakeOutbox,
                                                   clock: SimClock) -> None:
    silence = await service.add_silence(["site=muni-01-003"], clock.t, clock.t + 600, "sato", "CS 更改作業")
    service.on_changes(raised(OTARU_CS))
    await run_for(service, clock, 300)
    assert outbox.kept == {}
    assert [a.fingerprint for a in service.open_alarms()] == [OTARU_CS.fingerprint], "recorded and visible"
    assert service.muting(OTARU_CS.fingerprint).silenced_by == (silence.id,)

    await run_for(service, clock, 400)  # the silence ends by itself at +600, then the group waits its 30 s
    assert outbox.receivers() == {"alarm-bus": 1, "noc-console": 1, "noc-mail": 1}
    actions = [e.action for e in service.alarm(OTARU_CS.fingerprint).timeline]  # type: ignore[union-attr]
    assert actions.index("silenced") < actions.index("unsilenced") < actions.index("notified")


async def test_a_silence_expired_by_hand(service: AlertingService, outbox: FakeOutbox, clock: SimClock) -> None:
    silence = await service.add_silence(['kind=~"device_.*"'], clock.t, clock.t + 86400, "sato", "試験")
    service.on_changes(raised(OTARU_CS))
    await run_for(service, clock, 60)
    assert outbox.kept == {}
    expired = await service.expire_silence(silence.id, "suzuki")
    assert expired.expired_by == "suzuki" and expired.state(clock.t) == "expired"
    await run_for(service, clock, 40)
    assert len(outbox.to("noc-mail")) == 1


async def test_maintenance_alarm_is_recorded_never_notified(service: AlertingService, outbox: FakeOutbox,
                                                            clock: SimClock) -> None:
    service.on_changes(raised(replace(OTARU_CS, in_maintenance=True)))
    await run_for(service, clock, 3600)
    alarm = service.alarm(OTARU_CS.fingerprint)
    assert alarm is not None and alarm.in_maintenance and alarm.status is AlarmStatus.FIRING
    assert outbox.kept == {}


async def test_root_cause_inhibits_its_children(service: AlertingService, outbox: FakeOutbox,
                                                clock: SimClock) -> None:
    fw_down = condition(ConditionKind.ROOT_CAUSE, "muni-01-003-fw", "critical", summary="FW 停止 — 配下 2 台が監視不能",
                        suppressed=("muni-01-003-cs1", "muni-01-003-cs2"), details={"suppressed_count": 2})
    child = condition(ConditionKind.DEGRADED, "muni-01-003-cs2", "warning")  # a subject made unreachable
    same_site = condition(ConditionKind.FLAPPING, "muni-01-003-rt1", "warning")
    elsewhere = condition(ConditionKind.DEGRADED, "muni-01-004-cs1", "warning")
    service.on_changes(raised(fw_down, child, same_site, elsewhere))
    await run_for(service, clock, 60)

    told = {fp for n in outbox.kept.values() for fp in n.alarms}
    assert told == {fw_down.fingerprint, elsewhere.fingerprint}
    assert service.muting(child.fingerprint).inhibited_by == fw_down.fingerprint
    children = service.children(fw_down.fingerprint)
    assert children.count == 2 and children.subjects == ("muni-01-003-cs1", "muni-01-003-cs2")
    assert {a.fingerprint for a in children.inhibited} == {child.fingerprint, same_site.fingerprint}

    service.on_changes(cleared(fw_down, clock.t))  # the FW is back; the flapping router still flaps
    await run_for(service, clock, 360)
    assert same_site.fingerprint in {fp for n in outbox.kept.values() for fp in n.alarms}


# --- resolution ---------------------------------------------------------------------------------------------------


async def test_resolved_when_the_condition_clears(service: AlertingService, outbox: FakeOutbox,
                                                  clock: SimClock) -> None:
    service.on_changes(raised(OTARU_CS))
    await run_for(service, clock, 60)
    service.on_changes(cleared(OTARU_CS, clock.t))
    assert service.alarm(OTARU_CS.fingerprint).status is AlarmStatus.RESOLVED  # type: ignore[union-attr]
    await run_for(service, clock, 300)
    assert {n.receiver for n in outbox.kept.values() if n.kind == "resolved"} == {"alarm-bus", "noc-console",
                                                                                  "noc-mail"}
    assert "[復旧]" in outbox.to("noc-mail", "resolved")[0].subject
    await run_for(service, clock, 86400, step=60)
    assert len(outbox.kept) == 6, "told once firing and once resolved per receiver; nothing after"

    await service.close(OTARU_CS.fingerprint, "sato", "回線業者の復旧報告済み")
    assert service.open_alarms() == []


async def test_a_fault_that_comes_back_reopens_its_alarm(service: AlertingService, outbox: FakeOutbox,
                                                         clock: SimClock) -> None:
    service.on_changes(raised(OTARU_CS))
    await run_for(service, clock, 60)
    await service.acknowledge(OTARU_CS.fingerprint, "sato")
    service.on_changes(cleared(OTARU_CS, clock.t))
    await run_for(service, clock, 600)
    service.on_changes(raised(replace(OTARU_CS, started=clock.t)))
    await run_for(service, clock, 60)
    alarm = service.alarm(OTARU_CS.fingerprint)
    assert alarm is not None and alarm.status is AlarmStatus.FIRING and alarm.acknowledged_by is None
    assert [n.kind for n in outbox.to("noc-mail")] == ["firing", "resolved", "firing"]
    assert len({n.id for n in outbox.to("noc-mail")}) == 3, "a new episode never reuses an id"


async def test_operator_actions_are_checked(service: AlertingService) -> None:
    service.on_changes(raised(OTARU_CS))
    with pytest.raises(AlarmError, match="解決済みのアラームだけ"):
        await service.close(OTARU_CS.fingerprint, "sato")
    with pytest.raises(AlarmError, match="理由"):
        await service.resolve(OTARU_CS.fingerprint, "sato", " ")
    with pytest.raises(AlarmError, match="ありません"):
        await service.acknowledge("device_down:nowhere", "sato")


async def test_queries_filter_and_sort(service: AlertingService) -> None:
    service.on_changes(raised(OTARU_CS, condition(ConditionKind.DEGRADED, "muni-47-001-cs1", "warning"),
                              condition(ConditionKind.ROOT_CAUSE, "pref-47-fw", "critical", started=T0 + 5)))
    assert [a.labels["subject"] for a in service.open_alarms()] == ["pref-47-fw", "muni-01-003-cs1",
                                                                   "muni-47-001-cs1"]
    assert [a.labels["subject"] for a in service.open_alarms(["prefecture=47"], min_severity="error")] == [
        "pref-47-fw"]


# --- persistence and restart ----------------------------------------------------------------------------------


async def test_store_round_trip(url: str, small_inventory: Inventory, routing: RoutingConfig,
                                clock: SimClock) -> None:
    outbox = FakeOutbox()
    async with await Store.open(url) as store:
        first = AlertingService(small_inventory, routing, outbox, store, clock)
        await first.restore()
        first.on_changes(raised(OTARU_CS, condition(ConditionKind.DEVICE_DOWN, "muni-47-001-cs1")))
        silence = await first.add_silence(["prefecture=47"], clock.t, clock.t + 3600, "sato", "沖縄 回線工事")
        await run_for(first, clock, 60)
        await first.acknowledge(OTARU_CS.fingerprint, "suzuki", "対応中")
        await first.comment(OTARU_CS.fingerprint, "suzuki", "業者手配済み")
        await first.stop()

    async with await Store.open(url) as store:
        second = AlertingService(small_inventory, routing, outbox, store, clock)
        await second.restore()
        before, after = first.alarm(OTARU_CS.fingerprint), second.alarm(OTARU_CS.fingerprint)
        assert after == before and after is not None
        assert after.status is AlarmStatus.ACKNOWLEDGED and after.acknowledged_by == "suzuki"
        assert [e.action for e in after.timeline] == ["raised", "notified", "notified", "acknowledged", "commented"]
        assert second.silences.silences == first.silences.silences
        assert {k: (g.sequence, g.notified, g.last_flush) for k, g in second.groups.items()} == {
            k: (g.sequence, g.notified, g.last_flush) for k, g in first.groups.items()}
        await run_for(second, clock, 60)
        assert second.muting("device_down:muni-47-001-cs1").silenced_by == (silence.id,)
    assert len(outbox.offered) == len(outbox.kept) == 3, "nothing sent twice"


ESCALATING = """
receivers:
  noc-console: {type: console}
  noc-lead-mail: {type: email, to: [noc-lead@jlis.example.jp]}
  sysmgmt-mail: {type: email, to: [sysmgmt@jlis.example.jp]}
  oncall: {type: webhook, url: http://127.0.0.1:9/oncall}
escalation_policies:
  noc:
    tiers:
      - {name: noc-operator, receivers: [noc-console], wait: 10m}
      - {name: noc-lead, receivers: [noc-lead-mail], wait: 15m}
      - {name: system-management, receivers: [sysmgmt-mail], wait: 30m}
      - {name: national-oncall, receivers: [oncall]}
route:
  receivers: []
  group_wait: 30s
  escalation: noc
"""


async def test_restart_mid_escalation_neither_loses_nor_repeats_a_step(url: str, small_inventory: Inventory,
                                                                       clock: SimClock) -> None:
    routing, outbox = parse_routing(ESCALATING), FakeOutbox()
    async with await Store.open(url) as store:
        first = AlertingService(small_inventory, routing, outbox, store, clock)
        await first.restore()
        first.on_changes(raised(OTARU_CS))
        await run_for(first, clock, 30 + 600 + 10)  # step 0 after group_wait, step 1 (NOC lead) 10 min later
        assert [n.receiver for n in outbox.kept.values()] == ["noc-console", "noc-lead-mail"]
        step2_due = outbox.to("noc-lead-mail")[0].created + 900
        await run_for(first, clock, step2_due - 1 - clock.t)
        assert len(outbox.kept) == 2

        # The monitor dies just after step 2 reached the outbox, before alerting saved that it sent it.
        async def crash(*args: object, **kw: object) -> None:
            raise ConnectionError("killed")

        first._store.save = crash  # type: ignore[union-attr,method-assign]
        with pytest.raises(ConnectionError):
            await run_for(first, clock, 1)
        assert [n.receiver for n in outbox.kept.values()][-1] == "sysmgmt-mail"

    clock.advance(120)  # two minutes to restart
    async with await Store.open(url) as store:
        second = AlertingService(small_inventory, routing, outbox, store, clock)
        await second.restore([OTARU_CS])  # the monitor's active conditions
        step3_due = step2_due + 1800
        await run_for(second, clock, step3_due - 1 - clock.t)
        assert outbox.offered.count(outbox.to("sysmgmt-mail")[0].id) == 2, "offered again under the same id"
        assert outbox.to("oncall") == [], "step 3 waits 30 min from step 2, not from the restart"
        await run_for(second, clock, 1)
        assert len(outbox.to("oncall")) == 1
        await run_for(second, clock, 7200, step=60)
        await second.stop()
    assert [n.receiver for n in outbox.kept.values()] == ["noc-console", "noc-lead-mail", "sysmgmt-mail", "oncall"]
    assert len(outbox.offered) == 5


async def test_restart_catches_up_with_the_monitor(url: str, small_inventory: Inventory, routing: RoutingConfig,
                                                   clock: SimClock) -> None:
    """Conditions raised or cleared while alerting was down become alarms, or resolve them, at start."""
    gone = condition(ConditionKind.DEVICE_DOWN, "muni-47-001-cs1")
    async with await Store.open(url) as store:
        first = AlertingService(small_inventory, routing, FakeOutbox(), store, clock)
        await first.restore()
        first.on_changes(raised(gone))
        await first.stop()
    async with await Store.open(url) as store:
        second = AlertingService(small_inventory, routing, FakeOutbox(), store, clock)
        await second.restore([OTARU_CS])
        assert second.alarm(OTARU_CS.fingerprint).status is AlarmStatus.FIRING  # type: ignore[union-attr]
        assert second.alarm(gone.fingerprint).status is AlarmStatus.RESOLVED  # type: ignore[union-attr]


async def test_background_loop_sends_and_stops(small_inventory: Inventory, outbox: FakeOutbox) -> None:
    routing = parse_routing("receivers: {noc-console: {type: console}}\n"
                            "route: {receivers: [noc-console], group_wait: 0s}\n")
    service = AlertingService(small_inventory, routing, outbox, tick_every=0.01)
    await service.start()
    service.on_changes(raised(OTARU_CS))
    for _ in range(200):
        if outbox.kept:
            break
        await asyncio.sleep(0.01)
    await service.stop()
    assert [n.receiver for n in outbox.kept.values()] == ["noc-console"]
