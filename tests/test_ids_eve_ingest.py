"""An external Suricata's EVE JSON as one more source of traffic alarms.

The operator's story: Suricata on a mirror port writes eve.json; `jukimon ids eve-ingest eve.json`
hands its alerts to the running monitor, where they become traffic alarms (type signature, named
by the rule) and show on /ids. Flow and stats events are skipped; broken lines are counted.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from dashboards.auth import UserRole
from ids.traffic.eve import alert_time, jukimon_type
from ids.traffic.suricata import EveFollower, EveReader, inbox_path, normalize
from monitor.config import Config, IdsSettings
from monitor.inventory.model import Inventory
from monitor.mainjob import MainJob, SimulationOptions
from tests.console_fixtures import USERS, ConsoleClient, served

ROOT = Path(__file__).resolve().parents[1]


def suricata_alert(src: str, dst: str, sid: int = 2_010_935, ts: str = "2026-12-02T10:15:02.123456+0900") -> dict:
    """An alert as Suricata 7 writes it (fields trimmed to the usual ones)."""
    return {"timestamp": ts, "flow_id": 1234567890, "in_iface": "eth1", "event_type": "alert",
            "src_ip": src, "src_port": 51234, "dest_ip": dst, "dest_port": 3389, "proto": "TCP",
            "alert": {"action": "allowed", "gid": 1, "signature_id": sid, "rev": 3,
                      "signature": "ET SCAN Suspicious inbound to MSSQL port 1433", "category": "Potentially Bad Traffic",
                      "severity": 2, "metadata": {"signature_severity": ["Major"]}},
            "flow": {"pkts_toserver": 1, "pkts_toclient": 0, "bytes_toserver": 74, "bytes_toclient": 0,
                     "start": "2026-12-02T10:15:02.120000+0900"}}


def eve_lines(inventory: Inventory) -> tuple[list[str], dict]:
    cs = next(d for d in inventory.devices.values() if d.role.value == "cs")
    unit = next(d for d in inventory.devices.values() if d.role.value == "prefecture_unit")
    alert = suricata_alert(cs.address, unit.address)
    lines = [json.dumps({"timestamp": alert["timestamp"], "event_type": "flow", "src_ip": cs.address,
                         "dest_ip": unit.address}),
             json.dumps(alert), "{not json", json.dumps({"event_type": "stats", "stats": {}}), ""]
    return lines, alert


def test_a_suricata_alert_becomes_a_signature_alert_that_keeps_what_suricata_wrote():
    alert = normalize(suricata_alert("127.11.1.4", "127.1.1.11"))
    assert alert is not None and jukimon_type(alert) == "signature"
    metadata = alert["alert"]["metadata"]
    assert metadata["jukimon_source"] == ["suricata"] and metadata["signature_severity"] == ["Major"]
    assert metadata["jukimon_rule"] == ["Suricata rule sid 2010935 rev 3: ET SCAN Suspicious inbound to MSSQL port 1433"]
    assert alert["flow_id"] == 1234567890 and alert["in_iface"] == "eth1"
    assert alert_time(alert) == pytest.approx(1796174102.123456)


def test_an_alert_naming_a_jukimon_type_keeps_it_and_other_events_are_no_alerts():
    ours = suricata_alert("127.11.1.4", "127.1.1.11")
    ours["alert"]["metadata"] = {"jukimon_type": ["scan"], "jukimon_rule": ["scan: ≥20 ports"]}
    assert jukimon_type(normalize(ours)) == "scan" and normalize(ours)["alert"]["metadata"]["jukimon_rule"] == [
        "scan: ≥20 ports"]
    assert normalize({"event_type": "flow"}) is None and normalize([1, 2]) is None
    for broken in ({"event_type": "alert", "alert": {}}, {**ours, "timestamp": "yesterday"},
                   {k: v for k, v in ours.items() if k != "src_ip"}):
        with pytest.raises(ValueError):
            normalize(broken)


def test_the_reader_counts_what_it_took_and_skipped(small_inventory):
    reader = EveReader()
    lines, _ = eve_lines(small_inventory)
    assert len(list(reader.alerts(lines))) == 1
    assert reader.counts == {"alerts": 1, "other_events": 2, "malformed": 1}


def test_the_follower_reads_only_new_complete_lines_and_starts_over_after_rotation(tmp_path: Path):
    path, got = tmp_path / "eve.json", []
    path.write_text(json.dumps(suricata_alert("10.0.0.1", "10.0.0.2")) + "\n")  # already there: not taken
    follower = EveFollower(path, got.append)
    follower.poll()
    line = json.dumps(suricata_alert("10.0.0.3", "10.0.0.4"))
    with open(path, "a") as f:
        f.write(line[:40])  # Suricata is writing…
    assert follower.poll() == 0
    with open(path, "a") as f:
        f.write(line[40:] + "\n")
    assert follower.poll() == 1 and got[-1]["src_ip"] == "10.0.0.3"
    path.unlink()  # rotated: a new file from its first line
    path.write_text(json.dumps(suricata_alert("10.0.0.5", "10.0.0.6")) + "\n")
    assert follower.poll() == 1 and got[-1]["src_ip"] == "10.0.0.5"


def _ingest(source: str, state_dir: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monitor.cli", "ids", "eve-ingest", source, "--state-dir",
                           str(state_dir)], cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=60)


async def test_eve_ingest_reaches_the_running_monitor_as_an_alarm_on_ids(small_inventory, tmp_path: Path):
    lines, alert = eve_lines(small_inventory)
    eve = tmp_path / "eve.json"
    eve.write_text("\n".join(lines) + "\n")
    state = tmp_path / "state"
    simulation = SimulationOptions(None, 1161, 8443, False, 1.0, state / "simnet", ("127.0.0.1", 0))
    job = MainJob(small_inventory, Config(ids=IdsSettings(None)), simulation, state)
    await job._start_traffic_ids()
    assert job.traffic_alarms is not None and job.traffic_sensor is None  # alarms without the live sensor
    try:
        async with served(small_inventory, tmp_path) as server:
            ctx = server.app.state.console.ctx
            job.traffic_alarms.attach(ctx.alerting)
            ctx.extra.update(traffic_alerts=job.traffic_alarms.recent)
            done = await asyncio.to_thread(_ingest, str(eve), state)
            assert done.returncode == 0, done.stderr
            assert not done.stdout  # counts go to the log
            wanted = f"ids_traffic:signature:{alert['src_ip']}:{alert['dest_ip']}"
            for _ in range(100):  # the follower looks every second: bounded wait
                if any(a.fingerprint == wanted for a in ctx.alerting.open_alarms()):
                    break
                await asyncio.sleep(0.1)
            alarm = next(a for a in ctx.alerting.open_alarms() if a.fingerprint == wanted)
            assert "ET SCAN Suspicious inbound" in alarm.summary and alarm.labels["source"] == "ids"
            client = ConsoleClient(f"http://127.0.0.1:{server.port}")
            assert (await client.login(USERS[UserRole.NOC_OPERATOR])).status_code == 200
            page = (await client.get("/ids")).text
            await client.close()
            assert "ET SCAN Suspicious inbound" in page and f"/alarms/{quote(wanted, safe='')}" in page
    finally:
        await job.stop()
    assert inbox_path(state).read_text().count("\n") == 1  # only the alert went into the inbox


def test_eve_ingest_reads_standard_input_and_fails_when_nothing_was_an_alert(tmp_path: Path):
    ok = _ingest("-", tmp_path, json.dumps(suricata_alert("127.11.1.4", "127.1.1.11")) + "\n")
    assert ok.returncode == 0 and inbox_path(tmp_path).read_text().count("\n") == 1
    broken = _ingest("-", tmp_path, "{broken\n")
    assert broken.returncode == 1 and inbox_path(tmp_path).read_text().count("\n") == 1


def test_a_file_that_appears_later_is_read_from_its_first_line(tmp_path: Path):
    path, got = tmp_path / "eve.json", []
    follower = EveFollower(path, got.append)
    assert follower.poll() == 0
    path.write_text(json.dumps(suricata_alert("10.0.0.7", "10.0.0.8")) + "\n")
    assert follower.poll() == 1 and got[0]["dest_ip"] == "10.0.0.8"
