"""Syslog parsing (RFC 5424, RFC 3164, Cisco), the five firewall formats, the Event, and ``jukimon syslog parse``.

The sample files in tests/data/syslog/ are real-shape lines of each vendor; every
field extracted from them is checked here. Hypothesis throws random and mutated
lines at the parser: it may accept or reject, never crash.
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import io
import json
import os
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.syslog import (
    JST,
    MAX_LENGTH,
    REASONS,
    SyslogError,
    describe,
    parse_firewall,
    parse_syslog,
    to_event,
)
from collectors.syslog.cli import register
from monitor.envelope import Event, EventType, Severity, decode, encode
from monitor.inventory.model import Inventory

DATA = Path(__file__).parent / "data" / "syslog"
RECEIVED = calendar.timegm((2024, 3, 1, 0, 0, 0))  # 2024-03-01 09:00 JST


def utc(*parts: int) -> float:
    return float(calendar.timegm(parts))


def jst(*parts: int) -> float:
    return utc(*parts) - 9 * 3600


def lines(name: str) -> list[bytes]:
    return (DATA / name).read_bytes().split(b"\n")[:-1]


def parse_line(name: str, number: int, **kw):
    return parse_syslog(lines(name)[number - 1], received=kw.pop("received", RECEIVED), **kw)


# --- RFC 5424 -------------------------------------------------------------------


def test_rfc5424_example_with_bom_and_nil_sd() -> None:
    msg = parse_line("rfc5424.log", 1)
    assert (msg.format, msg.facility, msg.severity) == ("rfc5424", 4, 2)
    assert msg.timestamp == pytest.approx(utc(2003, 10, 11, 22, 14, 15) + 0.003)
    assert (msg.hostname, msg.app, msg.procid, msg.msgid) == ("mymachine.example.com", "su", None, "ID47")
    assert msg.structured_data == {}
    assert msg.message == "'su root' failed for lonvick on /dev/pts/8"  # BOM removed


def test_rfc5424_microseconds_and_negative_offset() -> None:
    msg = parse_line("rfc5424.log", 2)
    assert msg.timestamp == pytest.approx(utc(2003, 8, 24, 12, 14, 15) + 0.000003, abs=1e-6)
    assert (msg.hostname, msg.app, msg.procid, msg.msgid) == ("192.0.2.1", "myproc", "8710", None)
    assert msg.message == "%% It's time to make the do-nuts."


def test_rfc5424_structured_data_elements() -> None:
    one = parse_line("rfc5424.log", 3)
    assert one.structured_data == {"exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"}}
    assert one.message == "An application event log entry..."
    two = parse_line("rfc5424.log", 4)
    assert two.structured_data["examplePriority@32473"] == {"class": "high"}
    assert len(two.structured_data) == 2 and two.message == ""


def test_rfc5424_escaped_values_and_utf8_message() -> None:
    msg = parse_line("rfc5424.log", 5)
    assert msg.structured_data["meta@32473"]["note"] == 'escaped "quote", back\\slash and ] bracket'
    assert msg.structured_data["origin"] == {"ip": "127.11.1.4", "software": "cs"}
    assert msg.message == "業務端末 term07 から認証成功"
    assert msg.timestamp == jst(2024, 1, 5, 10, 11, 12)


def test_rfc5424_all_nil_takes_the_receive_time() -> None:
    msg = parse_line("rfc5424.log", 6)
    assert msg.timestamp == RECEIVED and msg.timestamp_source == "received"
    assert (msg.hostname, msg.app, msg.procid, msg.msgid, msg.message) == (None, None, None, None, "")


def test_rfc5424_large_positive_offset_and_leap_day() -> None:
    msg = parse_line("rfc5424.log", 7)
    assert msg.timestamp == pytest.approx(utc(2024, 2, 29, 9, 59, 59) + 0.999999)


def test_sd_value_with_unknown_escape_keeps_the_backslash() -> None:
    msg = parse_syslog(b'<13>1 - h a - - [x@1 k="a\\nb"] m', received=RECEIVED)
    assert msg.structured_data == {"x@1": {"k": "a\\nb"}}


def test_str_and_bytes_give_the_same_message() -> None:
    raw = lines("rfc5424.log")[4]
    assert parse_syslog(raw, received=RECEIVED) == parse_syslog(raw.decode(), received=RECEIVED)


# --- RFC 3164 and Cisco ---------------------------------------------------------------


def test_rfc3164_time_is_jst_in_the_year_received() -> None:
    msg = parse_line("rfc3164.log", 3)
    assert msg.format == "rfc3164"
    assert msg.timestamp == jst(2024, 1, 5, 10, 11, 12)
    assert (msg.hostname, msg.app, msg.procid) == ("muni-01-001-cs1", "sshd", "2211")
    assert msg.message == "Accepted publickey for noc from 127.1.0.2 port 50022 ssh2"
    assert (msg.facility, msg.severity) == (10, 6)


def test_rfc3164_zone_is_a_parameter() -> None:
    line = lines("rfc3164.log")[2]
    assert parse_syslog(line, received=RECEIVED, local_tz=dt.timezone.utc).timestamp == utc(2024, 1, 5, 10, 11, 12)


@pytest.mark.parametrize(("line", "received", "expected"), [
    ("<13>Dec 31 23:59:58 h a: x", jst(2024, 1, 1, 0, 0, 3), jst(2023, 12, 31, 23, 59, 58)),  # last year's
    ("<13>Jan  1 00:00:02 h a: x", jst(2023, 12, 31, 23, 59, 59), jst(2024, 1, 1, 0, 0, 2)),  # sender clock ahead
    ("<13>Jun 30 12:00:00 h a: x", jst(2024, 7, 1, 0, 0, 0), jst(2024, 6, 30, 12, 0, 0)),
    ("<13>Aug  1 12:00:00 h a: x", jst(2024, 3, 1, 0, 0, 0), jst(2023, 8, 1, 12, 0, 0)),  # months ahead: last year
    ("<13>Feb 29 12:00:00 h a: x", jst(2025, 3, 1, 0, 0, 0), jst(2024, 2, 29, 12, 0, 0)),  # the last leap year
])
def test_rfc3164_year_inference(line: str, received: float, expected: float) -> None:
    assert parse_syslog(line, received=received).timestamp == expected


def test_rfc3164_without_hostname() -> None:
    msg = parse_line("rfc3164.log", 4)
    assert (msg.hostname, msg.app, msg.procid) == (None, "systemd", "1")
    assert msg.message == "Started Daily apt download activities."


def test_rfc3164_rfc_examples() -> None:
    su = parse_line("rfc3164.log", 1)
    assert (su.hostname, su.app, su.severity, su.facility) == ("mymachine", "su", 2, 4)
    assert su.timestamp == jst(2023, 10, 11, 22, 14, 15)  # October is after March: last year
    bfg = parse_line("rfc3164.log", 2)
    assert (bfg.hostname, bfg.app, bfg.message) == ("10.0.0.99", None, "Use the BFG!")


def test_cisco_ios_sequence_number_and_utc_zone() -> None:
    msg = parse_line("rfc3164.log", 5)
    assert msg.sequence == 123 and msg.hostname is None
    assert msg.timestamp == pytest.approx(utc(2024, 3, 1, 18, 46, 11) + 0.123)  # hours ahead: still this year
    assert (msg.app, msg.message) == ("%SYS-5-CONFIG_I", "Configured from console by vty0 (127.1.0.2)")


def test_cisco_ios_origin_hostname_and_jst_zone() -> None:
    msg = parse_line("rfc3164.log", 6)
    assert (msg.sequence, msg.hostname, msg.app) == (124, "muni-01-001-rt1", "%LINK-3-UPDOWN")
    assert msg.timestamp == pytest.approx(jst(2024, 1, 5, 10, 11, 14) + 0.456)
    assert msg.severity == 3


def test_rfc3339_time_in_a_bsd_header() -> None:
    msg = parse_line("rfc3164.log", 7)
    assert msg.timestamp == pytest.approx(jst(2024, 1, 5, 10, 11, 15) + 0.25)
    assert (msg.hostname, msg.app, msg.procid) == ("muni-01-001-cs2", "jukimon-cs", "77")


def test_hostname_without_tag_and_line_without_header() -> None:
    plain = parse_line("rfc3164.log", 8)
    assert (plain.hostname, plain.app, plain.message) == ("muni-01-001-cs2", None, "plain message without a tag")
    bare = parse_line("rfc3164.log", 9)
    assert (bare.hostname, bare.timestamp, bare.timestamp_source) == (None, RECEIVED, "received")
    assert bare.message == "a message with no timestamp and no hostname"


def test_asa_timestamp_with_year_and_device_id() -> None:
    msg = parse_line("cisco_asa.log", 1)
    assert msg.timestamp == jst(2024, 1, 5, 10, 11, 12)
    assert (msg.hostname, msg.app) == ("muni-01-001-fw", "%ASA-6-302013")
    no_host = parse_line("cisco_asa.log", 3)
    assert (no_host.hostname, no_host.app) == (None, "%ASA-6-302015")
    iso = parse_line("cisco_asa.log", 13)
    assert iso.timestamp == utc(2024, 1, 5, 1, 11, 29) and iso.hostname == "muni-01-001-fw"


# --- rejections -----------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "reason"), [
    (b"", "empty"),
    (b"   \r\n", "empty"),
    (b"hello", "no_pri"),
    (b"<>x", "bad_pri"),
    (b"<192>Jan  5 10:11:12 h a: x", "bad_pri"),
    (b"<1x>a", "bad_pri"),
    (b"<12345>a", "bad_pri"),
    (b"<13>1 2024-02-30T00:00:00Z h a - - -", "bad_timestamp"),
    (b"<13>1 2024-01-05 10:11:12 h a - - -", "bad_timestamp"),
    (b"<13>1 2024-01-05T10:11:12+24:00 h a - - -", "bad_timestamp"),
    (b"<13>1 2024-01-05T10:11:60Z h a - - -", "bad_timestamp"),
    (b"<13>Feb 30 10:11:12 h a: x", "bad_timestamp"),
    (b"<13>1 - h a - -", "bad_header"),
    (b"<13>1 - h  a - - -", "bad_header"),
    (b"<13>1 - " + b"h" * 256 + b" a - - -", "bad_header"),
    (b"<13>1 - h " + b"a" * 49 + b" - - -", "bad_header"),
    (b"<13>1 - h a - - x", "bad_sd"),
    (b'<13>1 - h a - - [id k="v"', "bad_sd"),
    (b'<13>1 - h a - - [id k=v]', "bad_sd"),
    (b'<13>1 - h a - - [id k="v"]x', "bad_sd"),
    (b"<13>Jan  5 10:11:12 h a: caf\xe9", "not_utf8"),
    (b"<13>" + b"x" * MAX_LENGTH, "too_long"),
])
def test_rejection_reasons(line: bytes, reason: str) -> None:
    with pytest.raises(SyslogError) as info:
        parse_syslog(line, received=RECEIVED)
    assert info.value.reason == reason and reason in REASONS
    assert isinstance(info.value, ValueError)


def test_length_limit_is_a_parameter_and_excludes_the_line_end() -> None:
    line = b"<13>" + b"x" * (MAX_LENGTH - 4)
    assert parse_syslog(line + b"\r\n", received=RECEIVED).message == "x" * (MAX_LENGTH - 4)
    with pytest.raises(SyslogError, match="too_long"):
        parse_syslog(b"<13>hello", received=RECEIVED, max_length=8)


def test_unencodable_str_is_not_utf8() -> None:
    with pytest.raises(SyslogError) as info:
        parse_syslog("<13>lone \udc80 surrogate", received=RECEIVED)
    assert info.value.reason == "not_utf8"


# --- firewall formats, field by field ------------------------------------------------------

# (file, line) → vendor, action, protocol, src, sport, dst, dport, rule, event, src_zone, dst_zone
FIREWALL_CASES = {
    ("cisco_asa.log", 1): ("cisco_asa", "allow", "tcp", "127.1.1.11", 51234, "127.11.1.4", 443, None, "302013",
                           "outside", "inside"),
    ("cisco_asa.log", 2): ("cisco_asa", "allow", "tcp", "127.11.1.4", 40112, "127.1.1.11", 443, None, "302013",
                           "inside", "outside"),
    ("cisco_asa.log", 3): ("cisco_asa", "allow", "udp", "127.1.0.2", 40161, "127.11.1.5", 161, None, "302015",
                           "outside", "inside"),
    ("cisco_asa.log", 4): ("cisco_asa", "allow", "tcp", "127.1.1.11", 51234, "127.11.1.4", 443, None, "302014",
                           "outside", "inside"),
    ("cisco_asa.log", 5): ("cisco_asa", "deny", "tcp", "192.168.10.23", 49152, "127.11.1.4", 445,
                           "outside_access_in", "106023", "outside", "inside"),
    ("cisco_asa.log", 6): ("cisco_asa", "deny", "icmp", "10.20.30.40", None, "127.11.1.5", None, "outside_access_in",
                           "106023", "outside", "inside"),
    ("cisco_asa.log", 7): ("cisco_asa", "deny", "tcp", "127.11.1.200", 51515, "127.1.0.10", 23, "inside_access_in",
                           "106100", "inside", "outside"),
    ("cisco_asa.log", 8): ("cisco_asa", "allow", "udp", "127.1.0.2", 40161, "127.11.1.4", 161, "outside_access_in",
                           "106100", "outside", "inside"),
    ("cisco_asa.log", 9): ("cisco_asa", "deny", "tcp", "172.16.5.9", 41000, "127.11.1.4", 3389, None, "106001",
                           "outside", None),
    ("cisco_asa.log", 10): ("cisco_asa", "deny", "udp", "10.0.0.66", 137, "127.11.1.4", 137, None, "106006",
                            "outside", None),
    ("cisco_asa.log", 11): ("cisco_asa", "allow", "icmp", "127.1.0.2", None, "127.11.1.4", None, None, "302020",
                            None, None),
    ("cisco_asa.log", 12): ("cisco_asa", "deny", "gre", "10.9.9.9", None, "127.11.1.4", None, "outside_access_in",
                            "106023", "outside", "inside"),
    ("cisco_asa.log", 13): ("cisco_asa", "allow", "udp", "127.11.1.4", 36001, "127.1.0.16", 123, None, "302015",
                            "inside", "outside"),
    ("cisco_asa.log", 14): ("cisco_asa", "deny", "tcp", "2001:db8::66", 50000, "2001:db8:1::4", 22,
                            "outside_access_in", "106023", "outside", "inside"),
    ("cisco_asa.log", 15): None,
    ("fortigate.log", 1): ("fortigate", "allow", "tcp", "127.11.2.4", 40512, "127.1.1.11", 443, "12", "forward",
                           "internal", "wan1"),
    ("fortigate.log", 2): ("fortigate", "allow", "udp", "127.1.0.2", 40161, "127.11.2.5", 161, "14", "forward",
                           "wan1", "internal"),
    ("fortigate.log", 3): ("fortigate", "deny", "tcp", "192.168.1.77", 51000, "127.11.2.4", 3389, "0", "forward",
                           "wan1", "internal"),
    ("fortigate.log", 4): ("fortigate", "deny", "icmp", "10.1.1.1", None, "127.11.2.4", None, "0", "forward",
                           "wan1", "internal"),
    ("fortigate.log", 5): ("fortigate", "allow", "tcp", "127.11.2.4", 40600, "127.11.1.4", 443, "13", "forward",
                           "internal", "wan1"),
    ("fortigate.log", 6): ("fortigate", "allow", "udp", "127.1.0.2", 40162, "127.11.2.1", 161, "0", "local",
                           "wan1", "root"),
    ("fortigate.log", 7): None,
    ("juniper_srx.log", 1): ("juniper_srx", "allow", "tcp", "127.11.1.4", 40512, "127.1.1.11", 443, "cs-to-pu",
                             "RT_FLOW_SESSION_CREATE", "pref-lan", "aggregation"),
    ("juniper_srx.log", 2): ("juniper_srx", "deny", "tcp", "10.66.1.9", 52000, "127.1.1.11", 22, "deny-all",
                             "RT_FLOW_SESSION_DENY", "pref-lan", "aggregation"),
    ("juniper_srx.log", 3): ("juniper_srx", "allow", "tcp", "127.11.1.4", 40512, "127.1.1.11", 443, "cs-to-pu",
                             "RT_FLOW_SESSION_CLOSE", "pref-lan", "aggregation"),
    ("juniper_srx.log", 4): ("juniper_srx", "allow", "udp", "127.1.0.2", 40161, "127.11.3.4", 161, "nms-snmp",
                             "RT_FLOW_SESSION_CREATE", "untrust", "trust"),
    ("juniper_srx.log", 5): ("juniper_srx", "deny", "tcp", "192.168.3.3", 1025, "127.11.3.4", 23, "default-deny",
                             "RT_FLOW_SESSION_DENY", "untrust", "trust"),
    ("juniper_srx.log", 6): ("juniper_srx", "allow", "tcp", "127.11.3.4", 40111, "127.1.1.11", 443, "cs-to-pu",
                             "RT_FLOW_SESSION_CLOSE", "trust", "untrust"),
    ("juniper_srx.log", 7): ("juniper_srx", "deny", "icmp", "10.1.2.3", None, "127.11.3.4", None, "default-deny",
                             "RT_FLOW_SESSION_DENY", "untrust", "trust"),
    ("juniper_srx.log", 8): ("juniper_srx", "allow", "tcp", "127.11.3.5", 35000, "127.1.1.11", 443, "cs-to-pu",
                             "RT_FLOW_SESSION_CREATE", "trust", "untrust"),
    ("juniper_srx.log", 9): None,
    ("paloalto.log", 1): ("paloalto", "allow", "tcp", "127.2.1.2", 51234, "127.1.0.12", 443, "agency-provision",
                          "end", "agency", "national-servers"),
    ("paloalto.log", 2): ("paloalto", "deny", "tcp", "10.23.4.5", 51000, "127.1.0.10", 3389, "interzone-default",
                          "drop", "agency", "national-servers"),
    ("paloalto.log", 3): ("paloalto", "deny", "tcp", "127.2.3.2", 51300, "127.1.0.18", 443,
                          "deny, search from agency", "end", "agency", "national-servers"),
    ("paloalto.log", 4): ("paloalto", "allow", "udp", "127.1.0.2", 40161, "127.2.4.1", 161, "nms-snmp", "end",
                          "national-servers", "agency"),
    ("paloalto.log", 5): ("paloalto", "allow", "icmp", "127.1.0.2", None, "127.1.1.1", None, "nms-ping", "end",
                          "national-servers", "aggregation"),
    ("paloalto.log", 6): ("paloalto", "allow", "tcp", "127.1.1.11", 45000, "127.1.0.14", 443, "pu-to-national",
                          "start", "aggregation", "national-servers"),
    ("paloalto.log", 7): None,
    ("netfilter.log", 1): ("netfilter", "deny", "tcp", "10.44.4.4", 50123, "127.11.4.4", 445, "JKM-DROP", None,
                           "eth0", None),
    ("netfilter.log", 2): ("netfilter", "deny", "udp", "192.168.0.10", 137, "127.11.4.5", 137, "UFW BLOCK", None,
                           "eth0", None),
    ("netfilter.log", 3): ("netfilter", "allow", "tcp", "127.11.4.4", 40001, "127.1.1.11", 443, "JKM-ACCEPT", None,
                           "eth1", "eth0"),
    ("netfilter.log", 4): ("netfilter", "deny", "icmp", "10.1.1.1", None, "127.11.4.4", None, "REJECT-IN", None,
                           "eth0", None),
    ("netfilter.log", 5): ("netfilter", "deny", "tcp", "172.20.0.5", 61000, "127.11.4.4", 23, "nft drop in", None,
                           "eth0", None),
    ("netfilter.log", 6): ("netfilter", "deny", "tcp", "2001:0db8:0000:0000:0000:0000:0000:0066", 50000,
                           "2001:0db8:0001:0000:0000:0000:0000:0004", 22, "JKM-DROP", None, "eth0", None),
    ("netfilter.log", 7): None,  # logged without a verdict in its prefix
    ("netfilter.log", 8): None,
}


def test_every_sample_line_has_a_case() -> None:
    for name in ("cisco_asa.log", "fortigate.log", "juniper_srx.log", "paloalto.log", "netfilter.log"):
        assert {n for f, n in FIREWALL_CASES if f == name} == set(range(1, len(lines(name)) + 1)), name


@pytest.mark.parametrize(("where", "expected"), list(FIREWALL_CASES.items()), ids=lambda v: str(v))
def test_firewall_fields(where: tuple[str, int], expected: tuple | None) -> None:
    msg = parse_line(*where)
    record = msg.firewall
    if expected is None:
        assert record is None
        return
    assert record is not None
    got = (record.vendor, record.action, record.protocol, record.src_ip, record.src_port, record.dst_ip,
           record.dst_port, record.rule, record.event, record.src_zone, record.dst_zone)
    assert got == expected
    assert parse_firewall(msg) == record


def test_fortigate_without_header_takes_its_eventtime_and_devname() -> None:
    msg = parse_line("fortigate.log", 1)
    assert msg.timestamp == pytest.approx(jst(2024, 1, 5, 10, 11, 12) + 0.123456789)
    assert msg.timestamp_source == "firewall"
    assert msg.firewall is not None and msg.firewall.device_name == "FGT60F-otaru"
    assert msg.firewall.vendor_action == "close"
    relayed = parse_line("fortigate.log", 6)  # a BSD header in front: the header's time wins
    assert relayed.timestamp == jst(2024, 1, 5, 10, 11, 17) and relayed.timestamp_source == "header"


def test_paloalto_device_name_and_vendor_action() -> None:
    record = parse_line("paloalto.log", 3).firewall
    assert record is not None
    assert (record.vendor_action, record.device_name) == ("reset-both", "national-fw")


def test_describe_is_the_operator_line() -> None:
    assert describe(parse_line("fortigate.log", 1).firewall) == (  # type: ignore[arg-type]
        "ALLOW tcp 127.11.2.4:40512 → 127.1.1.11:443 (FortiGate policy 12)")
    assert describe(parse_line("cisco_asa.log", 14).firewall) == (  # type: ignore[arg-type]
        "DENY tcp [2001:db8::66]:50000 → [2001:db8:1::4]:22 (Cisco ASA access-list outside_access_in)")
    assert describe(parse_line("cisco_asa.log", 11).firewall) == (  # type: ignore[arg-type]
        "ALLOW icmp 127.1.0.2 → 127.11.1.4 (Cisco ASA 302020)")


def test_firewall_extraction_can_be_skipped() -> None:
    assert parse_line("cisco_asa.log", 5, firewall=False).firewall is None


# --- the Event ------------------------------------------------------------------------------------


def test_event_from_a_known_sender(small_inventory: Inventory) -> None:
    msg = parse_line("cisco_asa.log", 5, peer="127.11.1.1")
    event = to_event(msg, small_inventory)
    assert isinstance(event, Event) and event.event_type is EventType.SYSLOG
    assert event.source == "collector.syslog"
    assert event.severity is Severity.WARNING
    assert (event.origin.device, event.origin.site, event.origin.prefecture, event.origin.tier,
            event.origin.role) == ("muni-01-001-fw", "muni-01-001", "01", "municipality", "fw")
    assert (event.src_ip, event.dest_ip) == ("192.168.10.23", "127.11.1.4")
    assert event.ts == msg.timestamp and event.message == msg.message
    body = event.body
    assert body["app"] == "%ASA-4-106023" and body["peer"] == "127.11.1.1" and body["format"] == "rfc3164"
    assert body["firewall"]["action"] == "deny" and body["firewall"]["dst_port"] == 445
    again = decode(encode(event))
    assert again == event


def test_origin_by_hostname_when_the_peer_is_unknown(small_inventory: Inventory) -> None:
    by_name = to_event(parse_line("juniper_srx.log", 1, peer="10.0.0.1"), small_inventory)
    assert by_name.origin.device == "pref-01-fw" and by_name.origin.role == "prefecture_fw"
    fqdn = to_event(parse_syslog("<13>Jan  5 10:11:12 muni-01-002-fw.jukinet.lg.jp app: x", received=RECEIVED),
                    small_inventory)
    assert fqdn.origin.device == "muni-01-002-fw"
    by_address = to_event(parse_syslog("<13>Jan  5 10:11:12 127.1.0.1 app: x", received=RECEIVED), small_inventory)
    assert by_address.origin.device == "national-fw"
    unknown = to_event(parse_syslog("<13>Jan  5 10:11:12 stranger app: x", received=RECEIVED), small_inventory)
    assert unknown.origin.device is None and unknown.origin.tags() == {}


def test_the_peer_wins_over_the_hostname(small_inventory: Inventory) -> None:
    event = to_event(parse_line("juniper_srx.log", 1, peer="127.11.2.1"), small_inventory)
    assert event.origin.device == "muni-01-002-fw"


def test_event_without_firewall_or_inventory() -> None:
    event = to_event(parse_line("rfc5424.log", 5))
    assert event.src_ip is None and "firewall" not in event.body
    assert event.body["structured_data"]["origin"]["ip"] == "127.11.1.4"
    assert event.severity is Severity.INFO and event.origin.device is None


# --- fuzzing ---------------------------------------------------------------------------------------

VALID = [line for name in sorted(os.listdir(DATA)) if name != "rejected.log" for line in lines(name)]
_FUZZ = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(line: bytes | str) -> None:
    """Accept or reject; never anything else. What is accepted must make a valid, encodable Event."""
    try:
        msg = parse_syslog(line, received=RECEIVED, peer="127.11.1.1")
    except SyslogError as exc:
        assert exc.reason in REASONS
        return
    assert 0 <= msg.facility <= 23 and 0 <= msg.severity <= 7
    event = to_event(msg)
    assert decode(encode(event)) == event
    if msg.firewall is not None:
        assert msg.firewall.action in ("allow", "deny")
        describe(msg.firewall)


@_FUZZ
@given(st.binary(max_size=600))
def test_fuzz_random_bytes(line: bytes) -> None:
    _check(line)


@_FUZZ
@given(st.integers(0, 255), st.text(max_size=300))
def test_fuzz_random_text_after_a_valid_pri(pri: int, text: str) -> None:
    _check(f"<{pri}>{text}")


@_FUZZ
@given(st.data())
def test_fuzz_mutated_valid_lines(data: st.DataObject) -> None:
    line = bytearray(data.draw(st.sampled_from(VALID)))
    for _ in range(data.draw(st.integers(1, 6))):
        op = data.draw(st.sampled_from(("replace", "insert", "delete", "truncate", "duplicate")))
        pos = data.draw(st.integers(0, max(0, len(line) - 1)))
        if op == "replace" and line:
            line[pos] = data.draw(st.sampled_from(b' <>[]"\\=:,/-.0123456789\n\x00\xff\xef' + bytes([line[pos] ^ 1])))
        elif op == "insert":
            line[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del line[pos:pos + data.draw(st.integers(1, 20))]
        elif op == "truncate":
            del line[pos:]
        else:
            line[pos:pos] = line[pos:pos + data.draw(st.integers(1, 40))]
    _check(bytes(line))


_VENDOR_PREFIXES = [
    "%ASA-4-106023: Deny ", "%ASA-6-302013: Built inbound TCP connection 1 for ", "%ASA-6-106100: access-list ",
    "%ASA-2-106001: Inbound TCP connection denied from ", "%FTD-6-302020: Built outbound ICMP connection for faddr ",
    "RT_FLOW: RT_FLOW_SESSION_DENY: session denied ", "RT_FLOW: RT_FLOW_SESSION_CREATE: session created ",
    'type="traffic" srcip=', "1,2024/01/05 10:11:12,0001,TRAFFIC,", "kernel: DROP IN=eth0 OUT= SRC=",
]


_TOKENS = list("0123456789abcdefx.:/-> ()[]\"=,_ ") + [
    "SRC=", "DST=", "PROTO=", "SPT=", "DPT=", "srcip=", "dstip=", "action=", "proto=", "65536", "99999999", "tcp",
    "icmp", "Deny", "TRAFFIC", "->", " src outside:", " dst inside:", "/443"]


@_FUZZ
@given(st.sampled_from(_VENDOR_PREFIXES), st.lists(st.sampled_from(_TOKENS), max_size=40).map("".join))
def test_fuzz_vendor_keywords_with_random_tails(prefix: str, tail: str) -> None:
    _check(f"<13>Jan  5 10:11:12 fw {prefix}{tail}")
    _check(f"<13>1 - fw RT_FLOW - RT_FLOW_SESSION_CREATE [junos@2636.1.1.1.2.40 source-address=\"{tail[:8]}\"] x")


# --- jukimon syslog parse ---------------------------------------------------------------------------


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    parser = argparse.ArgumentParser(prog="jukimon")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = args.handler(args)
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def dated_copy(tmp_path: Path, name: str) -> Path:
    """The sample with its mtime in March 2024, so RFC 3164 lines land in 2024."""
    copy = tmp_path / name
    copy.write_bytes((DATA / name).read_bytes())
    os.utime(copy, (RECEIVED, RECEIVED))
    return copy


def test_cli_one_output_line_per_input_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("cisco_asa.log", "fortigate.log", "rfc3164.log", "rejected.log"):
        code, out, _ = run_cli(["syslog", "parse", str(dated_copy(tmp_path, name))], capsys)
        assert code == 0
        assert len(out) == len(lines(name)), name


def test_cli_human_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run_cli(["syslog", "parse", str(dated_copy(tmp_path, "fortigate.log"))], capsys)
    assert out[0] == ("2024-01-05 10:11:12 JST  FGT60F-otaru  notice  -: "
                      "ALLOW tcp 127.11.2.4:40512 → 127.1.1.11:443 (FortiGate policy 12)")
    _, out, _ = run_cli(["syslog", "parse", str(dated_copy(tmp_path, "cisco_asa.log"))], capsys)
    assert out[4] == ("2024-01-05 10:11:21 JST  muni-01-001-fw  warning  %ASA-4-106023: DENY tcp "
                      "192.168.10.23:49152 → 127.11.1.4:445 (Cisco ASA access-list outside_access_in)")
    _, out, _ = run_cli(["syslog", "parse", str(dated_copy(tmp_path, "rfc3164.log"))], capsys)
    assert out[2] == ("2024-01-05 10:11:12 JST  muni-01-001-cs1  info  sshd[2211]: "
                      "Accepted publickey for noc from 127.1.0.2 port 50022 ssh2")


def test_cli_rejections(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["syslog", "parse", str(dated_copy(tmp_path, "rejected.log"))], capsys)
    assert code == 0
    assert out == ["line 1: rejected: no_pri", "line 2: rejected: bad_pri", "line 3: rejected: bad_pri",
                   "line 4: rejected: empty", "line 5: rejected: bad_timestamp", "line 6: rejected: bad_sd",
                   "line 7: rejected: bad_header", "line 8: rejected: bad_timestamp", "line 9: rejected: not_utf8"]


def test_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "mixed.log"
    source.write_bytes(lines("juniper_srx.log")[1] + b"\nnot syslog\n" + lines("rfc5424.log")[4] + b"\n")
    code, out, _ = run_cli(["syslog", "parse", "--json", str(source)], capsys)
    assert code == 0 and len(out) == 3
    event = decode(out[0])
    assert isinstance(event, Event) and event.body["firewall"]["action"] == "deny"
    assert (event.src_ip, event.dest_ip) == ("10.66.1.9", "127.1.1.11")
    assert json.loads(out[1]) == {"line": 2, "rejected": "no_pri"}
    assert decode(out[2]).message == "業務端末 term07 から認証成功"  # type: ignore[union-attr]


def test_cli_inventory_names_the_sender(tmp_path: Path, small_inventory: Inventory,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from monitor.inventory import save_inventory

    inventory = tmp_path / "inventory.yaml"
    save_inventory(small_inventory, inventory)
    code, out, _ = run_cli(["syslog", "parse", "--json", "--inventory", str(inventory),
                            str(dated_copy(tmp_path, "juniper_srx.log"))], capsys)
    assert code == 0
    first = json.loads(out[0])
    assert (first["device"], first["site"], first["role"]) == ("pref-01-fw", "pref-01", "prefecture_fw")


def test_cli_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["syslog", "parse", str(tmp_path / "missing.log")], capsys)
    assert code == 2 and out == [] and "cannot read" in err
    code, _, err = run_cli(["syslog", "parse", str(tmp_path)], capsys)  # a directory
    assert code == 2 and err


def test_cli_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(lines("netfilter.log")[0] + b"\n")))
    code, out, _ = run_cli(["syslog", "parse", "-"], capsys)
    assert code == 0 and out[0].endswith("DENY tcp 10.44.4.4:50123 → 127.11.4.4:445 (netfilter prefix JKM-DROP)")


def test_zone_constant_is_japan() -> None:
    assert JST.utcoffset(None) == dt.timedelta(hours=9)


@pytest.mark.parametrize("line", [
    "<13>Jan  5 10:11:12 fw kernel: " + " " * 8000 + " SRC=1 DST=2 IN=",
    "<13>x RT_FLOW_SESSION_CREATE: " + "1" * 8000,
    "<13>type=traffic srcip=" + "a" * 8000,
    "<13>Jan  5 10:11:12 fw %ASA-2-106001: " + "from " * 1500,
    "<13>Jan  5 10:11:12 fw %ASA-6-302013: Built TCP connection 1 for a:1/1 " + "(x) " * 1900,
    '<13>1 - h a - - [x@1 k="' + '\\"' * 4000,
    "<13>Jan  5 10:11:12 " + "a:" * 4000,
], ids=["netfilter-spaces", "srx-digits", "fortigate-word", "asa-words", "asa-parens", "sd-escapes", "host-colons"])
def test_no_quadratic_regex_on_hostile_lines(line: str) -> None:
    """A sender must not be able to stall the collector with one crafted 8 KiB line."""
    began = time.perf_counter()
    try:
        parse_syslog(line, received=RECEIVED)
    except SyslogError:
        pass
    assert time.perf_counter() - began < 0.05
