"""Syslog line → ``SyslogMessage``: RFC 5424, RFC 3164 and the Cisco variants a NOC meets.

Pure functions, no I/O, so the same code serves the listeners, the ``jukimon syslog
parse`` command and the fuzz tests. Anything that cannot be accepted raises
``SyslogError`` with a short machine-usable ``reason`` — the listeners count
rejections by that code, so a misconfigured sender shows up as one counter, not as
a traceback. Nothing else may escape (the tests fuzz this with hypothesis).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from collectors.syslog.firewall import parse_firewall
from monitor.japan_time import JST

if TYPE_CHECKING:
    from collectors.syslog.firewall import FirewallRecord

MAX_LENGTH = 8192  # bytes; RFC 5424 receivers SHOULD accept 2048, real firewalls send up to ~4 KiB
_UTC = dt.timezone.utc

REASONS = ("empty", "too_long", "not_utf8", "no_pri", "bad_pri", "bad_timestamp", "bad_header", "bad_sd")


class SyslogError(ValueError):
    """A line that is not an acceptable syslog message; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(slots=True)
class SyslogMessage:
    facility: int
    severity: int  # 0 emergency … 7 debug
    timestamp: float  # epoch seconds UTC (the receive time when the sender gave none)
    hostname: str | None
    app: str | None  # RFC 5424 APP-NAME, RFC 3164 TAG
    procid: str | None
    msgid: str | None
    structured_data: dict[str, dict[str, str]]
    message: str
    format: str  # "rfc5424" | "rfc3164"
    firewall: "FirewallRecord | None" = None
    peer: str | None = None  # address the message came from, if known
    received: float = 0.0
    sequence: int | None = None  # Cisco "service sequence-numbers"
    timestamp_source: str = "header"  # "header"; "firewall": the vendor's own field; "received": the sender gave none


def parse_syslog(line: bytes | str, *, received: float, peer: str | None = None, max_length: int = MAX_LENGTH,
                 local_tz: dt.tzinfo = JST, firewall: bool = True) -> SyslogMessage:
    """Parse one message (framing already removed; a trailing CR/LF/NUL is tolerated).

    ``received`` (epoch seconds) stands in for a missing timestamp and anchors the
    year of RFC 3164 times; ``local_tz`` is the zone of RFC 3164 times that carry
    none (JST: the watched network's devices run on Japan time). With ``firewall``
    the message is also matched against the vendor formats of ``firewall.py``.
    """
    if isinstance(line, str):
        try:
            data = line.encode("utf-8")
        except UnicodeEncodeError:
            raise SyslogError("not_utf8") from None
    else:
        data = bytes(line)
    data = data.rstrip(b"\r\n\x00")
    if len(data) > max_length:
        raise SyslogError("too_long", f"{len(data)} bytes > {max_length}")
    if not data.strip():
        raise SyslogError("empty")
    if data[0] != 0x3C:  # "<"
        raise SyslogError("no_pri")
    end = data.find(b">", 1, 5)
    digits = data[1:end] if end > 0 else b""
    if not digits or not digits.isdigit():
        raise SyslogError("bad_pri")
    pri = int(digits)
    if pri > 191:
        raise SyslogError("bad_pri", f"{pri} > 191")
    try:
        text = data[end + 1:].decode("utf-8")
    except UnicodeDecodeError:
        raise SyslogError("not_utf8") from None
    if text.startswith("1 "):
        msg = _parse_5424(text[2:], pri, received)
    else:
        msg = _parse_3164(text, pri, received, local_tz)
    msg.peer = peer
    msg.received = received
    if firewall:
        msg.firewall = parse_firewall(msg)
        if msg.firewall is not None and msg.timestamp_source == "received" and msg.firewall.event_time is not None:
            msg.timestamp = msg.firewall.event_time  # e.g. FortiGate's eventtime in a header-less line
            msg.timestamp_source = "firewall"
    return msg


# --- RFC 5424 -------------------------------------------------------------

_PRINTABLE = re.compile(r"[!-~]+")
_HEADER_LIMITS = (("hostname", 255), ("app", 48), ("procid", 128), ("msgid", 32))
_ISO_TS = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})?")
# SD-NAME: printable US-ASCII except '=', SP, ']' and '"', 1..32 characters
_SD_ID = re.compile(r'\[([!#-<>-\\^-~]{1,32})')
_SD_PARAM = re.compile(r' ([!#-<>-\\^-~]{1,32})="((?:[^"\\]|\\.)*)"', re.S)
_SD_UNESCAPE = re.compile(r'\\(["\\\]])')


def _parse_5424(body: str, pri: int, received: float) -> SyslogMessage:
    parts = body.split(" ", 5)
    if len(parts) < 6:
        raise SyslogError("bad_header", "fewer than 6 header fields")
    stamp, *header, rest = parts
    values: list[str | None] = []
    for value, (name, limit) in zip(header, _HEADER_LIMITS, strict=True):
        if not value or len(value) > limit or not _PRINTABLE.fullmatch(value):
            raise SyslogError("bad_header", f"invalid {name}")
        values.append(None if value == "-" else value)
    given = stamp != "-"
    ts = _iso_timestamp(stamp, None) if given else received
    if ts is None:
        raise SyslogError("bad_timestamp")
    sd, pos = _structured_data(rest)
    if pos == len(rest):
        message = ""
    elif rest[pos] == " ":
        message = rest[pos + 1:]
        if message.startswith("\ufeff"):
            message = message[1:]
    else:
        raise SyslogError("bad_sd", "no space after structured data")
    hostname, app, procid, msgid = values
    return SyslogMessage(pri >> 3, pri & 7, ts, hostname, app, procid, msgid, sd, message, "rfc5424",
                         timestamp_source="header" if given else "received")


def _structured_data(text: str) -> tuple[dict[str, dict[str, str]], int]:
    """Parse STRUCTURED-DATA at the start of ``text``; return it and where it ends.

    A repeated SD-ID merges into one dict; a repeated PARAM-NAME keeps the last value.
    """
    if text.startswith("-"):
        return {}, 1
    if not text.startswith("["):
        raise SyslogError("bad_sd", "expected '-' or '['")
    sd: dict[str, dict[str, str]] = {}
    pos, n = 0, len(text)
    while pos < n and text[pos] == "[":
        m = _SD_ID.match(text, pos)
        if m is None:
            raise SyslogError("bad_sd", "invalid SD-ID")
        params = sd.setdefault(m.group(1), {})
        pos = m.end()
        while (p := _SD_PARAM.match(text, pos)) is not None:
            value = p.group(2)
            params[p.group(1)] = _SD_UNESCAPE.sub(r"\1", value) if "\\" in value else value
            pos = p.end()
        if pos >= n or text[pos] != "]":
            raise SyslogError("bad_sd", "unterminated element")
        pos += 1
    return sd, pos


def _iso_timestamp(text: str, default_tz: dt.tzinfo | None) -> float | None:
    """RFC 3339 time → epoch seconds; None if malformed. Without an offset, ``default_tz`` (or invalid)."""
    m = _ISO_TS.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, frac, offset = m.groups()
    if offset is None:
        if default_tz is None:
            return None
        tz: dt.tzinfo = default_tz
    elif offset in ("Z", "z"):
        tz = _UTC
    else:
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            return None
        delta = dt.timedelta(hours=hours, minutes=minutes)
        tz = dt.timezone(-delta if offset[0] == "-" else delta)
    try:
        stamp = dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=tz)
        return stamp.timestamp() + (float("0." + frac) if frac else 0.0)
    except (ValueError, OverflowError):
        return None


# --- RFC 3164 and the Cisco variants --------------------------------------

_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
# "Mmm dd hh:mm:ss", also "Mmm dd yyyy hh:mm:ss" (ASA), fractions and a zone name (IOS),
# a leading '*' or '.' (IOS: clock not / no longer synchronised) and a trailing ':' (IOS, ASA)
_BSD_TS = re.compile(
    r"[*.]?(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) {1,2}(\d{1,2})(?: (\d{4}))?"
    r" (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?: ([A-Z]{1,5})(?=:))?(:)?(?: |$)")
_ISO_PREFIX = re.compile(r"(\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})?)(:)?(?: |$)")
_CISCO_SEQ = re.compile(r"(\d{1,10}): ")
_CISCO_ORIGIN = re.compile(r"([A-Za-z0-9][\w.\-]{0,254}): ")
_HOST = re.compile(r"([\w.\-:]{0,254}[\w.\-])(?: |$)")
_TAG = re.compile(r"([^\s\[\]:=,\"]{1,64})(?:\[([^\]\s]{1,128})\])?:(?: |$)")
_ZONES = {"UTC": _UTC, "GMT": _UTC, "Z": _UTC, "JST": JST}
_YEAR_AHEAD = 31 * 86400.0  # a sender clock may run ahead; further ahead means last year


def _parse_3164(text: str, pri: int, received: float, local_tz: dt.tzinfo) -> SyslogMessage:
    pos, sequence, hostname = 0, None, None
    m = _CISCO_SEQ.match(text)
    if m is not None:
        sequence, pos = int(m.group(1)), m.end()
        origin = _CISCO_ORIGIN.match(text, pos)
        if origin is not None and _BSD_TS.match(text, origin.end()):
            hostname, pos = origin.group(1), origin.end()
    ts, pos, colon = _bsd_timestamp(text, pos, received, local_tz)
    given = ts is not None
    if ts is None:
        ts = received
    elif not colon and hostname is None:
        h = _HOST.match(text, pos)
        if h is not None and not _TAG.match(text, pos):
            hostname, pos = h.group(1), h.end()
            if text.startswith(": ", pos):  # ASA "logging device-id": "host : %ASA-…"
                pos += 2
    app = procid = None
    t = _TAG.match(text, pos)
    if t is not None:
        app, procid, pos = t.group(1), t.group(2), t.end()
    return SyslogMessage(pri >> 3, pri & 7, ts, hostname, app, procid, None, {}, text[pos:], "rfc3164",
                         sequence=sequence, timestamp_source="header" if given else "received")


def _bsd_timestamp(text: str, pos: int, received: float,
                   local_tz: dt.tzinfo) -> tuple[float | None, int, bool]:
    """Timestamp at ``pos`` → (epoch or None if there is none, position after it, ended with ':')."""
    m = _BSD_TS.match(text, pos)
    if m is None:
        iso = _ISO_PREFIX.match(text, pos)
        if iso is None:
            return None, pos, False
        ts = _iso_timestamp(iso.group(1), local_tz)
        if ts is None:
            raise SyslogError("bad_timestamp")
        return ts, iso.end(), iso.group(2) is not None
    mon, day, year, hour, minute, second, frac, zone, colon = m.groups()
    tz = _ZONES.get(zone, local_tz) if zone else local_tz
    parts = (_MONTHS[mon], int(day), int(hour), int(minute), int(second))
    if year is not None:
        ts = _epoch(int(year), parts, tz)
    else:
        ts = _infer_year(parts, received, tz)
    if ts is None:
        raise SyslogError("bad_timestamp")
    if frac:
        ts += float("0." + frac)
    return ts, m.end(), colon is not None


def _epoch(year: int, parts: tuple[int, int, int, int, int], tz: dt.tzinfo) -> float | None:
    try:
        return dt.datetime(year, *parts, tzinfo=tz).timestamp()
    except (ValueError, OverflowError):
        return None


def _infer_year(parts: tuple[int, int, int, int, int], received: float, tz: dt.tzinfo) -> float | None:
    """RFC 3164 has no year: take the latest year that does not put the time far after ``received``.

    That gives last year to a "Dec 31" line received on 1 January, and next year to a
    "Jan 1" line from a sender whose clock is a little ahead on 31 December.
    """
    try:
        ref_year = dt.datetime.fromtimestamp(received, tz).year
    except (ValueError, OverflowError, OSError):
        return None
    for year in (ref_year + 1, ref_year, ref_year - 1, ref_year - 2, ref_year - 3, ref_year - 4):
        ts = _epoch(year, parts, tz)
        if ts is not None and ts <= received + _YEAR_AHEAD:
            return ts
    return None
