"""TsdbWriter: line protocol, exact read-back from VictoriaMetrics, outages, spool resume, bad input.

VictoriaMetrics (private process) shows what a real server stored: every point once, exact
values, tags and timestamps. It sorts by time, so the *order* of arrival is checked against a
recording InfluxDB-v2 endpoint (tests/servers.py) that can also stage 503s and 400s.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from collectors.outputs.spool import Spool, SpoolLocked
from collectors.outputs.tsdb import RejectedSample, TsdbWriter, to_line
from monitor.envelope import Origin, Sample
from tests.servers import (RecordingWriteServer, VictoriaMetrics, free_port, recording_write_server,
                           victoria_metrics_server)

pytest.importorskip("influxdb_client")

REPO = Path(__file__).resolve().parent.parent
T0 = 1_600_000_000.0  # years back: VictoriaMetrics runs with -retentionPeriod=100y
CS1 = Origin(device="muni-01-002-cs1", site="muni-01-002", prefecture="01", tier="municipality", role="cs")
LABELS_CS1 = (("device", "muni-01-002-cs1"), ("if_index", "1"), ("prefecture", "01"), ("role", "cs"),
              ("site", "muni-01-002"), ("tier", "municipality"))


def point(i: int, origin: Origin = CS1, if_index: str = "1") -> Sample:
    """Sample number ``i``: 10 s apart with a millisecond part, values derived from ``i``."""
    return Sample("interface", T0 + 10 * i + 0.123, origin,
                  {"in_bps": 100_000.0 + i * 0.25, "in_octets": 10_000 * i, "up": i % 2 == 0}, {"if_index": if_index})


def ts_ms(i: int) -> int:
    return int(T0 * 1000) + 10_000 * i + 123


@pytest.fixture
def vm(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    with victoria_metrics_server(tmp_path) as server:
        yield server


@pytest.fixture
def recorder() -> Iterator[RecordingWriteServer]:
    with recording_write_server() as server:
        yield server


def writer(url: str, spool_dir: Path, **options: object) -> TsdbWriter:
    defaults: dict = dict(batch_size=100, flush_interval=0.05, backoff_initial=0.05, backoff_max=0.3, timeout=2.0)
    return TsdbWriter(url, spool_dir=spool_dir, **{**defaults, **options})


async def write_paced(w: TsdbWriter, samples: list[Sample], per_tick: int = 50) -> None:
    """Write like a poller does: a burst per tick, the loop free in between."""
    for start in range(0, len(samples), per_tick):
        for s in samples[start:start + per_tick]:
            assert w.write(s)
        await asyncio.sleep(0.01)


def assert_exactly_once(vm: VictoriaMetrics, indices: range) -> None:
    """Every sample of ``indices`` stored once, with its exact timestamp and values."""
    stored = vm.points('{__name__=~"interface_.*", device="muni-01-002-cs1"}')
    assert set(stored) == {("interface_in_bps", LABELS_CS1), ("interface_in_octets", LABELS_CS1),
                           ("interface_up", LABELS_CS1)}
    assert stored[("interface_in_bps", LABELS_CS1)] == [(ts_ms(i), 100_000.0 + i * 0.25) for i in indices]
    assert stored[("interface_in_octets", LABELS_CS1)] == [(ts_ms(i), 10_000 * i) for i in indices]
    assert stored[("interface_up", LABELS_CS1)] == [(ts_ms(i), 1 if i % 2 == 0 else 0) for i in indices]


# --- line protocol ----------------------------------------------------------------------------------


def test_line_protocol_escaping_and_types() -> None:
    odd = Origin(device="a b,c=d\\", site="札幌市", tier="")
    sample = Sample("cpu load,x", 1_700_000_000.5, odd,
                    {"f x": 1, "s": 'say "hi"\\\nbye', "b": True, "fl": 2.0, "neg": -3, "big": 1e300},
                    {"if_alias": "line\n2", "empty": ""})
    assert to_line(sample) == (
        'cpu\\ load\\,x,device=a\\ b\\,c\\=d\\\\,if_alias=line\\n2,site=札幌市 '
        'f\\ x=1i,s="say \\"hi\\"\\\\\\nbye",b=true,fl=2.0,neg=-3i,big=1e+300 1700000000500000000')
    # Microsecond quantisation: no float noise in the nanosecond timestamp.
    assert to_line(Sample("m", 1_700_000_000.123456, Origin(), {"v": 1.0})).endswith(" 1700000000123456000")


def test_bad_fields_dropped_bad_samples_rejected() -> None:
    problems: list[str] = []
    line = to_line(Sample("m", 1.0, CS1, {"nan": math.nan, "inf": -math.inf, "": 1, "huge": 1 << 70,
                                          "obj": object(), "ok": 3}), problems)  # type: ignore[dict-item]
    assert line.split(" ")[1] == "ok=3i"
    assert len(problems) == 5 and any("non-finite" in p for p in problems)
    for bad, reason in [(Sample("m", 1.0, CS1, {"v": math.nan}), "no usable field"),
                        (Sample("m", 1.0, CS1, {}), "no fields"),
                        (Sample("", 1.0, CS1, {"v": 1}), "empty measurement"),
                        (Sample("#m", 1.0, CS1, {"v": 1}), "comment"),
                        (Sample("m", math.inf, CS1, {"v": 1}), "timestamp")]:
        with pytest.raises(RejectedSample, match=reason):
            to_line(bad)


# --- against VictoriaMetrics ------------------------------------------------------------------------


async def test_points_read_back_exactly(vm: VictoriaMetrics, tmp_path: Path) -> None:
    weird = Origin(device="dev with space,comma=eq\\back", site="札幌市", prefecture="01", tier="municipality")
    w = writer(vm.url, tmp_path / "spool", batch_size=64)
    await w.start()
    await write_paced(w, [point(i) for i in range(500)])
    assert w.write(Sample("interface", T0, weird, {"in_bps": 1.5}, {"if_name": 'ge-0/0/0 "uplink"'}))
    await w.stop()
    stats = w.stats()
    assert stats["written"] == 501 and stats["spooled"] == 0 and stats["failures"] == 0
    assert_exactly_once(vm, range(500))
    stored = vm.points('{__name__="interface_in_bps", site="札幌市"}')
    assert stored == {("interface_in_bps", (("device", "dev with space,comma=eq\\back"), ("if_name", 'ge-0/0/0 "uplink"'),
                                            ("prefecture", "01"), ("site", "札幌市"), ("tier", "municipality"))):
                      [(int(T0 * 1000), 1.5)]}


async def test_outage_spools_then_backfills_everything_once(vm: VictoriaMetrics, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="collectors.outputs.tsdb")
    w = writer(vm.url, tmp_path / "spool")
    await w.start()
    try:
        await write_paced(w, [point(i) for i in range(300)])
        assert await w.drain(10)
        await asyncio.to_thread(vm.stop)
        await write_paced(w, [point(i) for i in range(300, 1300)])  # ~0.2 s of polling into a dead server
        await asyncio.sleep(0.5)  # a few retries against the closed port
        assert await w.drain(0.2) is False
        stats = w.stats()
        assert stats["failing"] and stats["spooled"] == 1000 and stats["spool_segments"] >= 10
        assert stats["failures"] >= 2
        await asyncio.to_thread(vm.start)  # same port, same data directory
        await write_paced(w, [point(i) for i in range(1300, 1500)])  # new data queues behind the spool
        assert await w.drain(30)
        stats = w.stats()
        assert not stats["failing"] and stats["backfilled"] == stats["spooled"]
        assert stats["written"] + stats["backfilled"] == 1500 and stats["dropped"] == 0
    finally:
        await w.stop()
    assert_exactly_once(vm, range(1500))
    assert not list((tmp_path / "spool").glob("*.lp"))
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("tsdb write failing, spooling") == 1  # once per outage, not per attempt
    assert messages.count("tsdb write recovered") == 1
    assert messages.count("tsdb spool drained") == 1


async def test_spool_of_a_killed_writer_is_resumed(vm: VictoriaMetrics, tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    script = f"""
import asyncio, sys, time
sys.path.insert(0, {str(REPO)!r})
from pathlib import Path
from tests.test_outputs_tsdb import point, writer
async def main():
    w = writer("http://127.0.0.1:{free_port()}", Path({str(spool_dir)!r}), backoff_initial=60)
    await w.start()
    for i in range(1000):
        w.write(point(i))
    while w.stats()["spooled"] < 1000:
        await asyncio.sleep(0.01)
    print("SPOOLED", flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=REPO)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)  # type: ignore[union-attr]
        assert line.strip() == b"SPOOLED"
        with pytest.raises(SpoolLocked):  # the live writer owns its spool
            Spool(spool_dir).open()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert len(list(spool_dir.glob("*.lp"))) == 10
    w = writer(vm.url, spool_dir)
    await w.start()
    try:
        assert w.stats()["spool_segments"] == 10
        assert await w.drain(30)
        assert w.stats()["backfilled"] == 1000 and w.stats()["written"] == 0
    finally:
        await w.stop()
    assert_exactly_once(vm, range(1000))


# --- against the recording endpoint: order, poison batches, limits ----------------------------------


async def test_backfill_in_order_before_new_data(recorder: RecordingWriteServer, tmp_path: Path) -> None:
    w = writer(recorder.url, tmp_path / "spool")
    await w.start()
    samples = [point(i) for i in range(2000)]
    try:
        await write_paced(w, samples[:200])
        assert await w.drain(10)
        recorder.status = 503
        await write_paced(w, samples[200:1200])
        await asyncio.sleep(0.3)
        assert w.stats()["spooled"] == 1000
        recorder.status = 204
        await write_paced(w, samples[1200:1600])  # arrives while the spool drains
        assert await w.drain(30)
        await write_paced(w, samples[1600:1800])
        recorder.status = 503
        await write_paced(w, samples[1800:])
    finally:
        await w.stop(timeout=0.5)  # server still failing: the tail stays in the spool
    assert len(list((tmp_path / "spool").glob("*.lp"))) >= 1
    recorder.status = 204
    w = writer(recorder.url, tmp_path / "spool")  # a restarted process resumes the spool
    await w.start()
    assert await w.drain(10)
    await w.stop()
    assert recorder.lines() == [to_line(s) for s in samples]  # all, once, in production order


async def test_poison_batch_is_not_retried(recorder: RecordingWriteServer, tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    w = writer(recorder.url, tmp_path / "spool", batch_size=1000)
    await w.start()
    try:
        recorder.status = 400
        await write_paced(w, [point(i) for i in range(10)])
        await asyncio.sleep(0.3)
        assert recorder.requests == 1 and w.stats()["lost"] == 10 and w.stats()["spool_segments"] == 0
        assert "tsdb rejected a batch, not retrying" in caplog.text
        recorder.status = 204
        await write_paced(w, [point(i) for i in range(10, 20)])
        assert await w.drain(5)
    finally:
        await w.stop()
    assert recorder.lines() == [to_line(point(i)) for i in range(10, 20)]


async def test_full_spool_refuses_with_one_log_line(recorder: RecordingWriteServer, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="collectors.outputs.tsdb")
    three_batches = sum(len("\n".join(to_line(point(i)) for i in range(k, k + 100))) for k in (0, 100, 200))
    w = writer(recorder.url, tmp_path / "spool", spool_max_bytes=three_batches + 100,
               flush_interval=60)  # only full batches of 100: deterministic segment sizes
    await w.start()
    try:
        recorder.status = 503
        await write_paced(w, [point(i) for i in range(1000)])
        await asyncio.sleep(0.2)
        stats = w.stats()
        assert stats["spool_segments"] == 3 and stats["spooled"] == 300 and stats["dropped"] == 700
        assert stats["spool_bytes"] == three_batches
        recorder.status = 204
        assert await w.drain(10)
        await write_paced(w, [point(i) for i in range(1000, 1100)])
        assert await w.drain(10)
    finally:
        await w.stop()
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("tsdb spool full, refusing batches") == 1
    assert recorder.lines() == [to_line(point(i)) for i in [*range(300), *range(1000, 1100)]]


async def test_bad_samples_never_crash_the_writer(recorder: RecordingWriteServer, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    w = writer(recorder.url, tmp_path / "spool")
    await w.start()
    rng = random.Random(7)
    alphabet = ' ,="\\\n\t#/+日本\x00aZ'
    try:
        bad = [Sample("m", 1.0, CS1, {"v": math.nan}), Sample("m", 1.0, CS1, {}),
               Sample("m", math.nan, CS1, {"v": 1.0}), Sample("", 1.0, CS1, {"v": 1.0}),
               Sample("m", 1.0, CS1, None),  # type: ignore[arg-type]
               Sample("m", "yesterday", CS1, {"v": 1.0})]  # type: ignore[arg-type]
        for sample in bad:
            assert not w.write(sample)
        odd = [Sample("m", T0 + i, Origin(device="".join(rng.choice(alphabet) for _ in range(12))),
                      {"v": float(i), "bad": math.inf}, {"x": "".join(rng.choice(alphabet) for _ in range(8))})
               for i in range(200)]
        for sample in odd:
            assert w.write(sample)
        assert await w.drain(5)
        stats = w.stats()
        assert stats["rejected"] == len(bad) and stats["dropped_fields"] == 200 and stats["written"] == 200
    finally:
        await w.stop()
    assert recorder.lines() == [to_line(s) for s in odd]
    assert all("\n" not in line and " bad=" not in line for line in recorder.lines())
    reasons = [r.fields["reason"] for r in caplog.records if r.getMessage() == "tsdb sample rejected"]
    assert len(reasons) == 6 and any("malformed" in r for r in reasons)
    assert sum(r.getMessage() == "tsdb field dropped" for r in caplog.records) == 1  # once per kind


def test_spool_survives_partial_writes(tmp_path: Path) -> None:
    """A batch half-written when the process died (``.tmp``) is discarded; complete segments are kept in order."""
    spool = Spool(tmp_path)
    spool.open()
    for i in range(3):
        spool.append(f"m v={i}i {i}".encode())
    spool.close()
    (tmp_path / "0000000000000004.tmp").write_bytes(b"m v=4i")
    spool = Spool(tmp_path)
    spool.open()
    assert len(spool) == 3 and not list(tmp_path.glob("*.tmp"))
    got = []
    while (item := spool.oldest()) is not None:
        got.append(item[1])
        spool.remove(item[0])
    assert got == [b"m v=0i 0", b"m v=1i 1", b"m v=2i 2"] and spool.bytes == 0
    assert spool.append(b"m v=5i 5").seq == 4  # numbering continues
    spool.close()
