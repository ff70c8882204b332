"""Reading and writing capture files: classic pcap (both byte orders, µs and ns) and pcapng.

Pure ``struct`` on purpose: the reader sits on the per-packet path of a replay and
scapy's readers build objects we do not need. Yields ``(timestamp, linktype, frame)``.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # bare IPv4/IPv6, no link header

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"

Record = tuple[float, int, bytes]
_LAST_SECOND = 253_402_300_800.0  # 10000-01-01 UTC: timestamps become dates in every alert
_MIN_BODY = {1: 8, 6: 20, 3: 4}  # interface description, enhanced packet, simple packet: their fixed fields


class CaptureError(ValueError):
    """The file is not a capture this reader understands."""


def read_capture(path: str | Path) -> Iterator[Record]:
    """Every frame of a pcap or pcapng file; a truncated last record ends the stream quietly."""
    with open(path, "rb") as stream:
        magic = stream.read(4)
        if magic in _PCAP_MAGICS:
            yield from _read_pcap(stream, *_PCAP_MAGICS[magic])
        elif magic == _PCAPNG_SHB:
            yield from _read_pcapng(stream)
        else:
            raise CaptureError(f"{path}: not a pcap or pcapng file (magic {magic.hex()})")


def _read_pcap(stream: BinaryIO, order: str, resolution: float) -> Iterator[Record]:
    header = stream.read(20)
    if len(header) < 20:
        raise CaptureError("truncated pcap header")
    linktype = struct.unpack(order + "HHiIII", header)[5] & 0xFFFF
    record = struct.Struct(order + "IIII")
    read = stream.read
    while True:
        head = read(16)
        if len(head) < 16:
            return
        sec, frac, caplen, _ = record.unpack(head)
        frame = read(caplen)
        if len(frame) < caplen:
            return
        yield sec + frac * resolution, linktype, frame


def _read_pcapng(stream: BinaryIO) -> Iterator[Record]:
    """Blocks after the section header's type (already read as the magic)."""
    order = "<"
    interfaces: list[tuple[int, float]] = []  # (linktype, seconds per tick)
    block_type = 0x0A0D0D0A
    while True:
        length_raw = stream.read(4)
        if len(length_raw) < 4:
            return
        if block_type == 0x0A0D0D0A:  # byte order is only known from the byte-order magic that follows
            bom = stream.read(4)
            order = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            body = bom
            rest = struct.unpack(order + "I", length_raw)[0] - 16
            interfaces = []  # a new section numbers its interfaces afresh
        else:
            body = b""
            rest = struct.unpack(order + "I", length_raw)[0] - 12
        if rest < 0:
            raise CaptureError("pcapng block of impossible length")
        body += stream.read(rest)
        if len(stream.read(4)) < 4:  # trailing copy of the length
            return
        if len(body) < _MIN_BODY.get(block_type, 0):
            raise CaptureError(f"pcapng block type {block_type} too short ({len(body)} bytes)")
        if block_type == 1:  # interface description
            interfaces.append((struct.unpack_from(order + "H", body)[0], _tsresol(body, order)))
        elif block_type == 6:  # enhanced packet
            iface, high, low, caplen, _ = struct.unpack_from(order + "IIIII", body)
            linktype, tick = interfaces[iface] if iface < len(interfaces) else (LINKTYPE_ETHERNET, 1e-6)
            ts = ((high << 32) | low) * tick
            if ts >= _LAST_SECOND:  # 64-bit ticks of a coarse resolution reach far beyond what a date can hold
                raise CaptureError(f"pcapng packet time {ts:.3g} s is after the year 9999")
            yield ts, linktype, body[20:20 + caplen]
        elif block_type == 3:  # simple packet: no timestamp
            yield 0.0, interfaces[0][0] if interfaces else LINKTYPE_ETHERNET, body[4:]
        type_raw = stream.read(4)
        if len(type_raw) < 4:
            return
        block_type = struct.unpack(order + "I", type_raw)[0]


def _tsresol(body: bytes, order: str) -> float:
    """Seconds per timestamp tick from the if_tsresol option (default microseconds)."""
    offset = 8
    while offset + 4 <= len(body):
        code, size = struct.unpack_from(order + "HH", body, offset)
        if code == 0:
            break
        if code == 9 and size >= 1 and offset + 4 < len(body):
            value = body[offset + 4]
            return 2.0 ** -(value & 0x7F) if value & 0x80 else 10.0 ** -value
        offset += 4 + ((size + 3) & ~3)
    return 1e-6


def wire_length(frame: bytes, linktype: int) -> int:
    """The frame's length on the wire: more than captured when an IPv4 packet was cut at a snap length."""
    at = 14 if linktype == LINKTYPE_ETHERNET else 0
    if linktype == LINKTYPE_ETHERNET and frame[12:14] != b"\x08\x00" or len(frame) < at + 4:
        return len(frame)
    return max(len(frame), at + struct.unpack_from("!H", frame, at + 2)[0])


def write_pcap(path: str | Path, records: Iterable[tuple[float, bytes]], linktype: int = LINKTYPE_ETHERNET) -> int:
    """Write frames to a classic microsecond pcap; returns the number written."""
    with open(path, "wb") as stream:
        return write_pcap_to(stream, records, linktype)


def write_pcap_to(stream: BinaryIO, records: Iterable[tuple[float, bytes]], linktype: int = LINKTYPE_ETHERNET) -> int:
    """Write a classic microsecond pcap to an open binary stream (a file, or ``io.BytesIO`` for a download).

    Frames cut at a snap length keep their wire length (from the IPv4 header) as the original length.
    """
    count = 0
    record = struct.Struct("<IIII")
    stream.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
    for ts, frame in records:
        sec, usec = divmod(int(round(ts * 1e6)), 1_000_000)
        stream.write(record.pack(sec, usec, len(frame), wire_length(frame, linktype)))
        stream.write(frame)
        count += 1
    return count
