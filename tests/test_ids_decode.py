"""The IDS decoder against scapy's dissection, capture files, and malformed frames."""

from __future__ import annotations

import random

import pytest

scapy_all = pytest.importorskip("scapy.all")
from scapy.all import ARP, ICMP, IP, TCP, UDP, Dot1Q, Ether, Raw  # noqa: E402
from scapy.utils import PcapNgWriter, wrpcap  # noqa: E402

from ids.traffic.decode import ARP as ARP_PROTO  # noqa: E402
from ids.traffic.decode import ICMP as ICMP_PROTO  # noqa: E402
from ids.traffic.decode import TCP as TCP_PROTO  # noqa: E402
from ids.traffic.decode import UDP as UDP_PROTO  # noqa: E402
from ids.traffic.decode import Malformed, decode  # noqa: E402
from ids.traffic.engine import Engine  # noqa: E402
from ids.traffic.pcapio import LINKTYPE_ETHERNET, LINKTYPE_RAW, CaptureError, read_capture, write_pcap  # noqa: E402
from simnet.traffic_gen import tcp, udp  # noqa: E402

MAC = "02:00:7f:0b:01:04"


def test_tcp_fields_match_scapy():
    frame = bytes(Ether(src=MAC) / IP(src="127.11.1.4", dst="127.1.1.11") /
                  TCP(sport=40000, dport=443, flags="PA") / Raw(b"\x16\x03\x01hello"))
    pkt = decode(1.5, LINKTYPE_ETHERNET, frame)
    assert (pkt.proto, pkt.src, pkt.dst, pkt.sport, pkt.dport) == (TCP_PROTO, "127.11.1.4", "127.1.1.11", 40000, 443)
    assert pkt.flags == 0x18 and pkt.payload == b"\x16\x03\x01hello" and pkt.length == len(frame) - 14
    assert pkt.src_mac == bytes.fromhex(MAC.replace(":", ""))


def test_vlan_udp_icmp_and_raw_ip():
    udp_frame = bytes(Ether() / Dot1Q(vlan=7) / IP(src="127.1.0.2", dst="127.11.1.1") /
                      UDP(sport=5000, dport=161) / Raw(b"abc"))
    pkt = decode(0, LINKTYPE_ETHERNET, udp_frame)
    assert (pkt.proto, pkt.dport, pkt.payload) == (UDP_PROTO, 161, b"abc")
    icmp_frame = bytes(IP(src="127.1.0.2", dst="127.11.1.1") / ICMP(type=8) / Raw(b"x" * 56))
    pkt = decode(0, LINKTYPE_RAW, icmp_frame)
    assert (pkt.proto, pkt.icmp_type, len(pkt.payload)) == (ICMP_PROTO, 8, 56)


def test_arp_sender_binding():
    frame = bytes(Ether(src=MAC) / ARP(op=2, hwsrc="02:66:66:66:66:66", psrc="127.1.1.11", pdst="127.11.1.4"))
    pkt = decode(0, LINKTYPE_ETHERNET, frame)
    assert (pkt.proto, pkt.src, pkt.dst, pkt.arp_op) == (ARP_PROTO, "127.1.1.11", "127.11.1.4", 2)
    assert pkt.src_mac == b"\x02\x66\x66\x66\x66\x66"


def test_generator_frames_dissect_the_same_in_scapy():
    frame = tcp("127.11.1.4", 40001, "127.1.1.11", 443, 0x02, 99)
    dissected = Ether(frame)
    assert dissected[IP].src == "127.11.1.4" and dissected[TCP].flags == "S" and dissected[TCP].seq == 99
    assert IP(bytes(dissected[IP])).chksum == dissected[IP].chksum  # the generator's IP checksum is valid
    assert Ether(udp("127.1.0.2", 1, "127.11.1.1", 514, b"<134>x"))[UDP].load == b"<134>x"


@pytest.mark.parametrize("frame", [
    b"\x00" * 10,  # shorter than Ethernet
    bytes(Ether(type=0x0800)) + b"\x45\x00",  # IPv4 header cut
    bytes(Ether() / IP(ihl=3)),  # header length below 20
    bytes(Ether() / IP(proto=6)) + b"\x00" * 8,  # TCP header cut
    bytes(Ether() / IP() / TCP(dataofs=15)),  # data offset beyond the packet
    bytes(Ether(type=0x0806)) + b"\x00\x01\x08\x00\x06",  # ARP cut
])
def test_malformed_frames_raise(frame):
    with pytest.raises(Malformed):
        decode(0, LINKTYPE_ETHERNET, frame)


def test_engine_counts_malformed_and_random_frames_never_crash():
    rng = random.Random(7)
    good = tcp("127.11.1.4", 40001, "127.1.1.11", 443, 0x02, 1)
    engine = Engine(lambda alert: None)
    for _ in range(3000):
        cut = good[:rng.randrange(len(good))] + rng.randbytes(rng.randrange(8))
        engine.frame(0.0, LINKTYPE_ETHERNET, cut if rng.random() < 0.5 else rng.randbytes(rng.randrange(80)))
    engine.frame(1.0, LINKTYPE_ETHERNET, good)
    stats = engine.stats
    assert stats.packets == 3001 and stats.malformed > 1000
    assert stats.malformed + stats.ignored + stats.decoded == stats.packets
    assert engine.flows.flows  # the good frame after the garbage still made its flow


def test_pcap_written_by_us_and_by_scapy_read_alike(tmp_path):
    frames = [(1_700_000_000.25 + i, tcp("127.11.1.4", 40000 + i, "127.1.1.11", 443, 0x02, i)) for i in range(5)]
    ours = tmp_path / "ours.pcap"
    write_pcap(ours, frames)
    theirs = tmp_path / "scapy.pcap"
    wrpcap(str(theirs), [Ether(f) for _, f in frames])
    read_ours, read_theirs = list(read_capture(ours)), list(read_capture(theirs))
    assert [f for _, _, f in read_ours] == [f for _, _, f in read_theirs] == [f for _, f in frames]
    assert [round(t, 6) for t, _, _ in read_ours] == [t for t, _ in frames]


def test_pcapng_is_read(tmp_path):
    path = tmp_path / "capture.pcapng"
    packets = [Ether(tcp("127.11.1.4", 40000 + i, "127.1.1.11", 443, 0x02, i)) for i in range(3)]
    for i, p in enumerate(packets):
        p.time = 1_700_000_000 + i
    writer = PcapNgWriter(str(path))
    for p in packets:
        writer.write(p)
    writer.close()
    records = list(read_capture(path))
    assert [f for _, _, f in records] == [bytes(p) for p in packets]
    assert [int(t) for t, _, _ in records] == [1_700_000_000, 1_700_000_001, 1_700_000_002]
    assert {linktype for _, linktype, _ in records} == {LINKTYPE_ETHERNET}


def test_not_a_capture_is_refused(tmp_path):
    path = tmp_path / "x.pcap"
    path.write_bytes(b"hello world")
    with pytest.raises(CaptureError):
        list(read_capture(path))


def test_truncated_capture_ends_quietly(tmp_path):
    path = tmp_path / "cut.pcap"
    write_pcap(path, [(1.0, tcp("127.0.0.1", 1, "127.0.0.2", 2, 0x02)), (2.0, tcp("127.0.0.1", 1, "127.0.0.2", 2, 0x10))])
    path.write_bytes(path.read_bytes()[:-10])
    assert len(list(read_capture(path))) == 1
