"""Turns one SNMP request datagram into one response datagram (or nothing).

Stateless apart from the per-agent identity (engine ID, boots, start time) and
the shared key cache: a pure function of (request, MIB view, now), so it can be
tested without sockets and shared by all 9,000 simulated agents.

Supported: SNMPv2c and SNMPv3/USM (noAuth discovery, authNoPriv, authPriv with
AES-128); GET, GETNEXT, GETBULK; SET is answered with notWritable.
"""

from __future__ import annotations

import hmac
import os
import time
from dataclasses import dataclass, field
from typing import Protocol, Sequence

from simnet.snmp import ber, usm
from simnet.snmp.ber import BerError, Oid

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


@dataclass
class _SaltCounter:
    value: int = int.from_bytes(os.urandom(8), "big")

    def next(self) -> bytes:
        self.value = (self.value + 1) & 0xFFFFFFFFFFFFFFFF
        return self.value.to_bytes(8, "big")


_salts = _SaltCounter()


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
    pdu = _parse_pdu(data, pos, stop)
    body = _answer_pdu(pdu, view, MAX_V2C_RESPONSE - 30 - len(community))
    return ber.sequence(ber.encode_integer(1), ber.encode_octets(community), body)


# --- PDU processing --------------------------------------------------------


@dataclass
class _Pdu:
    tag: int
    request_id: int
    non_repeaters: int
    max_repetitions: int
    oids: list[Oid]


def _parse_pdu(data: bytes, pos: int, stop: int) -> _Pdu:
    tag, start, pdu_stop = ber.read_tlv(data, pos, stop)
    if tag not in (ber.GET_REQUEST, ber.GET_NEXT_REQUEST, ber.GET_BULK_REQUEST, ber.SET_REQUEST):
        raise RequestRejected(f"unsupported PDU type 0x{tag:02x}")
    request_id, p = ber.read_integer(data, start, pdu_stop)
    field2, p = ber.read_integer(data, p, pdu_stop)
    field3, p = ber.read_integer(data, p, pdu_stop)
    vb_start, vb_stop = ber.expect(data, p, pdu_stop, ber.SEQUENCE)
    oids = [oid for oid, _, _, _ in ber.iter_varbinds(data, vb_start, vb_stop)]
    if len(oids) > 1000:
        raise BerError("more than 1000 varbinds")
    return _Pdu(tag, request_id, field2, field3, oids)


def _response_pdu(request_id: int, error_status: int, error_index: int, varbinds: Sequence[bytes]) -> bytes:
    return ber.tlv(
        ber.RESPONSE,
        ber.encode_integer(request_id)
        + ber.encode_integer(error_status)
        + ber.encode_integer(error_index)
        + ber.tlv(ber.SEQUENCE, b"".join(varbinds)),
    )


def varbind(oid: Oid, value: bytes) -> bytes:
    return ber.tlv(ber.SEQUENCE, ber.encode_oid(oid) + value)


def _get_value(view: MibView, oid: Oid) -> bytes:
    value = view.get(oid)
    if value is not None:
        return value
    return NO_SUCH_INSTANCE_VALUE if view.has_object(oid) else NO_SUCH_OBJECT_VALUE


def _next_varbind(view: MibView, oid: Oid) -> bytes:
    found = view.next(oid)
    return varbind(oid, END_OF_MIB_VIEW_VALUE) if found is None else varbind(*found)


def _answer_pdu(pdu: _Pdu, view: MibView, budget: int) -> bytes:
    """Build the Response PDU; ``budget`` bounds its encoded size (tooBig / bulk truncation)."""
    if pdu.tag == ber.SET_REQUEST:
        plain = [varbind(oid, ber.NULL_VALUE) for oid in pdu.oids]
        return _response_pdu(pdu.request_id, NOT_WRITABLE, 1 if pdu.oids else 0, plain)
    if pdu.tag == ber.GET_REQUEST:
        varbinds = [varbind(oid, _get_value(view, oid)) for oid in pdu.oids]
    elif pdu.tag == ber.GET_NEXT_REQUEST:
        varbinds = [_next_varbind(view, oid) for oid in pdu.oids]
    else:
        return _answer_bulk(pdu, view, budget)
    if sum(len(v) for v in varbinds) + 32 > budget:
        return _response_pdu(pdu.request_id, TOO_BIG, 0, [])
    return _response_pdu(pdu.request_id, 0, 0, varbinds)


def _answer_bulk(pdu: _Pdu, view: MibView, budget: int) -> bytes:
    non_repeaters = min(max(pdu.non_repeaters, 0), len(pdu.oids))
    max_repetitions = min(max(pdu.max_repetitions, 0), 1000)
    varbinds = [_next_varbind(view, oid) for oid in pdu.oids[:non_repeaters]]
    used = sum(len(v) for v in varbinds) + 32
    if used > budget:
        return _response_pdu(pdu.request_id, TOO_BIG, 0, [])
    cursors = list(pdu.oids[non_repeaters:])
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

FLAG_AUTH = 0x01
FLAG_PRIV = 0x02
FLAG_REPORTABLE = 0x04


@dataclass
class _V3Request:
    msg_id: int
    max_size: int
    flags: int
    engine_id: bytes
    boots: int
    engine_time: int
    user: bytes
    auth_params: bytes
    auth_offset: int  # absolute offset of msgAuthenticationParameters' value
    priv_params: bytes
    data_pos: int  # offset of msgData (ScopedPDU or encryptedPDU)
    stop: int


def _parse_v3(data: bytes, pos: int, stop: int) -> _V3Request:
    g_start, g_stop = ber.expect(data, pos, stop, ber.SEQUENCE)
    msg_id, p = ber.read_integer(data, g_start, g_stop)
    max_size, p = ber.read_integer(data, p, g_stop)
    flags_raw, _, p = ber.read_octets(data, p, g_stop)
    model, p = ber.read_integer(data, p, g_stop)
    if len(flags_raw) != 1:
        raise BerError("msgFlags must be one octet")
    if model != 3:
        raise RequestRejected(f"unsupported security model {model}")
    sp_start, sp_stop = ber.expect(data, g_stop, stop, ber.OCTET_STRING)
    s_start, s_stop = ber.expect(data, sp_start, sp_stop, ber.SEQUENCE)
    engine_id, _, p = ber.read_octets(data, s_start, s_stop)
    boots, p = ber.read_integer(data, p, s_stop)
    engine_time, p = ber.read_integer(data, p, s_stop)
    user, _, p = ber.read_octets(data, p, s_stop)
    auth_params, auth_offset, p = ber.read_octets(data, p, s_stop)
    priv_params, _, p = ber.read_octets(data, p, s_stop)
    return _V3Request(
        msg_id, max_size, flags_raw[0], engine_id, boots, engine_time, user,
        auth_params, auth_offset, priv_params, sp_stop, stop,
    )


def _scoped_pdu(data: bytes, pos: int, stop: int) -> tuple[bytes, _Pdu]:
    """Parse a plaintext ScopedPDU; return (contextName, pdu)."""
    s_start, s_stop = ber.expect(data, pos, stop, ber.SEQUENCE)
    _context_engine, _, p = ber.read_octets(data, s_start, s_stop)
    context_name, _, p = ber.read_octets(data, p, s_stop)
    return context_name, _parse_pdu(data, p, s_stop)


def _request_id_if_readable(data: bytes, req: _V3Request) -> int:
    if req.flags & FLAG_PRIV:
        return 0
    try:
        return _scoped_pdu(data, req.data_pos, req.stop)[1].request_id
    except (BerError, RequestRejected):
        return 0


def _handle_v3(
    data: bytes, pos: int, stop: int, view: MibView, identity: AgentIdentity, config: AgentConfig
) -> bytes:
    req = _parse_v3(data, pos, stop)
    respond = _V3Responder(req, identity)
    if req.engine_id != identity.engine_id:  # discovery, or a request meant for another engine
        return respond.report(usm.UNKNOWN_ENGINE_IDS, _request_id_if_readable(data, req))
    keys = config.keys.keys_for(identity.engine_id, req.user)
    if keys is None:
        return respond.report(usm.UNKNOWN_USER_NAMES, _request_id_if_readable(data, req))
    wants_priv = bool(req.flags & FLAG_PRIV)
    if not req.flags & FLAG_AUTH or (wants_priv and keys.priv_key is None):
        return respond.report(usm.UNSUPPORTED_SEC_LEVELS, _request_id_if_readable(data, req))
    if len(req.auth_params) != keys.user.auth.digest_length:
        return respond.report(usm.WRONG_DIGESTS, 0)
    zeroed = bytearray(data)
    zeroed[req.auth_offset : req.auth_offset + len(req.auth_params)] = bytes(len(req.auth_params))
    if not hmac.compare_digest(keys.digest(bytes(zeroed)), req.auth_params):
        return respond.report(usm.WRONG_DIGESTS, 0)
    if req.boots != identity.boots or abs(req.engine_time - identity.engine_time()) > usm.TIME_WINDOW_SECONDS:
        return respond.report(usm.NOT_IN_TIME_WINDOWS, 0, keys=keys)
    if wants_priv:
        try:
            enc_start, enc_stop = ber.expect(data, req.data_pos, req.stop, ber.OCTET_STRING)
            plain = keys.decrypt(data[enc_start:enc_stop], req.boots, req.engine_time, req.priv_params)
            context_name, pdu = _scoped_pdu(plain, 0, len(plain))
        except (BerError, ValueError):
            return respond.report(usm.DECRYPTION_ERRORS, 0, keys=keys)
    else:
        context_name, pdu = _scoped_pdu(data, req.data_pos, req.stop)
    budget = max(min(req.max_size, MAX_V2C_RESPONSE), MIN_MSG_SIZE) - 120 - len(req.user) - len(identity.engine_id)
    body = _answer_pdu(pdu, view, budget)
    return respond.message(scoped_pdu(identity.engine_id, context_name, body), keys, encrypt=wants_priv)


def scoped_pdu(engine_id: bytes, context_name: bytes, pdu: bytes) -> bytes:
    return ber.sequence(ber.encode_octets(engine_id), ber.encode_octets(context_name), pdu)


class _V3Responder:
    """Builds authenticated (and encrypted) SNMPv3 responses and reports."""

    def __init__(self, req: _V3Request, identity: AgentIdentity):
        self.req = req
        self.identity = identity

    def report(self, counter_oid: Oid, request_id: int, keys: usm.LocalizedKeys | None = None) -> bytes:
        if not self.req.flags & FLAG_REPORTABLE:
            raise RequestRejected("unreportable v3 failure")
        report_varbind = varbind(counter_oid, ber.counter32(1))
        pdu = ber.tlv(
            ber.REPORT,
            ber.encode_integer(request_id) + ber.encode_integer(0) + ber.encode_integer(0)
            + ber.tlv(ber.SEQUENCE, report_varbind),
        )
        return self.message(scoped_pdu(self.identity.engine_id, b"", pdu), keys, encrypt=False)

    def message(self, scoped: bytes, keys: usm.LocalizedKeys | None, *, encrypt: bool) -> bytes:
        user = keys.user.name.encode() if keys is not None else self.req.user
        return encode_v3(self.identity, self.req.msg_id, user, scoped, keys, encrypt=encrypt)


def encode_v3(identity: AgentIdentity, msg_id: int, user: bytes, scoped: bytes,
              keys: usm.LocalizedKeys | None, *, encrypt: bool, reportable: bool = False) -> bytes:
    """An SNMPv3 message from this (authoritative) engine: a response, report or trap."""
    boots, now = identity.boots, identity.engine_time()
    flags = FLAG_REPORTABLE if reportable else 0
    priv_params = b""
    msg_data = scoped
    if keys is not None:
        flags |= FLAG_AUTH
        if encrypt:
            flags |= FLAG_PRIV
            priv_params = _salts.next()
            msg_data = ber.encode_octets(keys.encrypt(scoped, boots, now, priv_params))
    digest_len = keys.user.auth.digest_length if keys is not None else 0
    head = (
        ber.encode_octets(identity.engine_id)
        + ber.encode_integer(boots)
        + ber.encode_integer(now)
        + ber.encode_octets(user)
    )
    auth_tlv = ber.encode_octets(bytes(digest_len))
    priv_tlv = ber.encode_octets(priv_params)
    sec_seq = ber.sequence(head, auth_tlv, priv_tlv)
    global_data = ber.sequence(
        ber.encode_integer(msg_id),
        ber.encode_integer(MAX_V2C_RESPONSE),
        ber.encode_octets(bytes((flags,))),
        ber.encode_integer(3),
    )
    before_sec = ber.encode_integer(3) + global_data
    sec_octets = ber.encode_octets(sec_seq)
    message = ber.sequence(before_sec, sec_octets, msg_data)
    if keys is None:
        return message
    # Locate the zeroed digest: the outer header, then the fixed parts before it.
    outer_header = len(message) - len(before_sec) - len(sec_octets) - len(msg_data)
    offset = (
        outer_header + len(before_sec)
        + (len(sec_octets) - len(sec_seq))
        + (len(sec_seq) - len(head) - len(auth_tlv) - len(priv_tlv))
        + len(head) + (len(auth_tlv) - digest_len)
    )
    digest = keys.digest(message)
    return message[:offset] + digest + message[offset + digest_len :]
