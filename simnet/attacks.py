"""The attack injector: labelled malicious traffic for the IDS, with the ground truth of every attack.

Each attack is a function of the network sample, a start time and a random source that
returns its frames and its ``Injected`` record: type, endpoints, time span, and the other
alert types it triggers by construction (a port scan between two roles that never talk is
also a matrix violation). ``labelled_day`` mixes each (once per round) into a normal day.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import socket
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterable

from ids.traffic.pcapio import write_pcap
from monitor.inventory import Subsystem
from simnet.traffic_gen import (Frame, Sample, arp, day_start, icmp_echo, ipv4, normal_day, tcp, tcp_session,
                                tls_record, tls_session, udp)

_MATRIX, _FORBIDDEN = "matrix_violation", "forbidden_protocol"


@dataclass(frozen=True)
class Injected:
    """Ground truth of one attack. ``src``/``dst`` None: many (horizontal scan targets, spoofed flood sources)."""

    name: str
    type: str
    src: str | None
    dst: str | None
    start: float
    end: float
    also: tuple[str, ...] = ()


Attack = Callable[[Sample, float, random.Random], tuple[list[Frame], Injected]]


def _span(frames: list[Frame]) -> tuple[float, float]:
    return min(f[0] for f in frames), max(f[0] for f in frames)


def _record(name: str, kind: str, src: str | None, dst: str | None, frames: list[Frame],
            also: tuple[str, ...] = ()) -> tuple[list[Frame], Injected]:
    return frames, Injected(name, kind, src, dst, *_span(frames), also)


def _probe_syn(frames: list[Frame], t: float, src: str, dst: str, port: int, rng: random.Random,
               open_ports: frozenset[int] = frozenset({443}), connect: bool = False) -> None:
    """One SYN probe and the target's answer (SYN-ACK if open, else RST); a connect scan completes and resets."""
    sport, seq = rng.randrange(32768, 61000), rng.getrandbits(32)
    frames.append((t, tcp(src, sport, dst, port, 0x02, seq)))
    if port in open_ports:
        frames.append((t + 0.001, tcp(dst, port, src, sport, 0x12, 7, seq + 1)))
        if connect:
            frames.append((t + 0.0015, tcp(src, sport, dst, port, 0x10, seq + 1, 8)))
        frames.append((t + 0.002, tcp(src, sport, dst, port, 0x04, seq + 1)))
    else:
        frames.append((t + 0.001, tcp(dst, port, src, sport, 0x14, 0, seq + 1)))


def scan_vertical_syn(sample: Sample, t: float, rng: random.Random) -> tuple[list[Frame], Injected]:
    src, dst = sample.cs[0].address, sample.national[Subsystem.DATABASE][0].address
    frames: list[Frame] = []
    for i, port in enumerate(rng.sample(range(1, 1025), 1024)):
        _probe_syn(frames, t + i * 0.02, src, dst, port, rng)
    return _record("vertical SYN scan of the national database", "scan", src, dst, frames, (_MATRIX, _FORBIDDEN))


def scan_horizontal_syn(sample: Sample, t: float, rng: random.Random) -> tuple[list[Frame], Injected]:
    src = sample.cs[1].address
    targets = [d.address for d in (*sample.cs, *sample.units.values()) if d.address != src]
    frames: list[Frame] = []
    for i, dst in enumerate(targets):
        _probe_syn(frames, t + i * 0.1, src, dst, 22, rng)
    return _record("horizontal SYN scan for SSH", "scan", src, None, frames, (_MATRIX,))


def scan_connect(sample: Sample, t: float, rng: random.Random) -> tuple[list[Frame], Injected]:
    src = sample.cs[2].address
    dst = next(u for code, u in sample.units.items() if code != sample.cs[2].prefecture).address
    frames: list[Frame] = []
    for i, port in enumerate([*range(20, 140), 443]):
        _probe_syn(frames, t + i * 0.05, src, dst, port, rng, connect=True)
    return _record("connect scan of another prefecture's unit", "scan", src, dst, frames, (_MATRIX, _FORBIDDEN))


def scan_udp(sample: Sample, t: float, rng: random.Random) -> tuple[list[Frame], Injected]:
    src, dst = sample.cs[3].address, sample.national[Subsystem.OPERATIONS][0].address
    frames: list[Frame] = []
    for i, port in enumerate(range(1, 301)):
        sport = rng.randrange(32768, 61000)
        probe = udp(src, sport, dst, port, b"")
        frames.append((t + i * 0.05, probe))
        unreachable = b"\x03\x03\x00\x00\x00\x00\x00\x00" + probe[14:42]
        frames.append((t + i * 0.05 + 0.001, ipv4(dst, src, 1, unreachable)))
    return _record("UDP scan of the operations subsystem", "scan", src, dst, frames, (_MATRIX, _FORBIDDEN))


def brute_force(sample: Sample, t: float, rng: random.Random) -> tuple[list[Frame], Injected]:
    cs = sample.cs[4]
    src, dst = cs.address, sample.units[cs.prefecture].address
    frames: list[Frame] = []
    now = t
    for _ in range(60):
        frames += tcp_session(now, src, dst, 443, tls_record(22, 512, rng), 0, 7, rng, close=0x14)
        now += rng.uniform(0.5, 1.5)
    return _record("password guessing against the prefecture unit", "brute_force", src, dst, frames)


def matrix_cross_prefecture(sample: Sample, t: float, rng: random.Random) -> tuple[list[Frame], Injected]:
    cs = sample.cs[5]
    dst = next(u for code, u in sample.units.items() if code != cs.prefecture).address
    frames = [f for k in range(3) for f in tls_session(t + k * 30, cs.address, dst, 1500, 300, rng)]
    return _record("CS → another prefecture's unit", _MATRIX, cs.address, dst, frames)


def matrix_terminal_database(sample: Sample, t: float, rng: random.Random) -> tuple[list[Frame], Injected]:
    src, dst = sample.terminals[0][1], sample.national[Subsystem.DATABASE][0].address
    frames = [f for k in range(3) for f in tls_session(t + k * 20, src, dst, 800, 40_000, rng)]
    return _record("business terminal → national database", _MATRIX, src, dst, frames)


def cleartext(sample: Sample, t: float, rng: random.Random) -> tuple[list[Frame], Injected]:
    cs = sample.cs[6]
    src, dst = cs.address, sample.units[cs.prefecture].address
    body = b"POST /notify HTTP/1.1\r\nHost: pu\r\nContent-Type: text/csv\r\n\r\n0123456789,YAMADA TARO,1980-01-01\r\n"
    return _record("change notification without TLS", "cleartext", src, dst, tcp_session(t, src, dst, 443, body, 0, 200, rng))


def _forbidden(name: str, src: str, dst: str, port: int, first: bytes, t: float, rng: random.Random):
    return _record(name, _FORBIDDEN, src, dst, tcp_session(t, src, dst, port, first, 4000, 4000, rng), (_MATRIX,))


def smb(sample: Sample, t: float, rng: random.Random) -> tuple[list[Frame], Injected]:
    a, b = sample.cs[7], sample.cs[8]
    return _forbidden("SMB between CS", a.address, b.address, 445, b"\x00\x00\x00\x54\xfeSMB@\x00" + bytes(8), t, rng)


def rdp(sample: Sample, t: float, rng: random.Random) -> tuple[list[Frame], Injected]:
    _, address, cs = sample.terminals[2]
    return _forbidden("RDP from a business terminal to its CS", address, cs.address, 3389,
                      b"\x03\x00\x00\x13\x0e\xe0\x00\x00\x00\x00\x00\x01\x00\x08\x00\x03\x00\x00\x00", t, rng)


def http(sample: Sample, t: float, rng: random.Random) -> tuple[list[Frame], Injected]:
    src, dst = sample.cs[9].address, sample.national[Subsystem.BUSINESS][0].address
    return _forbidden("HTTP to the business subsystem", src, dst, 80, b"GET / HTTP/1.1\r\nHost: national\r\n\r\n",
                      t, rng)


def dns_tunnel(sample: Sample, t: float, rng: random.Random) -> tuple[list[Frame], Injected]:
    src, dst = sample.cs[10].address, sample.agencies[0].address
    frames: list[Frame] = []
    now = t
    for k in range(30):
        label = base64.b32encode(rng.randbytes(35)).decode().rstrip("=").lower().encode()
        qname = bytes([len(label)]) + label + b"\x01x\x07example\x00"
        query = k.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + qname + b"\x00\x10\x00\x01"
        frames.append((now, udp(src, rng.randrange(32768, 61000), dst, 53, query)))
        now += rng.uniform(1, 10)
    return _record("data exfiltrated in DNS query names", "tunnel", src, dst, frames, (_FORBIDDEN, _MATRIX))


def icmp_tunnel(sample: Sample, t: float, rng: random.Random) -> tuple[list[Frame], Injected]:
    src, dst = sample.cs[11].address, sample.national[Subsystem.OPERATIONS][1].address
    frames: list[Frame] = []
    for k in range(60):
        payload = rng.randbytes(1000)
        frames += [(t + k * 2, icmp_echo(src, dst, 0x4242, k, payload)),
                   (t + k * 2 + 0.001, icmp_echo(dst, src, 0x4242, k, payload, reply=True))]
    return _record("data carried in ICMP echo payloads", "tunnel", src, dst, frames)


def arp_spoof(sample: Sample, t: float, rng: random.Random) -> tuple[list[Frame], Injected]:
    cs = sample.cs[12]
    unit = sample.units[cs.prefecture].address
    attacker = b"\x02\x66\x66\x66\x66\x66"
    frames = [(t + k, arp(2, unit, attacker, cs.address, b"\x02\x00" + bytes(int(x) for x in cs.address.split("."))))
              for k in range(10)]
    return _record("gratuitous ARP replies claiming the prefecture unit's address", "arp_spoof", unit, cs.address, frames)


def beacon(sample: Sample, t: float, rng: random.Random) -> tuple[list[Frame], Injected]:
    cs = sample.cs[13]  # inside the busy change-notification service: only the rhythm gives it away
    src, dst = cs.address, sample.units[cs.prefecture].address
    frames = [f for k in range(40) for f in tls_session(t + k * 60 + rng.uniform(-0.3, 0.3), src, dst, 200, 200, rng)]
    return _record("implant checking in every 60 s", "beacon", src, dst, frames)


def exfiltration(sample: Sample, t: float, rng: random.Random) -> tuple[list[Frame], Injected]:
    src, dst = sample.national[Subsystem.PROVISION][0].address, sample.agencies[1].address
    return _record("bulk transfer far above the link's baseline at night", "volume_anomaly", src, dst,
                   tls_session(t, src, dst, 60_000_000, 500, rng))


def signature(sample: Sample, t: float, rng: random.Random) -> tuple[list[Frame], Injected]:
    cs = sample.cs[14]
    src, dst = cs.address, sample.monitor.address
    message = f"<34>{cs.id}: process started: mimikatz.exe sekurlsa::logonpasswords".encode()
    return _record("credential dumping reported in syslog", "signature", src, dst,
                   [(t, udp(src, 514, dst, 514, message))])


def flood(sample: Sample, t: float, rng: random.Random) -> tuple[list[Frame], Injected]:
    dst = sample.units[sample.cs[0].prefecture].address
    frames = [(t + k / 1500, tcp(f"10.66.{rng.randrange(256)}.{rng.randrange(1, 255)}", rng.randrange(1024, 65535),
                                 dst, 443, 0x02, rng.getrandbits(32))) for k in range(4500)]
    return _record("SYN flood from spoofed sources", "flood", None, dst, frames)


# Hour (JST) each attack starts at in a labelled day: spread over the day, the exfiltration at night.
SCHEDULE: tuple[tuple[Attack, float], ...] = (
    (scan_vertical_syn, 9.2), (scan_horizontal_syn, 9.6), (scan_connect, 10.1), (scan_udp, 10.5),
    (brute_force, 11.0), (matrix_cross_prefecture, 11.4), (matrix_terminal_database, 13.1), (cleartext, 13.5),
    (smb, 14.0), (rdp, 14.4), (http, 14.8), (dns_tunnel, 15.2), (icmp_tunnel, 15.6), (arp_spoof, 16.0),
    (beacon, 16.3), (exfiltration, 3.0), (signature, 17.5), (flood, 20.5),
)


ROUND_SHIFT = 1.1  # hours between rounds: past the IDS's one-hour hold, so a repeat is a new alert


def _rotated(sample: Sample, round_: int, rounds: int) -> Sample:
    """The sample with its CSs and terminals rotated, so each round's attackers and victims differ."""
    cs, terminals = round_ * (len(sample.cs) // rounds), round_ * (len(sample.terminals) // rounds)
    return replace(sample, cs=sample.cs[cs:] + sample.cs[:cs], terminals=sample.terminals[terminals:]
                   + sample.terminals[:terminals])


def attacks(sample: Sample, day: dt.date, seed: int = 1, rounds: int = 1) -> tuple[list[Frame], list[Injected]]:
    """Every attack ``rounds`` times on the day (other actors each round), frames unsorted."""
    rng = random.Random(seed)
    start = day_start(day)
    frames: list[Frame] = []
    truth: list[Injected] = []
    for round_ in range(rounds):
        actors = _rotated(sample, round_, rounds)
        for attack, hour in SCHEDULE:
            at = start + (hour + round_ * ROUND_SHIFT) * 3600 + rng.uniform(0, 60)
            more, injected = attack(actors, at, rng)
            frames += more
            truth.append(replace(injected, name=f"{injected.name} (round {round_ + 1})") if round_ else injected)
    return frames, truth


def labelled_day(sample: Sample, day: dt.date, seed: int = 1, rounds: int = 1) -> tuple[list[Frame], list[Injected]]:
    """A normal day with every attack mixed in, sorted by time, and the ground truth."""
    frames = normal_day(sample, day, seed)
    extra, truth = attacks(sample, day, seed, rounds)
    frames += extra
    frames.sort(key=lambda f: f[0])
    return frames, truth


def write_labelled_day(sample: Sample, day: dt.date, pcap: Path, truth_json: Path, seed: int = 1,
                       rounds: int = 1) -> list[Injected]:
    frames, truth = labelled_day(sample, day, seed, rounds)
    write_pcap(pcap, frames)
    truth_json.write_text(json.dumps([asdict(i) for i in truth], indent=1, ensure_ascii=False))
    return truth


def send_frames(frames: Iterable[Frame], interface: str = "lo") -> int:
    """Put frames on the wire in order, as fast as possible (their timestamps are not kept). Needs root.

    On ``lo`` the frames reach every capture but not the local IP stack: their destination
    MAC is not the loopback's, so no listener of the running simulation is disturbed.
    """
    sent = 0
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((interface, 0))
        for _, frame in frames:
            sock.send(frame)
            sent += 1
    return sent
