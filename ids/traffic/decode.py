"""Fast decoding of raw frames: Ethernet (with 802.1Q), bare IPv4, ARP, TCP, UDP, ICMP.

One ``Packet`` per frame with only what the flow table and detectors read. ``struct``
on bytes, no per-layer objects: scapy's full dissection costs tens of microseconds a
packet (bench/bench_ids.py measures both). Anything that cannot be decoded raises
``Malformed``; the caller counts and skips it.
"""

from __future__ import annotations

import struct
from socket import inet_ntoa

from ids.traffic.pcapio import LINKTYPE_ETHERNET, LINKTYPE_RAW

TCP, UDP, ICMP, ARP = 6, 17, 1, 0  # ARP has no IP protocol number: 0 marks it
PROTO_NAMES = {TCP: "TCP", UDP: "UDP", ICMP: "ICMP", ARP: "ARP"}

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

_ETHERTYPE_IPV4, _ETHERTYPE_ARP, _ETHERTYPE_VLAN = 0x0800, 0x0806, 0x8100
_ports = struct.Struct("!HH")
_u16 = struct.Struct("!H")


class Malformed(ValueError):
    """A frame too short or inconsistent to decode."""


class Packet:
    """What one frame says. ``payload`` is the transport payload (ICMP: after the 8-byte header)."""

    __slots__ = ("ts", "proto", "src", "dst", "sport", "dport", "flags", "payload", "length",
                 "src_mac", "icmp_type", "arp_op")

    def __init__(self, ts: float, proto: int, src: str, dst: str, sport: int, dport: int, flags: int,
                 payload: bytes, length: int, src_mac: bytes = b"", icmp_type: int = -1, arp_op: int = 0):
        self.ts = ts
        self.proto = proto
        self.src = src
        self.dst = dst
        self.sport = sport
        self.dport = dport
        self.flags = flags
        self.payload = payload
        self.length = length  # IP total length (ARP: frame length); volume counts this
        self.src_mac = src_mac  # Ethernet source; for ARP the sender hardware address
        self.icmp_type = icmp_type
        self.arp_op = arp_op


def decode(ts: float, linktype: int, frame: bytes) -> Packet | None:
    """The frame's packet; None for protocols the IDS does not judge (IPv6, LLDP, …)."""
    if linktype == LINKTYPE_ETHERNET:
        if len(frame) < 14:
            raise Malformed("short Ethernet header")
        ethertype = _u16.unpack_from(frame, 12)[0]
        offset = 14
        if ethertype == _ETHERTYPE_VLAN:
            if len(frame) < 18:
                raise Malformed("short 802.1Q header")
            ethertype = _u16.unpack_from(frame, 16)[0]
            offset = 18
        src_mac = frame[6:12]
        if ethertype == _ETHERTYPE_IPV4:
            return _ipv4(ts, frame, offset, src_mac)
        if ethertype == _ETHERTYPE_ARP:
            return _arp(ts, frame, offset)
        return None
    if linktype == LINKTYPE_RAW:
        if frame and frame[0] >> 4 == 4:
            return _ipv4(ts, frame, 0, b"")
        return None
    raise Malformed(f"unsupported link type {linktype}")


def _ipv4(ts: float, frame: bytes, offset: int, src_mac: bytes) -> Packet:
    if len(frame) < offset + 20:
        raise Malformed("short IPv4 header")
    first = frame[offset]
    ihl = (first & 0x0F) * 4
    total = _u16.unpack_from(frame, offset + 2)[0]
    if first >> 4 != 4 or ihl < 20 or total < ihl or len(frame) < offset + ihl:
        raise Malformed("bad IPv4 header")
    end = min(offset + total, len(frame))  # captures may be cut short (snaplen); trailers are padding
    proto = frame[offset + 9]
    src = inet_ntoa(frame[offset + 12:offset + 16])
    dst = inet_ntoa(frame[offset + 16:offset + 20])
    at = offset + ihl
    if _u16.unpack_from(frame, offset + 6)[0] & 0x1FFF:  # a later fragment: no transport header
        return Packet(ts, proto, src, dst, 0, 0, 0, b"", total, src_mac)
    if proto == TCP:
        if end < at + 20:
            raise Malformed("short TCP header")
        sport, dport = _ports.unpack_from(frame, at)
        data = at + (frame[at + 12] >> 4) * 4
        if data < at + 20 or data > end:
            raise Malformed("bad TCP data offset")
        return Packet(ts, TCP, src, dst, sport, dport, frame[at + 13], frame[data:end], total, src_mac)
    if proto == UDP:
        if end < at + 8:
            raise Malformed("short UDP header")
        sport, dport = _ports.unpack_from(frame, at)
        return Packet(ts, UDP, src, dst, sport, dport, 0, frame[at + 8:end], total, src_mac)
    if proto == ICMP:
        if end < at + 8:
            raise Malformed("short ICMP header")
        return Packet(ts, ICMP, src, dst, 0, 0, 0, frame[at + 8:end], total, src_mac, icmp_type=frame[at])
    return Packet(ts, proto, src, dst, 0, 0, 0, b"", total, src_mac)


def _arp(ts: float, frame: bytes, offset: int) -> Packet:
    if len(frame) < offset + 28:
        raise Malformed("short ARP packet")
    hlen, plen = frame[offset + 4], frame[offset + 5]
    if hlen != 6 or plen != 4:
        raise Malformed("ARP not Ethernet/IPv4")
    op = _u16.unpack_from(frame, offset + 6)[0]
    sender_mac = frame[offset + 8:offset + 14]
    sender_ip = inet_ntoa(frame[offset + 14:offset + 18])
    target_ip = inet_ntoa(frame[offset + 24:offset + 28])
    return Packet(ts, ARP, sender_ip, target_ip, 0, 0, 0, b"", len(frame) - offset, sender_mac, arp_op=op)
