"""The drill's report cascade at full scale: time to send and track 3 × 1,788 reports with every receipt.

    .venv/bin/python bench/bench_cascade.py [--connections 4] [--mqtt-share 0.3]

On loopback, as a real drill would run it, in two processes: Jukimon (the
cascade on SQLite, the confirm page served by uvicorn over real HTTP) and "the
world" (a real SMTP server, aiosmtpd, and the simulated recipients behind it),
with a private Mosquitto between them. 初報, 第2報 and 終報 are issued one after the
other to the 47 prefectures and 1,741 municipalities (Jukimon forwarding for every
prefecture). Recipients answer every message as soon as it arrives: most by
opening the link in the mail (HTTP GET), the others with an MQTT receipt.
Measured: the time from the first report's issue until the tracker counts all
5,364 receipts, the send time of each report, CPU of each process. Prints a
summary and writes bench/results/cascade.json. Goal: < 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import re
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._proc import loadavg, machine, proc_cpu  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "cascade.json"
WAIT_LIMIT = 120.0  # seconds after the last report for the receipts
BODIES = ["ウイルス疑義のため処理装置Xをネットワークから切断しました。", "処理装置Xの調査を継続しています。",
          "安全性が確認されたため処理装置Xを再接続しました。本件は終了です。"]
LINK = re.compile(rb"http://127\.0\.0\.1:\d+(/cascade/confirm\?token=[A-Za-z0-9_.%-]+)")


class Browser:
    """Keep-alive HTTP/1.1 GETs, as a recipient's browser does for a link. Not httpx: its per-request cost in
    the recipients' process would outweigh the work of the Jukimon side measured here on a shared 2-core box."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, path: str) -> int:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length: *(\d+)", head)
        await reader.readexactly(int(length.group(1)) if length else 0)
        return int(head.split(b" ", 2)[1])


class Recipients:
    """The SMTP server's handler and the simulated recipients behind it: each mail is answered at once."""

    def __init__(self, mqtt_orgs: set[str]) -> None:
        self.mqtt_orgs = mqtt_orgs  # these answer over MQTT instead of the link
        self.links: asyncio.Queue[bytes] = asyncio.Queue()
        self.received = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd)
        org = envelope.rcpt_tos[0].split("@")[1].split(".")[0]
        if org not in self.mqtt_orgs:
            self.links.put_nowait(envelope.original_content)
        self.received += 1
        return "250 OK"

    async def click_links(self, port: int, workers: int) -> None:
        async def worker() -> None:
            browser = Browser("127.0.0.1", port)
            while True:
                data = await self.links.get()
                body = base64.b64decode(data.split(b"\r\n\r\n", 1)[1])  # the cascade's single base64 text part
                status = await browser.get(LINK.search(body).group(1).decode())  # type: ignore[union-attr]
                assert status == 200, status

        await asyncio.gather(*(worker() for _ in range(workers)))

    async def answer_mqtt(self, host: str, port: int, subscribed: asyncio.Event) -> None:
        import aiomqtt

        acks: set[asyncio.Task[None]] = set()
        client = aiomqtt.Client(host, port, identifier="bench-recipients", max_inflight_messages=1000)
        client.pending_calls_threshold = 10_000  # acks are published without waiting on purpose: no warning each
        async with client:
            # QoS 0: as one subscriber for every organisation, QoS 1 could overrun the broker's per-client queue
            await client.subscribe("jukimon/cascade/+/report", qos=0)
            subscribed.set()
            async for message in client.messages:
                report = json.loads(bytes(message.payload))  # type: ignore[arg-type]
                if report["org"] in self.mqtt_orgs:  # answered at once, without waiting for the previous PUBACK
                    acks.add(task := asyncio.create_task(
                        client.publish(report["ack_topic"], json.dumps({"token": report["token"]}), qos=1)))
                    task.add_done_callback(acks.discard)


def world(smtp_port: int, web_port: int, broker: tuple[str, int], mqtt_orgs: set[str], ready: Any,
          done: Any, received: Any) -> None:
    """The child process: SMTP server and recipients on one event loop, until ``done`` is set."""
    async def serve() -> None:
        from aiosmtpd.smtp import SMTP

        recipients = Recipients(mqtt_orgs)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(recipients, hostname="bench-world"), "127.0.0.1", smtp_port)
        subscribed = asyncio.Event()
        tasks = [asyncio.create_task(recipients.click_links(web_port, 16)),
                 asyncio.create_task(recipients.answer_mqtt(*broker, subscribed))]
        await subscribed.wait()
        ready.set()
        while not done.is_set():
            await asyncio.sleep(0.05)
        received.value = recipients.received
        for task in tasks:
            task.cancel()
        server.close()

    asyncio.run(serve())


async def run(connections: int, mqtt_share: float, workdir: Path) -> dict[str, Any]:
    import multiprocessing

    import uvicorn

    from alerting.cascade import CascadeSettings, Incident, Report, confirm_app, generate_keypair, generate_link_key
    from alerting.cascade import open_cascade
    from monitor.inventory import default_inventory
    from monitor.localservers import Mosquitto, free_port
    from monitor.store import Store

    inventory = default_inventory()
    settings = CascadeSettings(smtp_connections=connections, private_key=workdir / "ed25519.pem",
                               public_key=workdir / "ed25519.pub.pem", link_key=workdir / "link.key")
    generate_keypair(settings.private_key, settings.public_key)
    generate_link_key(settings.link_key)
    web_port, smtp_port = free_port(), free_port()
    settings = replace(settings, smtp_port=smtp_port, base_url=f"http://127.0.0.1:{web_port}")
    orgs = sorted(settings.directory(inventory).organisations)
    mqtt_orgs = set(random.Random(1).sample(orgs, round(len(orgs) * mqtt_share)))
    broker = Mosquitto(workdir / "mosquitto")
    broker.start()
    ctx = multiprocessing.get_context("spawn")
    ready, done, received = ctx.Event(), ctx.Event(), ctx.Value("i", 0)
    child = ctx.Process(target=world, args=(smtp_port, web_port, (broker.host, broker.port), mqtt_orgs,
                                            ready, done, received), daemon=True)
    child.start()
    try:
        async with await Store.open(f"sqlite+aiosqlite:///{workdir}/jukimon.db") as store:
            cascade = await open_cascade(store, inventory, settings, mqtt=(broker.host, broker.port))
            server = uvicorn.Server(uvicorn.Config(confirm_app(cascade.tracker, cascade.composer.links),
                                                   host="127.0.0.1", port=web_port, log_level="warning",
                                                   lifespan="off"))
            serving = asyncio.create_task(server.serve())
            while not (server.started and ready.is_set()):
                await asyncio.sleep(0.01)
            incident = Incident("drill-bench", "都道府県サーバ集約センターにおけるウイルス疑義", drill=True,
                                opened=time.time())
            cpu0, child_cpu0, broker_cpu0 = time.process_time(), proc_cpu(child.pid), proc_cpu(broker.proc.pid)  # type: ignore
            started = time.perf_counter()
            sends = []
            for sequence, body in enumerate(BODIES, start=1):
                report = Report(incident.id, sequence, body, time.time(), final=sequence == len(BODIES))
                t = time.perf_counter()
                await cascade.issue(incident, report)
                sends.append(round(time.perf_counter() - t, 3))
            sent = time.perf_counter() - started
            reports = list(cascade.tracker.reports)
            deadline = time.perf_counter() + WAIT_LIMIT  # a lost receipt ends the run, reported as incomplete
            while sum(cascade.tracker.counts(r).confirmed for r in reports) < 3 * len(orgs) \
                    and time.perf_counter() < deadline:
                await asyncio.sleep(0.01)
            total = time.perf_counter() - started
            cpu = {"jukimon": round(time.process_time() - cpu0, 2),
                   "world": round(proc_cpu(child.pid) - child_cpu0, 2),  # type: ignore[arg-type]
                   "mosquitto": round(proc_cpu(broker.proc.pid) - broker_cpu0, 2)}  # type: ignore[union-attr]
            counts = {r: cascade.tracker.counts(r) for r in reports}
            via = {c: sum(d.confirmed_via == c for r in reports for d in cascade.tracker.deliveries(r))
                   for c in ("link", "mqtt")}
            server.should_exit = True
            await serving
            await cascade.close()
    finally:
        done.set()
        child.join(10)
        broker.stop()
    messages = 3 * len(orgs)
    confirmed = sum(c.confirmed for c in counts.values())
    return {
        "organisations": len(orgs), "reports": 3, "messages": messages, "smtp_connections": connections,
        "mqtt_share": mqtt_share, "smtp_received": received.value,
        "seconds_total": round(total, 3), "seconds_sending": round(sent, 3), "seconds_per_report_send": sends,
        "messages_per_second": round(messages / sent, 1), "receipts_by_channel": via,
        "confirmed": confirmed, "delivered": sum(c.delivered for c in counts.values()),
        "cpu_seconds": cpu, "goal_seconds": 10.0, "goal_met": total < 10.0 and confirmed == messages,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=4, help="SMTP sessions in parallel (default 4)")
    parser.add_argument("--mqtt-share", type=float, default=0.3, help="share of recipients answering by MQTT")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    load_before = loadavg()
    with tempfile.TemporaryDirectory(prefix="jukimon-bench-cascade-") as tmp:
        result = asyncio.run(run(args.connections, args.mqtt_share, Path(tmp)))
    result.update(machine=machine(), loadavg_before=load_before,
                  date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    print(f"cascade: {result['messages']} messages ({result['reports']} reports × {result['organisations']} "
          f"organisations), sent in {result['seconds_sending']} s ({result['messages_per_second']}/s, per report "
          f"{result['seconds_per_report_send']}), {result['confirmed']} of {result['messages']} receipts tracked after "
          f"{result['seconds_total']} s (goal < 10 s: {'met' if result['goal_met'] else 'NOT met'}); "
          f"receipts {result['receipts_by_channel']}; CPU {result['cpu_seconds']}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return 0 if result["confirmed"] == result["messages"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
