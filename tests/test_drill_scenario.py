"""Scenario files: the built-ins load, a malformed file gets every problem with its line, the drill CLI."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from drills import ScenarioError, builtin_scenarios, find_scenario, load_scenario, parse_scenario
from drills.cli import register
from drills.scenario import ClearInject, FaultInject, Mode, ReportInject
from simnet.faults import FaultKind
from tests.servers import free_port

GOOD = """\
title: 訓練
window: {start: 2021-12-08T09:30:00+09:00, end: 2021-12-08T10:30:00+09:00}
timeline:
  - {at: 1m, id: cut, fault: {kind: line_cut, target: line-pref-01-rt1}}
  - {at: 10m, id: first, report: {step: 初報, body: "{{ target }} 切断"}}
  - {at: 1h, id: back, clear: cut}
  - {at: 1h5m, id: last, report: {step: 終報, body: 終了}}
expect:
  - {id: pref, confirm: first, tier: prefecture, within: 15m}
"""

BROKEN = """\
title: 壊れた訓練
mode: rehearsal
window: {start: 2021-12-08T09:30:00+09:00, end: 2021-12-08T09:00:00+09:00}
participants:
  - {role: prefecture, no_show: 1.5}
timeline:
  - at: 1m
    id: x
    fault: {kind: isolat, target: aggregation-pu-01}
  - at: 2m
    id: lat
    fault: {kind: link_latency, target: line-pref-01-rt1}
  - at: ten minutes
    id: first
    report: {step: 初報, body: "{{ victim }}"}
  - at: 20m
    id: second
    report: {step: 第3報, body: 続報}
  - at: 30m
    clear: nothing
expect:
  - {id: a, action: detect, by: noc, after: nowhere, within: 5m}
  - {id: b, confirm: first, within: soon}
"""


def test_every_builtin_scenario_loads_and_the_annual_one_is_the_seed_drill() -> None:
    names = builtin_scenarios()
    assert {"annual-virus-isolation", "prefecture-line-cut", "cs-hardware-switchover", "national-fw-failure",
            "suspected-leak", "operator-misuse"} <= names.keys()
    for path in names.values():
        assert load_scenario(path).timeline
    annual = find_scenario("annual-virus-isolation")
    fault = annual.inject("isolate-x").action
    assert isinstance(fault, FaultInject) and fault.kind is FaultKind.ISOLATE
    assert fault.target.startswith("aggregation-pu-")
    assert [i.action.label for i in annual.timeline if isinstance(i.action, ReportInject)] == ["初報", "第2報", "終報"]
    assert find_scenario("operator-misuse").mode is Mode.TABLETOP


def test_a_good_scenario_reads_durations_references_and_numbers_the_final_report() -> None:
    scenario = parse_scenario(GOOD, "good.yml")
    assert [(i.id, i.at) for i in scenario.timeline] == [("cut", 60), ("first", 600), ("back", 3600), ("last", 3900)]
    assert isinstance(scenario.inject("back").action, ClearInject)
    final = scenario.inject("last").action
    assert isinstance(final, ReportInject) and final.final and final.sequence == 2
    assert scenario.expectations[0].after == "first"  # a confirmation counts from its report by default
    assert scenario.duration == 3900  # the window is shorter than the last inject


def test_a_malformed_scenario_gets_every_problem_with_its_line_and_what_was_expected() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(BROKEN, "broken.yml")
    problems = {(p.line, p.key): p.message for p in caught.value.problems}
    assert problems[(2, "mode")] == "expected one of live, tabletop, got 'rehearsal'"
    assert problems[(3, "window.end")] == "must be after window.start"
    assert problems[(5, "participants[0].no_show")] == "expected a number from 0 to 1, got 1.5"
    assert problems[(9, "timeline[0].fault.kind")].startswith("unknown fault kind 'isolat'; choose one of: ")
    assert problems[(12, "timeline[1].fault.params")] == "parameter latency_ms is required"
    assert problems[(13, "timeline[2].at")] == "expected a duration such as 90s, 15m or 1h30m, got 'tenminutes'"
    assert problems[(15, "timeline[2].report.body")].startswith("unknown template value(s) victim")
    assert problems[(16, "timeline.second.report")] == \
        "expected 初報 here (reports go 初報, 第2報, ..., 終報), got 第3報"
    assert problems[(19, "timeline.timeline-4.clear")] == "expected the id of an earlier fault inject, got 'nothing'"
    assert problems[(22, "expect.a.after")] == "expected the id of an inject or expectation, got 'nowhere'"
    assert problems[(23, "expect[1].within")] == "expected a duration such as 90s, 15m or 1h30m, got 'soon'"
    assert str(caught.value).startswith("broken.yml:2: mode: ")


def test_yaml_syntax_errors_and_missing_sections_point_at_their_line() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario("title: x\nwindow: [1,\n", "bad.yml")
    assert str(caught.value).startswith("bad.yml:3: file: not valid YAML")
    with pytest.raises(ScenarioError) as caught:
        parse_scenario("title: x\nwindow: {start: 2021-12-08T09:30, end: 2021-12-08T10:30}\n", "short.yml")
    assert str(caught.value) == "short.yml:1: scenario.timeline: missing (required)"


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="jukimon")
    register(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    return args.handler(args)


def test_cli_validate_exits_0_for_a_good_file_and_1_with_the_errors(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    good, broken = tmp_path / "good.yml", tmp_path / "broken.yml"
    good.write_text(GOOD, encoding="utf-8")
    broken.write_text(BROKEN, encoding="utf-8")
    assert _cli("drill", "validate", str(good)) == 0
    assert "OK: 訓練 (live, 4 injects, 1 expected actions)" in capsys.readouterr().out
    assert _cli("drill", "validate", str(broken)) == 1
    err = capsys.readouterr().err.splitlines()
    assert f"{broken}:9: timeline[0].fault.kind: unknown fault kind 'isolat'" in err[3]
    assert len(err) == 11


def test_cli_lists_the_builtin_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli("drill", "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(builtin_scenarios())
    annual = next(line for line in lines if line.startswith("annual-virus-isolation"))
    assert "live" in annual and "130分" in annual and "処理装置X" in annual


def test_cli_runs_a_tabletop_drill_and_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "aar"
    assert _cli("drill", "run", "operator-misuse", "--speed", "inf", "--report", str(report), "--seed", "7") == 0
    out = capsys.readouterr()
    assert out.out.startswith("業務端末からの業務外照会（操作IDSによる検知・机上訓練）: finished, score 100/100 ")
    assert "] 100% " in out.err  # the progress bar reached the end
    metrics = json.loads((report / "metrics.json").read_text(encoding="utf-8"))
    tokyo = 1 + 62  # the prefecture and its municipalities: the scenario's scope is 13
    assert [r["tiers"]["all"]["targets"] for r in metrics["reports"]] == [tokyo, tokyo]
    assert len(list((report / "mail").glob("*.eml"))) >= 2 * tokyo  # the embedded sink got every message
    assert (report / "report.pdf").read_bytes().startswith(b"%PDF")
    assert "訓練結果報告" in (report / "report.html").read_text(encoding="utf-8")

    again = tmp_path / "again"  # the same drill with other people: compared with the first run
    assert _cli("drill", "run", "operator-misuse", "--speed", "inf", "--report", str(again), "--seed", "8",
                "--no-pdf", "--compare", str(report)) == 0
    second = json.loads((again / "metrics.json").read_text(encoding="utf-8"))
    html = (again / "report.html").read_text(encoding="utf-8")
    assert f"前回との比較（{metrics['incident']}）" in html and not (again / "report.pdf").exists()
    before, now = metrics["reports"][0]["tiers"]["all"], second["reports"][0]["tiers"]["all"]
    verdict = "変化なし" if now["latency_median"] == before["latency_median"] else \
        "改善" if now["latency_median"] < before["latency_median"] else "悪化"
    row = re.search(r"<td>初報 計 中央値</td>(?:<td class=\"num\">[^<]*</td>){2}\s*<td class=\"[a-z]*\">(.*?)</td>",
                    html)
    assert row is not None and row.group(1) == verdict


def test_cli_run_refuses_a_live_drill_without_a_simulation(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()  # nothing listens there
    assert _cli("drill", "run", "prefecture-line-cut", "--speed", "inf", "--report", str(tmp_path),
                "--control", f"127.0.0.1:{port}") == 2
    assert f"drill refused: no simulation answering on 127.0.0.1:{port}" in capsys.readouterr().err
