"""The simulated network's normal traffic as packets: frames for a capture of one day.

Patterns follow the seeds: CS → prefecture unit change notifications, forwarded to the
national database; CS ↔ CS notices; business terminals → their CS; agency immediate queries
and the provision subsystem's bulk transfer in the batch window; file delivery from the
national business subsystem at 06:00; operations polling (ICMP echo and SNMP every five
minutes, an hourly TLS certificate check), syslog and ARP. Online flows follow the
operating window (``simnet.traffic.utilisation``). Frames are built with ``struct``
(scapy builds a few thousand frames a second; a day is hundreds of thousands); the
IP header checksum is valid, TCP/UDP checksums are left zero (the IDS does not verify them).
Addresses are the inventory's 127.x management addresses (terminals: ``terminal_address``).
"""

from __future__ import annotations

import datetime as dt
import random
import struct
from dataclasses import dataclass
from typing import Iterator

from ids.traffic.matrix import terminal_address
from monitor.inventory import Device, Inventory, Role, Subsystem
from simnet.traffic import utilisation
from monitor.japan_time import JST

Frame = tuple[float, bytes]
TLS_PORT = 443
SEGMENT = 16_384  # loopback captures carry large (TSO) segments
SNAP = 64  # payload bytes kept of each data segment, as a headers-only sensor keeps
_ip_header = struct.Struct("!BBHHHBBH4s4s")
_tcp_header = struct.Struct("!HHIIBBHHH")


def mac_of(ip: str) -> bytes:
    """A stable locally administered MAC per address."""
    return b"\x02\x00" + bytes(int(x) for x in ip.split("."))


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def ipv4(src: str, dst: str, proto: int, body: bytes, src_mac: bytes | None = None, wire: int | None = None) -> bytes:
    """Ethernet + IPv4 frame around a transport body (``wire``: its length on the wire, if more was sent)."""
    s, d = bytes(int(x) for x in src.split(".")), bytes(int(x) for x in dst.split("."))
    header = _ip_header.pack(0x45, 0, 20 + (wire or len(body)), 0, 0x4000, 64, proto, 0, s, d)
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return mac_of(dst) + (src_mac or mac_of(src)) + b"\x08\x00" + header + body


def tcp(src: str, sport: int, dst: str, dport: int, flags: int, seq: int = 0, ack: int = 0,
        payload: bytes = b"", wire_payload: int | None = None) -> bytes:
    """A TCP segment; ``wire_payload`` claims a longer payload than captured (snap length)."""
    header = _tcp_header.pack(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0)
    return ipv4(src, dst, 6, header + payload, wire=None if wire_payload is None else 20 + wire_payload)


def udp(src: str, sport: int, dst: str, dport: int, payload: bytes) -> bytes:
    return ipv4(src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload)


def icmp_echo(src: str, dst: str, ident: int, seq: int, payload: bytes, reply: bool = False) -> bytes:
    return ipv4(src, dst, 1, struct.pack("!BBHHH", 0 if reply else 8, 0, 0, ident, seq) + payload)


def arp(op: int, sender_ip: str, sender_mac: bytes, target_ip: str, target_mac: bytes = b"\x00" * 6) -> bytes:
    sip, tip = bytes(int(x) for x in sender_ip.split(".")), bytes(int(x) for x in target_ip.split("."))
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, sender_mac, sip, target_mac, tip)
    dest = b"\xff" * 6 if op == 1 else target_mac
    return dest + sender_mac + b"\x08\x06" + body


def tls_record(kind: int, size: int, rng: random.Random) -> bytes:
    """A TLS 1.2 record with opaque (random) content."""
    return bytes((kind, 3, 3)) + struct.pack("!H", size) + rng.randbytes(size)


def _stream(frames: list[Frame], now: float, src: str, sport: int, dst: str, dport: int, seq: int, ack: int,
            total: int, rng: random.Random) -> tuple[float, int]:
    """Bulk data as TLS application-data segments, captured with a snap length (headers and a few bytes)."""
    while total > 0:
        size = min(SEGMENT, total)
        head = bytes((23, 3, 3)) + struct.pack("!H", max(0, size - 5)) + rng.randbytes(min(SNAP, size) - 5) \
            if size > 5 else rng.randbytes(size)
        frames.append((now, tcp(src, sport, dst, dport, 0x18, seq, ack, head[:size], wire_payload=size)))
        seq += size
        total -= size
        now += size / 50e6  # about 400 Mbit/s on loopback
    return now, seq


def tcp_session(t: float, client: str, server: str, dport: int, first: bytes, request_bytes: int,
                response_bytes: int, rng: random.Random, rtt: float = 0.002, close: int = 0x11) -> list[Frame]:
    """A whole TCP conversation: handshake, the client's first payload and data, the server's data, close.

    ``close`` is the client's closing flags (FIN|ACK, or RST|ACK for an aborted connection).
    """
    sport = rng.randrange(32768, 61000)
    cseq, sseq = rng.getrandbits(32), rng.getrandbits(32)
    frames = [(t, tcp(client, sport, server, dport, 0x02, cseq)),
              (t + rtt, tcp(server, dport, client, sport, 0x12, sseq, cseq + 1)),
              (t + 1.5 * rtt, tcp(client, sport, server, dport, 0x10, cseq + 1, sseq + 1))]
    cseq += 1
    sseq += 1
    now = t + 2 * rtt
    if first:
        frames.append((now, tcp(client, sport, server, dport, 0x18, cseq, sseq, first)))
        cseq += len(first)
        now += rtt
    now, cseq = _stream(frames, now, client, sport, server, dport, cseq, sseq, request_bytes, rng)
    now, sseq = _stream(frames, now + rtt / 2, server, dport, client, sport, sseq, cseq, response_bytes, rng)
    frames.append((now + rtt / 2, tcp(client, sport, server, dport, close, cseq, sseq)))
    if close == 0x11:
        frames += [(now + rtt, tcp(server, dport, client, sport, 0x11, sseq, cseq + 1)),
                   (now + 1.5 * rtt, tcp(client, sport, server, dport, 0x10, cseq + 1, sseq + 1))]
    return frames


def tls_session(t: float, client: str, server: str, request_bytes: int, response_bytes: int,
                rng: random.Random, port: int = TLS_PORT) -> list[Frame]:
    """A TLS exchange: ClientHello, then application data each way."""
    return tcp_session(t, client, server, port, tls_record(22, 512, rng), request_bytes, response_bytes, rng)


@dataclass(frozen=True)
class Sample:
    """The part of the national network a generated capture covers (the full network is 8,800 hosts)."""

    inventory: Inventory
    cs: tuple[Device, ...]
    units: dict[str, Device]  # prefecture code → prefecture unit
    terminals: tuple[tuple[Device, str, Device], ...]  # (terminal, its address, its CS)
    national: dict[Subsystem, tuple[Device, ...]]
    agencies: tuple[Device, ...]
    monitor: Device
    polled: tuple[Device, ...]

    @classmethod
    def of(cls, inventory: Inventory, prefectures: tuple[str, ...] = ("01", "13", "27"),
           municipalities: int = 6, terminals_per_site: int = 2) -> "Sample":
        devices = list(inventory.devices.values())
        sites = {d.site for d in devices if d.role is Role.CS and d.prefecture in prefectures
                 and int(d.site.rsplit("-", 1)[-1]) <= municipalities}
        cs = tuple(d for d in devices if d.role in (Role.CS, Role.CS_RECOVERY) and d.site in sites)
        first_cs = {}
        for d in cs:
            first_cs.setdefault(d.site, d)
        terminals = []
        for d in devices:
            if d.role is Role.TERMINAL and d.site in sites and int(d.id[-2:]) <= terminals_per_site:
                address = terminal_address(inventory, d)
                if address:
                    terminals.append((d, address, first_cs[d.site]))
        units = {d.prefecture: d for d in devices if d.role is Role.PREFECTURE_UNIT and d.prefecture in prefectures}
        national: dict[Subsystem, tuple[Device, ...]] = {}
        for d in devices:
            if d.role is Role.NATIONAL_SERVER and d.subsystem is not None:
                national[d.subsystem] = national.get(d.subsystem, ()) + (d,)
        agencies = tuple(d for d in devices if d.role is Role.AGENCY_SERVER)
        monitor = next(d for d in devices if d.role is Role.NETWORK_MONITOR)
        polled = tuple(d for d in devices if d.address and d is not monitor and _covered(d, sites, prefectures))
        return cls(inventory, cs, units, tuple(terminals), national, agencies, monitor, polled)


def _covered(device: Device, sites: set[str], prefectures: tuple[str, ...]) -> bool:
    """Whether the sample's operations polling reaches the device: its sites, its prefectures' and national hosts."""
    if not device.role.answers_snmp:
        return False
    if device.site in sites or device.prefecture is None:
        return True
    return device.prefecture in prefectures and not device.site.startswith("muni")


def _poisson(rng: random.Random, start: float, end: float, per_hour: float, phase: float) -> Iterator[float]:
    """Event times at up to ``per_hour`` following the operating-window shape (thinning)."""
    t = start
    while True:
        t += rng.expovariate(per_hour / 3600.0)
        if t >= end:
            return
        if rng.random() < utilisation(t, phase, 1.0):
            yield t


def day_start(day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time(), JST).timestamp()


def normal_day(sample: Sample, day: dt.date, seed: int = 1, hours: float = 24.0) -> list[Frame]:
    """Every frame of a normal day (or its first ``hours``), sorted by time."""
    rng = random.Random(seed)
    start = day_start(day)
    end = start + hours * 3600
    frames: list[Frame] = []
    add = frames.extend
    database = sample.national[Subsystem.DATABASE]
    provision = sample.national[Subsystem.PROVISION]
    business = sample.national[Subsystem.BUSINESS]
    for i, cs in enumerate(sample.cs):  # change notifications, forwarded by the unit to the national DB
        unit = sample.units[cs.prefecture]
        for t in _poisson(rng, start, end, 30, i / 7):
            add(tls_session(t, cs.address, unit.address, rng.randrange(600, 4000), 300, rng))
            add(tls_session(t + 0.05, unit.address, rng.choice(database).address, rng.randrange(600, 4000), 300, rng))
        for t in _poisson(rng, start, end, 2, i / 5):  # CS ↔ CS notices (転出・転入)
            add(tls_session(t, cs.address, rng.choice(sample.cs).address, rng.randrange(500, 2000), 200, rng))
    for i, (_, address, cs) in enumerate(sample.terminals):
        for t in _poisson(rng, start, end, 20, i / 3):
            add(tls_session(t, address, cs.address, rng.randrange(300, 1500), rng.randrange(500, 5000), rng))
    for i, agency in enumerate(sample.agencies):
        for t in _poisson(rng, start, end, 10, i / 2):  # immediate queries
            add(tls_session(t, agency.address, rng.choice(provision).address, 400, rng.randrange(2000, 8000), rng))
        batch = start + 19 * 3600 + i * 120 + rng.uniform(0, 30)  # batch window: bulk provision
        if batch < end:
            add(tls_session(batch, provision[0].address, agency.address, rng.randrange(3_000_000, 5_000_000), 500, rng))
    delivery = start + 6 * 3600
    for i, target in enumerate([*sample.cs, *sample.units.values()]):  # file delivery
        if delivery < end:
            add(tls_session(delivery + i * 2 + rng.uniform(0, 1), business[0].address, target.address, 500,
                            rng.randrange(100_000, 300_000), rng))
    add(_operations(sample, start, end, rng))
    frames.sort(key=lambda f: f[0])
    return frames


def _operations(sample: Sample, start: float, end: float, rng: random.Random) -> list[Frame]:
    """The network monitor's polling, syslog to it, and ARP of every host once an hour."""
    nms = sample.monitor.address
    frames: list[Frame] = []
    ping = bytes(range(56))
    for i, device in enumerate(sample.polled):
        offset = (i * 0.37) % 300
        for k, t in enumerate(_every(start + offset, end, 300)):
            frames += [(t, icmp_echo(nms, device.address, i, k & 0xFFFF, ping)),
                       (t + 0.001, icmp_echo(device.address, nms, i, k & 0xFFFF, ping, reply=True))]
            sport = rng.randrange(32768, 61000)
            frames += [(t + 0.01, udp(nms, sport, device.address, 161, b"\x30\x29" + rng.randbytes(41))),
                       (t + 0.012, udp(device.address, 161, nms, sport, b"\x30\x5a" + rng.randbytes(90)))]
        if device.role.serves_tls:
            for t in _every(start + offset + 60, end, 3600):
                frames += tls_session(t, nms, device.address, 200, 1500, rng)
        for t in _poisson(rng, start, end, 2, i / 11):
            message = f"<134>{device.id}: session established".encode()
            frames.append((t, udp(device.address, 514, nms, 514, message)))
        for t in _every(start + offset / 10, end, 3600):
            frames += [(t, arp(1, device.address, mac_of(device.address), nms)),
                       (t + 0.0005, arp(2, nms, mac_of(nms), device.address, mac_of(device.address)))]
    return frames


def _every(start: float, end: float, period: float) -> Iterator[float]:
    t = start
    while t < end:
        yield t
        t += period
