"""The live sensor on ``lo`` with the attack injector putting real frames on the loopback (root only).

Other processes' loopback traffic (a running simulation) is captured too; the assertions
only look for the injected attacks' alerts.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import threading
import time
from dataclasses import asdict

import pytest

from ids.traffic import DEFAULT_RULES, Engine, load_rules
from ids.traffic.evaluate import GRACE
from ids.traffic.eve import alert_time
from ids.traffic.live import capture
from simnet import attacks
from simnet.traffic_gen import Sample, arp, mac_of

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="capturing on lo needs root")

# Attacks whose pattern fits in the moment of an injection (beacons and volume need hours and a baseline).
LIVE = (attacks.scan_vertical_syn, attacks.scan_udp, attacks.brute_force, attacks.matrix_cross_prefecture,
        attacks.cleartext, attacks.smb, attacks.dns_tunnel, attacks.icmp_tunnel, attacks.arp_spoof,
        attacks.signature, attacks.flood)


@pytest.fixture(scope="module")
def injected(small_inventory):
    sample = Sample.of(small_inventory, prefectures=("01", "47"), municipalities=6)
    rng = random.Random(11)
    start = dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc).timestamp()
    runs = [attack(sample, start, rng) for attack in LIVE]
    alerts: list[dict] = []
    engine = Engine(alerts.append, inventory=small_inventory, rules=load_rules(DEFAULT_RULES))
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=capture, args=(engine, "lo", stop, ready), daemon=True)
    thread.start()
    assert ready.wait(10)
    began, sent = time.time(), 0
    for frames, truth in runs:
        if truth.type == "arp_spoof":  # the unit's own announcement first: the binding the spoof changes
            sent += attacks.send_frames([(0, arp(2, truth.src, mac_of(truth.src), truth.dst))])
        frames = frames[:1200] if truth.type == "flood" else frames  # enough to cross the rate, kind to the host
        sent += attacks.send_frames(sorted(frames, key=lambda f: f[0]))
    time.sleep(1.0)
    stop.set()
    thread.join(10)
    ended = time.time()
    return [asdict(t) | {"start": began, "end": ended} for _, t in runs], alerts, engine.stats, sent


@pytest.mark.parametrize("attack", [a.__name__ for a in LIVE])
def test_injected_attack_is_detected_live(injected, attack):
    truth, alerts, _, _ = injected
    t = truth[[a.__name__ for a in LIVE].index(attack)]
    hits = [a for a in alerts if a["alert"]["metadata"]["jukimon_type"] == [t["type"]]
            and (t["src"] is None or a["src_ip"] == t["src"]) and (t["dst"] is None or a["dest_ip"] == t["dst"])]
    assert hits, f"{attack}: no live {t['type']} alert from {t['src']} to {t['dst']}"
    assert t["start"] - 1 <= alert_time(hits[0]) <= t["end"] + GRACE  # live alerts carry capture time, not the generator's


def test_live_capture_decodes_what_it_sees(injected):
    _, _, stats, sent = injected
    assert stats.packets >= sent > 4000  # every injected frame reached the sensor
    assert stats.malformed == 0
