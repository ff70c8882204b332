"""Traffic IDS input: frames (ids/traffic/decode.py and Engine.frame), capture files (pcapio.py), rules.

Frames are built by the simulation's generator (simnet/traffic_gen.py): TCP, UDP,
ICMP and ARP over Ethernet, VLAN-tagged or raw IP, then mutated. Capture files are
classic pcap (both byte orders) and pcapng with those frames, mutated as files and
replayed the way ``jukimon ids replay`` does.
"""

from __future__ import annotations

import os
import struct
import tempfile
from functools import lru_cache
from pathlib import Path

from hypothesis import strategies as st

from fuzz.core import Accepted, Outcome, Rejected, Target
from fuzz.mutate import mutated_bytes, mutated_text
from fuzz.targets_common import small_inventory
from ids.traffic.decode import Malformed, decode
from ids.traffic.engine import Engine
from ids.traffic.pcapio import LINKTYPE_ETHERNET, LINKTYPE_RAW, CaptureError
from ids.traffic.replay import replay
from ids.traffic.rules import RuleError, parse_rule
from simnet import traffic_gen

_addresses = st.sampled_from(["10.47.1.1", "10.47.201.10", "10.0.0.1", "192.0.2.7", "255.255.255.255", "0.0.0.0"])
_ports = st.sampled_from([0, 22, 23, 53, 161, 443, 514, 6514, 65535]) | st.integers(0, 65535)
_payloads = st.one_of(st.binary(max_size=64), st.sampled_from([b"GET / HTTP/1.1\r\n", b"\x16\x03\x01\x00\x05hello",
                                                                  b"sekurlsa::logonpasswords", b"/bin/sh -c id",
                                                                  b"\x00" * 40]))


@st.composite
def _frame(draw: st.DrawFn) -> bytes:
    src, dst = draw(_addresses), draw(_addresses)
    kind = draw(st.integers(0, 3))
    if kind == 0:
        frame = traffic_gen.tcp(src, draw(_ports), dst, draw(_ports), draw(st.integers(0, 255)),
                                draw(st.integers(0, 2**32 - 1)), payload=draw(_payloads),
                                wire_payload=draw(st.none() | st.integers(0, 65_000)))
    elif kind == 1:
        frame = traffic_gen.udp(src, draw(_ports), dst, draw(_ports), draw(_payloads))
    elif kind == 2:
        frame = traffic_gen.icmp_echo(src, dst, draw(st.integers(0, 65535)), draw(st.integers(0, 65535)),
                                      draw(_payloads), reply=draw(st.booleans()))
    else:
        frame = traffic_gen.arp(draw(st.sampled_from([1, 2, 3])), src, traffic_gen.mac_of(src), dst)
    if draw(st.integers(0, 4)) == 0:  # 802.1Q tag
        frame = frame[:12] + b"\x81\x00" + struct.pack("!H", draw(st.integers(0, 4095))) + frame[12:]
    return frame


_frames = mutated_bytes(_frame())


@st.composite
def _linked_frame(draw: st.DrawFn) -> tuple[int, bytes]:
    frame = draw(_frames)
    linktype = draw(st.sampled_from([LINKTYPE_ETHERNET, LINKTYPE_ETHERNET, LINKTYPE_RAW, 0, 113, 228]))
    return linktype, frame[14:] if linktype == LINKTYPE_RAW else frame


def decode_frame(case: list) -> Outcome:
    """``[linktype, frame hex]``: the decoder alone, as the baseline learner calls it."""
    linktype, frame = case[0], bytes.fromhex(case[1])
    try:
        packet = decode(1_764_640_000.0, linktype, frame)
    except Malformed:
        return Rejected("malformed")
    return Accepted() if packet is not None else Rejected("ignored")


@lru_cache(maxsize=1)
def _engine() -> Engine:
    """One engine for the whole run, as on a sensor: flows and detector state build up across cases."""
    return Engine(lambda alert: None, inventory=small_inventory())


def engine_frame(case: list) -> Outcome:
    """``[linktype, frame hex]`` through Engine.frame, judged by its counters."""
    engine = _engine()
    before = (engine.stats.malformed, engine.stats.ignored)
    engine.frame(1_764_640_000.0, case[0], bytes.fromhex(case[1]))
    if engine.stats.malformed > before[0]:
        return Rejected("malformed")
    return Rejected("ignored") if engine.stats.ignored > before[1] else Accepted()


def _as_case(pair: tuple[int, bytes]) -> list:
    return [pair[0], pair[1].hex()]


# --- capture files ---------------------------------------------------------------------------

@st.composite
def _capture(draw: st.DrawFn) -> bytes:
    frames = draw(st.lists(_frame(), max_size=5))
    if draw(st.booleans()):
        order = draw(st.sampled_from("<>"))
        magic = 0xA1B2C3D4 if draw(st.booleans()) else 0xA1B23C4D
        out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, draw(st.sampled_from([1, 101, 0])))
        for i, frame in enumerate(frames):
            out += struct.pack(order + "IIII", 1_764_640_000 + i, i, len(frame), len(frame)) + frame
        return out
    rng = draw(st.randoms(use_true_random=True))

    def block(kind: int, body: bytes) -> bytes:
        """A block whose length fields agree with a body that may be cut short or changed inside."""
        if rng.randrange(4) == 0:
            body = body[:rng.randrange(len(body) + 1)]
        elif rng.randrange(4) == 0 and body:
            at = rng.randrange(len(body))
            body = body[:at] + bytes([rng.randrange(256)]) + body[at + 1:]
        return _block(kind, body)

    out = block(0x0A0D0D0A, b"\x4d\x3c\x2b\x1a" + struct.pack("<HHq", 1, 0, -1))
    options = draw(st.sampled_from([b"", struct.pack("<HHB3x", 9, 1, 9), struct.pack("<HHB3x", 9, 1, 0x86),
                                    struct.pack("<HHB3x", 9, 1, 0xFF), struct.pack("<HH", 9, 0)]))
    out += block(1, struct.pack("<HHI", draw(st.sampled_from([1, 101, 0, 65535])), 0, 65535) + options
                 + (b"\x00\x00\x00\x00" if options else b""))
    for i, frame in enumerate(frames):
        padded = frame + bytes(-len(frame) % 4)
        if draw(st.integers(0, 4)) == 0:
            out += block(3, struct.pack("<I", len(frame)) + padded)
        else:
            caplen = draw(st.sampled_from([len(frame), 0, 2**32 - 1]))
            out += block(6, struct.pack("<IIIII", draw(st.sampled_from([0, 0, 1, 2**32 - 1])), 0, i, caplen,
                                        len(frame)) + padded)
    return out


def _block(kind: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


@lru_cache(maxsize=1)
def _scratch() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="jukimon-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    return folder / "case.pcap"


def replay_capture(data: bytes) -> Outcome:
    """A capture file replayed as ``jukimon ids replay`` does: every frame through a fresh engine."""
    path = _scratch()
    path.write_bytes(data)
    try:
        stats = replay(path, lambda alert: None, inventory=small_inventory())
    except CaptureError:
        return Rejected("not_a_capture")
    return Accepted() if stats.packets else Rejected("no_frames")


# --- rules -----------------------------------------------------------------------------------

_RULES = (Path(__file__).resolve().parent.parent / "ids" / "traffic" / "rules" / "jukimon.rules")


def rule_line(text: str) -> Outcome:
    """One rule as load_rules reads it: RuleError/ValueError skip the rule with a warning."""
    try:
        rule = parse_rule(text)
    except (RuleError, ValueError):
        return Rejected("rule_error")
    return Accepted() if rule is not None else Rejected("outside_subset")


def _rule_seeds() -> list[str]:
    return [line for line in _RULES.read_text(encoding="utf-8").splitlines() if line.startswith("alert")]


def targets() -> list[Target]:
    cases = _linked_frame().map(_as_case)
    return [
        Target("packet_decode", "traffic", cases, decode_frame, "frames through ids/traffic/decode.py",
               corpus="packet"),
        Target("engine_frame", "traffic", cases, engine_frame,
               "frames through Engine.frame: flow table and every detector, one engine across cases", corpus="packet"),
        Target("pcap_replay", "traffic", mutated_bytes(_capture()), replay_capture,
               "pcap and pcapng files, mutated, replayed (ids/traffic/pcapio.py, replay.py)", slow=True, corpus="pcap"),
        Target("ids_rule", "traffic", mutated_text(st.sampled_from(_rule_seeds())), rule_line,
               "Suricata-subset rule lines (ids/traffic/rules.py parse_rule)", corpus="ids_rule"),
    ]
