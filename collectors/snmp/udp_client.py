"""The collectors' SNMP client: asyncio, one UDP socket for every device, v2c and v3 (USM, AES).

Chosen over the PyPI libraries by measurement (docs/snmp-client-choice.md,
bench/bench_snmp_clients.py): pysnmp, puresnmp and ezsnmp cost 0.5–8 ms CPU per
request and cannot carry the fleet's ~2,600 requests/s; gufo_snmp is as fast but
hides noSuchInstance/endOfMibView and does not resynchronise SNMPv3 after an
agent reboots — exactly when the NOC needs it most.

Requests are matched to answers by request-id (v2c) or msgID (v3) and by the
address they came from; an answer from anyone else is ignored and counted. The socket is
a ``DrainingUdpSocket``: emptied in batches, and ``round_trip_ms(address, port)`` is the
last exchange's time from sending to the kernel's receipt of the answer — a busy monitor
does not make its devices look slow.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Sequence

from collectors.snmp.client import Credentials, SnmpAuthError, SnmpError, SnmpTimeout, VarBind
from collectors.udp_socket import DrainingUdpSocket
from monitor.snmp import ber, message, usm
from monitor.snmp.ber import BerError, Oid

RECEIVE_BUFFER = 8 << 20
_REPORT_ERRORS = {
    usm.UNSUPPORTED_SEC_LEVELS: "unsupported security level",
    usm.UNKNOWN_USER_NAMES: "unknown user name",
    usm.WRONG_DIGESTS: "wrong digest (authentication key)",
    usm.DECRYPTION_ERRORS: "decryption error (privacy key)",
}


@dataclass
class _Engine:
    """What we know of an authoritative engine (an agent) for SNMPv3."""

    engine_id: bytes
    boots: int
    engine_time: int
    learned_at: float  # time.monotonic() when engine_time was read

    def now(self) -> int:
        return self.engine_time + int(time.monotonic() - self.learned_at)


class _NeedsRetry(Exception):
    """A v3 report we can fix (unknown engine, out of time window): learn and send again."""


class SnmpUdpClient:
    def __init__(self, credentials: Credentials, *, timeout: float = 2.0, retries: int = 1,
                 source: str | None = None):
        """``source``: the local address to poll from (the network monitor's own), else the kernel's choice."""
        if credentials.version not in ("2c", "3"):
            raise ValueError("SNMP version must be 2c or 3")
        self.credentials = credentials
        self.timeout = timeout
        self.retries = retries
        self.source = source
        self.stats: Counter[str] = Counter()
        self._socket: DrainingUdpSocket | None = None
        self._pending: dict[int, tuple[asyncio.Future[tuple[bytes, float]], tuple[str, int]]] = {}
        self._round_trips: dict[tuple[str, int], float] = {}  # (address, port) → ms of the last answered exchange
        self._next_id = random.randrange(1, 2**30)
        self._engines: dict[tuple[str, int], _Engine] = {}
        self._community = credentials.community.encode()
        self._user = credentials.user.encode()
        self._keys: usm.KeyCache | None = None
        if credentials.version == "3":
            auth = usm.AUTH_PROTOCOLS.get(credentials.auth_protocol)
            if auth is None:
                raise ValueError(f"unknown auth protocol {credentials.auth_protocol}")
            user = usm.UsmUser(credentials.user, auth, credentials.auth_key, credentials.priv_key or None)
            self._keys = usm.KeyCache({self._user: user})

    # --- public ------------------------------------------------------------

    async def get(self, address: str, port: int, oids: Sequence[Oid]) -> list[VarBind]:
        return await self._request(address, port, ber.GET_REQUEST, 0, 0, oids)

    async def get_bulk(self, address: str, port: int, non_repeaters: int, max_repetitions: int,
                       oids: Sequence[Oid]) -> list[VarBind]:
        return await self._request(address, port, ber.GET_BULK_REQUEST, non_repeaters, max_repetitions, oids)

    def round_trip_ms(self, address: str, port: int) -> float | None:
        """Sending to the kernel's receipt of the answer, for the last exchange with this agent that was answered."""
        return self._round_trips.get((address, port))

    async def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        for future, _ in self._pending.values():
            if not future.done():
                future.cancel()
        self._pending.clear()

    # --- exchange ------------------------------------------------------------

    def _ensure_socket(self) -> DrainingUdpSocket:
        if self._socket is None:
            # thousands of answers can arrive in a burst; the default ~200 KB would drop them
            self._socket = DrainingUdpSocket.bind(self.source or "0.0.0.0", 0, self._received,
                                                  receive_buffer=RECEIVE_BUFFER, on_error=self._socket_error)
        return self._socket

    def _socket_error(self, _exc: OSError) -> None:
        self.stats["socket_errors"] += 1

    def _new_id(self) -> int:
        self._next_id = self._next_id % (2**31 - 2) + 1
        return self._next_id

    async def _exchange(self, address: str, port: int, build: Callable[[int], bytes]) -> bytes:
        """Send (with retries) and wait for the datagram answering this id from this address."""
        sock = self._ensure_socket()
        loop = asyncio.get_running_loop()
        for _ in range(self.retries + 1):
            request_id = self._new_id()
            future: asyncio.Future[tuple[bytes, float]] = loop.create_future()
            self._pending[request_id] = (future, (address, port))
            try:
                request = build(request_id)
                sent = time.time()  # the kernel's arrival stamps are on this clock
                try:
                    sock.sendto(request, (address, port))
                except OSError:  # full send buffer, no route: as if lost, the retry or the timeout decides
                    self.stats["socket_errors"] += 1
                else:
                    self.stats["sent"] += 1
                data, arrived = await asyncio.wait_for(future, self.timeout)
                self._round_trips[(address, port)] = max(0.0, (arrived - sent) * 1000)
                return data
            except asyncio.TimeoutError:
                self.stats["timeouts"] += 1
            finally:
                self._pending.pop(request_id, None)
        raise SnmpTimeout(f"no answer from {address}:{port}")

    def _received(self, data: bytes, addr: tuple[str, int], arrived: float) -> None:
        try:
            correlation = _correlation_id(data)
        except BerError:
            self.stats["malformed"] += 1
            return
        waiting = self._pending.get(correlation)
        if waiting is None or waiting[1] != addr[:2]:
            self.stats["unmatched"] += 1  # late, duplicate, or not from the device we asked
            return
        if not waiting[0].done():
            waiting[0].set_result((data, arrived))

    async def _request(self, address: str, port: int, tag: int, field2: int, field3: int,
                       oids: Sequence[Oid]) -> list[VarBind]:
        varbinds = b"".join(message.varbind(oid, ber.NULL_VALUE) for oid in oids)
        if self.credentials.version == "2c":
            return await self._request_v2c(address, port, tag, field2, field3, varbinds)
        for _ in range(3):  # discovery, then at most one time-window resynchronisation
            try:
                return await self._request_v3(address, port, tag, field2, field3, varbinds)
            except _NeedsRetry:
                continue
        raise SnmpAuthError(f"{address}: SNMPv3 engine keeps refusing our time window")

    async def _request_v2c(self, address: str, port: int, tag: int, field2: int, field3: int,
                           varbinds: bytes) -> list[VarBind]:
        reply = await self._exchange(address, port, lambda rid: message.encode_v2c(
            self._community, message.encode_pdu(tag, rid, field2, field3, varbinds)))
        try:
            start, stop = ber.expect(reply, 0, len(reply), ber.SEQUENCE)
            version, p = ber.read_integer(reply, start, stop)
            community, _, p = ber.read_octets(reply, p, stop)
            pdu = message.parse_pdu(reply, p, stop)
        except BerError as exc:
            raise SnmpError(f"malformed answer from {address}: {exc}") from None
        if version != 1 or community != self._community or pdu.tag != ber.RESPONSE:
            raise SnmpError(f"unexpected answer from {address}")
        return _varbinds_or_error(pdu, address)

    async def _engine(self, address: str, port: int) -> _Engine:
        known = self._engines.get((address, port))
        if known is not None:
            return known
        probe = message.scoped_pdu(b"", b"", message.encode_pdu(ber.GET_REQUEST, 0, 0, 0, b""))
        reply = await self._exchange(address, port, lambda mid: message.encode_v3(
            msg_id=mid, engine_id=b"", boots=0, engine_time=0, user=b"", scoped=probe, keys=None,
            encrypt=False, reportable=True))
        header = _v3_header(reply, address)
        if not header.engine_id:
            raise SnmpError(f"{address}: discovery answered without an engine ID")
        engine = _Engine(header.engine_id, header.boots, header.engine_time, time.monotonic())
        self._engines[(address, port)] = engine
        self.stats["discoveries"] += 1
        return engine

    async def _request_v3(self, address: str, port: int, tag: int, field2: int, field3: int,
                          varbinds: bytes) -> list[VarBind]:
        assert self._keys is not None
        engine = await self._engine(address, port)
        keys = self._keys.keys_for(engine.engine_id, self._user)
        assert keys is not None
        encrypt = keys.priv_key is not None

        def build(mid: int) -> bytes:
            scoped = message.scoped_pdu(engine.engine_id, b"", message.encode_pdu(tag, mid, field2, field3, varbinds))
            return message.encode_v3(msg_id=mid, engine_id=engine.engine_id, boots=engine.boots,
                                     engine_time=engine.now(), user=self._user, scoped=scoped, keys=keys,
                                     encrypt=encrypt, reportable=True)

        try:
            reply = await self._exchange(address, port, build)
        except SnmpTimeout:
            self._engines.pop((address, port), None)  # it may come back as a new engine (reboot)
            raise
        header = _v3_header(reply, address)
        authenticated = bool(header.flags & message.FLAG_AUTH)
        if authenticated and not message.digest_matches(reply, header, keys):
            raise SnmpAuthError(f"{address}: answer failed authentication")
        try:
            _, pdu = message.open_scoped_pdu(reply, header, keys)
        except BerError as exc:
            raise SnmpError(f"{address}: unreadable answer: {exc}") from None
        if pdu.tag == ber.REPORT:
            self._handle_report(address, port, header, pdu, authenticated)
        if pdu.tag != ber.RESPONSE or not authenticated:
            raise SnmpError(f"{address}: unexpected unauthenticated answer")
        # keep our idea of the engine's clock fresh (it moves on after a reboot too)
        self._engines[(address, port)] = _Engine(header.engine_id, header.boots, header.engine_time,
                                                 time.monotonic())
        return _varbinds_or_error(pdu, address)

    def _handle_report(self, address: str, port: int, header: message.V3Header, pdu: message.Pdu,
                       authenticated: bool) -> None:
        counter = pdu.varbinds[0][0] if pdu.varbinds else ()
        if counter == usm.UNKNOWN_ENGINE_IDS:
            self._engines.pop((address, port), None)
            raise _NeedsRetry()
        if counter == usm.NOT_IN_TIME_WINDOWS and authenticated:
            self.stats["resyncs"] += 1
            self._engines[(address, port)] = _Engine(header.engine_id, header.boots, header.engine_time,
                                                     time.monotonic())
            raise _NeedsRetry()
        reason = _REPORT_ERRORS.get(counter, f"report {'.'.join(map(str, counter))}")
        raise SnmpAuthError(f"{address}: agent refused the request: {reason}")


def _correlation_id(data: bytes) -> int:
    """request-id (v2c) or msgID (v3), read without decoding the rest."""
    start, stop = ber.expect(data, 0, len(data), ber.SEQUENCE)
    version, p = ber.read_integer(data, start, stop)
    if version == 3:
        g_start, g_stop = ber.expect(data, p, stop, ber.SEQUENCE)
        return ber.read_integer(data, g_start, g_stop)[0]
    _, _, p = ber.read_octets(data, p, stop)
    _, pdu_start, pdu_stop = ber.read_tlv(data, p, stop)
    return ber.read_integer(data, pdu_start, pdu_stop)[0]


def _v3_header(reply: bytes, address: str) -> message.V3Header:
    try:
        start, stop = ber.expect(reply, 0, len(reply), ber.SEQUENCE)
        version, p = ber.read_integer(reply, start, stop)
        if version != 3:
            raise BerError(f"version {version}")
        return message.parse_v3_header(reply, p, stop)
    except (BerError, message.UnsupportedSecurityModel) as exc:
        raise SnmpError(f"malformed answer from {address}: {exc}") from None


def _varbinds_or_error(pdu: message.Pdu, address: str) -> list[VarBind]:
    if pdu.field2 != 0:
        raise SnmpError(f"{address}: error-status {pdu.field2} at varbind {pdu.field3}")
    try:
        return pdu.decoded()
    except BerError as exc:
        raise SnmpError(f"{address}: undecodable value: {exc}") from None
