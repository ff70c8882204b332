"""The collectors' outputs at full rate: TSDB points per second and MQTT messages per second, end to end.

    .venv/bin/python bench/bench_outputs.py [--points 300000] [--polls 60000]

1. TSDB: the collectors' ``TsdbWriter`` (InfluxDB v2 write API, line protocol, batches,
   spool on failure) into a private VictoriaMetrics; interface samples shaped like a
   poll's (8 fields, device/site/interface tags) for a few thousand series. Measured
   from the first write until the writer has every batch acknowledged; the stored
   sample count is read back from the TSDB's export, so the figure is points that
   arrived, not points queued.
2. MQTT: the collectors' ``MqttPublisher`` into a private Mosquitto, one ``samples``
   message per device poll (10 samples, as the main job publishes), QoS 0, and a QoS-1
   event stream beside it; the consumer is Debian's ``mosquitto_sub`` in its own process
   (``-C N``: exits after N messages), so the rate is messages delivered through the
   broker, not handed to a socket.

The full national network needs ~10,000 points/s into the TSDB (≈900 polls/s × ~11
points) and ~900 messages/s on the bus. Prints a summary and writes
bench/results/outputs.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._proc import machine, proc_cpu, proc_rss_mb  # noqa: E402
from collectors.outputs import MqttPublisher, TsdbWriter  # noqa: E402
from monitor.envelope import Event, EventType, Origin, Sample, Severity  # noqa: E402
from monitor.localservers import Mosquitto, VictoriaMetrics  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "outputs.json"
DEVICES = 500
INTERFACES = 8
SAMPLES_PER_POLL = 10


def interface_sample(i: int, base_ts: float) -> Sample:
    device = i // INTERFACES % DEVICES
    origin = Origin(device=f"muni-{device:05d}-rt1", site=f"muni-{device:05d}", prefecture="13", tier="municipality",
                    role="router")
    return Sample("interface", base_ts + i // (DEVICES * INTERFACES), origin,
                  {"in_bps": float(i % 1000) * 1e3, "out_bps": float(i % 777) * 1e3, "in_errors_ps": 0.0,
                   "out_errors_ps": 0.0, "in_discards_ps": 0.0, "oper_up": True, "admin_up": True,
                   "speed_bps": 100_000_000},
                  {"if_index": str(i % INTERFACES + 1)})


async def bench_tsdb(points: int, workdir: Path) -> dict[str, Any]:
    server = VictoriaMetrics(workdir / "vm")
    await asyncio.to_thread(server.start)
    try:
        writer = TsdbWriter(server.url, spool_dir=workdir / "spool", batch_size=5000, flush_interval=0.2)
        await writer.start()
        base_ts = time.time() - points // (DEVICES * INTERFACES) - 60
        samples = [interface_sample(i, base_ts) for i in range(points)]
        cpu0, began = time.process_time(), time.perf_counter()
        for start in range(0, points, 5000):  # the writer's buffer is bounded: hand it what it has room for
            while writer.stats()["pending"] > writer.max_pending - 5000:
                await asyncio.sleep(0.005)
            writer.write_many(samples[start:start + 5000])
            await asyncio.sleep(0)
        drained = await writer.drain(120)
        wall = time.perf_counter() - began
        cpu = time.process_time() - cpu0
        stats = writer.stats()
        await writer.stop()
        stored = sum(len(s["values"]) for s in await asyncio.to_thread(server.export, '{__name__=~"interface_.*"}'))
        tsdb_cpu = proc_cpu(server.proc.pid) if server.proc else None
    finally:
        await asyncio.to_thread(server.stop)
    return {"points": points, "fields_per_point": 8, "stored_field_values": stored,
            "expected_field_values": points * 8, "drained": drained, "wall_s": round(wall, 2),
            "points_per_s": round(points / wall), "writer_cpu_ms_per_1000_points": round(1000 * cpu / points * 1000, 1),
            "tsdb_cpu_s_total": tsdb_cpu, "writer_stats": stats}


async def bench_mqtt(polls: int, events: int, workdir: Path) -> dict[str, Any]:
    broker = Mosquitto(workdir / "mosquitto")
    await asyncio.to_thread(broker.start)
    try:
        total = polls + events
        consumer = subprocess.Popen(["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-V", "mqttv5",
                                     "-t", "jukimon/#", "-q", "1", "-C", str(total), "-W", "60", "-F", "%U"],
                                    stdout=(workdir / "received").open("w"))  # a pipe would fill and stall it
        await asyncio.sleep(0.5)  # subscribed before the first message
        publisher = MqttPublisher(broker.host, broker.port, client_id="bench-outputs", max_queue=total + 10)
        await publisher.start()
        base_ts = time.time()
        polls_samples = [[interface_sample(p * SAMPLES_PER_POLL + k, base_ts) for k in range(SAMPLES_PER_POLL)]
                         for p in range(min(polls, 2000))]
        event = Event(EventType.TRAP, base_ts, "bench", Origin(device="muni-00001-rt1", site="muni-00001"),
                      Severity.WARNING, "linkDown ifIndex 2", body={"trap": "linkDown"})
        cpu0, began = time.process_time(), time.perf_counter()
        for i in range(polls):
            publisher.publish_poll(polls_samples[i % len(polls_samples)])
            if i < events:
                publisher.publish(event)
            if i % 500 == 0:
                await asyncio.sleep(0)  # let the pump run, as between polls
        drained = await publisher.drain(120)
        publish_wall = time.perf_counter() - began
        publish_cpu = time.process_time() - cpu0
        await asyncio.to_thread(consumer.wait, 90)  # -W 60: it gives up by itself
        stamps = [float(line) for line in (workdir / "received").read_text().split()]  # %U: epoch at receipt
        await publisher.stop()
        broker_cpu = proc_cpu(broker.proc.pid) if broker.proc else None
    finally:
        await asyncio.to_thread(broker.stop)
    delivered = len(stamps)
    span = stamps[-1] - stamps[0] if delivered > 1 else 0.0
    return {"poll_messages": polls, "samples_per_message": SAMPLES_PER_POLL, "qos1_events": events,
            "published_and_acked": drained, "delivered": delivered, "lost": total - delivered,
            "publish_wall_s": round(publish_wall, 2), "delivered_span_s": round(span, 2),
            "messages_per_s_delivered": round(delivered / span) if span else None,
            "samples_per_s_delivered": round(polls * SAMPLES_PER_POLL / span) if span else None,
            "publisher_cpu_ms_per_1000_messages": round(1000 * publish_cpu / total * 1000, 1),
            "broker_cpu_s_total": broker_cpu, "publisher_stats": publisher.stats()}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="jukimon-bench-outputs-") as tmp:
        tsdb = await bench_tsdb(args.points, Path(tmp))
        mqtt = await bench_mqtt(args.polls, args.events, Path(tmp))
    return {"benchmark": "outputs", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine(),
            "tsdb": tsdb, "mqtt": mqtt, "process": proc_rss_mb()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=300_000, help="interface samples written to the TSDB")
    parser.add_argument("--polls", type=int, default=60_000, help="poll messages (10 samples each) published")
    parser.add_argument("--events", type=int, default=10_000, help="QoS-1 events published beside them")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    tsdb, mqtt = result["tsdb"], result["mqtt"]
    print(f"TSDB: {tsdb['points']} points ({tsdb['stored_field_values']}/{tsdb['expected_field_values']} field values "
          f"stored) in {tsdb['wall_s']} s: {tsdb['points_per_s']} points/s; writer "
          f"{tsdb['writer_cpu_ms_per_1000_points']} CPU-ms per 1,000 points")
    print(f"MQTT: {mqtt['delivered']} of {mqtt['poll_messages'] + mqtt['qos1_events']} messages delivered "
          f"through the broker, {mqtt['messages_per_s_delivered']} msg/s ({mqtt['samples_per_s_delivered']} "
          f"samples/s); publisher {mqtt['publisher_cpu_ms_per_1000_messages']} CPU-ms per 1,000 messages")
    print(f"written {args.output}")
    return 0 if tsdb["stored_field_values"] == tsdb["expected_field_values"] and mqtt["lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
