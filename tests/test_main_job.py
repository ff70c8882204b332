"""`jukimon run` end to end, as an operator starts it: the chain from simulated devices to the bus and TSDB.

A small real-shape network keeps it quick; everything else is the real thing: the
simulation in its child process, the private Mosquitto and VictoriaMetrics the job
starts, SNMPv3 polls, traps, a fault injected with the CLI, Ctrl-C at the end.
"""

from __future__ import annotations

import asyncio
import email
import email.header
import json
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import aiomqtt
import httpx
import pytest

from monitor.inventory import save_inventory
from monitor.inventory.model import Inventory
from monitor.localservers import MOSQUITTO, VICTORIA_METRICS
from tests.mqtt_messages import gather_messages
from tests.servers import free_port, free_udp_port, require

ROOT = Path(__file__).resolve().parents[1]
SNMP_PORT, TLS_PORT, CONTROL_PORT = free_udp_port(), free_port(), free_port()  # nothing else may hold them


@pytest.fixture(scope="module")
def running(small_inventory: Inventory, tmp_path_factory: pytest.TempPathFactory):
    require(MOSQUITTO, "mosquitto")
    require(VICTORIA_METRICS, "victoria-metrics")
    work = tmp_path_factory.mktemp("mainjob")
    inventory_file = work / "inventory.yaml"
    save_inventory(small_inventory, inventory_file)
    config = work / "jukimon.yaml"
    routing = work / "routing.yml"
    routing.write_text("receivers:\n  noc-mail: {type: email, to: [noc@example.lg.jp]}\n"
                       "  noc-bus: {type: mqtt, topic: noc/alarms}\n"
                       "route:\n  receivers: [noc-mail, noc-bus]\n  group_by: [kind]\n  group_wait: 1s\n")
    config.write_text(f"outputs: {{spool_dir: {work / 'spool'}}}\n"
                      f"store: {{url: 'sqlite+aiosqlite:///{work}/jukimon.db'}}\n"
                      f"alerting: {{routing_file: {routing}}}\nnotify: {{mail_sink: {work / 'mail'}}}\n"
                      f"cascade: {{private_key: {work / 'k.pem'}, public_key: {work / 'k.pub.pem'}, "
                      f"link_key: {work / 'link.key'}}}\nconsole: {{port: 0}}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "run", "--config", str(config), "--inventory", str(inventory_file),
         "--snmp-port", str(SNMP_PORT), "--tls-port", str(TLS_PORT), "--control", f"127.0.0.1:{CONTROL_PORT}",
         "--state-dir", str(work / "state" / "simnet")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not any("console: http" in line for line in lines):
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
    output = "".join(lines)
    mqtt = re.search(r"MQTT: mqtt://127\.0\.0\.1:(\d+)/", output)
    tsdb = re.search(r"TSDB: (http://127\.0\.0\.1:\d+)", output)
    assert mqtt and tsdb and "devices up" in output, output
    yield proc, int(mqtt.group(1)), tsdb.group(1), output, work
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()  # its simulation child dies with it (PR_SET_PDEATHSIG)
            proc.wait()


async def collect(port: int, topic: str, until, timeout: float, *, then: list[str] | None = None
                  ) -> list[aiomqtt.Message]:
    """Subscribe, run the command ``then`` (if any), and gather messages until ``until`` says enough."""
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe(topic, qos=1)
        if then is not None:
            proc = await asyncio.create_subprocess_exec(*then, cwd=ROOT)
            assert await proc.wait() == 0
        return await gather_messages(client, until, timeout)


def test_every_device_has_a_retained_state(running, small_inventory: Inventory) -> None:
    _, port, _, _, _ = running
    polled = {d.id for d in small_inventory.polled_devices()}
    messages = asyncio.run(collect(port, "jukimon/+/+/+/state",
                                   lambda seen: {json.loads(m.payload)["device"] for m in seen} >= polled, 30))
    states = {json.loads(m.payload)["device"]: json.loads(m.payload) for m in messages}
    assert set(states) == polled
    assert all(s["poll"]["reachable"] for s in states.values())


def test_a_cut_is_seen_on_the_bus_as_unreachable_devices_a_link_down_trap_and_one_site_condition(running) -> None:
    _, port, _, _, _ = running
    inject = [sys.executable, "-m", "monitor.cli", "simnet", "fault", "inject", "site_lines_cut", "muni-01-002",
              "--control", f"127.0.0.1:{CONTROL_PORT}"]

    cs1_state = "jukimon/municipality/muni-01-002/muni-01-002-cs1/state"
    site_condition = "jukimon/monitor/condition/site_unreachable:muni-01-002"

    def notified(m: aiomqtt.Message) -> bool:
        return m.topic.value == "noc/alarms" and "全回線断" in m.payload.decode()

    def done(seen: list[aiomqtt.Message]) -> bool:
        cs1_down = any(m.topic.value == cs1_state and not json.loads(m.payload)["poll"]["reachable"] for m in seen)
        return (cs1_down and any(m.topic.value.endswith("/event/trap") for m in seen)
                and any(m.topic.value == site_condition for m in seen) and any(notified(m) for m in seen))

    messages = asyncio.run(collect(port, "#", done, 60, then=inject))
    assert len([m for m in messages if notified(m)]) == 1  # the alarm notification, once, on the real broker
    messages = [m for m in messages if m.topic.value.startswith("jukimon/")]
    by_topic: dict[str, list[dict]] = {}
    for m in messages:
        if not m.topic.value.endswith("/samples") and m.payload:
            by_topic.setdefault(m.topic.value, []).append(json.loads(m.payload))
    condition = by_topic[site_condition][-1]  # the monitor's judgement: one alarm for the site, the rest behind it
    assert condition["severity"] == "critical" and "全回線断" in condition["summary"]
    assert {"muni-01-002-fw", "muni-01-002-cs1"} <= set(condition["suppressed"])
    raised = [t for t in by_topic if t.startswith("jukimon/monitor/condition/") and "muni-01-002" in t]
    assert raised == [site_condition], raised
    cs1_judged = by_topic["jukimon/monitor/state/device/muni-01-002-cs1"][-1]
    assert cs1_judged["state"] == "unreachable"
    mail_dir = running[4] / "mail"  # and the NOC was told, once, by mail (the embedded SMTP sink)
    def cut_mails() -> list[str]:  # (the simulation's weak certificates make their own, unrelated mails)
        subjects = [str(email.header.make_header(email.header.decode_header(
            email.message_from_bytes(m.read_bytes())["Subject"]))) for m in sorted(mail_dir.glob("*.eml"))]
        return [s for s in subjects if "全回線断" in s]
    for _ in range(30):
        if cut_mails():
            break
        time.sleep(0.5)
    time.sleep(1)
    assert len(cut_mails()) == 1 and "小樽市" in cut_mails()[0], cut_mails()
    cs_states = by_topic[cs1_state]  # the retained "reachable" first, then the news
    assert cs_states[-1]["poll"]["reachable"] is False
    traps = [e for t, events in by_topic.items() if t.endswith("/event/trap") for e in events]
    assert any(e["trap"]["trap"] == "linkDown" and e["device"] == "pref-01-core" for e in traps), traps
    subprocess.run([sys.executable, "-m", "monitor.cli", "simnet", "fault", "clear", "--all", "--control",
                    f"127.0.0.1:{CONTROL_PORT}"], cwd=ROOT, capture_output=True, timeout=30)


def test_the_console_is_served_and_the_first_admin_can_sign_in(running) -> None:
    output, work = running[3], running[4]
    url = re.search(r"console: (http://127\.0\.0\.1:\d+/)", output).group(1)
    password_file = work / "state" / "console-admin-password"
    assert f"password in {password_file}" in output and password_file.stat().st_mode & 0o077 == 0
    password = password_file.read_text().strip()
    assert password not in output  # the secret is in the 0600 file only, never on the terminal or in logs
    with httpx.Client(base_url=url, follow_redirects=True) as client:
        login = client.get("/login")
        token = re.search(r'type="hidden" name="csrf_token" value="([^"]+)"', login.text)
        assert token, login.text[:500]
        board = client.post("/login", data={"name": "admin", "password": password, "csrf_token": token.group(1)})
        assert board.status_code == 200 and "北海道" in board.text
    audit = work / "state" / "audit"  # the sign-in is in the signed, chained audit trail, and it verifies
    verified = subprocess.run([sys.executable, "-m", "monitor.cli", "audit", "verify", "--config",
                               str(work / "jukimon.yaml"), "--public-key", str(audit / "ed25519.pub.pem"),
                               "--head", str(audit / "head.json")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert verified.returncode == 0 and "OK" in verified.stdout and "note:" not in verified.stdout, verified.stdout


def test_samples_reach_the_tsdb(running) -> None:
    _, _, url, _, _ = running
    urllib.request.urlopen(f"{url}/internal/force_flush", timeout=10).read()
    query = urllib.parse.urlencode({"match[]": '{__name__="interface_in_bps", device="pref-01-core"}',
                                    "start": "0"})
    for _ in range(30):
        rows = urllib.request.urlopen(f"{url}/api/v1/export?{query}", timeout=10).read().splitlines()
        if rows:
            break
        time.sleep(1)
    series = [json.loads(r) for r in rows]
    assert series and all(v >= 0 for s in series for v in s["values"])
    assert {s["metric"]["if_index"] for s in series} >= {"1"}


def test_ctrl_c_stops_everything(running) -> None:
    proc, port, url, _, _ = running
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/health", timeout=2)
    code = subprocess.run(["snmpget", "-v2c", "-c", "public", "-t", "0.3", "-r", "0", f"127.11.1.4:{SNMP_PORT}",
                           "1.3.6.1.2.1.1.3.0"], capture_output=True).returncode
    assert code != 0
