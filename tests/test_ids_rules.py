"""The Suricata rule subset: parsing, header and payload matching, flow and threshold options."""

from __future__ import annotations

import pytest

from ids.traffic.config import IdsConfig
from ids.traffic.decode import decode
from ids.traffic.detectors.signature import SignatureDetector
from ids.traffic.detectors.sink import AlertSink
from ids.traffic.eve import jukimon_type
from ids.traffic.flows import FlowTable
from ids.traffic.pcapio import LINKTYPE_ETHERNET
from ids.traffic.rules import DEFAULT_RULES, RuleError, load_rules, parse_rule
from simnet.traffic_gen import tcp, udp


def _run(rules_text: list[str], frames: list[tuple[float, bytes]]) -> list[dict]:
    alerts: list[dict] = []
    detector = SignatureDetector([parse_rule(r) for r in rules_text], IdsConfig(hold=0), AlertSink(0, alerts.append))
    table = FlowTable()
    for ts, frame in frames:
        pkt = decode(ts, LINKTYPE_ETHERNET, frame)
        flow, _, forward = table.update(pkt)
        if pkt.payload:
            detector.payload(pkt, flow, forward)
    return alerts


def test_header_and_options_are_parsed():
    rule = parse_rule('alert tcp [127.11.0.0/16,!127.11.1.4] any -> $HOME_NET [443,8000:8080] '
                      '(msg:"x; y"; content:"|41 42|C"; nocase; pcre:"/a\\d+b/i"; flow:to_server,established; '
                      'threshold:type limit, track by_src, count 2, seconds 30; classtype:attempted-admin; '
                      'sid:42; rev:3; reference:url,example.org;)')
    assert rule.msg == "x; y" and rule.sid == 42 and rule.rev == 3 and rule.priority == 1
    assert rule.contents[0].pattern == b"abc" and rule.contents[0].nocase
    assert rule.pcres[0].search(b"xA12B")
    assert rule.flow == {"to_server", "established"}
    assert rule.threshold == {"type": "limit", "track": "by_src", "count": "2", "seconds": "30"}
    assert rule.ignored == ["reference"]
    assert rule.src.addr("127.11.2.2") and not rule.src.addr("127.11.1.4") and not rule.src.addr("127.1.0.1")
    assert rule.dport.port(443) and rule.dport.port(8050) and not rule.dport.port(22)


def test_outside_the_subset_and_broken_rules():
    assert parse_rule("drop tcp any any -> any any (sid:1;)") is None
    assert parse_rule("alert http any any -> any any (sid:1;)") is None
    with pytest.raises(RuleError):
        parse_rule("alert tcp any any -> any any (msg:\"no sid\";)")
    with pytest.raises(RuleError):
        parse_rule("this is not a rule")


def test_content_nocase_negation_and_direction():
    frames = [(1.0, tcp("127.0.0.1", 4000, "127.0.0.2", 80, 0x02)),
              (1.1, tcp("127.0.0.2", 80, "127.0.0.1", 4000, 0x12)),
              (1.2, tcp("127.0.0.1", 4000, "127.0.0.2", 80, 0x18, payload=b"GET /ADMIN HTTP/1.1")),
              (1.3, tcp("127.0.0.2", 80, "127.0.0.1", 4000, 0x18, payload=b"HTTP/1.1 200 admin ok"))]
    rules = ['alert tcp any any -> any 80 (msg:"admin"; content:"/admin"; nocase; flow:to_server; sid:1;)',
             'alert tcp any any -> any 80 (msg:"case"; content:"/admin"; sid:2;)',
             'alert tcp any any -> any any (msg:"not curl"; content:"GET"; content:!"curl"; sid:3;)',
             'alert tcp any 80 -> any any (msg:"reply"; content:"admin"; flow:to_client,established; sid:4;)',
             'alert udp any any -> any any (msg:"udp only"; content:"GET"; sid:5;)']
    alerts = _run(rules, frames)
    assert sorted(a["alert"]["signature_id"] for a in alerts) == [1, 3, 4]
    assert all(jukimon_type(a) == "signature" for a in alerts)


def test_threshold_types():
    frames = [(float(i), udp("127.0.0.1", 514, "127.0.0.3", 514, b"authentication failure; user=root"))
              for i in range(12)]
    base = 'alert udp any any -> any 514 (msg:"m"; content:"user=root"; threshold:type {}, track by_src, count 5, seconds 60; sid:{};)'
    alerts = _run([base.format("limit", 1), base.format("threshold", 2), base.format("both", 3)], frames)
    counts = {sid: sum(1 for a in alerts if a["alert"]["signature_id"] == sid) for sid in (1, 2, 3)}
    assert counts == {1: 5, 2: 2, 3: 1}


def test_default_rules_load_and_catch_mimikatz():
    rules = load_rules(DEFAULT_RULES)
    assert {r.sid for r in rules} == {1000001, 1000002, 1000003}
    frames = [(1.0, udp("127.11.1.4", 514, "127.1.0.2", 514, b"<34>cs: mimikatz SEKURLSA::logonpasswords"))]
    detector_alerts = _run([r.text for r in rules], frames)
    assert [a["alert"]["signature_id"] for a in detector_alerts] == [1000001]
    assert detector_alerts[0]["alert"]["category"] == "trojan-activity"


def test_unparseable_lines_are_skipped(tmp_path):
    path = tmp_path / "x.rules"
    path.write_text('# comment\nalert tcp any any -> any any (msg:"ok"; \\\n content:"a"; sid:9;)\n'
                    'garbage line\nalert tcp any any -> any any (msg:"no sid";)\n')
    assert [r.sid for r in load_rules(path)] == [9]
