"""The drill runner on a small network: live faults into an in-process simulation, the safety interlock,
abort leaves the simulation clean, pause holds the drill clock, tabletop, detection by the state engine,
actions out of order, and the report files."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from alerting.cascade import Cascade, Channel, open_cascade
from drills import (ControlFaults, DrillClock, DrillRefused, DrillRunner, EntryKind, InProcessFaults, SimulatedParticipants, Status,
                    check_simulated, parse_scenario, score, write_report)
from monitor.inventory.model import Inventory
from monitor.state.engine import Changes, StateEngine
from monitor.state.model import Condition, ConditionKind
from monitor.store import Store
from simnet.control import ControlServer
from simnet.faults import FaultKind
from simnet.network import SimNetwork
from tests.test_cascade_fixtures import T0, cascade_settings, smtp_sink

SCENARIO = """\
title: 処理装置の切断（小規模）
window: {start: 2021-12-08T09:30:00+09:00, end: 2021-12-08T10:30:00+09:00}
participants:
  - {role: noc, delay: {distribution: fixed, median: 2m}}
  - {role: prefecture, delay: {distribution: uniform, low: 1m, high: 5m}}
  - {role: municipality, delay: {distribution: uniform, low: 2m, high: 20m}, no_show: 0.2}
timeline:
  - {at: 1m, id: cut, fault: {kind: isolate, target: aggregation-pu-01}}
  - {at: 2m, id: slow, fault: {kind: link_latency, target: line-pref-47-rt1, params: {latency_ms: 300}}}
  - {at: 10m, id: first, report: {step: 初報, body: "{{ target_name }} を{{ started }}に切断"}}
  - {at: 40m, id: back, clear: cut}
  - {at: 45m, id: last, report: {step: 終報, body: 終了}}
expect:
  - {id: detect, action: detect, by: noc, after: cut, within: 5m}
  - {id: open, action: open_incident, by: noc, after: detect, within: 5m}
  - {id: pref, confirm: first, tier: prefecture, within: 15m}
"""


@contextlib.asynccontextmanager
async def drill_cascade(tmp_path: Path, inventory: Inventory, clock: DrillClock,
                        **settings_changes: Any) -> AsyncIterator[Cascade]:
    with smtp_sink() as sink:
        settings = cascade_settings(tmp_path, sink.port, mqtt=False, **settings_changes)
        async with await Store.open(f"sqlite+aiosqlite:///{tmp_path}/jukimon.db") as store:
            cascade = await open_cascade(store, inventory, settings, clock=clock)
            try:
                yield cascade
            finally:
                await cascade.close()


async def test_live_drill_injects_and_clears_faults_and_scores_from_the_timeline(
        tmp_path: Path, small_inventory: Inventory) -> None:
    scenario = parse_scenario(SCENARIO, "small.yml", name="small")
    network = SimNetwork(small_inventory)
    seen_active: list[list[str]] = []
    clock = DrillClock(T0, speed=float("inf"))
    async with drill_cascade(tmp_path, small_inventory, clock) as cascade:
        runner = DrillRunner(scenario, cascade, clock, small_inventory, faults=InProcessFaults(network),
                             participants=SimulatedParticipants(scenario, seed=3),
                             on_step=lambda r: seen_active.append(sorted(f.target for f in network.faults())))
        result = await runner.run()
        metrics = score(result, cascade.tracker.directory)
    assert result.status is Status.FINISHED
    assert ["aggregation-pu-01", "line-pref-47-rt1"] in seen_active
    assert network.faults() == []  # the scenario cleared one, the end of the drill the other
    clears = {e.subject: e.data["reason"] for e in result.timeline.of(EntryKind.CLEAR)}
    assert clears == {"cut": "scenario", "slow": "end"}
    assert result.incident.drill and result.incident.id == "drill-small-20211208093000"
    assert [r.label for r in result.reports.values()] == ["初報", "終報"]
    assert "北海道サーバ処理装置" in result.reports["first"].body
    assert metrics.time_to_detect == 120.0  # the simulated NOC's fixed delay
    assert metrics.time_to_first_report == 540.0
    assert [x.met for x in metrics.expectations] == [True, True, True]
    first = metrics.reports[0].tiers
    confirmed = [e for e in result.timeline.of(EntryKind.CONFIRM) if e.data["report"] == result.reports["first"].id]
    assert first["all"].confirmed == len(confirmed) and first["all"].targets == 14
    assert first["prefecture"].confirmed == 2  # prefectures never fail to show in this scenario
    assert len([s for s in metrics.stragglers if s.latency is None]) == 2 * 14 - len(
        result.timeline.of(EntryKind.CONFIRM))


async def test_abort_clears_every_injected_fault(tmp_path: Path, small_inventory: Inventory) -> None:
    scenario = parse_scenario(SCENARIO, "small.yml", name="small")
    network = SimNetwork(small_inventory)
    clock = DrillClock(T0, speed=float("inf"))

    def abort_once_both_faults_are_in(runner: DrillRunner) -> None:
        if len(network.faults()) == 2:
            runner.abort()

    async with drill_cascade(tmp_path, small_inventory, clock) as cascade:
        runner = DrillRunner(scenario, cascade, clock, small_inventory, faults=InProcessFaults(network),
                             participants=SimulatedParticipants(scenario), on_step=abort_once_both_faults_are_in)
        result = await runner.run()
    assert result.status is Status.ABORTED
    assert network.faults() == []
    assert {e.subject: e.data["reason"] for e in result.timeline.of(EntryKind.CLEAR)} == {"cut": "abort",
                                                                                         "slow": "abort"}
    assert result.reports == {}  # aborted before the first report
    assert result.timeline.sorted()[-1].subject == "aborted"


async def test_the_interlock_refuses_targets_outside_the_simulation(tmp_path: Path,
                                                                    small_inventory: Inventory) -> None:
    outside = SCENARIO.replace("aggregation-pu-01", "aggregation-pu-13")  # Tokyo: not in this inventory
    scenario = parse_scenario(outside, "outside.yml", name="outside")
    network = SimNetwork(small_inventory)
    clock = DrillClock(T0, speed=float("inf"))
    async with drill_cascade(tmp_path, small_inventory, clock) as cascade:
        runner = DrillRunner(scenario, cascade, clock, small_inventory, faults=InProcessFaults(network))
        with pytest.raises(DrillRefused, match=r"cut \(line 8\): 'aggregation-pu-13' is not a device"):
            await runner.run()
        with pytest.raises(DrillRefused, match="needs the simulated network"):
            await DrillRunner(scenario, cascade, clock, small_inventory).run()
    assert network.faults() == [] and cascade.tracker.reports == {}
    production = dataclasses.replace(small_inventory.devices["aggregation-pu-01"], address="10.1.1.1")
    real = dataclasses.replace(small_inventory, devices={**small_inventory.devices, production.id: production})
    with pytest.raises(DrillRefused, match="not marked simulated"):
        check_simulated(real, FaultKind.ISOLATE, "aggregation-pu-01")
    check_simulated(small_inventory, FaultKind.ISOLATE, "aggregation-pu-01")


async def test_pause_holds_the_drill_clock_and_resume_finishes(tmp_path: Path, small_inventory: Inventory) -> None:
    scenario = parse_scenario(SCENARIO, "small.yml", name="small")
    clock = DrillClock(T0, speed=1e6)
    held: list[float] = []

    def pause_after_first_report(runner: DrillRunner) -> None:
        if runner.reports and not held:
            runner.pause()
            held.append(clock())

    async with drill_cascade(tmp_path, small_inventory, clock) as cascade:
        runner = DrillRunner(scenario, cascade, clock, small_inventory, tabletop=True,
                             participants=SimulatedParticipants(scenario), on_step=pause_after_first_report)
        task = asyncio.create_task(runner.run())
        while not held:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        assert runner.status is Status.PAUSED and clock() == held[0]
        runner.resume()
        result = await task
    assert result.status is Status.FINISHED
    phases = [e.subject for e in result.timeline.of(EntryKind.PHASE)]
    assert phases == ["start", "pause", "resume", "finished"]


async def test_tabletop_announces_faults_without_injecting(tmp_path: Path, small_inventory: Inventory) -> None:
    scenario = parse_scenario(SCENARIO.replace("title:", "mode: tabletop\ntitle:"), "tt.yml", name="tt")
    clock = DrillClock(T0, speed=float("inf"))
    async with drill_cascade(tmp_path, small_inventory, clock) as cascade:
        result = await DrillRunner(scenario, cascade, clock, small_inventory,
                                   participants=SimulatedParticipants(scenario)).run()
    faults = result.timeline.of(EntryKind.FAULT)
    assert [f.data["injected"] for f in faults] == [False, False] and faults[0].text.startswith("（机上）")
    assert result.status is Status.FINISHED and len(result.reports) == 2


async def test_detection_comes_from_the_state_engine_and_early_actions_are_out_of_order(
        tmp_path: Path, small_inventory: Inventory) -> None:
    scenario = parse_scenario(SCENARIO, "small.yml", name="small")
    network = SimNetwork(small_inventory)
    engine = StateEngine(small_inventory)
    clock = DrillClock(T0, speed=float("inf"))

    def monitor_sees_the_cut(runner: DrillRunner) -> None:
        if network.faults() and not runner.timeline.of(EntryKind.CONDITION):
            condition = Condition("device_down:aggregation-pu-01", ConditionKind.DEVICE_DOWN, "aggregation-pu-01",
                                  "critical", clock() + 35, "北海道サーバ処理装置 応答なし")
            for listener in list(engine.listeners):
                listener(Changes(raised=[condition]))

    async with drill_cascade(tmp_path, small_inventory, clock) as cascade:
        runner = DrillRunner(scenario, cascade, clock, small_inventory, faults=InProcessFaults(network),
                             engine=engine, on_step=monitor_sees_the_cut)
        runner.record_action("open_incident", "当番")  # before anything was detected
        result = await runner.run()
        metrics = score(result, cascade.tracker.directory)
    detect = result.timeline.first(EntryKind.ACTION, "detect")
    assert detect is not None and detect.text == "jukimon"
    assert metrics.time_to_detect == 35.0
    assert engine.listeners == []  # detached at the end
    assert metrics.out_of_order == ["open"] and "open" in metrics.deadlines_missed
    assert metrics.expectations[2].rate == 0.0  # nobody simulated confirms
    assert not metrics.passed

    files = write_report(metrics, result.timeline, tmp_path / "report", pdf=False)
    html = files.html.read_text(encoding="utf-8")
    assert "【訓練】" in html and "順序違反" in html and "<svg" in html
    assert json.loads(files.json.read_text(encoding="utf-8"))["out_of_order"] == ["open"]


async def test_faults_through_the_control_channel_are_cleared_on_abort(tmp_path: Path, small_inventory: Inventory,
                                                                       full_inventory: Inventory) -> None:
    scenario = parse_scenario(SCENARIO, "small.yml", name="small")
    network = SimNetwork(small_inventory)
    server = ControlServer(network, port=0)
    await server.start()
    clock = DrillClock(T0, speed=float("inf"))
    try:
        with pytest.raises(DrillRefused, match="not the same network"):
            await ControlFaults(full_inventory, "127.0.0.1", server.port).check()
        async with drill_cascade(tmp_path, small_inventory, clock) as cascade:
            runner = DrillRunner(scenario, cascade, clock, small_inventory,
                                 faults=ControlFaults(small_inventory, "127.0.0.1", server.port),
                                 on_step=lambda r: r.abort() if r.reports else None)
            result = await runner.run()
    finally:
        await server.stop()
    assert result.status is Status.ABORTED and len(result.reports) == 1
    assert [e.data["injected"] for e in result.timeline.of(EntryKind.FAULT)] == [True, True]
    assert network.faults() == []


async def test_a_simulated_prefecture_that_forwards_itself_does_so_when_it_has_read_the_report(
        tmp_path: Path, small_inventory: Inventory) -> None:
    scenario = parse_scenario(SCENARIO.replace("no_show: 0.2", "no_show: 0"), "fw.yml", name="fw")
    clock = DrillClock(T0, speed=float("inf"))
    async with drill_cascade(tmp_path, small_inventory, clock, forwarding_overrides={"01": "prefecture"}) as cascade:
        result = await DrillRunner(scenario, cascade, clock, small_inventory, tabletop=True,
                                   participants=SimulatedParticipants(scenario)).run()
        first = result.reports["first"].id
        prefecture = cascade.tracker.delivery(first, "pref-01")
        forwarded = [d for d in cascade.tracker.deliveries(first) if d.sent_by == "pref-01"]
    assert prefecture is not None and prefecture.confirmed_at is not None
    assert sorted(d.org for d in forwarded) == [f"muni-01-00{i}" for i in range(1, 7)]
    assert all(d.sent_at == prefecture.confirmed_at and d.confirmed_at is not None for d in forwarded)


async def test_receipts_from_real_people_reach_the_timeline(tmp_path: Path, small_inventory: Inventory) -> None:
    scenario = parse_scenario(SCENARIO, "people.yml", name="people")
    clock = DrillClock(T0, speed=float("inf"))
    pressed: list[str] = []

    async with drill_cascade(tmp_path, small_inventory, clock) as cascade:
        def okinawa_clicks_the_link(runner: DrillRunner) -> None:
            if "first" in runner.reports and not pressed:
                pressed.append(runner.reports["first"].id)
                asyncio.get_running_loop().create_task(
                    cascade.tracker.confirm(pressed[0], "pref-47", Channel.LINK, by="沖縄県 担当者"))

        result = await DrillRunner(scenario, cascade, clock, small_inventory, tabletop=True,
                                   on_step=okinawa_clicks_the_link).run()
    confirms = result.timeline.of(EntryKind.CONFIRM)
    assert [(e.subject, e.text, e.data["via"], e.data["report"]) for e in confirms] == [
        ("pref-47", "沖縄県 担当者", "link", pressed[0])]
