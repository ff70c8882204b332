"""SNMP messages (RFC 3416 PDUs, RFC 3412/3414 v3 framing), for both sides of the wire.

The simulated agents and the collectors' client share this: same parser for a
request and a response, same builder for an outgoing message. Values stay
encoded (``bytes``) on the agent's hot path; ``decode_value`` turns them into
Python for the client.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from enum import Enum
from typing import Union

from monitor.snmp import ber, usm
from monitor.snmp.ber import BerError, Oid

FLAG_AUTH = 0x01
FLAG_PRIV = 0x02
FLAG_REPORTABLE = 0x04
MAX_MESSAGE_SIZE = 65_000


class Missing(Enum):
    NO_SUCH_OBJECT = "noSuchObject"
    NO_SUCH_INSTANCE = "noSuchInstance"
    END_OF_MIB_VIEW = "endOfMibView"


Value = Union[int, bytes, Oid, str, Missing, None]


@dataclass
class Pdu:
    tag: int
    request_id: int
    field2: int  # error-status, or non-repeaters for GETBULK
    field3: int  # error-index, or max-repetitions for GETBULK
    varbinds: list[tuple[Oid, int, int, int]]  # (oid, value tag, value start, value end) in ``data``
    data: bytes

    def value(self, i: int) -> Value:
        _, tag, start, stop = self.varbinds[i]
        return decode_value(tag, self.data, start, stop)

    def decoded(self) -> list[tuple[Oid, Value]]:
        return [(vb[0], self.value(i)) for i, vb in enumerate(self.varbinds)]


def parse_pdu(data: bytes, pos: int, stop: int) -> Pdu:
    tag, start, pdu_stop = ber.read_tlv(data, pos, stop)
    if not 0xA0 <= tag <= 0xA8:
        raise BerError(f"not a PDU: tag 0x{tag:02x}")
    request_id, p = ber.read_integer(data, start, pdu_stop)
    field2, p = ber.read_integer(data, p, pdu_stop)
    field3, p = ber.read_integer(data, p, pdu_stop)
    vb_start, vb_stop = ber.expect(data, p, pdu_stop, ber.SEQUENCE)
    varbinds = list(ber.iter_varbinds(data, vb_start, vb_stop))
    if len(varbinds) > 10_000:
        raise BerError("too many varbinds")
    return Pdu(tag, request_id, field2, field3, varbinds, data)


def varbind(oid: Oid, value: bytes) -> bytes:
    return ber.tlv(ber.SEQUENCE, ber.encode_oid(oid) + value)


def encode_pdu(tag: int, request_id: int, field2: int, field3: int, varbinds: bytes) -> bytes:
    """``varbinds`` is the concatenation of ``varbind(...)`` items."""
    return ber.tlv(tag, ber.encode_integer(request_id) + ber.encode_integer(field2)
                   + ber.encode_integer(field3) + ber.tlv(ber.SEQUENCE, varbinds))


def decode_value(tag: int, data: bytes, start: int, stop: int) -> Value:
    if tag == ber.INTEGER:
        return ber.decode_integer(data, start, stop)
    if tag in (ber.COUNTER32, ber.GAUGE32, ber.TIMETICKS, ber.COUNTER64):
        return ber.decode_unsigned(data, start, stop)
    if tag in (ber.OCTET_STRING, ber.OPAQUE):
        return bytes(data[start:stop])
    if tag == ber.OBJECT_IDENTIFIER:
        return ber.decode_oid(data, start, stop)
    if tag == ber.IP_ADDRESS:
        return ".".join(str(b) for b in data[start:stop])
    if tag == ber.NULL:
        return None
    if tag == ber.NO_SUCH_OBJECT:
        return Missing.NO_SUCH_OBJECT
    if tag == ber.NO_SUCH_INSTANCE:
        return Missing.NO_SUCH_INSTANCE
    if tag == ber.END_OF_MIB_VIEW:
        return Missing.END_OF_MIB_VIEW
    raise BerError(f"unknown value type 0x{tag:02x}")


# --- SNMPv2c ----------------------------------------------------------------


def encode_v2c(community: bytes, pdu: bytes) -> bytes:
    return ber.sequence(ber.encode_integer(1), ber.encode_octets(community), pdu)


# --- SNMPv3 -----------------------------------------------------------------


@dataclass
class V3Header:
    msg_id: int
    max_size: int
    flags: int
    engine_id: bytes  # msgAuthoritativeEngineID
    boots: int
    engine_time: int
    user: bytes
    auth_params: bytes
    auth_offset: int  # absolute offset of msgAuthenticationParameters' value
    priv_params: bytes
    data_pos: int  # offset of msgData (ScopedPDU or encryptedPDU)
    stop: int


class UnsupportedSecurityModel(Exception):
    pass


def parse_v3_header(data: bytes, pos: int, stop: int) -> V3Header:
    """Everything after msgVersion, up to msgData."""
    g_start, g_stop = ber.expect(data, pos, stop, ber.SEQUENCE)
    msg_id, p = ber.read_integer(data, g_start, g_stop)
    max_size, p = ber.read_integer(data, p, g_stop)
    flags_raw, _, p = ber.read_octets(data, p, g_stop)
    model, p = ber.read_integer(data, p, g_stop)
    if len(flags_raw) != 1:
        raise BerError("msgFlags must be one octet")
    if model != 3:
        raise UnsupportedSecurityModel(f"security model {model}")
    sp_start, sp_stop = ber.expect(data, g_stop, stop, ber.OCTET_STRING)
    s_start, s_stop = ber.expect(data, sp_start, sp_stop, ber.SEQUENCE)
    engine_id, _, p = ber.read_octets(data, s_start, s_stop)
    boots, p = ber.read_integer(data, p, s_stop)
    engine_time, p = ber.read_integer(data, p, s_stop)
    user, _, p = ber.read_octets(data, p, s_stop)
    auth_params, auth_offset, p = ber.read_octets(data, p, s_stop)
    priv_params, _, p = ber.read_octets(data, p, s_stop)
    return V3Header(msg_id, max_size, flags_raw[0], engine_id, boots, engine_time, user,
                    auth_params, auth_offset, priv_params, sp_stop, stop)


def digest_matches(data: bytes, header: V3Header, keys: usm.LocalizedKeys) -> bool:
    if len(header.auth_params) != keys.user.auth.digest_length:
        return False
    zeroed = bytearray(data)
    zeroed[header.auth_offset: header.auth_offset + len(header.auth_params)] = bytes(len(header.auth_params))
    return hmac.compare_digest(keys.digest(bytes(zeroed)), header.auth_params)


def scoped_pdu(engine_id: bytes, context_name: bytes, pdu: bytes) -> bytes:
    return ber.sequence(ber.encode_octets(engine_id), ber.encode_octets(context_name), pdu)


def parse_scoped_pdu(data: bytes, pos: int, stop: int) -> tuple[bytes, Pdu]:
    """Plaintext ScopedPDU → (contextName, pdu)."""
    s_start, s_stop = ber.expect(data, pos, stop, ber.SEQUENCE)
    _context_engine, _, p = ber.read_octets(data, s_start, s_stop)
    context_name, _, p = ber.read_octets(data, p, s_stop)
    return context_name, parse_pdu(data, p, s_stop)


def open_scoped_pdu(data: bytes, header: V3Header, keys: usm.LocalizedKeys | None) -> tuple[bytes, Pdu]:
    """The ScopedPDU of a received message, decrypted if it is encrypted."""
    if not header.flags & FLAG_PRIV:
        return parse_scoped_pdu(data, header.data_pos, header.stop)
    if keys is None:
        raise BerError("encrypted message without keys")
    enc_start, enc_stop = ber.expect(data, header.data_pos, header.stop, ber.OCTET_STRING)
    try:
        plain = keys.decrypt(data[enc_start:enc_stop], header.boots, header.engine_time, header.priv_params)
    except ValueError as exc:
        raise BerError(f"cannot decrypt: {exc}") from None
    return parse_scoped_pdu(plain, 0, len(plain))


class _SaltCounter:
    """AES privacy salts must not repeat under one key: a counter from a random start."""

    def __init__(self) -> None:
        self.value = int.from_bytes(os.urandom(8), "big")

    def next(self) -> bytes:
        self.value = (self.value + 1) & 0xFFFFFFFFFFFFFFFF
        return self.value.to_bytes(8, "big")


_salts = _SaltCounter()


def encode_v3(*, msg_id: int, engine_id: bytes, boots: int, engine_time: int, user: bytes, scoped: bytes,
              keys: usm.LocalizedKeys | None, encrypt: bool, reportable: bool = False) -> bytes:
    """An SNMPv3 message: authenticated when ``keys`` are given, encrypted when ``encrypt``."""
    flags = FLAG_REPORTABLE if reportable else 0
    priv_params = b""
    msg_data = scoped
    if keys is not None:
        flags |= FLAG_AUTH
        if encrypt:
            flags |= FLAG_PRIV
            priv_params = _salts.next()
            msg_data = ber.encode_octets(keys.encrypt(scoped, boots, engine_time, priv_params))
    digest_len = keys.user.auth.digest_length if keys is not None else 0
    head = (ber.encode_octets(engine_id) + ber.encode_integer(boots) + ber.encode_integer(engine_time)
            + ber.encode_octets(user))
    auth_tlv = ber.encode_octets(bytes(digest_len))
    priv_tlv = ber.encode_octets(priv_params)
    sec_seq = ber.sequence(head, auth_tlv, priv_tlv)
    global_data = ber.sequence(ber.encode_integer(msg_id), ber.encode_integer(MAX_MESSAGE_SIZE),
                               ber.encode_octets(bytes((flags,))), ber.encode_integer(3))
    before_sec = ber.encode_integer(3) + global_data
    sec_octets = ber.encode_octets(sec_seq)
    message = ber.sequence(before_sec, sec_octets, msg_data)
    if keys is None:
        return message
    # Locate the zeroed digest: the outer header, then the fixed parts before it.
    outer_header = len(message) - len(before_sec) - len(sec_octets) - len(msg_data)
    offset = (outer_header + len(before_sec) + (len(sec_octets) - len(sec_seq))
              + (len(sec_seq) - len(head) - len(auth_tlv) - len(priv_tlv)) + len(head)
              + (len(auth_tlv) - digest_len))
    digest = keys.digest(message)
    return message[:offset] + digest + message[offset + digest_len:]
