"""Hostile input, bounded for CI: every parser and entry point of fuzz/ with a few hundred generated cases,
every saved regression input, and the listeners that must outlive whatever their senders do.

The long run is ``python -m fuzz --cases 100000`` (fuzz/README.md).
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest

from collectors.snmp.traps import TrapListener
from collectors.syslog.listener import SyslogListener
from fuzz import all_targets
from fuzz.core import Rejected, Target, corpus_files, decode_input, examples, run_case, run_target
from fuzz.logs import operations_ids
from fuzz.snmp import CREDENTIALS
from fuzz.targets_common import small_inventory
from ids.operations.tls_ingest import AuditListener
from monitor.envelope import Event
from tests.test_syslog_listener import tls_contexts

TARGETS = all_targets()
# Cases per target in CI: the fast parsers a few hundred; HTTP round trips, files and scrypt logins fewer.
CI_CASES = {"console_login": 12, "console_forms": 80, "console_pages": 80}
FAST, SLOW = 300, 120


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_no_crash_no_hang_and_every_rejection_has_a_reason(name: str) -> None:
    target = TARGETS[name]
    cases = CI_CASES.get(name, SLOW if target.slow else FAST)
    tally = run_target(target, cases, first_seed=11, save_crashes=False)
    assert tally.cases == cases
    assert dict(tally.crashes) == {} and tally.hangs == 0
    assert tally.accepted + sum(tally.rejected.values()) == cases
    assert all(reason and reason != "<no reason>" for reason in tally.rejected)


@pytest.mark.parametrize("name", sorted(n for n, t in TARGETS.items() if t.corpus))
def test_every_corpus_file_and_saved_regression_is_judged_without_a_crash(name: str) -> None:
    target: Target = TARGETS[name]
    files = corpus_files(target)
    assert files, f"fuzz/corpus/{target.corpus} is empty"
    for path in files:
        outcome, failure, _ = run_case(target, decode_input(path, target), target.deadline)
        assert failure is None, f"{path.name}: {failure}"
        assert not isinstance(outcome, Rejected) or outcome.reason, path.name


def test_a_crash_is_classified_with_its_place_and_a_hang_by_the_deadline() -> None:
    def crash(data: bytes) -> Rejected:
        return Rejected(str(data[10]))

    def hang(data: bytes) -> Rejected:
        while True:
            pass

    _, failure, _ = run_case(Target("t", "test", None, crash), b"short", 1.0)  # type: ignore[arg-type]
    assert failure is not None and failure.startswith("CRASH IndexError at tests/test_fuzz.py:")
    _, failure, took = run_case(Target("t", "test", None, hang), b"", 0.2)  # type: ignore[arg-type]
    assert failure == "HANG" and took < 2.0


# --- the listeners outlive hostile senders ----------------------------------------------------------

async def _until(condition, seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.02)


async def test_trap_listener_survives_authenticated_hostile_traps_and_counts_each() -> None:
    """Validly signed and encrypted v3 traps with broken insides and the saved crash inputs, over UDP."""
    hostile = examples(TARGETS["snmp_trap_v3"].strategy, 150, chunk_seed=3)
    hostile += [p.read_bytes() for p in corpus_files(TARGETS["snmp_trap_v3"])]
    valid = (Path(__file__).parent.parent / "fuzz" / "corpus" / "snmp_trap" / "linkdown-v2c.bin").read_bytes()
    events: list[Event] = []
    listener = TrapListener(events.append, small_inventory(), CREDENTIALS)
    host, port = await listener.start("127.0.0.1", 0)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i, datagram in enumerate(hostile):
                s.sendto(datagram, (host, port))
                if i % 20 == 0:
                    await asyncio.sleep(0.01)  # let the loop read: the receive buffer is finite
            s.sendto(valid, (host, port))
        await _until(lambda: sum(listener.stats.values()) == len(hostile) + 1)
        assert listener._socket is not None and listener._socket.socket.fileno() >= 0
        assert events and events[-1].body["trap"] == "linkDown"
    finally:
        await listener.stop()


async def test_syslog_listener_survives_hostile_lines_on_udp_and_tcp_without_internal_errors() -> None:
    lines = examples(TARGETS["syslog_line"].strategy, 150, chunk_seed=5)
    lines += examples(TARGETS["firewall_line"].strategy, 100, chunk_seed=5)
    lines = [line[:4000] for line in lines if b"\n" not in line and line.strip()]
    events: list[Event] = []
    listener = SyslogListener(events.append, small_inventory(), udp=("127.0.0.1", 0), tcp=("127.0.0.1", 0))
    await listener.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i, line in enumerate(lines):
                s.sendto(line, listener.address("udp"))
                if i % 20 == 0:
                    await asyncio.sleep(0.01)
        _, writer = await asyncio.open_connection(*listener.address("tcp"))
        writer.write(b"".join(b"%d %s" % (len(line), line) for line in lines) + b"13 <13>hello tcp")
        await writer.drain()
        await _until(lambda: any(e.message == "hello tcp" for e in events))
        writer.close()
        stats = listener.stats()
        assert stats.get("internal_error", 0) == 0 and stats.get("callback_error", 0) == 0
        assert stats["received"] >= len(lines) + 1  # every TCP frame; UDP may drop under load
    finally:
        await listener.stop()


async def test_audit_tls_listener_survives_hostile_records_and_still_ingests(tmp_path: Path) -> None:
    frames = examples(TARGETS["audit_tls_message"].strategy, 150, chunk_seed=7)
    frames = [f for f in frames if 0 < len(f) <= 60_000]
    valid = (Path(__file__).parent.parent / "fuzz" / "corpus" / "audit_tls" / "lookup.txt").read_bytes()
    server, client = tls_contexts(tmp_path)
    ids = operations_ids()
    alerts: list = []
    listener = AuditListener(ids, alerts.append, "127.0.0.1", 0, server)
    await listener.start()
    accepted = ids.ingestor.accepted
    try:
        _, writer = await asyncio.open_connection(*listener.address, ssl=client)
        writer.write(b"".join(b"%d %s" % (len(f), f) for f in [*frames, valid]))
        await writer.drain()
        await _until(lambda: listener.stats().get("messages", 0) >= len(frames) + 1)
        writer.close()
        assert ids.ingestor.accepted > accepted  # the valid record after all the hostile ones
        _, writer = await asyncio.open_connection(*listener.address, ssl=client)  # and it still listens
        writer.write(b"%d %s" % (len(valid), valid))
        await writer.drain()
        await _until(lambda: listener.stats()["messages"] >= len(frames) + 2)
        writer.close()
    finally:
        await listener.stop()
    assert "bad_frame" not in listener.stats()


def test_cli_replays_a_saved_input_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fuzz.__main__ import main

    out = tmp_path / "fuzz.json"
    assert main(["--cases", "50", "--target", "syslog_line", "--json", str(out), "--seed", "1"]) == 0
    row = json.loads(out.read_text(encoding="utf-8"))["targets"][0]
    assert row["target"] == "syslog_line" and row["cases"] == 50 and row["crashes"] == {} and row["hangs"] == 0
    assert "syslog_line" in capsys.readouterr().out
    regression = corpus_files(TARGETS["cascade_report_payload"])[0]
    assert main(["--target", "cascade_report_payload", "--replay", str(regression)]) == 0
    assert "Rejected(reason='not_verified')" in capsys.readouterr().out


