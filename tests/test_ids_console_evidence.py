"""The /ids page's live part: the sensor's recent flows, and each alert's packets as a pcap download.

The engine runs as in the live sensor (with ``Evidence``) over generated frames of a normal hour and
a few attacks, left open as a running capture is; the console serves it over HTTP. A NOC operator
downloads the cleartext alert's packets: the pcap holds that flow (handshake and the cleartext), and
replayed it raises the same alert. Downloads are role-checked and audited.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest

from dashboards.auth import UserRole
from ids.traffic import DEFAULT_RULES, Engine, jukimon_type, load_rules
from ids.traffic.alarms import TrafficAlarms
from ids.traffic.decode import decode
from ids.traffic.evidence import Evidence, evidence_key, pcap_bytes
from ids.traffic.pcapio import read_capture
from monitor.inventory.model import Inventory
from simnet import attacks
from simnet.traffic_gen import Sample, arp, day_start, mac_of, normal_day
from tests.console_fixtures import USERS, ConsoleClient, served

DAY = dt.date(2026, 11, 30)


@pytest.fixture(scope="module")
def live(small_inventory: Inventory) -> tuple[Engine, TrafficAlarms, dict[str, attacks.Injected]]:
    sample = Sample.of(small_inventory, prefectures=("01", "47"), municipalities=6)
    rng = random.Random(4)
    t = day_start(DAY) + 10 * 3600
    frames = normal_day(sample, DAY, seed=2, hours=11)[-4000:]  # the end of a busy morning
    truth = {}
    for attack in (attacks.cleartext, attacks.matrix_cross_prefecture, attacks.arp_spoof, attacks.smb):
        made, injected = attack(sample, t + 30, rng)
        if injected.type == "arp_spoof":
            made = [(t + 29, arp(2, injected.src, mac_of(injected.src), injected.dst)), *made]
        frames += made
        truth[injected.type] = injected
    alarms = TrafficAlarms(small_inventory)
    engine = Engine(alarms, inventory=small_inventory, rules=load_rules(DEFAULT_RULES), evidence=Evidence())
    for ts, frame in sorted(frames, key=lambda f: f[0]):
        engine.frame(ts, 1, frame)
    return engine, alarms, truth  # not closed: flows stay in the table, as in a running capture


async def _client(server, role: UserRole) -> ConsoleClient:
    client = ConsoleClient(f"http://127.0.0.1:{server.port}")
    assert (await client.login(USERS[role])).status_code == 200
    return client


def _alert(alarms: TrafficAlarms, kind: str) -> dict:
    return next(a for a in alarms.recent if jukimon_type(a) == kind)


async def test_the_page_lists_recent_flows_and_a_pcap_link_per_alert(live, small_inventory, tmp_path):
    engine, alarms, _ = live
    async with served(small_inventory, tmp_path) as server:
        server.app.state.console.ctx.extra.update(traffic_ids=engine, traffic_alerts=alarms.recent)
        client = await _client(server, UserRole.NOC_OPERATOR)
        page = (await client.get("/ids")).text
        await client.close()
    assert 0 < page.count('class="traffic-flow"') <= 50
    assert "change notification CS → prefecture unit" in page  # a flow the matrix allows, named by its rule
    for alert in alarms.recent:
        assert f"/ids/traffic/evidence/{evidence_key(alert)}.pcap" in page


async def test_an_alerts_pcap_holds_its_flow_and_replays_to_the_same_alert(live, small_inventory, tmp_path):
    engine, alarms, truth = live
    cleartext = _alert(alarms, "cleartext")
    async with served(small_inventory, tmp_path) as server:
        ctx = server.app.state.console.ctx
        ctx.extra.update(traffic_ids=engine, traffic_alerts=alarms.recent)
        client = await _client(server, UserRole.NOC_OPERATOR)
        response = await client.get(f"/ids/traffic/evidence/{evidence_key(cleartext)}.pcap")
        trail = await server.app.state.console.audit.entries(action="ids.traffic.evidence", limit=1)
        await client.close()
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.tcpdump.pcap"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;") and "cleartext" in disposition and ".pcap" in disposition
    path = tmp_path / "evidence.pcap"
    path.write_bytes(response.content)
    frames = list(read_capture(path))
    packets = [decode(ts, link, data) for ts, link, data in frames]
    assert {(p.src, p.dst) for p in packets} == {(truth["cleartext"].src, truth["cleartext"].dst),
                                                 (truth["cleartext"].dst, truth["cleartext"].src)}
    assert packets[0].flags == 0x02 and b"POST /notify" in packets[-1].payload  # from the SYN to the cleartext

    again: list[dict] = []
    replay = Engine(again.append, inventory=small_inventory)
    for ts, link, data in frames:
        replay.frame(ts, link, data)
    assert [(jukimon_type(a), a["src_ip"], a["dest_ip"]) for a in again] == [
        ("cleartext", cleartext["src_ip"], cleartext["dest_ip"])]

    entry = trail[0]
    assert entry.user == USERS[UserRole.NOC_OPERATOR] and entry.target == evidence_key(cleartext)
    assert entry.detail["type"] == "cleartext" and entry.detail["packets"] == len(frames)


async def test_an_arp_spoof_has_no_flow_and_its_pcap_is_the_spoofed_reply(live, small_inventory, tmp_path):
    engine, alarms, truth = live
    spoof = _alert(alarms, "arp_spoof")
    async with served(small_inventory, tmp_path) as server:
        server.app.state.console.ctx.extra.update(traffic_ids=engine, traffic_alerts=alarms.recent)
        client = await _client(server, UserRole.AUDITOR)
        response = await client.get(f"/ids/traffic/evidence/{evidence_key(spoof)}.pcap")
        await client.close()
    assert response.status_code == 200
    path = tmp_path / "arp.pcap"
    path.write_bytes(response.content)
    [(_, _, frame)] = list(read_capture(path))
    assert frame[12:14] == b"\x08\x06" and frame[6:12] == b"\x02\x66\x66\x66\x66\x66"  # the attacker's MAC


async def test_a_flows_packets_download_and_unknown_ones_are_404(live, small_inventory, tmp_path):
    engine, alarms, _ = live
    flow = max(engine.flows.flows.values(), key=lambda f: f.last)
    async with served(small_inventory, tmp_path) as server:
        server.app.state.console.ctx.extra.update(traffic_ids=engine, traffic_alerts=alarms.recent)
        client = await _client(server, UserRole.NOC_OPERATOR)
        ok = await client.get(f"/ids/traffic/flow/{flow.id}.pcap")
        missing = await client.get("/ids/traffic/evidence/0123456789abcdef0123.pcap")
        gone = await client.get("/ids/traffic/flow/999999999.pcap")
        trail = await server.app.state.console.audit.entries(action="ids.traffic.evidence", limit=1)
        await client.close()
    assert ok.status_code == 200 and ok.content.startswith(b"\xd4\xc3\xb2\xa1")
    assert missing.status_code == 404 and gone.status_code == 404
    assert trail[0].result == "not_found"


async def test_who_may_not_see_the_ids_may_not_download_packets(live, small_inventory, tmp_path):
    engine, alarms, _ = live
    key = evidence_key(_alert(alarms, "cleartext"))
    async with served(small_inventory, tmp_path) as server:
        server.app.state.console.ctx.extra.update(traffic_ids=engine, traffic_alerts=alarms.recent)
        client = await _client(server, UserRole.CALL_CENTER)
        response = await client.get(f"/ids/traffic/evidence/{key}.pcap")
        await client.close()
    assert response.status_code == 403 and b"POST /notify" not in response.content


def test_evidence_is_bounded_per_flow_per_frame_and_in_alerts():
    evidence = Evidence(per_flow=4, snap=64, alerts=2)
    for k in range(10):
        evidence.record(1, float(k), bytes([k]) * 1500)
    frames = evidence.flow_frames(1)
    assert [ts for ts, _ in frames] == [6.0, 7.0, 8.0, 9.0] and {len(f) for _, f in frames} == {64}
    for k in range(3):
        evidence.alert({"flow_id": 1, "timestamp": str(k), "src_ip": "a", "dest_ip": "b",
                        "alert": {"metadata": {"jukimon_type": ["scan"]}}}, None)
    assert len(evidence._alerts) == 2
    evidence.flow_ended(1)
    assert evidence.flow_frames(1) is None and evidence.flows == 0
    assert pcap_bytes([]).startswith(b"\xd4\xc3\xb2\xa1")
