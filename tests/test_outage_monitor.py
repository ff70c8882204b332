"""Outage: the monitor killed (SIGKILL) and started again — alarms, acks, escalations, tickets, drills intact, and
no notification sent twice.

`jukimon run` on the small inventory, as an operator runs it, against a private
PostgreSQL store and a broker and TSDB of its own (they outlive the monitor, as in
production). Two faults raise two alarms, each mailed and published on the bus by
its route; an operator signs in to the console, acknowledges one (the other's
escalation stays pending), opens a ticket about it and starts a drill. Once the
outbox has sent everything, the process is killed with SIGKILL — no clean-up of
any kind — and started again with the same configuration. Every mail the embedded
sink kept and every message on the bus is counted by its notification id.
"""

from __future__ import annotations

import asyncio
import email
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiomqtt
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from alerting.alarm_store import alarms, escalations
from alerting.notify.outbox import notify_outbox
from dashboards.tickets.store import ticket_alarms, tickets
from monitor.inventory import save_inventory
from monitor.inventory.model import Inventory
from monitor.store.postgres import PrivatePostgres
from tests.console_fixtures import ConsoleClient
from tests.servers import free_port, free_udp_port, mosquitto_server, victoria_metrics_server

ROOT = Path(__file__).resolve().parents[1]
SNMP_PORT, TLS_PORT, CONTROL_PORT = free_udp_port(), free_port(), free_port()
SITE_CUT, LINE_CUT = "site_unreachable:muni-01-002", "redundancy_lost:muni-01-003"
FAULTS = (("site_lines_cut", "muni-01-002"), ("line_cut", "line-muni-01-003-rt1"))
DRILL = "annual-virus-isolation"


def write_config(work: Path, db_url: str, mqtt_port: int, tsdb_url: str) -> Path:
    routing = work / "routing.yml"
    routing.write_text(
        "receivers:\n  noc-mail: {type: email, to: [noc@example.lg.jp]}\n"
        "  lead-mail: {type: email, to: [lead@example.lg.jp]}\n"
        "  noc-bus: {type: mqtt, topic: noc/alarms}\n"
        "escalation_policies:\n  noc:\n    tiers:\n"
        "      - {name: operator, receivers: [noc-mail, noc-bus], wait: 20m}\n"
        "      - {name: lead, receivers: [lead-mail]}\n"
        "route:\n  receivers: [noc-mail, noc-bus]\n  escalation: noc\n  group_by: [site]\n  group_wait: 1s\n")
    config = work / "jukimon.yaml"
    config.write_text(
        f"outputs: {{spool_dir: {work / 'spool'}, mqtt: {{host: 127.0.0.1, port: {mqtt_port}}}, "
        f"influx: {{url: '{tsdb_url}', org: jukimon, bucket: jukimon, token: ''}}}}\n"
        f"store: {{url: '{db_url}'}}\nalerting: {{routing_file: {routing}}}\nnotify: {{mail_sink: {work / 'mail'}}}\n"
        f"cascade: {{private_key: {work / 'k.pem'}, public_key: {work / 'k.pub.pem'}, link_key: {work / 'link.key'}}}\n"
        "console: {port: 0}\n")
    return config


def start_job(work: Path, config: Path) -> tuple[subprocess.Popen[str], str, list[str]]:
    """`jukimon run` until its console answers; (process, console URL, output so far)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "run", "--config", str(config), "--inventory", str(work / "inventory.yaml"),
         "--snmp-port", str(SNMP_PORT), "--tls-port", str(TLS_PORT), "--control", f"127.0.0.1:{CONTROL_PORT}",
         "--state-dir", str(work / "state" / "simnet")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "devices up" in line:  # the simulation runs: the faults go back in before the first judgement
            inject_faults()
        if found := re.search(r"console: (http://127\.0\.0\.1:\d+/)", line):
            log = work / f"job-{proc.pid}.log"  # the rest of its output, for a failure's post-mortem
            log.write_text("".join(lines))
            threading.Thread(target=_drain, args=(proc, log), daemon=True).start()
            return proc, found.group(1), lines
    proc.kill()
    raise AssertionError("".join(lines[-60:]))


def _drain(proc: subprocess.Popen[str], log: Path) -> None:
    assert proc.stdout is not None
    with log.open("a") as out:
        for line in proc.stdout:
            out.write(line)


def inject_faults() -> None:
    """The faults, through the simulation's control channel — at once, before the collectors' first round.

    The simulation is the monitor's child here and starts afresh with it; the real network would not heal
    because its monitor restarted.
    """
    with socket.create_connection(("127.0.0.1", CONTROL_PORT), timeout=10) as sock:
        replies = sock.makefile("rb")
        for kind, target in FAULTS:
            sock.sendall(json.dumps({"op": "inject", "kind": kind, "target": target, "params": {}}).encode() + b"\n")
            assert json.loads(replies.readline())["ok"]


def control_port_closed() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", CONTROL_PORT), timeout=0.2):
            return False
    except OSError:
        return True


async def until(what: str, timeout: float, check) -> Any:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        await asyncio.sleep(0.5)


def mail_ids(directory: Path) -> Counter[str]:
    """Message-IDs of the mails in the sink (derived from the notification id: a resend has the same one)."""
    return Counter(email.message_from_bytes(path.read_bytes())["Message-ID"] for path in directory.glob("*.eml"))


async def test_sigkill_and_restart_lose_nothing_and_send_nothing_twice(
        small_inventory: Inventory, postgres: PrivatePostgres, tmp_path: Path) -> None:
    work = tmp_path
    save_inventory(small_inventory, work / "inventory.yaml")
    db_url = postgres.create_database(f"test_{uuid.uuid4().hex[:12]}")
    db = create_async_engine(db_url)
    bus: list[dict[str, Any]] = []

    async def rows(table, *where) -> list[Any]:  # noqa: ANN001, ANN002
        async with db.connect() as conn:
            return list((await conn.execute(select(table).where(*where))).all())

    async def listen(port: int, ready: asyncio.Event) -> None:
        async with aiomqtt.Client("127.0.0.1", port, identifier="noc-bus-counter") as client:
            await client.subscribe("noc/alarms", qos=1)
            ready.set()
            async for message in client.messages:
                bus.append(json.loads(bytes(message.payload)))  # type: ignore[arg-type]

    async def both_alarms() -> bool:
        return len(await rows(alarms, alarms.c.fingerprint.in_([SITE_CUT, LINE_CUT]))) == 2

    async def simulation_gone() -> bool:
        return control_port_closed()

    async def settled() -> bool:
        outbox = await rows(notify_outbox)
        return bool(outbox) and all(r.status == "sent" for r in outbox)

    with mosquitto_server(work) as broker, victoria_metrics_server(work) as tsdb:
        ready = asyncio.Event()
        listener = asyncio.create_task(listen(broker.port, ready))
        await asyncio.wait_for(ready.wait(), 10)
        config = write_config(work, db_url, broker.port, tsdb.url)
        proc, url, _ = await asyncio.to_thread(start_job, work, config)
        console = ConsoleClient(url)
        try:
            password = (work / "state" / "console-admin-password").read_text().strip()
            assert (await console.login("admin", password)).status_code == 200
            await until("both alarms", 120, both_alarms)
            await console.get(f"/alarms/{SITE_CUT}")
            acked = await console.post("/alarms/acknowledge", {"fingerprint": SITE_CUT, "text": "回線業者に連絡済み"})
            assert acked.status_code == 200
            await console.get("/triage")
            opened = await console.post("/triage/tickets", {
                "site": "muni-01-002", "category": "network", "title": "CSに接続できない",
                "description": "小樽市から電話: 業務端末からCSに接続できない", "caller_contact": "小樽市 情報政策課",
                "alarm": SITE_CUT})
            assert opened.status_code == 200 and "/triage/tickets/" in str(opened.url), opened.text[:500]
            ticket_path = str(opened.url.path)
            await console.get("/drills")
            started = await console.post("/drills/start", {"scenario": DRILL, "mode": "tabletop",
                                                           "participants": "simulated", "speed": "1"})
            assert started.status_code == 200
            drill_page = (await console.get("/drills/panel")).text
            await until("every notification sent", 60, settled)
            await asyncio.sleep(2)  # the bus subscriber has its copies
            before = {
                "alarms": {r.fingerprint: (r.started, r.acknowledged_by, r.acknowledged_at)
                           for r in await rows(alarms, alarms.c.fingerprint.in_([SITE_CUT, LINE_CUT]))},
                "escalations": {r.group_key: (r.policy, r.step, r.step_at, r.acked) for r in await rows(escalations)},
                "tickets": [(r.id, r.site, r.title, r.status) for r in await rows(tickets)],
                "links": [(r.ticket, r.fingerprint) for r in await rows(ticket_alarms)],
                "outbox": {r.id: r.status for r in await rows(notify_outbox)},
            }
            mails_before, bus_before = mail_ids(work / "mail"), len(bus)
        finally:
            await console.close()
            proc.send_signal(signal.SIGKILL)
            await asyncio.to_thread(proc.wait, 30)
        await until("the simulation gone with its parent", 30, simulation_gone)

        proc, url, _ = await asyncio.to_thread(start_job, work, config)
        console = ConsoleClient(url)
        try:
            assert (await console.login("admin", password)).status_code == 200
            await asyncio.sleep(20)  # the outbox, escalations and group flushes had time to (wrongly) send again
            after_alarms = {r.fingerprint: (r.started, r.acknowledged_by, r.acknowledged_at)
                            for r in await rows(alarms, alarms.c.fingerprint.in_([SITE_CUT, LINE_CUT]))}
            after_escalations = {r.group_key: (r.policy, r.step, r.step_at, r.acked) for r in await rows(escalations)}
            after_tickets = [(r.id, r.site, r.title, r.status) for r in await rows(tickets)]
            after_links = [(r.ticket, r.fingerprint) for r in await rows(ticket_alarms)]
            ticket_page = await console.get(ticket_path)
            drills_after = (await console.get("/drills")).text
            mails_after = mail_ids(work / "mail")
        finally:
            await console.close()
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.to_thread(proc.wait, 60)
            except subprocess.TimeoutExpired:
                proc.kill()
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
            await db.dispose()

    assert after_alarms == before["alarms"]
    assert after_alarms[SITE_CUT][1] == "admin", "the acknowledgement survives"
    ours = ("route{site=muni-01-002}", "route{site=muni-01-003}")
    assert {k: after_escalations[k] for k in ours} == {k: before["escalations"][k] for k in ours}, \
        "no escalation step lost, redone or restarted"
    assert after_escalations["route{site=muni-01-002}"][3] is True, "the acknowledged one stays stopped"
    assert after_escalations["route{site=muni-01-003}"][1:] == (0, before["escalations"]["route{site=muni-01-003}"][2],
                                                               False), "the other's first step still pending"
    assert after_tickets == before["tickets"] and len(after_tickets) == 1
    assert after_links == before["links"] == [(after_tickets[0][0], SITE_CUT)]
    assert ticket_page.status_code == 200 and "CSに接続できない" in ticket_page.text
    run_id = re.search(rf"\d{{8}}-\d{{6}}-{DRILL}", drill_page)
    assert run_id, drill_page[:1000]
    assert run_id.group(0) in drills_after, "the drill started before the kill is shown after the restart"
    assert "報告書なし: 訓練中に監視システムが停止しました" in drills_after, "… as interrupted"
    duplicates = {k: n for k, n in mails_after.items() if n > 1}
    assert not duplicates, f"mails sent twice: {duplicates}"
    assert set(mails_before) <= set(mails_after) and len(mails_before) >= 2
    bus_ids = Counter(message["id"] for message in bus)
    assert not {k: n for k, n in bus_ids.items() if n > 1}, "a notification published twice"
    assert bus_before >= 2
    print(f"\nbefore the kill: {len(mails_before)} mails, {bus_before} bus messages; after the restart: "
          f"{len(mails_after)} mails, {len(bus)} bus messages, none twice; 2 alarms, 1 ack, 2 escalations, 1 ticket kept")
