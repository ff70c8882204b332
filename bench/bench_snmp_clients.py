"""Which SNMP client library should the collectors use? Speed and correctness, measured.

Candidates: pysnmp 7 (asyncio HLAPI, one shared SnmpEngine), puresnmp 2 (+ puresnmp-crypto),
ezsnmp 2 (net-snmp bindings, synchronous: run in a 100-thread pool), aiosnmp (v2c only),
snmp 1.4 (its AsyncEngine), gufo-snmp (Rust core, asyncio), and "own": a minimal asyncio
client written here on the project's own codec (monitor/snmp: ber.py, usm.py, message.py,
shared with the simulated agents), so the hand-written option is measured on the same
footing; and "collectors", the collectors' real client on that codec
(collectors/snmp/udp_client.py), when the tree has it.

    .venv/bin/python bench/bench_snmp_clients.py [--seconds 5] [--mix-seconds 10]
        [--libs own,gufo,pysnmp,...] [--devices 0] [--skip-load] [--skip-correctness]

What it does (every load bounded in count and time; everything it starts, it stops):

1. correctness, one fresh process per library: an in-process subset of the simulation in
   its own thread and event loop, one device's 64-bit counters set above 2^63 and frozen
   (interface admin-down), then per library: values vs Debian's `snmpget`, noSuchInstance /
   noSuchObject / endOfMibView, v3 discovery, time-window resync after the agent clock jumps
   +200 s and after an agent reboot, a wrong auth key, and a silent (device_down) device
   against a 1 s timeout.
2. load, one fresh process per (library, version): the full national network
   (`jukimon simnet run --no-tls`) in a child process; the client's CPU is
   time.process_time() in its own process, the simulation's is read from /proc.
   Phases: warm-up (one GET per device: v3 discovery), GET of 3 varbinds and GETBULK
   max-repetitions 10 over ifXTable with 100 requests in flight, then the collectors'
   real shape: 880 device polls/s x 3 requests (GET of 3 scalars, GETBULK ifXTable,
   GETBULK hrStorage/hrProcessor) for --mix-seconds.

Prints a table and writes bench/results/snmp_clients.json.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import itertools
import json
import multiprocessing as mp
import os
import platform
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.snmp import ber, message, usm  # noqa: E402  (the project's codec, shared with the agents)

# --- what is asked -----------------------------------------------------------

COMMUNITY = "public"
V3_USER = "jukimon"
AUTH_KEY = "jukimon-auth-key"
PRIV_KEY = "jukimon-priv-key"
WRONG_AUTH_KEY = "not-the-auth-key"

SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_CONTACT = "1.3.6.1.2.1.1.4.0"  # UTF-8 Japanese text in the simulation
IF_NUMBER = "1.3.6.1.2.1.2.1.0"
IF_IN_OCTETS_1 = "1.3.6.1.2.1.2.2.1.10.1"  # Counter32
IFX_TABLE = "1.3.6.1.2.1.31.1.1.1"
IF_HC_IN_OCTETS_1 = "1.3.6.1.2.1.31.1.1.1.6.1"
IF_HC_IN_UCAST_1 = "1.3.6.1.2.1.31.1.1.1.7.1"
IF_HC_OUT_OCTETS_1 = "1.3.6.1.2.1.31.1.1.1.10.1"
IF_HC_OUT_UCAST_1 = "1.3.6.1.2.1.31.1.1.1.11.1"
HR_MEMORY_SIZE = "1.3.6.1.2.1.25.2.2.0"
HR_STORAGE_SIZE = "1.3.6.1.2.1.25.2.3.1.5"
HR_PROCESSOR_LOAD_1 = "1.3.6.1.2.1.25.3.3.1.2.196608"
NO_SUCH_INSTANCE_OID = "1.3.6.1.2.1.1.3.1"  # sysUpTime exists, instance .1 does not
NO_SUCH_OBJECT_OID = "1.3.6.1.2.1.99.0"  # nothing under 1.3.6.1.2.1.99
PAST_END_OID = "1.3.6.1.2.1.99"  # nothing after it in the simulated MIB

GET_OIDS = [SYS_UPTIME, IF_HC_IN_OCTETS_1, HR_PROCESSOR_LOAD_1]  # "GET with 3 varbinds"
BULK_OID, BULK_REPS = IFX_TABLE, 10  # "GETBULK max-repetitions 10 over ifXTable"
POLL_GET = [SYS_UPTIME, IF_NUMBER, HR_MEMORY_SIZE]  # one device poll: this GET + two GETBULKs
POLL_BULKS = [(IFX_TABLE, 10), (HR_STORAGE_SIZE, 10)]

# Counter values planted on the correctness device (all above 2^63 or with the top bit set)
BIG = {"in_octets": 2**64 - 5, "in_packets": 2**63, "out_octets": 2**63 + 12345, "out_packets": 2**64 - 1}


class Marker(str):
    """noSuchObject / noSuchInstance / endOfMibView, as a library surfaced it."""


NSO, NSI, EOM = Marker("noSuchObject"), Marker("noSuchInstance"), Marker("endOfMibView")


@dataclass
class Cfg:
    version: str  # "v2c" | "v3"
    port: int
    timeout: float = 2.0
    auth_key: str = AUTH_KEY
    priv_key: str = PRIV_KEY


# --- the "own codec" candidate: a minimal asyncio client on monitor/snmp ---------


class SnmpTimeout(Exception):
    pass


class SnmpAuthError(Exception):
    pass


class SnmpReportError(Exception):
    pass


def _decode_value(tag: int, buf: bytes, s: int, e: int) -> Any:
    if tag == ber.INTEGER:
        return ber.decode_integer(buf, s, e)
    if tag in (ber.COUNTER32, ber.GAUGE32, ber.TIMETICKS, ber.COUNTER64):
        return ber.decode_unsigned(buf, s, e)
    if tag in (ber.OCTET_STRING, ber.IP_ADDRESS, ber.OPAQUE):
        return bytes(buf[s:e])
    if tag == ber.OBJECT_IDENTIFIER:
        return ber.decode_oid(buf, s, e)
    if tag == ber.NO_SUCH_OBJECT:
        return NSO
    if tag == ber.NO_SUCH_INSTANCE:
        return NSI
    if tag == ber.END_OF_MIB_VIEW:
        return EOM
    if tag == ber.NULL:
        return None
    raise ber.BerError(f"unexpected value tag 0x{tag:02x}")


def _varbinds(buf: bytes, s: int, e: int) -> list[tuple[tuple[int, ...], Any]]:
    return [(oid, _decode_value(tag, buf, vs, ve)) for oid, tag, vs, ve in ber.iter_varbinds(buf, s, e)]


@dataclass
class _Engine:
    engine_id: bytes
    boots: int
    time: int
    synced: float  # loop time at which `time` was the agent's engine time
    keys: usm.LocalizedKeys
    engine_id_tlv: bytes = b""

    def now(self, t: float) -> int:
        return self.time + int(t - self.synced)


@dataclass
class _Pending:
    future: asyncio.Future
    addr: str
    engine: _Engine | None
    timer: asyncio.TimerHandle


_FLAG_AUTH, _FLAG_PRIV, _FLAG_REPORTABLE = 0x01, 0x02, 0x04
_V3_TLV = ber.encode_integer(3)
_V2C_TLV = ber.encode_integer(1)
_MAX_SIZE_TLV = ber.encode_integer(65507)
_USM_TLV = ber.encode_integer(3)
_EMPTY_OCTETS = ber.encode_octets(b"")
_ZERO_TLV = ber.encode_integer(0)
_REPORT_ERRORS = {
    usm.WRONG_DIGESTS: (SnmpAuthError, "wrong digest (authentication failure)"),
    usm.UNKNOWN_USER_NAMES: (SnmpAuthError, "unknown user name"),
    usm.UNSUPPORTED_SEC_LEVELS: (SnmpAuthError, "unsupported security level"),
    usm.DECRYPTION_ERRORS: (SnmpAuthError, "decryption error (wrong privacy key?)"),
    usm.NOT_IN_TIME_WINDOWS: (SnmpReportError, "not in time window"),
    usm.UNKNOWN_ENGINE_IDS: (SnmpReportError, "unknown engine id"),
}


class OwnClient(asyncio.DatagramProtocol):
    """One UDP socket for every target; request-id → future; v2c and v3 USM (SHA-1-96 / AES-128-CFB).

    A sketch of what a client on the project's codec costs: ~200 lines over monitor/snmp
    (ber.py, usm.py, message.parse_v3_header). The collectors' real client
    (collectors/snmp/udp_client.py) is measured too, as "collectors".
    """

    def __init__(self, cfg: Cfg):
        self._parse_v3 = message.parse_v3_header
        self.cfg = cfg
        self.port = cfg.port
        self.timeout = cfg.timeout
        self.community_tlv = _V2C_TLV + ber.encode_octets(COMMUNITY)
        self.user = usm.UsmUser(V3_USER, usm.AUTH_PROTOCOLS["SHA"], cfg.auth_key, cfg.priv_key)
        self.user_tlv = ber.encode_octets(V3_USER)
        self.transport: asyncio.DatagramTransport | None = None
        self._pending: dict[int, _Pending] = {}
        self._engines: dict[str, _Engine] = {}
        self._discovering: dict[str, asyncio.Future] = {}
        self._ids = itertools.count(random.randrange(1, 1 << 30))
        self._salt = random.getrandbits(63)
        self._vbl_cache: dict[tuple[str, ...], bytes] = {}
        self.dropped = Counter()

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=("0.0.0.0", 0))
        sock = self.transport.get_extra_info("socket")
        sock.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 8 << 20)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # -- public API ------------------------------------------------------

    async def get(self, addr: str, oids: list[str]) -> list[tuple[tuple[int, ...], Any]]:
        return await self._request(addr, ber.GET_REQUEST, 0, 0, oids)

    async def bulk(self, addr: str, oids: list[str], max_rep: int, non_rep: int = 0):
        return await self._request(addr, ber.GET_BULK_REQUEST, non_rep, max_rep, oids)

    # -- encoding --------------------------------------------------------

    def _next_id(self) -> int:
        return next(self._ids) & 0x7FFFFFFF

    def _vbl(self, oids: list[str]) -> bytes:
        key = tuple(oids)
        vbl = self._vbl_cache.get(key)
        if vbl is None:
            vbl = self._vbl_cache[key] = ber.tlv(ber.SEQUENCE, b"".join(
                ber.sequence(ber.encode_oid(ber.parse_oid_text(o)), ber.NULL_VALUE) for o in oids))
        return vbl

    @staticmethod
    def _pdu(tag: int, rid: int, f2: int, f3: int, vbl: bytes) -> bytes:
        return ber.tlv(tag, ber.encode_integer(rid) + (ber.encode_integer(f2) if f2 else _ZERO_TLV)
                       + (ber.encode_integer(f3) if f3 else _ZERO_TLV) + vbl)

    def _v3_message(self, msg_id: int, flags: int, engine_tlv: bytes, boots: int, etime: int, user_tlv: bytes,
                    priv_params: bytes, msg_data: bytes, keys: usm.LocalizedKeys | None) -> bytes:
        head = engine_tlv + ber.encode_integer(boots) + ber.encode_integer(etime) + user_tlv
        dlen = keys.user.auth.digest_length if keys is not None else 0
        auth_tlv = ber.encode_octets(bytes(dlen))
        priv_tlv = ber.encode_octets(priv_params)
        sec_seq = ber.sequence(head, auth_tlv, priv_tlv)
        sec_octets = ber.encode_octets(sec_seq)
        before = _V3_TLV + ber.sequence(ber.encode_integer(msg_id), _MAX_SIZE_TLV,
                                        ber.encode_octets(bytes((flags,))), _USM_TLV)
        body = before + sec_octets + msg_data
        message = ber.tlv(ber.SEQUENCE, body)
        if keys is None:
            return message
        offset = ((len(message) - len(body)) + len(before) + (len(sec_octets) - len(sec_seq))
                  + (len(sec_seq) - len(head) - len(auth_tlv) - len(priv_tlv)) + len(head)
                  + (len(auth_tlv) - dlen))
        return message[:offset] + keys.digest(message) + message[offset + dlen:]

    # -- exchange --------------------------------------------------------

    async def _exchange(self, addr: str, msg: bytes, msg_id: int, engine: _Engine | None):
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        timer = loop.call_later(self.timeout, self._expire, msg_id)
        self._pending[msg_id] = _Pending(fut, addr, engine, timer)
        assert self.transport is not None
        self.transport.sendto(msg, (addr, self.port))
        try:
            return await fut
        finally:
            timer.cancel()
            self._pending.pop(msg_id, None)

    def _expire(self, msg_id: int) -> None:
        p = self._pending.pop(msg_id, None)
        if p is not None and not p.future.done():
            p.future.set_exception(SnmpTimeout(f"no answer from {p.addr} within {self.timeout} s"))

    async def _request(self, addr: str, tag: int, f2: int, f3: int, oids: list[str]):
        vbl = self._vbl(oids)
        if self.cfg.version == "v2c":
            rid = self._next_id()
            msg = ber.tlv(ber.SEQUENCE, self.community_tlv + self._pdu(tag, rid, f2, f3, vbl))
            kind, err, eidx, vbs = await self._exchange(addr, msg, rid, None)
            return vbs
        eng = self._engines.get(addr) or await self._discover(addr)
        for attempt in (0, 1):
            rid = self._next_id()
            etime = eng.now(asyncio.get_running_loop().time())
            scoped = ber.sequence(eng.engine_id_tlv, _EMPTY_OCTETS, self._pdu(tag, rid, f2, f3, vbl))
            self._salt = (self._salt + 1) & 0xFFFFFFFFFFFFFFFF
            salt = self._salt.to_bytes(8, "big")
            encrypted = ber.encode_octets(eng.keys.encrypt(scoped, eng.boots, etime, salt))
            msg = self._v3_message(rid, _FLAG_AUTH | _FLAG_PRIV | _FLAG_REPORTABLE, eng.engine_id_tlv, eng.boots,
                                   etime, self.user_tlv, salt, encrypted, eng.keys)
            result = await self._exchange(addr, msg, rid, eng)
            if result[0] == "response":
                return result[3]
            _, oid, authenticated, _req = result
            if oid == usm.NOT_IN_TIME_WINDOWS and authenticated and attempt == 0:
                continue  # the authenticated report carried the agent's boots/time: resend once
            exc, text = _REPORT_ERRORS.get(oid, (SnmpReportError, f"report {oid}"))
            raise exc(f"{addr}: {text}")
        raise SnmpReportError(f"{addr}: still not in time window after resync")

    async def _discover(self, addr: str) -> _Engine:
        pending = self._discovering.get(addr)
        if pending is not None:
            return await asyncio.shield(pending)
        fut = asyncio.get_running_loop().create_future()
        self._discovering[addr] = fut
        try:
            rid = self._next_id()
            scoped = ber.sequence(_EMPTY_OCTETS, _EMPTY_OCTETS, self._pdu(ber.GET_REQUEST, rid, 0, 0,
                                                                          ber.tlv(ber.SEQUENCE, b"")))
            msg = self._v3_message(rid, _FLAG_REPORTABLE, _EMPTY_OCTETS, 0, 0, _EMPTY_OCTETS, b"", scoped, None)
            result = await self._exchange(addr, msg, rid, None)
            if result[0] != "report" or result[1] != usm.UNKNOWN_ENGINE_IDS:
                raise SnmpReportError(f"{addr}: unexpected discovery answer {result[:2]}")
            req = result[3]
            eng = _Engine(req.engine_id, req.boots, req.engine_time, asyncio.get_running_loop().time(),
                          self.user.localized(req.engine_id), ber.encode_octets(req.engine_id))
            self._engines[addr] = eng
            fut.set_result(eng)
            return eng
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # mark retrieved
            raise
        finally:
            del self._discovering[addr]

    # -- receiving -------------------------------------------------------

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            end = len(data)
            start, stop = ber.expect(data, 0, end, ber.SEQUENCE)
            version, p = ber.read_integer(data, start, stop)
            if version == 1:
                self._on_v2c(data, addr, p, stop)
            elif version == 3:
                self._on_v3(data, addr, p, stop)
        except Exception as exc:  # malformed: drop, as an agent would
            self.dropped[type(exc).__name__] += 1

    def _parse_pdu(self, buf: bytes, pos: int, stop: int):
        tag, s, e = ber.read_tlv(buf, pos, stop)
        rid, q = ber.read_integer(buf, s, e)
        err, q = ber.read_integer(buf, q, e)
        eidx, q = ber.read_integer(buf, q, e)
        vs, ve = ber.expect(buf, q, e, ber.SEQUENCE)
        return tag, rid, err, eidx, vs, ve

    def _on_v2c(self, data: bytes, addr: tuple[str, int], p: int, stop: int) -> None:
        _, _, p = ber.read_octets(data, p, stop)
        tag, rid, err, eidx, vs, ve = self._parse_pdu(data, p, stop)
        pending = self._pending.get(rid)
        if pending is None or pending.addr != addr[0] or tag != ber.RESPONSE or pending.future.done():
            self.dropped["unmatched"] += 1
            return
        pending.future.set_result(("response", err, eidx, _varbinds(data, vs, ve)))

    def _on_v3(self, data: bytes, addr: tuple[str, int], p: int, stop: int) -> None:
        req = self._parse_v3(data, p, stop)
        pending = self._pending.get(req.msg_id)
        if pending is None or pending.addr != addr[0] or pending.future.done():
            self.dropped["unmatched"] += 1
            return
        eng = pending.engine
        authenticated = bool(req.flags & _FLAG_AUTH)
        if authenticated:
            if eng is None or req.engine_id != eng.engine_id or len(req.auth_params) != 12:
                self.dropped["bad-auth"] += 1
                return
            zeroed = bytearray(data)
            zeroed[req.auth_offset:req.auth_offset + 12] = bytes(12)
            if not hmac.compare_digest(eng.keys.digest(bytes(zeroed)), req.auth_params):
                self.dropped["bad-digest"] += 1
                return
            now = asyncio.get_running_loop().time()
            if req.boots > eng.boots or (req.boots == eng.boots and req.engine_time > eng.now(now)):
                eng.boots, eng.time, eng.synced = req.boots, req.engine_time, now  # RFC 3414 3.2.7
        if req.flags & _FLAG_PRIV:
            if not authenticated:
                return
            es, ee = ber.expect(data, req.data_pos, req.stop, ber.OCTET_STRING)
            plain = eng.keys.decrypt(data[es:ee], req.boots, req.engine_time, req.priv_params)
            buf, pos, end = plain, 0, len(plain)
        else:
            buf, pos, end = data, req.data_pos, req.stop
        ss, se = ber.expect(buf, pos, end, ber.SEQUENCE)
        _, _, q = ber.read_octets(buf, ss, se)
        _, _, q = ber.read_octets(buf, q, se)
        tag, rid, err, eidx, vs, ve = self._parse_pdu(buf, q, se)
        if tag == ber.REPORT:
            first = next(ber.iter_varbinds(buf, vs, ve), None)
            pending.future.set_result(("report", first[0] if first else None, authenticated, req))
        elif tag == ber.RESPONSE and authenticated and rid == req.msg_id:
            pending.future.set_result(("response", err, eidx, _varbinds(buf, vs, ve)))
        else:
            self.dropped["unexpected-pdu"] += 1


# --- adapters: one uniform async interface per library -----------------------


def _oid_str(oid: Any) -> str:
    if isinstance(oid, tuple):
        return ".".join(map(str, oid))
    return str(oid).lstrip(".")


class Adapter:
    name = ""
    requirement = ""
    asyncio_native = True
    supports_v3 = True
    notes = ""

    def __init__(self, cfg: Cfg):
        self.cfg = cfg

    async def open(self, addresses: list[str]) -> None: ...

    async def get(self, addr: str, oids: list[str]) -> Any: ...

    async def bulk(self, addr: str, oid: str, reps: int) -> Any: ...

    async def single(self, addr: str, oid: str) -> Any:
        """GET of one OID the library's simplest way."""
        return await self.get(addr, [oid])

    async def warm(self, addr: str) -> None:
        """First contact (v3: engine discovery and time sync)."""
        await self.get(addr, [SYS_UPTIME])

    def values(self, raw: Any) -> list[Any]:
        """Python values of a result (the collectors' hot path)."""
        return [v for _, v in self.pairs(raw)]

    def pairs(self, raw: Any) -> list[tuple[str, Any]]: ...

    def classify(self, exc: BaseException) -> str:
        return f"error:{type(exc).__name__}"

    async def close(self) -> None: ...


class OwnAdapter(Adapter):
    name = "own"
    requirement = "(none: monitor/snmp codec + cryptography; client sketch in this file)"

    async def open(self, addresses):
        self.client = OwnClient(self.cfg)
        await self.client.open()

    async def get(self, addr, oids):
        return await self.client.get(addr, oids)

    async def bulk(self, addr, oid, reps):
        return await self.client.bulk(addr, [oid], reps)

    def values(self, raw):
        return [v for _, v in raw]

    def pairs(self, raw):
        return [(_oid_str(o), v) for o, v in raw]

    def classify(self, exc):
        if isinstance(exc, SnmpTimeout):
            return "timeout"
        if isinstance(exc, SnmpAuthError):
            return "auth"
        return super().classify(exc)

    async def close(self):
        self.client.close()


class CollectorsAdapter(Adapter):
    name = "collectors"
    requirement = "(none: collectors/snmp/udp_client.py on the monitor/snmp codec)"
    notes = "the collectors' client as committed; retries=0 here like the others"

    async def open(self, addresses):
        from collectors.snmp.client import Credentials
        from collectors.snmp.udp_client import SnmpUdpClient

        creds = (Credentials("2c", community=COMMUNITY) if self.cfg.version == "v2c" else
                 Credentials("3", user=V3_USER, auth_protocol="SHA", auth_key=self.cfg.auth_key,
                             priv_protocol="AES", priv_key=self.cfg.priv_key))
        self.client = SnmpUdpClient(creds, timeout=self.cfg.timeout, retries=0)
        self._oids: dict[str, tuple[int, ...]] = {}
        self._markers = {m.value: Marker(m.value) for m in message.Missing}

    def _oid(self, o: str) -> tuple[int, ...]:
        oid = self._oids.get(o)
        if oid is None:
            oid = self._oids[o] = ber.parse_oid_text(o)
        return oid

    async def get(self, addr, oids):
        return await self.client.get(addr, self.cfg.port, [self._oid(o) for o in oids])

    async def bulk(self, addr, oid, reps):
        return await self.client.get_bulk(addr, self.cfg.port, 0, reps, [self._oid(oid)])

    def _value(self, v):
        return self._markers[v.value] if isinstance(v, message.Missing) else v

    def values(self, raw):
        return [self._value(v) for _, v in raw]

    def pairs(self, raw):
        return [(_oid_str(o), self._value(v)) for o, v in raw]

    def classify(self, exc):
        from collectors.snmp.client import SnmpAuthError as CAuth
        from collectors.snmp.client import SnmpTimeout as CTimeout

        if isinstance(exc, CTimeout):
            return "timeout"
        if isinstance(exc, CAuth):
            return "auth"
        return super().classify(exc)

    async def close(self):
        await self.client.close()


class GufoAdapter(Adapter):
    name = "gufo-snmp"
    requirement = "gufo-snmp==0.13.0"
    notes = "one socket per session (per device); master keys derived once; get_many drops noSuch* silently"

    async def open(self, addresses):
        from gufo.snmp import Aes128Key, Sha1Key, User
        from gufo.snmp.aio.client import SnmpSession
        from gufo.snmp.user import KeyType

        user = None
        if self.cfg.version == "v3":
            # master keys derived once: with passwords every session repeats the 1 MB hashing (~1.9 ms)
            user = User(V3_USER,
                        auth_key=Sha1Key(Sha1Key.get_master_key(self.cfg.auth_key.encode()), key_type=KeyType.Master),
                        priv_key=Aes128Key(Sha1Key.get_master_key(self.cfg.priv_key.encode()),
                                           key_type=KeyType.Master))
        self.sessions = {a: SnmpSession(a, port=self.cfg.port, community=COMMUNITY, user=user,
                                        timeout=self.cfg.timeout, max_repetitions=BULK_REPS) for a in addresses}
        self.refreshed: set[str] = set()

    async def warm(self, addr):
        if self.cfg.version == "v3":
            await self.sessions[addr].refresh()  # discovery + boots/time (what `async with` does)
            self.refreshed.add(addr)
        else:
            await self.get(addr, [SYS_UPTIME])

    async def get(self, addr, oids):
        if self.cfg.version == "v3" and addr not in self.refreshed:  # a v3 session must be refreshed first
            await self.warm(addr)
        return await self.sessions[addr].get_many(oids)

    async def single(self, addr, oid):
        if self.cfg.version == "v3" and addr not in self.refreshed:
            await self.warm(addr)
        return [(oid, await self.sessions[addr].get(oid))]

    async def bulk(self, addr, oid, reps):
        if self.cfg.version == "v3" and addr not in self.refreshed:
            await self.warm(addr)
        out = []
        async for item in self.sessions[addr].getbulk(oid, max_repetitions=reps):
            out.append(item)
            if len(out) >= reps:  # one GETBULK's worth: no second request
                break
        return out

    def values(self, raw):
        return list(raw.values()) if isinstance(raw, dict) else [v for _, v in raw]

    def pairs(self, raw):
        items = raw.items() if isinstance(raw, dict) else raw
        return [(_oid_str(o), v) for o, v in items]

    def classify(self, exc):
        from gufo.snmp import SnmpAuthError as GufoAuth

        if isinstance(exc, TimeoutError):
            return "timeout"
        if isinstance(exc, GufoAuth):
            return "auth"
        return super().classify(exc)


class PysnmpAdapter(Adapter):
    name = "pysnmp"
    requirement = "pysnmp==7.1.30"
    notes = "shared SnmpEngine, lookupMib=False, pre-resolved ObjectType"

    async def open(self, addresses):
        from pysnmp.hlapi.v3arch.asyncio import (CommunityData, ContextData, ObjectIdentity, ObjectType,
                                                 SnmpEngine, UdpTransportTarget, UsmUserData, bulk_cmd, get_cmd,
                                                 usmAesCfb128Protocol, usmHMACSHAAuthProtocol)

        self._get_cmd, self._bulk_cmd = get_cmd, bulk_cmd
        self._ot = lambda o: ObjectType(ObjectIdentity(o))
        self.engine = SnmpEngine()
        self.ctx = ContextData()
        if self.cfg.version == "v3":
            self.auth = UsmUserData(V3_USER, self.cfg.auth_key, self.cfg.priv_key,
                                    authProtocol=usmHMACSHAAuthProtocol, privProtocol=usmAesCfb128Protocol)
        else:
            self.auth = CommunityData(COMMUNITY)
        self.targets = {a: await UdpTransportTarget.create((a, self.cfg.port), timeout=self.cfg.timeout, retries=0)
                        for a in addresses}
        self._vb_cache: dict[tuple[str, ...], list] = {}

    def _vbs(self, oids):
        key = tuple(oids)
        vbs = self._vb_cache.get(key)
        if vbs is None:
            vbs = self._vb_cache[key] = [self._ot(o) for o in oids]
        return vbs

    async def get(self, addr, oids):
        ind, status, index, vbs = await self._get_cmd(self.engine, self.auth, self.targets[addr], self.ctx,
                                                      *self._vbs(oids), lookupMib=False)
        if ind:
            raise PysnmpError(ind)
        return vbs

    async def bulk(self, addr, oid, reps):
        ind, status, index, vbs = await self._bulk_cmd(self.engine, self.auth, self.targets[addr], self.ctx, 0, reps,
                                                       *self._vbs([oid]), lookupMib=False)
        if ind:
            raise PysnmpError(ind)
        return vbs

    @staticmethod
    def _value(v):
        name = type(v).__name__
        if name in ("NoSuchObject", "NoSuchInstance", "EndOfMibView"):
            return {"NoSuchObject": NSO, "NoSuchInstance": NSI, "EndOfMibView": EOM}[name]
        if hasattr(v, "asOctets"):
            return v.asOctets()
        if name == "ObjectIdentifier" or name == "ObjectName":
            return tuple(v)
        return int(v)

    def values(self, raw):
        return [self._value(v) for _, v in raw]

    def pairs(self, raw):
        return [(str(o), self._value(v)) for o, v in raw]

    def classify(self, exc):
        if isinstance(exc, PysnmpError):
            ind = exc.args[0]
            name = type(ind).__name__
            if name == "RequestTimedOut":
                return "timeout"
            if name in ("WrongDigest", "AuthenticationFailure", "UnknownUserName", "DecryptionError"):
                return "auth"
            return f"error:{name}:{ind}"
        return super().classify(exc)

    async def close(self):
        self.engine.close_dispatcher()


class PysnmpError(Exception):
    pass


class PuresnmpAdapter(Adapter):
    name = "puresnmp"
    requirement = "puresnmp==2.0.1 puresnmp-crypto==1.0.1.post1"
    notes = "new UDP socket per request; v3 re-derives the 1 MB-hashed priv key on every message"

    async def open(self, addresses):
        import warnings

        warnings.simplefilter("ignore")
        from puresnmp import V2C, V3, Auth, Client, ObjectIdentifier, Priv

        self.OID = ObjectIdentifier
        creds = V2C(COMMUNITY) if self.cfg.version == "v2c" else V3(
            V3_USER, Auth(self.cfg.auth_key.encode(), "sha1"), Priv(self.cfg.priv_key.encode(), "aes"))
        self.clients = {}
        for a in addresses:
            c = Client(a, creds, port=self.cfg.port)
            c.configure(timeout=self.cfg.timeout, retries=1)  # retries=1 is one attempt (0 sends nothing)
            self.clients[a] = c
        self._oid_cache: dict[str, Any] = {}

    def _oid(self, o):
        x = self._oid_cache.get(o)
        if x is None:
            x = self._oid_cache[o] = self.OID(o)
        return x

    async def get(self, addr, oids):
        oo = [self._oid(o) for o in oids]
        values = await self.clients[addr].multiget(oo)
        return list(zip(oo, values, strict=False))

    async def bulk(self, addr, oid, reps):
        r = await self.clients[addr].bulkget([], [self._oid(oid)], reps)
        return list(r.listing.items())

    @staticmethod
    def _value(v):
        name = type(v).__name__
        if name in ("NoSuchObject", "NoSuchInstance", "EndOfMibView"):
            return {"NoSuchObject": NSO, "NoSuchInstance": NSI, "EndOfMibView": EOM}[name]
        return v.value

    def values(self, raw):
        return [self._value(v) for _, v in raw]

    def pairs(self, raw):
        return [(str(o), self._value(v)) for o, v in raw]

    def classify(self, exc):
        from puresnmp.exc import Timeout

        if isinstance(exc, Timeout):
            return "timeout"
        text = str(exc)
        if "digest" in text.lower() or "authentic" in text.lower():
            return "auth"
        return super().classify(exc)


class AiosnmpAdapter(Adapter):
    name = "aiosnmp"
    requirement = "aiosnmp==0.7.2"
    supports_v3 = False
    notes = "v2c only; noSuch*/endOfMibView all come back as None"

    async def open(self, addresses):
        import aiosnmp

        self.conns = {}
        for a in addresses:
            s = aiosnmp.Snmp(host=a, port=self.cfg.port, community=COMMUNITY, timeout=self.cfg.timeout,
                             retries=1, max_repetitions=BULK_REPS)  # retries=1: one attempt
            await s.__aenter__()
            self.conns[a] = s

    async def get(self, addr, oids):
        return await self.conns[addr].get(oids)

    async def bulk(self, addr, oid, reps):
        return await self.conns[addr].get_bulk([oid], max_repetitions=reps)

    def values(self, raw):
        return [v.value for v in raw]

    def pairs(self, raw):
        return [(v.oid.lstrip("."), v.value) for v in raw]

    def classify(self, exc):
        from aiosnmp.exceptions import SnmpTimeoutError

        if isinstance(exc, SnmpTimeoutError):
            return "timeout"
        return super().classify(exc)

    async def close(self):
        for s in self.conns.values():
            s.close()


class SnmpPkgAdapter(Adapter):
    name = "snmp"
    requirement = "snmp==1.4.0 (+ pycryptodome for AES)"
    notes = "AsyncEngine; one shared socket"

    async def open(self, addresses):
        from snmp import SNMPv2c, SNMPv3
        from snmp.async_engine import AsyncEngine
        from snmp.security.usm.auth import HmacSha
        from snmp.security.usm.priv.pycryptodome.aes import AesCfb128

        if self.cfg.version == "v3":
            self.engine = AsyncEngine(defaultVersion=SNMPv3)
            self.engine.addUser(V3_USER, authProtocol=HmacSha, privProtocol=AesCfb128,
                                authSecret=self.cfg.auth_key.encode(), privSecret=self.cfg.priv_key.encode())
            self.managers = {a: self.engine.Manager((a, self.cfg.port)) for a in addresses}
        else:
            self.engine = AsyncEngine(defaultVersion=SNMPv2c)
            self.managers = {a: self.engine.Manager((a, self.cfg.port), community=COMMUNITY.encode())
                             for a in addresses}
        # refreshPeriod above the timeout: no retransmission, like the others' retries=0
        self.kw = {"timeout": self.cfg.timeout, "refreshPeriod": self.cfg.timeout + 10}

    async def get(self, addr, oids):
        return await self.managers[addr].get(*oids, **self.kw)

    async def bulk(self, addr, oid, reps):
        return await self.managers[addr].getBulk(oid, maxRepetitions=reps, **self.kw)

    @staticmethod
    def _value(v):
        name = type(v).__name__
        if name in ("NoSuchObject", "NoSuchInstance", "EndOfMibView"):
            return {"NoSuchObject": NSO, "NoSuchInstance": NSI, "EndOfMibView": EOM}[name]
        if hasattr(v, "data"):
            return v.data
        if name == "OID":
            return tuple(v)
        return v.value

    def values(self, raw):
        return [self._value(vb.value) for vb in raw]

    def pairs(self, raw):
        return [(str(vb.name), self._value(vb.value)) for vb in raw]

    def classify(self, exc):
        name = type(exc).__name__
        if name == "Timeout":
            return "timeout"
        if name in ("AuthenticationFailure", "UnknownUserName", "WrongDigest", "DecryptionError"):
            return "auth"
        return super().classify(exc)

    async def close(self):
        self.engine.multiplexor.close()


_EZ_INT_TYPES = {"INTEGER", "Counter32", "Counter64", "Gauge32", "Timeticks", "UInteger32", "INTEGER32"}


class EzsnmpAdapter(Adapter):
    name = "ezsnmp"
    requirement = "ezsnmp==2.5.0"
    asyncio_native = False
    notes = "synchronous net-snmp: 100-thread pool; values come back as net-snmp's printed text"

    async def open(self, addresses):
        from concurrent.futures import ThreadPoolExecutor

        from ezsnmp import Session

        self.pool = ThreadPoolExecutor(max_workers=100)
        common = dict(port_number=self.cfg.port, timeout=max(1, int(round(self.cfg.timeout))), retries=0,
                      print_oids_numerically=True, print_full_oids=True, print_timeticks_numerically=True,
                      set_max_repeaters_to_num=BULK_REPS)
        if self.cfg.version == "v3":
            common.update(version=3, security_level="authPriv", security_username=V3_USER, auth_protocol="SHA",
                          auth_passphrase=self.cfg.auth_key, privacy_protocol="AES",
                          privacy_passphrase=self.cfg.priv_key)
        else:
            common.update(version=2, community=COMMUNITY)
        self.sessions = {a: Session(hostname=a, **common) for a in addresses}

    async def get(self, addr, oids):
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.sessions[addr].get, oids)

    async def bulk(self, addr, oid, reps):
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.sessions[addr].bulk_get, [oid])

    @staticmethod
    def _value(r):
        t, v = r.type, r.value
        if t in _EZ_INT_TYPES or t.isdigit():  # print_timeticks_numerically puts the number in .type too
            if v[:1] == "(":  # ... and is not honoured everywhere: "(206072643) 23 days, 20:25:26.43"
                return int(v[1:v.index(")")])
            return int(v)
        if t == "NOSUCHINSTANCE":
            return NSI
        if t == "NOSUCHOBJECT":
            return NSO
        if t.startswith("No more variables"):
            return EOM
        if t == "Hex-STRING":
            return bytes.fromhex("".join(v.split()))
        if t == "STRING":
            return v.encode()
        return v

    def values(self, raw):
        return [self._value(r) for r in raw]

    def pairs(self, raw):
        return [(f"{r.oid}.{r.index}".lstrip("."), self._value(r)) for r in raw]

    def classify(self, exc):
        name = type(exc).__name__
        text = str(exc)
        if name == "TimeoutError" or "Timeout" in text:
            return "timeout"
        if "Authentication failure" in text or "authentication" in text.lower():
            return "auth"
        return super().classify(exc)

    async def close(self):
        self.pool.shutdown(wait=False, cancel_futures=True)


ADAPTERS: dict[str, type[Adapter]] = {
    "own": OwnAdapter,
    "collectors": CollectorsAdapter,
    "gufo": GufoAdapter,
    "pysnmp": PysnmpAdapter,
    "puresnmp": PuresnmpAdapter,
    "aiosnmp": AiosnmpAdapter,
    "snmp": SnmpPkgAdapter,
    "ezsnmp": EzsnmpAdapter,
}


def library_version(lib: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    dist = {"own": None, "collectors": None, "gufo": "gufo-snmp", "pysnmp": "pysnmp", "puresnmp": "puresnmp", "aiosnmp": "aiosnmp",
            "snmp": "snmp", "ezsnmp": "ezsnmp"}[lib]
    if dist is None:
        return "repo"
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


# --- measurement helpers -------------------------------------------------------


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy (all processes): to see what else was running."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def udp_rcvbuf_errors() -> int:
    """Datagrams the kernel dropped machine-wide because a socket's receive buffer was full."""
    lines = [ln.split() for ln in Path("/proc/net/snmp").read_text().splitlines() if ln.startswith("Udp:")]
    return int(dict(zip(lines[0], lines[1], strict=True)).get("RcvbufErrors", 0))


class Meter:
    """Client CPU (this process), simulation CPU (/proc) and everything else on the machine, over a phase."""

    def __init__(self, sim_pid: int):
        self.sim_pid = sim_pid
        self.cpu0, self.sim0 = time.process_time(), proc_cpu_seconds(sim_pid)
        self.busy0, self.t0 = machine_busy_seconds(), time.perf_counter()
        self.drops0 = udp_rcvbuf_errors()

    def read(self) -> dict:
        wall = time.perf_counter() - self.t0
        cpu = time.process_time() - self.cpu0
        sim = proc_cpu_seconds(self.sim_pid) - self.sim0
        other = max(0.0, machine_busy_seconds() - self.busy0 - cpu - sim)
        return {"wall_s": round(wall, 2), "client_cpu_s": round(cpu, 3), "sim_cpu_s": round(sim, 2),
                "client_cores": round(cpu / wall, 2), "sim_cores": round(sim / wall, 2),
                "other_cores": round(other / wall, 2), "udp_rcvbuf_drops": udp_rcvbuf_errors() - self.drops0}


async def quiet(sim_pid: int, threshold: float, limit: float) -> float:
    """Wait (at most `limit` s) until processes other than this one and the simulation use < `threshold` cores."""
    deadline = time.monotonic() + limit
    while True:
        meter = Meter(sim_pid)
        await asyncio.sleep(1.0)
        other = meter.read()["other_cores"]
        if other < threshold or time.monotonic() > deadline:
            return other


async def measured(phase: Callable, sim_pid: int, opts: dict) -> dict:
    """Run a phase on a quiet machine; if something else still ran during it, try again (bounded)."""
    best: dict | None = None
    for attempt in range(1, opts["attempts"] + 1):
        await quiet(sim_pid, opts["quiet_below"], opts["quiet_wait"])
        result = await phase()
        result["attempt"] = attempt
        if best is None or result["other_cores"] < best["other_cores"]:
            best = result
        if result["other_cores"] <= opts["quiet_below"]:
            break
    assert best is not None
    return best


async def closed_loop(adapter: Adapter, addresses: list[str], call: Callable, *, concurrency: int,
                      seconds: float, max_requests: int, min_values: int, sim_pid: int) -> dict:
    """`concurrency` requests in flight over the devices for `seconds` (or `max_requests`)."""
    loop = asyncio.get_running_loop()
    stats: Counter[str] = Counter()
    cursor = itertools.count()
    busy: set[str] = set()
    examples: dict[str, str] = {}
    n = len(addresses)
    deadline = loop.time() + seconds

    async def worker() -> None:
        while loop.time() < deadline and stats["requests"] < max_requests:
            addr = addresses[next(cursor) % n]
            if addr in busy:  # one request per device at a time (per-device sessions rely on it)
                continue
            busy.add(addr)
            stats["requests"] += 1
            try:
                values = adapter.values(await call(addr))
                stats["ok" if len(values) >= min_values else "short"] += 1
            except Exception as exc:  # counted, not fatal
                kind = adapter.classify(exc)
                stats[kind] += 1
                examples.setdefault(kind, f"{type(exc).__name__}: {exc}"[:160])
            finally:
                busy.discard(addr)

    meter = Meter(sim_pid)
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    m = meter.read()
    ok = stats["ok"]
    return {
        "requests": stats["requests"], "ok": ok,
        "failures": {k: v for k, v in stats.items() if k not in ("requests", "ok")}, "failure_examples": examples,
        "req_per_s": round(ok / m["wall_s"], 1),
        "cpu_s_per_1000": round(m["client_cpu_s"] / ok * 1000, 4) if ok else None,
        "sim_cpu_s_per_1000": round(m["sim_cpu_s"] / ok * 1000, 4) if ok else None,
        **m,
    }


async def poll_mix(adapter: Adapter, addresses: list[str], *, polls_per_s: float, seconds: float,
                   max_inflight: int, sim_pid: int) -> dict:
    """The collectors' shape: device polls started at a fixed rate, each 3 sequential requests."""
    loop = asyncio.get_running_loop()
    stats: Counter[str] = Counter()
    latencies: list[float] = []
    inflight: set[asyncio.Task] = set()
    busy: set[str] = set()

    async def poll(addr: str) -> None:
        began = loop.time()
        try:
            adapter.values(await adapter.get(addr, POLL_GET))
            for oid, reps in POLL_BULKS:
                adapter.values(await adapter.bulk(addr, oid, reps))
            stats["polls_ok"] += 1
            latencies.append(loop.time() - began)
        except Exception as exc:
            kind = adapter.classify(exc)
            stats[kind] += 1
            examples.setdefault(kind, f"{type(exc).__name__}: {exc}"[:160])
        finally:
            busy.discard(addr)

    examples: dict[str, str] = {}
    meter = Meter(sim_pid)
    t0 = time.perf_counter()
    start = loop.time()
    total = int(polls_per_s * seconds)
    i = 0
    order = itertools.cycle(addresses)
    while i < total:
        now = loop.time()
        due = int((now - start) * polls_per_s) + 1
        while i < min(due, total):
            i += 1
            addr = next(order)
            if len(inflight) >= max_inflight or addr in busy:
                stats["skipped"] += 1  # the client fell behind: this poll is lost
                continue
            busy.add(addr)
            task = asyncio.create_task(poll(addr))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
        await asyncio.sleep(max(0.0, start + i / polls_per_s - loop.time()))
    sched_wall = time.perf_counter() - t0
    if inflight:
        await asyncio.wait(inflight, timeout=adapter.cfg.timeout * 4 + 5)
    for task in list(inflight):
        task.cancel()
    m = meter.read()
    latencies.sort()

    def pct(p: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 1) if latencies else None

    ok = stats["polls_ok"]
    return {
        "target_polls_per_s": polls_per_s, "polls_started": total - stats["skipped"], "polls_ok": ok,
        "failures": {k: v for k, v in stats.items() if k != "polls_ok"}, "failure_examples": examples,
        "achieved_polls_per_s": round(ok / sched_wall, 1), "achieved_req_per_s": round(3 * ok / sched_wall, 1),
        "cpu_s_per_1000_req": round(m["client_cpu_s"] / (3 * ok) * 1000, 4) if ok else None,
        **m,
        "poll_latency_ms_p50": pct(0.5), "poll_latency_ms_p99": pct(0.99),
    }


# --- load worker (own process per library and version) -------------------------


def load_worker(lib: str, version: str, port: int, sim_pid: int, addresses: list[str], opts: dict,
                out: "mp.Queue[dict]") -> None:
    try:
        out.put(asyncio.run(_load(lib, version, port, sim_pid, addresses, opts)))
    except BaseException as exc:  # report, never hang the parent
        out.put({"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-2000:]})


async def _load(lib: str, version: str, port: int, sim_pid: int, addresses: list[str], opts: dict) -> dict:
    adapter = ADAPTERS[lib](Cfg(version, port, timeout=opts["timeout"]))
    result: dict[str, Any] = {"lib": lib, "version": version, "devices": len(addresses)}
    cpu0, t0 = time.process_time(), time.perf_counter()
    await adapter.open(addresses)
    result["open"] = {"wall_s": round(time.perf_counter() - t0, 2), "client_cpu_s": round(time.process_time() - cpu0, 2)}
    try:
        # warm-up: every device once (v3: discovery + time sync), bounded in time
        stats: Counter[str] = Counter()
        loop = asyncio.get_running_loop()
        sem = asyncio.Semaphore(opts["concurrency"])
        deadline = loop.time() + opts["warm_seconds"]

        warmed: list[str] = []

        async def warm_one(a: str) -> None:
            async with sem:
                if loop.time() > deadline:
                    stats["not-warmed (time bound)"] += 1
                    return
                try:
                    await adapter.warm(a)
                    stats["ok"] += 1
                    warmed.append(a)
                except Exception as exc:
                    stats[adapter.classify(exc)] += 1

        meter = Meter(sim_pid)
        await asyncio.gather(*(warm_one(a) for a in addresses))
        warm = {**meter.read(), **dict(stats)}
        result["warm"] = warm
        # a slow library may not reach every device within the bound: load the ones it has met
        ready = warmed if len(warmed) >= 2 * opts["concurrency"] else addresses
        result["devices_loaded"] = len(ready)
        common = dict(concurrency=opts["concurrency"], seconds=opts["seconds"], max_requests=opts["max_requests"],
                      sim_pid=sim_pid)
        result["get"] = await measured(lambda: closed_loop(adapter, ready, lambda a: adapter.get(a, GET_OIDS),
                                                           min_values=3, **common), sim_pid, opts)
        result["bulk"] = await measured(lambda: closed_loop(adapter, ready,
                                                            lambda a: adapter.bulk(a, BULK_OID, BULK_REPS),
                                                            min_values=5, **common), sim_pid, opts)
        if opts["mix_seconds"] > 0:
            result["mix"] = await measured(lambda: poll_mix(adapter, ready, polls_per_s=opts["polls_per_s"],
                                                            seconds=opts["mix_seconds"],
                                                            max_inflight=opts["max_inflight"], sim_pid=sim_pid),
                                           sim_pid, opts)
        result["client_max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        if isinstance(adapter, OwnAdapter):
            result["own_dropped"] = dict(adapter.client.dropped)
    finally:
        try:
            await asyncio.wait_for(adapter.close(), 10)
        except Exception:
            pass
    return result


# --- correctness worker (own process per library; simulation subset in a thread) ---


class SimThread:
    """A subset of the simulation in its own thread and event loop, with planted counter values."""

    def __init__(self, port: int):
        self.port = port
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.net = None
        self._stop: asyncio.Event | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "SimThread":
        self.thread.start()
        if not self.ready.wait(60) or self.error:
            raise RuntimeError(f"in-process simulation did not start: {self.error!r}")
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        import logging

        logging.getLogger("simnet").setLevel(logging.ERROR)
        from monitor.inventory import default_inventory
        from monitor.inventory.subset import subset_by_prefecture
        from simnet.network import SimNetwork, SimnetConfig

        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        inventory = subset_by_prefecture(default_inventory(), ["01"], max_municipalities=3)
        self.net = SimNetwork(inventory, SimnetConfig(snmp_port=self.port, tls=False))
        by_addr = {d.device.address: d for d in self.net.devices.values()}
        self.values_dev = by_addr["127.11.1.4"]
        self.clock_dev = by_addr["127.11.2.4"]
        self.silent_dev = by_addr["127.11.3.4"]
        iface = self.values_dev.interfaces[0]
        iface.admin_down = True  # counters frozen: snmpget and the library see the same values
        for attr, value in BIG.items():
            setattr(iface, attr, value)
        await self.net.start()
        self.net.inject("device_down", self.silent_dev.device.id)
        self.ready.set()
        await self._stop.wait()
        self.net.clear_all()
        await self.net.stop()

    def call(self, fn: Callable[[], Any]) -> Any:
        assert self.loop is not None

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def jump_clock(self, seconds: float) -> None:
        """The agent's engine time leaps forward (as if the manager had not spoken to it for that long)."""
        dev = self.clock_dev
        self.call(lambda: setattr(dev.identity, "started", dev.identity.started - seconds))

    def reboot(self) -> None:
        dev = self.clock_dev
        self.call(lambda: self.net.inject("reboot", dev.device.id))

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(30)


def net_snmp_values(address: str, port: int, oids: list[str], v3: bool) -> dict[str, str]:
    """Debian's snmpget (an independent implementation), values as printed."""
    if shutil.which("snmpget") is None:
        return {}
    auth = (["-v3", "-l", "authPriv", "-u", V3_USER, "-a", "SHA", "-A", AUTH_KEY, "-x", "AES", "-X", PRIV_KEY]
            if v3 else ["-v2c", "-c", COMMUNITY])
    proc = subprocess.run(["snmpget", *auth, "-On", "-Oe", "-t", "2", "-r", "1", f"{address}:{port}", *oids],
                          capture_output=True, text=True, timeout=20, env={"MIBS": "", "PATH": "/usr/bin:/bin"})
    out = {}
    for line in proc.stdout.splitlines():
        oid, sep, value = line.partition(" = ")
        if sep:
            out[oid.strip().lstrip(".")] = value.strip()
    return out


def _number(text: str) -> int | None:
    m = re.search(r"(?:Counter64|Counter32|INTEGER|Gauge32): (\d+)", text)
    return int(m.group(1)) if m else None


def _kind(value: Any) -> str:
    if isinstance(value, Marker):
        return str(value)
    if value is None:
        return "None"
    return f"value:{type(value).__name__}"


def correctness_worker(lib: str, port: int, out: "mp.Queue[dict]") -> None:
    try:
        out.put(asyncio.run(_correctness(lib, port)))
    except BaseException as exc:
        out.put({"lib": lib, "error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-3000:]})


async def _check(name: str, results: dict, coro_fn: Callable, timeout: float = 15.0) -> None:
    try:
        results[name] = await asyncio.wait_for(coro_fn(), timeout)
    except Exception as exc:
        results[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}


async def _correctness(lib: str, port: int) -> dict:
    sim = SimThread(port).start()
    report: dict[str, Any] = {"lib": lib, "version": library_version(lib),
                              "asyncio_native": ADAPTERS[lib].asyncio_native}
    try:
        for version in (["v2c", "v3"] if ADAPTERS[lib].supports_v3 else ["v2c"]):
            report[version] = await _correct_version(lib, version, port, sim)
    finally:
        sim.stop()
    return report


COUNTER_OIDS = [IF_HC_IN_OCTETS_1, IF_HC_IN_UCAST_1, IF_HC_OUT_OCTETS_1, IF_HC_OUT_UCAST_1, IF_IN_OCTETS_1]


async def _correct_version(lib: str, version: str, port: int, sim: SimThread) -> dict:
    loop = asyncio.get_running_loop()
    values_addr = sim.values_dev.device.address
    clock_addr = sim.clock_dev.device.address
    silent_addr = sim.silent_dev.device.address
    r: dict[str, Any] = {}
    reference = await loop.run_in_executor(None, net_snmp_values, values_addr, port, COUNTER_OIDS, version == "v3")
    r["snmpget_reference"] = reference
    adapter = ADAPTERS[lib](Cfg(version, port, timeout=1.0))
    await adapter.open([values_addr, clock_addr, silent_addr])
    try:
        await _check("values_vs_snmpget", r, lambda: _check_values(adapter, values_addr, reference))
        await _check("no_such_and_end_of_mib", r, lambda: _check_no_such(adapter, values_addr))
        if version == "v3":
            await _check("v3_discovery", r, lambda: _check_discovery(adapter, clock_addr))
            await _check("v3_agent_clock_jump_200s", r,
                         lambda: _check_after(adapter, clock_addr, lambda: sim.jump_clock(200)))
            await _check("v3_agent_reboot", r, lambda: _check_after(adapter, clock_addr, sim.reboot))
            await _check("v3_wrong_auth_key", r, lambda: _check_wrong_key(lib, version, port, values_addr))
        await _check("silent_device_1s_timeout", r, lambda: _check_silent(adapter, silent_addr))
    finally:
        await adapter.close()
    return r


async def _check_values(adapter: Adapter, addr: str, reference: dict[str, str]) -> dict:
    t = time.perf_counter()
    got = dict(adapter.pairs(await adapter.get(addr, COUNTER_OIDS)))
    first_ms = round((time.perf_counter() - t) * 1000, 1)
    rows = {}
    for oid in COUNTER_OIDS:
        want = _number(reference.get(oid, "")) if reference else None
        have = got.get(oid)
        rows[oid] = {"snmpget": want, "library": have if isinstance(have, int) else repr(have),
                     "equal": want is not None and have == want}
    contact = dict(adapter.pairs(await adapter.get(addr, [SYS_CONTACT]))).get(SYS_CONTACT)
    return {"all_equal": all(x["equal"] for x in rows.values()), "rows": rows,
            "utf8_octets_ok": contact == "全国センター ネットワーク監視 (NOC)".encode(),
            "first_request_ms": first_ms}


async def _check_no_such(adapter: Adapter, addr: str) -> dict:
    res: dict[str, Any] = {}
    try:
        got = adapter.pairs(await adapter.get(addr, [SYS_UPTIME, NO_SUCH_INSTANCE_OID, NO_SUCH_OBJECT_OID]))
        as_dict = dict(got)
        res["multi_get"] = {
            "returned": len(got),
            "noSuchInstance": _kind(as_dict[NO_SUCH_INSTANCE_OID]) if NO_SUCH_INSTANCE_OID in as_dict else "missing",
            "noSuchObject": _kind(as_dict[NO_SUCH_OBJECT_OID]) if NO_SUCH_OBJECT_OID in as_dict else "missing"}
    except Exception as exc:
        res["multi_get"] = {"raised": f"{type(exc).__name__}: {exc}"[:200]}
    for label, oid in (("single_noSuchInstance", NO_SUCH_INSTANCE_OID), ("single_noSuchObject", NO_SUCH_OBJECT_OID)):
        try:
            got = adapter.pairs(await adapter.single(addr, oid))
            res[label] = _kind(got[0][1]) if got else "empty result"
        except Exception as exc:
            res[label] = f"raised {type(exc).__name__}: {exc}"[:200]
    try:
        got = adapter.pairs(await adapter.bulk(addr, PAST_END_OID, 2))
        res["bulk_past_end"] = _kind(got[0][1]) if got else "empty result"
    except Exception as exc:
        res["bulk_past_end"] = f"raised {type(exc).__name__}: {exc}"[:200]
    mg = res.get("multi_get", {})
    res["distinct"] = (mg.get("noSuchInstance") == NSI and mg.get("noSuchObject") == NSO
                       and res["bulk_past_end"] == EOM)
    return res


async def _check_discovery(adapter: Adapter, addr: str) -> dict:
    t = time.perf_counter()
    await adapter.warm(addr)
    got = adapter.values(await adapter.get(addr, [SYS_UPTIME]))
    return {"ok": bool(got) and isinstance(got[0], int), "ms": round((time.perf_counter() - t) * 1000, 1)}


async def _check_after(adapter: Adapter, addr: str, action: Callable[[], None]) -> dict:
    """After something happens to the agent's engine clock: does the next request work?"""
    await asyncio.get_running_loop().run_in_executor(None, action)
    t = time.perf_counter()
    res: dict[str, Any] = {}
    try:
        adapter.values(await adapter.get(addr, [SYS_UPTIME]))
        res["first_request"] = "ok"
    except Exception as exc:
        res["first_request"] = f"{adapter.classify(exc)} ({type(exc).__name__}: {exc})"[:200]
        try:  # does the library recover on its own at the next request?
            adapter.values(await adapter.get(addr, [SYS_UPTIME]))
            res["second_request"] = "ok"
        except Exception as exc2:
            res["second_request"] = f"{adapter.classify(exc2)} ({type(exc2).__name__})"[:200]
    res["ms"] = round((time.perf_counter() - t) * 1000, 1)
    res["ok"] = res["first_request"] == "ok"
    return res


async def _check_wrong_key(lib: str, version: str, port: int, addr: str) -> dict:
    bad = ADAPTERS[lib](Cfg(version, port, timeout=1.0, auth_key=WRONG_AUTH_KEY))
    await bad.open([addr])
    t = time.perf_counter()
    try:
        await bad.warm(addr)
        await bad.get(addr, [SYS_UPTIME])
        kind, text = "no error", ""
    except Exception as exc:
        kind, text = bad.classify(exc), f"{type(exc).__name__}: {exc}"[:200]
    finally:
        await bad.close()
    return {"reported_as": kind, "exception": text, "ms": round((time.perf_counter() - t) * 1000, 1),
            "ok": kind == "auth"}


async def _check_silent(adapter: Adapter, addr: str) -> dict:
    t = time.perf_counter()
    try:
        await adapter.warm(addr)
        await adapter.get(addr, [SYS_UPTIME])
        kind, text = "answered?!", ""
    except Exception as exc:
        kind, text = adapter.classify(exc), f"{type(exc).__name__}: {exc}"[:200]
    elapsed = time.perf_counter() - t
    return {"reported_as": kind, "exception": text, "seconds": round(elapsed, 2), "configured_timeout_s": 1.0,
            "ok": kind == "timeout" and elapsed <= 1.5}


# --- orchestration ------------------------------------------------------------------


def run_in_process(target: Callable, args: tuple, timeout: float) -> dict:
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q))
    p.start()
    try:
        return q.get(timeout=timeout)
    except Exception as exc:
        return {"error": f"worker gave no result within {timeout:.0f} s ({type(exc).__name__})"}
    finally:
        p.join(10)
        if p.is_alive():
            p.kill()
            p.join(5)


def wait_for_quiet(sim_pid: int, threshold: float, limit: float) -> float:
    """Wait (at most `limit` s) until the rest of the machine uses < `threshold` cores; return what it used."""
    deadline = time.monotonic() + limit
    while True:
        busy0, sim0 = machine_busy_seconds(), proc_cpu_seconds(sim_pid)
        time.sleep(1.0)
        other = machine_busy_seconds() - busy0 - (proc_cpu_seconds(sim_pid) - sim0)
        if other < threshold or time.monotonic() > deadline:
            return round(max(other, 0.0), 2)


SIM_LOG = Path("/tmp/jukimon-bench-snmp-clients-sim.log")


def start_simulation(port: int, control: int) -> subprocess.Popen:
    with SIM_LOG.open("a") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", "--log-level", "WARNING", "simnet", "run", "--snmp-port", str(port),
             "--no-tls", "--control", f"127.0.0.1:{control}"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if "devices up" not in first:
        proc.kill()
        raise SystemExit(f"simulation did not start: {first!r} (see {SIM_LOG})")
    return proc


def fmt(x: Any, nd: int = 3) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def print_tables(report: dict) -> None:
    print("\nLoad: cpu s/1k = client CPU seconds per 1,000 requests (its own process); req/s with "
          f"{report['settings']['concurrency']} in flight; mix = {report['settings']['polls_per_s']:.0f} polls/s x 3 "
          "requests, cores used by client and simulation; other = busiest phase's CPU used by unrelated processes")
    hdr = (f"{'library':<10} {'ver':<4} {'GET cpu s/1k':>12} {'GET req/s':>9} {'BULK cpu s/1k':>13} "
           f"{'BULK req/s':>10} {'mix req/s':>9} {'mix client':>10} {'mix sim':>7} {'p99 poll':>8} {'fail':>6} "
           f"{'other':>5}")
    print(hdr)
    print("-" * len(hdr))
    for row in report["load"]:
        if "error" in row:
            print(f"{row.get('lib', '?'):<10} {row.get('version', '?'):<4} error: {row['error'][:80]}")
            continue
        g, b, m = row.get("get", {}), row.get("bulk", {}), row.get("mix", {})
        fails = sum(g.get("failures", {}).values()) + sum(b.get("failures", {}).values()) + sum(
            m.get("failures", {}).values())
        print(f"{row['lib']:<10} {row['version']:<4} {fmt(g.get('cpu_s_per_1000'), 4):>12} "
              f"{fmt(g.get('req_per_s'), 0):>9} {fmt(b.get('cpu_s_per_1000'), 4):>13} {fmt(b.get('req_per_s'), 0):>10} "
              f"{fmt(m.get('achieved_req_per_s'), 0):>9} {fmt(m.get('client_cores'), 2):>10} "
              f"{fmt(m.get('sim_cores'), 2):>7} {fmt(m.get('poll_latency_ms_p99'), 0):>8} {fails:>6} "
              f"{fmt(max((x.get('other_cores') or 0.0) for x in (g, b, m)), 2):>5}")
    print("\nCorrectness (in-process simulation subset; 1 s timeout)")
    hdr = (f"{'library':<10} {'asyncio':<7} {'ver':<4} {'C64 = snmpget':<13} {'noSuch/EOM distinct':<20} "
           f"{'discovery':<9} {'clock+200s':<10} {'reboot':<7} {'wrong key':<10} {'silent':<12}")
    print(hdr)
    print("-" * len(hdr))
    for row in report["correctness"]:
        if "error" in row:
            print(f"{row.get('lib', '?'):<10} error: {row['error'][:100]}")
            continue
        for version in ("v2c", "v3"):
            r = row.get(version)
            if r is None:
                continue

            def ok(key: str, r: dict = r) -> str:
                x = r.get(key)
                if x is None:
                    return "—"
                if "error" in x:
                    return "ERR"
                return "yes" if x.get("ok") else "NO"

            vs = r.get("values_vs_snmpget", {})
            ns = r.get("no_such_and_end_of_mib", {})
            wk = r.get("v3_wrong_auth_key")
            sl = r.get("silent_device_1s_timeout", {})
            print(f"{row['lib']:<10} {('yes' if row['asyncio_native'] else 'no'):<7} {version:<4} "
                  f"{('yes' if vs.get('all_equal') else 'NO' if vs else '—'):<13} "
                  f"{('yes' if ns.get('distinct') else 'NO' if ns else '—'):<20} {ok('v3_discovery'):<9} "
                  f"{ok('v3_agent_clock_jump_200s'):<10} {ok('v3_agent_reboot'):<7} "
                  f"{(wk.get('reported_as', 'ERR') if wk else '—'):<10} "
                  f"{(str(sl.get('reported_as')) + ' ' + fmt(sl.get('seconds'), 1) + 's') if sl else '—':<12}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--libs", default=",".join(lib for lib in ADAPTERS if lib != "collectors" or
                                                   (ROOT / "collectors" / "snmp" / "udp_client.py").exists()),
                        help="comma-separated subset of: " + ", ".join(ADAPTERS))
    parser.add_argument("--versions", default="v2c,v3")
    parser.add_argument("--seconds", type=float, default=5.0, help="per closed-loop phase (GET, GETBULK)")
    parser.add_argument("--max-requests", type=int, default=50_000, help="per closed-loop phase")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--mix-seconds", type=float, default=10.0, help="0 skips the poll-mix phase")
    parser.add_argument("--polls-per-s", type=float, default=880.0)
    parser.add_argument("--max-inflight", type=int, default=1000, help="poll-mix: polls in flight before skipping")
    parser.add_argument("--warm-seconds", type=float, default=60.0,
                        help="bound on the warm-up (v3 discovery of every device); slow libraries load fewer devices")
    parser.add_argument("--quiet-below", type=float, default=0.25,
                        help="before each load run, wait until other processes use less than this many cores")
    parser.add_argument("--quiet-wait", type=float, default=30.0, help="… but at most this long")
    parser.add_argument("--attempts", type=int, default=3,
                        help="repeat a phase (at most this often) while other processes used > --quiet-below")
    parser.add_argument("--timeout", type=float, default=2.0, help="per request in the load phases")
    parser.add_argument("--devices", type=int, default=0, help="load on this many devices (0: all ~8,800)")
    parser.add_argument("--port", type=int, default=19161, help="UDP port of the full simulation")
    parser.add_argument("--control", type=int, default=19100, help="its control port")
    parser.add_argument("--correctness-port", type=int, default=19162)
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--skip-correctness", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "snmp_clients.json")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: stop the simulation

    libs = [x for x in args.libs.split(",") if x]
    for lib in libs:
        if lib not in ADAPTERS:
            raise SystemExit(f"unknown library {lib!r}")
    versions = [v for v in args.versions.split(",") if v]
    report: dict[str, Any] = {
        "benchmark": "snmp_clients",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "cpu_model": next((ln.split(":", 1)[1].strip() for ln in
                                       Path("/proc/cpuinfo").read_text().splitlines()
                                       if ln.startswith("model name")), "?")},
        "libraries": {lib: {"version": library_version(lib), "requirement": ADAPTERS[lib].requirement,
                            "asyncio_native": ADAPTERS[lib].asyncio_native, "v3": ADAPTERS[lib].supports_v3,
                            "notes": ADAPTERS[lib].notes} for lib in libs},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "workload": {"get_oids": GET_OIDS, "bulk": [BULK_OID, BULK_REPS], "poll": {"get": POLL_GET, "bulks": POLL_BULKS}},
        "correctness": [], "load": [],
    }

    if not args.skip_correctness:
        for lib in libs:
            print(f"correctness: {lib} …", flush=True)
            report["correctness"].append(run_in_process(correctness_worker, (lib, args.correctness_port), 240))

    if not args.skip_load:
        from monitor.inventory import default_inventory

        addresses = [d.address for d in default_inventory().polled_devices() if d.address]
        random.Random(7).shuffle(addresses)
        if args.devices:
            addresses = addresses[: args.devices]
        report["devices"] = len(addresses)
        opts = {"concurrency": args.concurrency, "seconds": args.seconds, "max_requests": args.max_requests,
                "mix_seconds": args.mix_seconds, "polls_per_s": args.polls_per_s, "max_inflight": args.max_inflight,
                "warm_seconds": args.warm_seconds, "timeout": args.timeout, "attempts": args.attempts,
                "quiet_below": args.quiet_below, "quiet_wait": args.quiet_wait}
        sim = start_simulation(args.port, args.control)
        try:
            time.sleep(1.0)
            idle0 = proc_cpu_seconds(sim.pid)
            time.sleep(2.0)
            report["sim_idle_cores"] = round((proc_cpu_seconds(sim.pid) - idle0) / 2.0, 3)
            for lib in libs:
                for version in versions:
                    if version == "v3" and not ADAPTERS[lib].supports_v3:
                        continue
                    if sim.poll() is not None:  # it must not die under us; if it did, say so and start it again
                        report.setdefault("simulation_restarts", []).append(
                            {"before": f"{lib} {version}", "exit_code": sim.returncode})
                        print(f"simulation exited ({sim.returncode}); restarting (log: {SIM_LOG})", flush=True)
                        sim = start_simulation(args.port, args.control)
                    background = wait_for_quiet(sim.pid, args.quiet_below, args.quiet_wait)
                    print(f"load: {lib} {version} (other processes: {background} cores) …", flush=True)
                    phases = 2 * args.seconds + args.mix_seconds + 3 * (4 * args.timeout + 5) + 3 * args.quiet_wait
                    budget = 2 * args.warm_seconds + args.attempts * phases + 240
                    row = run_in_process(load_worker, (lib, version, args.port, sim.pid, addresses, opts), budget)
                    row["background_cores_before"] = background
                    row["simulation_alive_after"] = sim.poll() is None
                    row.setdefault("lib", lib)
                    row.setdefault("version", version)
                    report["load"].append(row)
                    g, b = row.get("get", {}), row.get("bulk", {})
                    print(f"   GET {g.get('req_per_s')} req/s, {g.get('cpu_s_per_1000')} cpu s/1k; "
                          f"BULK {b.get('req_per_s')} req/s, {b.get('cpu_s_per_1000')} cpu s/1k; "
                          f"mix {row.get('mix', {}).get('achieved_req_per_s')} req/s", flush=True)
        finally:
            sim.terminate()
            try:
                sim.wait(timeout=30)
            except subprocess.TimeoutExpired:
                sim.kill()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    print_tables(report)
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
