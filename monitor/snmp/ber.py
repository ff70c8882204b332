"""The subset of ASN.1 BER that SNMP uses, written for the simulation's hot path.

Why not a library: the simulation answers ~9,000 agents from one process on two
cores; pyasn1-based codecs spend ~100 µs per message in object construction
(our own engine: ~20 µs per GET, bench/bench_simnet.py), which would eat the whole budget. Here
values are pre-encoded ``bytes`` and decoding works on offsets into the original
buffer, so an SNMPv3 digest can be checked in place.

Decoding never trusts lengths: every read is bounds-checked and raises
``BerError`` with the offset, which callers count as a malformed message.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Iterator

# Universal and SNMP application tags
INTEGER = 0x02
OCTET_STRING = 0x04
NULL = 0x05
OBJECT_IDENTIFIER = 0x06
SEQUENCE = 0x30
IP_ADDRESS = 0x40
COUNTER32 = 0x41
GAUGE32 = 0x42
TIMETICKS = 0x43
OPAQUE = 0x44
COUNTER64 = 0x46
NO_SUCH_OBJECT = 0x80
NO_SUCH_INSTANCE = 0x81
END_OF_MIB_VIEW = 0x82

# PDU tags (context-specific, constructed)
GET_REQUEST = 0xA0
GET_NEXT_REQUEST = 0xA1
RESPONSE = 0xA2
SET_REQUEST = 0xA3
GET_BULK_REQUEST = 0xA5
INFORM_REQUEST = 0xA6
SNMPV2_TRAP = 0xA7
REPORT = 0xA8

Oid = tuple[int, ...]


class BerError(ValueError):
    """A message that is not valid BER (or not the SNMP shape expected)."""


# --- encoding -------------------------------------------------------------


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, value: bytes) -> bytes:
    length = len(value)
    if length < 0x80:
        return bytes((tag, length)) + value
    return bytes((tag,)) + encode_length(length) + value


def sequence(*parts: bytes) -> bytes:
    return tlv(SEQUENCE, b"".join(parts))


def encode_integer(value: int, tag: int = INTEGER) -> bytes:
    """Signed two's-complement INTEGER, minimal length."""
    size = (value + (value < 0)).bit_length() // 8 + 1
    return tlv(tag, value.to_bytes(size, "big", signed=True))


def encode_unsigned(value: int, tag: int) -> bytes:
    """Counter32/Gauge32/TimeTicks/Counter64: unsigned, with a leading zero when the top bit is set."""
    size = value.bit_length() // 8 + 1
    return tlv(tag, value.to_bytes(size, "big"))


def encode_octets(value: bytes | str) -> bytes:
    return tlv(OCTET_STRING, value.encode() if isinstance(value, str) else value)


@lru_cache(maxsize=65536)
def encode_oid(oid: Oid) -> bytes:
    if len(oid) < 2 or oid[0] > 2 or (oid[0] < 2 and oid[1] >= 40):
        raise BerError(f"cannot encode OID {oid}")
    body = bytearray()
    for arc in (oid[0] * 40 + oid[1], *oid[2:]):
        if arc < 0x80:
            body.append(arc)
            continue
        chunk = bytearray()
        while arc:
            chunk.append((arc & 0x7F) | 0x80)
            arc >>= 7
        chunk[0] &= 0x7F
        body.extend(reversed(chunk))
    return tlv(OBJECT_IDENTIFIER, bytes(body))


NULL_VALUE = b"\x05\x00"


def counter32(value: int) -> bytes:
    return encode_unsigned(value & 0xFFFFFFFF, COUNTER32)


def counter64(value: int) -> bytes:
    return encode_unsigned(value & 0xFFFFFFFFFFFFFFFF, COUNTER64)


def gauge32(value: int) -> bytes:
    return encode_unsigned(min(max(value, 0), 0xFFFFFFFF), GAUGE32)


def timeticks(value: int) -> bytes:
    return encode_unsigned(value & 0xFFFFFFFF, TIMETICKS)


# --- decoding -------------------------------------------------------------


def read_tlv(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Read one TLV header at ``pos``; return (tag, value_start, value_end)."""
    if pos + 2 > end:
        raise BerError(f"truncated header at offset {pos}")
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise BerError(f"multi-byte tag at offset {pos}")
    first = buf[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise BerError(f"unsupported length form 0x{first:02x} at offset {pos - 1}")
        if pos + count > end:
            raise BerError(f"truncated length at offset {pos}")
        length = int.from_bytes(buf[pos : pos + count], "big")
        pos += count
    if pos + length > end:
        raise BerError(f"length {length} overruns buffer at offset {pos}")
    return tag, pos, pos + length


def expect(buf: bytes, pos: int, end: int, tag: int) -> tuple[int, int]:
    """Read a TLV that must have ``tag``; return (value_start, value_end)."""
    got, start, stop = read_tlv(buf, pos, end)
    if got != tag:
        raise BerError(f"expected tag 0x{tag:02x}, got 0x{got:02x} at offset {pos}")
    return start, stop


def decode_integer(buf: bytes, start: int, stop: int) -> int:
    if start == stop or stop - start > 9:
        raise BerError(f"bad INTEGER length {stop - start} at offset {start}")
    return int.from_bytes(buf[start:stop], "big", signed=True)


def decode_unsigned(buf: bytes, start: int, stop: int) -> int:
    if start == stop or stop - start > 9:
        raise BerError(f"bad unsigned length {stop - start} at offset {start}")
    return int.from_bytes(buf[start:stop], "big")


_decoded_oids: dict[bytes, Oid] = {}  # the same few thousand OIDs arrive from every device


def decode_oid(buf: bytes, start: int, stop: int) -> Oid:
    raw = bytes(buf[start:stop])
    cached = _decoded_oids.get(raw)
    if cached is not None:
        return cached
    oid = _decode_oid_arcs(buf, start, stop)
    if len(_decoded_oids) >= 200_000:  # bound the cache against a hostile stream of unique OIDs
        _decoded_oids.clear()
    _decoded_oids[raw] = oid
    return oid


def _decode_oid_arcs(buf: bytes, start: int, stop: int) -> Oid:
    if start == stop or stop - start > 1024:
        raise BerError(f"bad OID length at offset {start}")
    arcs: list[int] = []
    value = 0
    for i in range(start, stop):
        byte = buf[i]
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if buf[stop - 1] & 0x80:
        raise BerError(f"unterminated OID arc at offset {stop - 1}")
    first = arcs[0]
    head = (0, first) if first < 40 else (1, first - 40) if first < 80 else (2, first - 80)
    return head + tuple(arcs[1:])


def read_integer(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Read an INTEGER TLV at ``pos``; return (value, next_pos)."""
    start, stop = expect(buf, pos, end, INTEGER)
    return decode_integer(buf, start, stop), stop


def read_octets(buf: bytes, pos: int, end: int) -> tuple[bytes, int, int]:
    """Read an OCTET STRING at ``pos``; return (value, value_start, next_pos)."""
    start, stop = expect(buf, pos, end, OCTET_STRING)
    return bytes(buf[start:stop]), start, stop


def iter_varbinds(buf: bytes, start: int, stop: int) -> Iterator[tuple[Oid, int, int, int]]:
    """Yield (oid, value_tag, value_start, value_end) for each VarBind in a VarBindList body."""
    pos = start
    while pos < stop:
        vb_start, vb_stop = expect(buf, pos, stop, SEQUENCE)
        oid_start, oid_stop = expect(buf, vb_start, vb_stop, OBJECT_IDENTIFIER)
        tag, v_start, v_stop = read_tlv(buf, oid_stop, vb_stop)
        yield decode_oid(buf, oid_start, oid_stop), tag, v_start, v_stop
        pos = vb_stop


def parse_oid_text(text: str) -> Oid:
    """'1.3.6.1.2.1.1.3.0' (leading dot allowed) → tuple of ints."""
    try:
        oid = tuple(int(part) for part in text.strip().lstrip(".").split("."))
    except ValueError:
        raise BerError(f"not a numeric OID: {text!r}") from None
    if len(oid) < 2:
        raise BerError(f"OID too short: {text!r}")
    return oid
