"""The annual drill (seed 003) end to end at full scale: 47 prefectures, 1,741 municipalities.

処理装置X (Tokyo's prefecture unit at the aggregation centre) is isolated in an
in-process simulation of the whole network; 初報, 第2報 and 終報 go over a real SMTP
server to all 1,788 organisations; simulated participants confirm with seeded delays
and no-shows on a clock 1,200 times faster than real time. The report's numbers are
then recomputed independently from what the cascade recorded (the tracker's
deliveries) and the mails the SMTP server received.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path

import pytest

from alerting.cascade import open_cascade
from drills import (DrillClock, DrillRunner, EntryKind, InProcessFaults, SimulatedParticipants, Status, find_scenario,
                    score, write_report)
from monitor.inventory.model import Inventory
from monitor.store import Store
from simnet.network import SimNetwork
from tests.test_cascade_fixtures import T0, cascade_settings, smtp_sink

pytestmark = pytest.mark.slow

TARGETS = 47 + 1741


def _subject(data: bytes) -> str:
    return str(make_header(decode_header(message_from_bytes(data)["Subject"])))


async def test_annual_drill_at_full_scale_report_matches_the_recorded_events(
        tmp_path: Path, full_inventory: Inventory) -> None:
    scenario = find_scenario("annual-virus-isolation")
    network = SimNetwork(full_inventory)
    unit = network.devices["aggregation-pu-13"]
    isolated_during_drill: list[bool] = []
    clock = DrillClock(T0, speed=1200)
    with smtp_sink() as sink:
        settings = cascade_settings(tmp_path, sink.port, mqtt=False)
        async with await Store.open(f"sqlite+aiosqlite:///{tmp_path}/jukimon.db") as store:
            cascade = await open_cascade(store, full_inventory, settings, clock=clock)
            runner = DrillRunner(scenario, cascade, clock, full_inventory, faults=InProcessFaults(network),
                                 participants=SimulatedParticipants(scenario, seed=2021),
                                 on_step=lambda r: isolated_during_drill.append(unit.isolated))
            result = await runner.run()
            await cascade.close()
            tracker = cascade.tracker
            metrics = score(result, tracker.directory)
            files = write_report(metrics, result.timeline, tmp_path / "report")
        mails = sink.take()

    # the simulation: 処理装置X was cut off during the drill, and nothing is left broken
    assert result.status is Status.FINISHED
    assert True in isolated_during_drill and not unit.isolated and network.faults() == []

    # every organisation got each report once, marked as a drill
    first_sends = [m for m in mails if m.header("X-Jukimon-Kind") == "report"]
    assert Counter(m.header("X-Jukimon-Report") for m in first_sends) == {
        r.id: TARGETS for r in result.reports.values()}
    assert all(_subject(m.data).startswith("【訓練】") and m.header("X-Jukimon-Drill") == "yes" for m in mails)
    reminders = [m for m in mails if m.header("X-Jukimon-Kind").startswith("reminder-")]
    assert sum(e.data["count"] for e in result.timeline.of(EntryKind.REMINDER)) == len(reminders)

    # the numbers, recomputed from the tracker's deliveries
    straggler_after = scenario.scoring.straggler_after
    expected_stragglers = set()
    for stats, report in zip(metrics.reports, result.reports.values(), strict=True):
        assert stats.label == report.label and stats.issued_at == report.issued_at
        deliveries = tracker.deliveries(report.id)
        assert len(deliveries) == TARGETS
        latency = {d.org: d.confirmed_at - report.issued_at for d in deliveries if d.confirmed_at is not None}
        for tier in ("prefecture", "municipality"):
            orgs = [d.org for d in deliveries if tracker.directory[d.org].tier.value == tier]
            mine = [latency[o] for o in orgs if o in latency]
            assert stats.tiers[tier].targets == len(orgs)
            assert stats.tiers[tier].confirmed == len(mine)
            assert stats.tiers[tier].latency_median == statistics.median(mine)
            assert stats.tiers[tier].latency_max == max(mine)
        assert stats.tiers["all"].confirmed == len(latency) == tracker.counts(report.id).confirmed
        assert sorted(latency.values()) == stats.latencies
        assert 0 < len(latency) < TARGETS  # seeded no-shows
        expected_stragglers |= {(report.label, d.org) for d in deliveries
                                if d.org not in latency or latency[d.org] > straggler_after}
        tokyo = next(p for p in metrics.prefectures if p.code == "13")
        tokyo_munis = [m.id for m in tracker.directory.municipalities(tracker.directory["pref-13"])]
        assert tokyo.municipalities_confirmed[report.label] == sum(m in latency for m in tokyo_munis)
    assert {(s.report, s.org) for s in metrics.stragglers} == expected_stragglers
    assert len(metrics.prefectures) == 47 and sum(p.municipalities for p in metrics.prefectures) == 1741

    # expectations: deadlines from the timeline, rates from the deliveries
    fault = result.timeline.first(EntryKind.FAULT, "isolate-x")
    detect = result.timeline.first(EntryKind.ACTION, "detect")
    assert fault is not None and detect is not None and fault.at == T0 + 60
    assert metrics.time_to_detect == detect.at - fault.at
    assert metrics.time_to_first_report == 540.0
    first = result.reports["first"]
    in_time = [d for d in tracker.deliveries(first.id) if tracker.directory[d.org].tier.value == "municipality"
               and d.confirmed_at is not None and d.confirmed_at <= first.issued_at + 1800]
    munis = next(x for x in metrics.expectations if x.id == "first-municipalities")
    assert munis.rate == len(in_time) / 1741 and munis.met == (munis.rate >= 0.95)
    assert metrics.score == sum(x.points for x in metrics.expectations if x.met)

    # the report files say the same
    assert json.loads(files.json.read_text(encoding="utf-8")) == json.loads(json.dumps(metrics.to_json()))
    html = files.html.read_text(encoding="utf-8")
    assert html.count('<tr><td>13</td><td>東京都</td>') == 1 and "<svg" in html
    assert f"{metrics.reports[0].tiers['all'].confirmed}</td>" in html
    assert files.pdf is not None and files.pdf.read_bytes().startswith(b"%PDF")
