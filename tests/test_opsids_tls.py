"""Audit records over TLS syslog (RFC 5425) from the simulation: the same alerts as from a file; bad input counted."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import ssl

from ids.operations import OperationsIds, OpsIdsSettings
from ids.operations.tls_ingest import AuditListener
from monitor.inventory import default_inventory
from simnet.audit_stream import AuditStream, send_tls
from tests.test_syslog_listener import tls_contexts

DAY = dt.date(2026, 12, 7)
KEY = OpsIdsSettings(pseudonym_key_id="t", pseudonym_keys={"t": "test-key-0123456789"})


def stream_lines() -> list[str]:
    stream = AuditStream(default_inventory(), seed=4, sites=[f"muni-01-{m:03d}" for m in range(1, 41)])
    return list(stream.lines(DAY, 1, stream.plan_scenarios(DAY, 1, per_type=1)))


async def listening(server: ssl.SSLContext) -> tuple[AuditListener, list]:
    alerts: list = []
    listener = AuditListener(OperationsIds(default_inventory(), KEY), alerts.append, "127.0.0.1", 0, server)
    await listener.start()
    return listener, alerts


async def test_records_sent_over_tls_raise_the_alerts_the_file_raises(tmp_path):
    server, client = tls_contexts(tmp_path)
    lines = stream_lines()
    from_file = [a.as_dict() for a in OperationsIds(default_inventory(), KEY).feed(lines)]
    listener, alerts = await listening(server)
    try:
        assert await send_tls(lines, *listener.address, client) == len(lines)
        for _ in range(500):
            if listener.stats().get("messages") == len(lines):
                break
            await asyncio.sleep(0.02)
    finally:
        await listener.stop()
    assert listener.stats()["messages"] == len(lines)
    assert len(from_file) >= 7 and [a.as_dict() for a in alerts] == from_file


async def test_bad_messages_are_counted_without_their_content_and_a_bad_frame_closes_the_stream(tmp_path, caplog):
    server, client = tls_contexts(tmp_path)
    listener, _ = await listening(server)
    record = json.loads(stream_lines()[5])
    record["resident"] = "86420975311"
    try:
        with caplog.at_level(logging.DEBUG):
            _, writer = await asyncio.open_connection(*listener.address, ssl=client)
            for message in (b"no syslog header 86420975311",
                            b"<110>1 - - jukimon-audit - - - " + json.dumps({**record, "ts": "x"}).encode(),
                            b"<110>1 - - jukimon-audit - - - " + json.dumps(record).encode()):
                writer.write(b"%d %s" % (len(message), message))
            writer.write(b"99999999 86420975311")
            await writer.drain()
            for _ in range(500):
                if listener.stats().get("bad_frame"):
                    break
                await asyncio.sleep(0.02)
            writer.close()
    finally:
        await listener.stop()
    assert listener.stats() == {"messages": 3, "no_pri": 1, "bad_frame": 1, "record_bad_ts": 1}
    assert listener.ids.ingestor.accepted == 1
    logged = caplog.text + repr([getattr(r, "fields", None) for r in caplog.records])
    assert "86420975311" not in logged and "'reason': 'no_pri'" in logged
