"""The audit record (操作ログ) of a business terminal: its documented JSON form and ingestion.

One JSON object per line (docs/audit-records.md). Ingestion validates a line,
computes the one signal that needs the clear resident code — the difference to the
operator's previous code, for enumeration — pseudonymises the code and drops it:
an ``Event`` never holds a clear resident code. A malformed line is rejected with
a reason that is counted and logged (without the line's content: it may hold codes).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ids.operations.pseudonym import Pseudonymiser, masked_step
from monitor.logs import fields

log = logging.getLogger("ids.operations.records")


class Action(StrEnum):
    LOGIN_OK = "login_ok"  # 静脈認証 succeeded
    LOGIN_FAIL = "login_fail"
    LOOKUP = "lookup"  # 本人確認情報の検索・照会
    UPDATE = "update"  # 本人確認情報の更新
    PROVISION = "provision"  # 本人確認情報の提供 to an agency (one resident or a batch)


_ACTIONS = {a.value: a for a in Action}
_RESIDENT_ACTIONS = frozenset({Action.LOOKUP, Action.UPDATE})
_EARLIEST, _LATEST = 946_684_800.0, 4_102_444_800.0  # 2000-01-01 .. 2100-01-01 UTC


@dataclass(frozen=True, slots=True)
class Event:
    """An ingested audit record: pseudonymised, typed, with the enumeration signal."""

    ts: float  # epoch seconds
    organisation: str
    terminal: str
    operator: str
    action: Action
    purpose: str | None
    resident: str | None  # pseudonym "<key id>:<hex>"
    count: int  # residents concerned (1 for a look-up or update; the batch size for a provision)
    resident_municipality: str | None
    step: int | None  # difference to the operator's previous resident code (None for the first)


class Rejected(ValueError):
    """A malformed record; ``reason`` is a short fixed token, safe to log."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Ingestor:
    """Turns audit lines into ``Event``s; counts rejections by reason."""

    def __init__(self, pseudonymiser: Pseudonymiser):
        self._pseudonymiser = pseudonymiser
        self._previous: dict[str, int] = {}  # operator → masked last resident code
        self.accepted = 0
        self.rejected: Counter[str] = Counter()

    def ingest_line(self, line: str | bytes, where: str = "") -> Event | None:
        try:
            raw = json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: absurdly nested input
            return self._reject("not_json", where)
        return self.ingest(raw, where)

    def ingest(self, raw: Any, where: str = "") -> Event | None:
        try:
            event = self._event(raw)
        except Rejected as problem:
            return self._reject(problem.reason, where)
        self.accepted += 1
        return event

    def _reject(self, reason: str, where: str) -> None:
        self.rejected[reason] += 1
        # The first of each reason is a warning; a flood of one kind stays in the debug log.
        level = logging.WARNING if self.rejected[reason] == 1 else logging.DEBUG
        log.log(level, "audit record rejected", extra=fields(reason=reason, where=where,
                                                             count=self.rejected[reason]))
        return None

    def _event(self, raw: Any) -> Event:
        if not isinstance(raw, dict):
            raise Rejected("not_object")
        action = raw.get("action")
        action = _ACTIONS.get(action) if isinstance(action, str) else None
        if action is None:
            raise Rejected("bad_action")
        operator = _text(raw, "operator")
        purpose = raw.get("purpose")
        if purpose is not None and not isinstance(purpose, str):
            raise Rejected("bad_purpose")
        municipality = raw.get("resident_municipality")
        if municipality is not None and not isinstance(municipality, str):
            raise Rejected("bad_resident_municipality")
        ts = _timestamp(raw.get("ts"))
        organisation, terminal = _text(raw, "organisation"), _text(raw, "terminal")
        code = raw.get("resident")
        if code is not None and not (isinstance(code, str) and len(code) == 11 and code.isdigit()
                                     and code.isascii()):
            raise Rejected("bad_resident")
        count = 1
        if action is Action.PROVISION:
            count = raw.get("resident_count", 1)
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise Rejected("bad_resident_count")
        elif action in _RESIDENT_ACTIONS and (code is None or municipality is None):
            raise Rejected("missing_resident")
        step = None
        resident = None
        if code is not None:
            resident, step = self._pseudonymise(operator, code)
        return Event(ts, organisation, terminal, operator, action, purpose or None, resident, count,
                     municipality, step)

    def _pseudonymise(self, operator: str, code: str) -> tuple[str, int | None]:
        masked = self._pseudonymiser.masked_number(code)
        previous = self._previous.get(operator)
        self._previous[operator] = masked
        step = None if previous is None else masked_step(previous, masked)
        return self._pseudonymiser.pseudonym(code), step


def _text(raw: dict[str, Any], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value:
        raise Rejected(f"missing_{name}")
    return value


def _timestamp(value: Any) -> float:
    if not isinstance(value, str):
        raise Rejected("missing_ts")
    try:
        stamp = dt.datetime.fromisoformat(value)
    except ValueError:
        raise Rejected("bad_ts") from None
    if stamp.tzinfo is None:
        raise Rejected("ts_without_offset")
    try:
        ts = stamp.timestamp()
    except (OverflowError, ValueError):
        raise Rejected("ts_out_of_range") from None
    # The network started in 2002: anything outside this century is a broken clock, and would
    # break the calendar arithmetic downstream.
    if not _EARLIEST <= ts < _LATEST:
        raise Rejected("ts_out_of_range")
    return ts
