"""Turns one SNMP request datagram into one response datagram (or nothing).

Stateless apart from the per-agent identity (engine ID, boots, start time) and
the shared key cache: a pure function of (request, MIB view, now), so it can be
tested without sockets and shared by all 9,000 simulated agents.

Supported: SNMPv2c and SNMPv3/USM (noAuth discovery, authNoPriv, authPriv with
AES-128); GET, GETNEXT, GETBULK; SET is answered with notWritable.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol, Sequence

from monitor.snmp import ber, message, usm
from monitor.snmp.ber import BerError, Oid
from monitor.snmp.message import Pdu, varbind

MAX_V2C_RESPONSE = 65_000
MIN_MSG_SIZE = 484  # RFC 3417: every SNMP entity accepts at least this

# error-status values (RFC 3416)
TOO_BIG = 1
GEN_ERR = 5
NOT_WRITABLE = 17

NO_SUCH_OBJECT_VALUE = b"\x80\x00"
NO_SUCH_INSTANCE_VALUE = b"\x81\x00"
END_OF_MIB_VIEW_VALUE = b"\x82\x00"


class MibView(Protocol):
    """What an agent exposes: a sorted OID space with encoded values."""

    def get(self, oid: Oid) -> bytes | None: ...

    def next(self, oid: Oid) -> tuple[Oid, bytes] | None: ...

    def has_object(self, oid: Oid) -> bool: ...


@dataclass
class AgentIdentity:
    """The SNMP engine of one simulated device."""

    engine_id: bytes
    boots: int = 1
    started: float = field(default_factory=time.monotonic)

    def engine_time(self) -> int:
        return int(time.monotonic() - self.started)

    def reboot(self) -> None:
        self.boots += 1
        self.started = time.monotonic()


def engine_id_for(name: str) -> bytes:
    """RFC 3411 engine ID, text format, under net-snmp's enterprise number."""
    return b"\x80\x00\x1f\x88\x04" + name.encode()[:27]


@dataclass(frozen=True)
class AgentConfig:
    communities: frozenset[bytes]
    keys: usm.KeyCache


class RequestRejected(Exception):
    """A well-formed request the agent refuses silently (bad community, v1, unsupported PDU)."""

    def __init__(self, reason: str, *, bad_community: bool = False):
        super().__init__(reason)
        self.bad_community = bad_community


def handle_request(
    data: bytes, view: MibView, identity: AgentIdentity, config: AgentConfig
) -> bytes:
    """Answer one request. Raises BerError for malformed input, RequestRejected for refused input."""
    end = len(data)
    start, stop = ber.expect(data, 0, end, ber.SEQUENCE)
    version, pos = ber.read_integer(data, start, stop)
    if version == 1:
        return _handle_v2c(data, pos, stop, view, config)
    if version == 3:
        return _handle_v3(data, pos, stop, view, identity, config)
    raise RequestRejected(f"unsupported SNMP version {version}")


# --- SNMPv2c -------------------------------------------------------------


def _handle_v2c(data: bytes, pos: int, stop: int, view: MibView, config: AgentConfig) -> bytes:
    community, _, pos = ber.read_octets(data, pos, stop)
    if community not in config.communities:
        raise RequestRejected("unknown community", bad_community=True)
    pdu = _parse_request_pdu(data, pos, stop)
    return message.encode_v2c(community, _answer_pdu(pdu, view, MAX_V2C_RESPONSE - 30 - len(community)))


# --- PDU processing --------------------------------------------------------

_REQUEST_PDUS = (ber.GET_REQUEST, ber.GET_NEXT_REQUEST, ber.GET_BULK_REQUEST, ber.SET_REQUEST)


def _parse_request_pdu(data: bytes, pos: int, stop: int) -> Pdu:
    pdu = message.parse_pdu(data, pos, stop)
    if pdu.tag not in _REQUEST_PDUS:
        raise RequestRejected(f"unsupported PDU type 0x{pdu.tag:02x}")
    if len(pdu.varbinds) > 1000:
        raise BerError("more than 1000 varbinds")
    return pdu


def _response_pdu(request_id: int, error_status: int, error_index: int, varbinds: Sequence[bytes]) -> bytes:
    return message.encode_pdu(ber.RESPONSE, request_id, error_status, error_index, b"".join(varbinds))


def _get_value(view: MibView, oid: Oid) -> bytes:
    value = view.get(oid)
    if value is not None:
        return value
    return NO_SUCH_INSTANCE_VALUE if view.has_object(oid) else NO_SUCH_OBJECT_VALUE


def _next_varbind(view: MibView, oid: Oid) -> bytes:
    found = view.next(oid)
    return varbind(oid, END_OF_MIB_VIEW_VALUE) if found is None else varbind(*found)


def _answer_pdu(pdu: Pdu, view: MibView, budget: int) -> bytes:
    """Build the Response PDU; ``budget`` bounds its encoded size (tooBig / bulk truncation)."""
    oids = [vb[0] for vb in pdu.varbinds]
    if pdu.tag == ber.SET_REQUEST:
        plain = [varbind(oid, ber.NULL_VALUE) for oid in oids]
        return _response_pdu(pdu.request_id, NOT_WRITABLE, 1 if oids else 0, plain)
    if pdu.tag == ber.GET_REQUEST:
        varbinds = [varbind(oid, _get_value(view, oid)) for oid in oids]
    elif pdu.tag == ber.GET_NEXT_REQUEST:
        varbinds = [_next_varbind(view, oid) for oid in oids]
    else:
        return _answer_bulk(pdu, view, budget)
    if sum(len(v) for v in varbinds) + 32 > budget:
        return _response_pdu(pdu.request_id, TOO_BIG, 0, [])
    return _response_pdu(pdu.request_id, 0, 0, varbinds)


def _answer_bulk(pdu: Pdu, view: MibView, budget: int) -> bytes:
    oids = [vb[0] for vb in pdu.varbinds]
    non_repeaters = min(max(pdu.field2, 0), len(oids))
    max_repetitions = min(max(pdu.field3, 0), 1000)
    varbinds = [_next_varbind(view, oid) for oid in oids[:non_repeaters]]
    used = sum(len(v) for v in varbinds) + 32
    if used > budget:
        return _response_pdu(pdu.request_id, TOO_BIG, 0, [])
    cursors = list(oids[non_repeaters:])
    for _ in range(max_repetitions if cursors else 0):
        all_ended = True
        for i, oid in enumerate(cursors):
            found = view.next(oid)
            if found is None:
                encoded = varbind(oid, END_OF_MIB_VIEW_VALUE)
            else:
                all_ended = False
                cursors[i] = found[0]
                encoded = varbind(*found)
            used += len(encoded)
            if used > budget:  # RFC 3416 4.2.3: return what fits
                return _response_pdu(pdu.request_id, 0, 0, varbinds)
            varbinds.append(encoded)
        if all_ended:
            break
    return _response_pdu(pdu.request_id, 0, 0, varbinds)


# --- SNMPv3 ----------------------------------------------------------------


def _request_id_if_readable(data: bytes, header: message.V3Header) -> int:
    if header.flags & message.FLAG_PRIV:
        return 0
    try:
        return message.parse_scoped_pdu(data, header.data_pos, header.stop)[1].request_id
    except BerError:
        return 0


def _handle_v3(data: bytes, pos: int, stop: int, view: MibView, identity: AgentIdentity,
               config: AgentConfig) -> bytes:
    try:
        req = message.parse_v3_header(data, pos, stop)
    except message.UnsupportedSecurityModel as exc:
        raise RequestRejected(f"unsupported {exc}") from None
    respond = _V3Responder(req, identity)
    if req.engine_id != identity.engine_id:  # discovery, or a request meant for another engine
        return respond.report(usm.UNKNOWN_ENGINE_IDS, _request_id_if_readable(data, req))
    keys = config.keys.keys_for(identity.engine_id, req.user)
    if keys is None:
        return respond.report(usm.UNKNOWN_USER_NAMES, _request_id_if_readable(data, req))
    wants_priv = bool(req.flags & message.FLAG_PRIV)
    if not req.flags & message.FLAG_AUTH or (wants_priv and keys.priv_key is None):
        return respond.report(usm.UNSUPPORTED_SEC_LEVELS, _request_id_if_readable(data, req))
    if not message.digest_matches(data, req, keys):
        return respond.report(usm.WRONG_DIGESTS, 0)
    if req.boots != identity.boots or abs(req.engine_time - identity.engine_time()) > usm.TIME_WINDOW_SECONDS:
        return respond.report(usm.NOT_IN_TIME_WINDOWS, 0, keys=keys)
    try:
        context_name, pdu = message.open_scoped_pdu(data, req, keys)
    except BerError:
        if not wants_priv:
            raise
        return respond.report(usm.DECRYPTION_ERRORS, 0, keys=keys)
    if pdu.tag not in _REQUEST_PDUS:
        raise RequestRejected(f"unsupported PDU type 0x{pdu.tag:02x}")
    budget = max(min(req.max_size, MAX_V2C_RESPONSE), MIN_MSG_SIZE) - 120 - len(req.user) - len(identity.engine_id)
    body = _answer_pdu(pdu, view, budget)
    return respond.message(message.scoped_pdu(identity.engine_id, context_name, body), keys, encrypt=wants_priv)


class _V3Responder:
    """Builds authenticated (and encrypted) SNMPv3 responses and reports."""

    def __init__(self, req: message.V3Header, identity: AgentIdentity):
        self.req = req
        self.identity = identity

    def report(self, counter_oid: Oid, request_id: int, keys: usm.LocalizedKeys | None = None) -> bytes:
        if not self.req.flags & message.FLAG_REPORTABLE:
            raise RequestRejected("unreportable v3 failure")
        pdu = message.encode_pdu(ber.REPORT, request_id, 0, 0, varbind(counter_oid, ber.counter32(1)))
        return self.message(message.scoped_pdu(self.identity.engine_id, b"", pdu), keys, encrypt=False)

    def message(self, scoped: bytes, keys: usm.LocalizedKeys | None, *, encrypt: bool) -> bytes:
        user = keys.user.name.encode() if keys is not None else self.req.user
        return encode_from_agent(self.identity, self.req.msg_id, user, scoped, keys, encrypt=encrypt)


def encode_from_agent(identity: AgentIdentity, msg_id: int, user: bytes, scoped: bytes,
                      keys: usm.LocalizedKeys | None, *, encrypt: bool) -> bytes:
    """A message from this (authoritative) engine: a response, report or trap."""
    return message.encode_v3(msg_id=msg_id, engine_id=identity.engine_id, boots=identity.boots,
                             engine_time=identity.engine_time(), user=user, scoped=scoped, keys=keys,
                             encrypt=encrypt)
