"""The traffic IDS over generated days: every attack type detected with its type and endpoints,
a normal day silent, the pcap round trip and the ``jukimon ids`` command line."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from dataclasses import asdict

import pytest

from ids.traffic import DEFAULT_RULES, Engine, jukimon_type, load_rules, replay_alerts
from ids.traffic.baseline import Baseline, BaselineLearner
from ids.traffic.cli import register
from ids.traffic.decode import decode
from ids.traffic.evaluate import matches, score
from ids.traffic.flows import FlowTable
from ids.traffic.pcapio import LINKTYPE_ETHERNET, write_pcap
from monitor.inventory import save_inventory
from simnet.attacks import SCHEDULE, attacks, labelled_day
from simnet.traffic_gen import Sample, normal_day

LEARN_DAY, ATTACK_DAY, QUIET_DAY = dt.date(2026, 11, 23), dt.date(2026, 11, 30), dt.date(2026, 12, 7)  # Mondays


def _alerts(frames, **options) -> list[dict]:
    alerts: list[dict] = []
    engine = Engine(alerts.append, **options)
    for ts, frame in frames:
        engine.frame(ts, LINKTYPE_ETHERNET, frame)
    engine.close()
    return alerts


@pytest.fixture(scope="module")
def sample(small_inventory) -> Sample:
    return Sample.of(small_inventory, prefectures=("01", "47"), municipalities=6)


@pytest.fixture(scope="module")
def baseline(sample) -> Baseline:
    learner = BaselineLearner()
    flows = FlowTable()
    for ts, frame in normal_day(sample, LEARN_DAY, seed=2):
        pkt = decode(ts, LINKTYPE_ETHERNET, frame)
        if pkt.proto:
            learner.packet(pkt, flows.update(pkt)[1])
    return learner.baseline()


@pytest.fixture(scope="module")
def options(sample, baseline) -> dict:
    return {"inventory": sample.inventory, "baseline": baseline, "rules": load_rules(DEFAULT_RULES)}


@pytest.fixture(scope="module")
def labelled(sample, options):
    frames, truth = labelled_day(sample, ATTACK_DAY, seed=3)
    return frames, [asdict(t) for t in truth], _alerts(frames, **options)


@pytest.mark.parametrize("attack", [a.__name__ for a, _ in SCHEDULE])
def test_each_attack_is_detected_with_its_type_and_endpoints(labelled, attack):
    _, truth, alerts = labelled
    injected = next(t for t in truth if t["name"] == next(
        i["name"] for i, (a, _) in zip(truth, SCHEDULE, strict=True) if a.__name__ == attack))
    found = [a for a in alerts if matches(a, injected, {injected["type"]})]
    assert found, f"{attack}: no {injected['type']} alert"
    alert = found[0]
    if injected["src"] is not None:
        assert alert["src_ip"] == injected["src"]
    if injected["dst"] is not None:
        assert alert["dest_ip"] == injected["dst"]
    assert alert["event_type"] == "alert" and alert["alert"]["metadata"]["jukimon_type"] == [injected["type"]]
    assert alert["evidence"] and alert["alert"]["metadata"]["jukimon_rule"][0]


def test_every_alert_of_the_labelled_day_is_about_an_attack(labelled):
    _, truth, alerts = labelled
    result = score(alerts, truth)
    assert {kind for kind, r in result.items() if r["attacks"]} == {t["type"] for t in truth}
    for kind, r in result.items():
        assert r["precision"] == 1.0, (kind, r)
        assert r["recall"] in (1.0, None), (kind, r)


def test_a_normal_day_raises_no_alerts(sample, options):
    assert _alerts(normal_day(sample, QUIET_DAY, seed=4), **options) == []


def test_without_inventory_the_matrix_is_off_and_the_rest_still_run(labelled):
    frames, truth, _ = labelled
    kinds = {jukimon_type(a) for a in _alerts(frames, rules=load_rules(DEFAULT_RULES))}
    assert "matrix_violation" not in kinds
    assert {"scan", "flood", "cleartext", "tunnel", "arp_spoof", "signature", "brute_force"} <= kinds


def test_pcap_round_trip_gives_the_same_alerts(tmp_path, sample, options):
    frames, _ = attacks(sample, ATTACK_DAY, seed=5)
    frames = sorted((round(t, 6), f) for t, f in frames)  # a capture keeps microseconds
    path = tmp_path / "attacks.pcap"
    write_pcap(path, frames)
    from_memory = _alerts(frames, **options)
    from_file, stats = replay_alerts(path, **options)
    assert from_file == from_memory and len(from_file) > 20
    assert stats.packets == len(frames) and stats.malformed == 0


def _cli(argv: list[str], capsys) -> tuple[int, list[dict]]:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    code = args.handler(args)
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines()]


def test_cli_replay_prints_only_eve_lines(tmp_path, capsys, sample):
    frames, _ = attacks(sample, ATTACK_DAY, seed=5)
    frames.sort(key=lambda f: f[0])
    pcap, inventory, learned = tmp_path / "a.pcap", tmp_path / "inventory.yaml", tmp_path / "baseline.json"
    write_pcap(pcap, frames)
    save_inventory(sample.inventory, inventory)
    code, with_matrix = _cli(["ids", "replay", str(pcap), "--inventory", str(inventory)], capsys)
    assert code == 0 and all(a["event_type"] == "alert" for a in with_matrix)
    assert "matrix_violation" in {jukimon_type(a) for a in with_matrix}
    code, without = _cli(["ids", "replay", str(pcap)], capsys)
    assert code == 0 and without and "matrix_violation" not in {jukimon_type(a) for a in without}
    assert _cli(["ids", "learn", str(pcap), "--out", str(learned)], capsys) == (0, [])
    assert Baseline.load(learned).peers


def test_alerts_become_events_placed_at_the_accused_host(labelled, sample):
    from ids.traffic.events import to_event
    from ids.traffic.matrix import host_index

    _, _, alerts = labelled
    hosts = host_index(sample.inventory)
    scan = next(a for a in alerts if jukimon_type(a) == "scan")
    event = to_event(scan, sample.inventory, hosts).to_json()
    assert event["event_type"] == "alert" and event["source"] == "ids.traffic"
    assert event["device"] == hosts[scan["src_ip"]].id and event["severity"] == "warning"
    assert event["alert"]["alert"]["metadata"]["jukimon_type"] == ["scan"]
    flood = next(a for a in alerts if jukimon_type(a) == "flood")
    assert to_event(flood, sample.inventory, hosts).origin.device == hosts[flood["dest_ip"]].id
