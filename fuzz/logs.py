"""Syslog lines (collectors/syslog), firewall traffic logs, and audit records (ids/operations).

The syslog targets call the parser and the event conversion exactly as
``SyslogListener`` does for every datagram or frame; the audit targets go through
the operations IDS's ingestion, and over TLS syslog as ``AuditListener`` does.
"""

from __future__ import annotations

import json
import time
from functools import lru_cache
from typing import Any

from hypothesis import strategies as st

from collectors.syslog.firewall import to_event
from collectors.syslog.parse import MAX_LENGTH, SyslogError, parse_syslog
from fuzz.core import Accepted, Outcome, Rejected, Target
from fuzz.mutate import JSON_VALUES, corpus_text, mutated_bytes, mutated_object, mutated_text, seeds_and_mutants
from fuzz.targets_common import small_inventory
from ids.operations import OperationsIds, OpsIdsSettings
from ids.operations.tls_ingest import MAX_FRAME

RECEIVED = 1_764_640_000.0  # 2025-12-02: fixed, so that a replayed case behaves the same
PEER = "127.0.0.1"


def syslog_message(data: bytes) -> Outcome:
    """One datagram or frame, as SyslogListener handles it: parse, then the event."""
    try:
        msg = parse_syslog(data, received=RECEIVED, peer=PEER, max_length=MAX_LENGTH)
    except SyslogError as exc:
        return Rejected(exc.reason)
    to_event(msg, small_inventory())
    return Accepted()


_PRI = st.integers(0, 191).map(lambda p: f"<{p}>")
_HEADERS = st.sampled_from(["1 2026-12-02T10:00:00+09:00 host app - - - ", "1 - - - - - ", "Dec  2 10:00:00 host ",
                            "Dec 02 2026 10:00:00 host : ", "2026-12-02T10:00:00Z host ", "7: host: *Dec  2 01:00:00.1 UTC: ",
                            ""])


@st.composite
def _firewall_line(draw: st.DrawFn) -> bytes:
    """A vendor line (header kept or swapped), with fields mutated: deep into the vendor regexes."""
    seed = draw(st.sampled_from(corpus_text("firewall")))
    if draw(st.booleans()):
        body = seed.split(">", 1)[1]
        seed = draw(_PRI) + draw(_HEADERS) + body.split(": ", 1)[-1] if draw(st.booleans()) else seed
    return draw(mutated_text(st.just(seed))).encode("utf-8", "surrogatepass")


@lru_cache(maxsize=1)
def operations_ids() -> OperationsIds:
    return OperationsIds(small_inventory(), OpsIdsSettings(pseudonym_key_id="fuzz",
                                                           pseudonym_keys={"fuzz": "fuzz-pseudonym-key-0123456789"}))


def audit_line(line: str | bytes) -> Outcome:
    """One audit record line through ingestion and the detectors (a replayed file or a TLS message)."""
    ids = operations_ids()
    before = ids.ingestor.rejected.copy()
    event = ids.ingestor.ingest_line(line, "fuzz")
    if event is None:
        changed = ids.ingestor.rejected - before
        return Rejected(next(iter(changed), ""))
    ids.engine.observe(event)
    return Accepted()


def audit_object(raw: Any) -> Outcome:
    """A decoded JSON value as a record: what the line becomes after json.loads."""
    return audit_line(json.dumps(raw, allow_nan=True))


def audit_frame(frame: bytes) -> Outcome:
    """One octet-counted TLS frame's content, as AuditListener handles it."""
    try:
        msg = parse_syslog(frame, received=time.time(), peer=PEER, max_length=MAX_FRAME, firewall=False)
    except SyslogError as exc:
        return Rejected(f"syslog_{exc.reason}")
    return audit_line(msg.message)


def _record_objects() -> st.SearchStrategy[Any]:
    seeds = [json.loads(s) for s in corpus_text("audit_record")]
    return mutated_object(st.sampled_from(seeds))


def targets() -> list[Target]:
    syslog_text = st.one_of(seeds_and_mutants("syslog"),
                            st.builds(lambda pri, head, text: (pri + head + text).encode("utf-8", "surrogatepass"),
                                      _PRI, _HEADERS, st.text(max_size=200)),
                            mutated_bytes(st.builds(lambda p, h: (p + h + "x").encode(), _PRI, _HEADERS)))
    nested = st.integers(1, 5_000).map(lambda depth: "[" * depth + "]" * depth)
    return [
        Target("syslog_line", "logs", syslog_text, syslog_message,
               "RFC 5424/3164/Cisco lines through parse_syslog and to_event (the listeners' path)", corpus="syslog"),
        Target("firewall_line", "logs", _firewall_line(), syslog_message,
               "ASA, FortiGate, SRX, PAN-OS and netfilter traffic logs, fields mutated (collectors/syslog/firewall.py)",
               corpus="firewall"),
        Target("audit_record", "logs", st.one_of(_record_objects(), JSON_VALUES), audit_object,
               "audit records as JSON values: wrong types, missing and extra keys (ids/operations/records.py)"),
        Target("audit_line", "logs", st.one_of(mutated_text(st.sampled_from(corpus_text("audit_record"))), nested,
                                               st.binary(max_size=200)), audit_line,
               "audit record lines as bytes or text: broken JSON, deep nesting, bad UTF-8", corpus="audit_record"),
        Target("audit_tls_message", "logs", seeds_and_mutants("audit_tls"), audit_frame,
               "RFC 5424 frames carrying audit records, as the IDS's TLS listener handles them", corpus="audit_tls"),
    ]
