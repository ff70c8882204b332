"""Outage: the TSDB down for 10 minutes of polling — every point spooled, and stored afterwards once, in order.

The feed is what the collectors produce for the small inventory at their real
cadence (lines and firewalls every 10 s, servers every 30 s; per poll the
converter's shapes: system, one sample per port, host, storage on servers, the
poll outcome), 12 minutes of sample time: 1 minute with VictoriaMetrics up, 10
minutes with its process stopped, 1 minute after its restart. The clock is
accelerated (30×) so it runs in seconds; the server is really down for the
whole 10 minutes of samples. The writer has the main job's settings.

VictoriaMetrics runs here *without* deduplication, so a point sent twice would
be stored twice and counted. It sorts what it stores, so the order in which
points were sent is checked where it is decided: the spool's segments, which
are sent oldest first (tests/test_outputs_tsdb.py checks that order on the wire).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterator

import pytest

from collectors.outputs.tsdb import TsdbWriter
from monitor.config import CollectorSettings
from monitor.envelope import Origin, Sample
from monitor.inventory.model import Device, Inventory
from tests.servers import VictoriaMetrics, victoria_metrics_server

pytest.importorskip("influxdb_client")

T0 = 1_700_000_000.0  # sample time of the first poll (the server keeps 100 years)
SPEED = 30.0  # sample seconds per wall second
BEFORE_S, OUTAGE_S, AFTER_S = 60.0, 600.0, 60.0
SERVER_ROLES = frozenset({"cs", "cs_recovery", "national_server", "agency_server", "prefecture_unit"})
Key = tuple[str, tuple[tuple[str, str], ...]]


class VictoriaMetricsKeepingDuplicates(VictoriaMetrics):
    """The private server without ``-dedup.minScrapeInterval``: a point written twice is stored twice."""

    def command(self) -> list[str]:
        return [arg for arg in super().command() if not arg.startswith("-dedup.")]


@pytest.fixture
def vm(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    with victoria_metrics_server(tmp_path, VictoriaMetricsKeepingDuplicates) as server:
        yield server


def poll_samples(device: Device, ts: float, n: int) -> list[Sample]:
    """The samples of the ``n``-th poll of ``device``, shaped as collectors/snmp/samples.py makes them."""
    origin = Origin(device.id, device.site, device.prefecture, None, device.role.value)
    samples = [Sample("poll", ts, origin, {"ok": True, "rtt_ms": float(n % 50)}),
               Sample("system", ts, origin, {"uptime_s": 100_000.0 + 10 * n, "rtt_ms": float(n % 50)}),
               Sample("host", ts, origin, {"cpu_pct": float(n % 100), "cpu_max_pct": float(n % 100)})]
    ports = 1 if device.role.value in SERVER_ROLES else 2
    samples += [Sample("interface", ts, origin, {"oper_status": 1, "in_bps": 1000.0 * n + port,
                                                 "out_bps": 500.0 * n}, {"if_index": str(port)})
                for port in range(1, ports + 1)]
    if device.role.value in SERVER_ROLES:
        samples.append(Sample("storage", ts, origin, {"used_pct": float(n % 90), "used_bytes": 1_000_000 * n},
                              {"storage": "/"}))
    return samples


def schedule(inventory: Inventory, until: float) -> list[tuple[float, Device, int]]:
    """Every poll of the inventory up to ``until`` sample seconds, by time; first polls spread over the interval."""
    settings = CollectorSettings()
    polls = []
    devices = list(inventory.polled_devices())
    for i, device in enumerate(devices):
        interval = settings.interval_for(device.id, device.role)
        first = interval * i / len(devices)
        n = 0
        while first + n * interval < until:
            polls.append((T0 + first + n * interval, device, n))
            n += 1
    polls.sort(key=lambda p: (p[0], p[1].id))
    return polls


def expected_points(samples: list[Sample]) -> dict[Key, list[tuple[int, float]]]:
    out: dict[Key, list[tuple[int, float]]] = defaultdict(list)
    for s in samples:
        labels = tuple(sorted((k, str(v)) for k, v in s.all_tags().items() if v not in (None, "")))
        for name, value in s.fields.items():
            out[(f"{s.measurement}_{name}", labels)].append((round(s.ts * 1e6) // 1000, float(value)))  # µs sent, ms kept
    return out


async def feed(writer: TsdbWriter, polls: list[tuple[float, Device, int]], start: float, end: float,
               sent: list[Sample]) -> None:
    """Write the polls of sample time [start, end) as the scheduler would, ``SPEED`` times faster than real time."""
    due = [p for p in polls if T0 + start <= p[0] < T0 + end]
    began = time.monotonic()
    i = 0
    while i < len(due):
        now = T0 + start + (time.monotonic() - began) * SPEED
        while i < len(due) and due[i][0] <= now:
            ts, device, n = due[i]
            for sample in poll_samples(device, ts, n):
                assert writer.write(sample)
                sent.append(sample)
            i += 1
        await asyncio.sleep(0.02)


def spooled_order(spool_dir: Path) -> dict[str, list[int]]:
    """Per series (line-protocol prefix), the timestamps in the order the spool will send them."""
    order: dict[str, list[int]] = defaultdict(list)
    for segment in sorted(spool_dir.glob("*.lp")):
        for line in segment.read_text().splitlines():
            series, _fields, ts = line.rsplit(" ", 2)
            order[series].append(int(ts))
    return order


async def test_ten_minutes_without_the_tsdb_lose_nothing(small_inventory: Inventory, vm: VictoriaMetrics,
                                                         tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="collectors.outputs.tsdb")
    polls = schedule(small_inventory, BEFORE_S + OUTAGE_S + AFTER_S)
    spool_dir = tmp_path / "spool" / "tsdb"
    writer = TsdbWriter(vm.url, spool_dir=spool_dir)  # the main job's settings (monitor/mainjob.py)
    sent: list[Sample] = []
    await writer.start()
    try:
        await feed(writer, polls, 0, BEFORE_S, sent)
        assert await writer.drain(30)
        before = len(sent)

        await asyncio.to_thread(vm.stop)
        down_at = time.monotonic()
        await feed(writer, polls, BEFORE_S, BEFORE_S + OUTAGE_S, sent)
        await asyncio.sleep(1.5)  # the last batch is cut and fails too
        during = len(sent) - before
        stats = writer.stats()
        assert stats["failing"] and stats["spooled"] == during and stats["lost"] == 0
        order = spooled_order(spool_dir)
        assert sum(len(v) for v in order.values()) == during
        for series, stamps in order.items():
            assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps), f"{series} out of order"
        await asyncio.to_thread(vm.start)  # same port, same data directory
        restarted = time.monotonic()
        down_s = restarted - down_at

        await feed(writer, polls, BEFORE_S + OUTAGE_S, BEFORE_S + OUTAGE_S + AFTER_S, sent)
        assert await writer.drain(90), writer.stats()
        caught_up_s = time.monotonic() - restarted
        stats = writer.stats()
    finally:
        await writer.stop()

    assert stats["written"] + stats["backfilled"] == len(sent)
    # New data queues behind the spool until the first retry finds the server back.
    assert stats["backfilled"] >= during and stats["dropped"] == 0 and stats["lost"] == 0
    assert not list(spool_dir.glob("*.lp"))
    stored = await asyncio.to_thread(vm.points)
    expected = expected_points(sent)
    assert set(stored) == set(expected)
    for key, points in expected.items():  # every point once, exact time and value, in time order
        assert stored[key] == points, key
    sample_span = (max(s.ts for s in sent[before:before + during]) - min(s.ts for s in sent[before:before + during]))
    assert sample_span >= OUTAGE_S - 10
    messages = Counter(r.getMessage() for r in caplog.records)
    assert messages["tsdb write failing, spooling"] == 1 and messages["tsdb write recovered"] == 1
    assert messages["tsdb spool drained"] == 1
    points = sum(len(v) for v in expected.values())
    print(f"\n{len(polls)} polls, {len(sent)} samples ({len(sent) / (BEFORE_S + OUTAGE_S + AFTER_S):.0f}/s of sample "
          f"time), {points} points in {len(expected)} series; {during} samples spooled over {sample_span:.0f} s of "
          f"sample time with the server down {down_s:.1f} s; all stored once {caught_up_s:.1f} s after the restart")
