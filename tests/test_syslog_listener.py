"""The syslog listeners on loopback: UDP, TCP (both framings) and TLS, and how they survive bad senders.

Senders bind to the addresses of simulated devices (127.x) so the Origin of each
event can be checked against the inventory, as in production.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import socket
import ssl
from pathlib import Path
from typing import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from collectors.syslog.listener import SyslogListener
from monitor.envelope import Event
from monitor.inventory.model import Inventory

FW = "127.11.1.1"  # muni-01-001-fw in the small inventory
CS = "127.11.1.4"  # muni-01-001-cs1
DENY = (b'<164>Jan 05 2024 10:11:21 muni-01-001-fw : %ASA-4-106023: Deny tcp src outside:192.168.10.23/49152 '
        b'dst inside:127.11.1.4/445 by access-group "outside_access_in" [0x0, 0x0]')
HELLO = b"<13>1 2024-01-05T10:11:12+09:00 muni-01-001-cs1 app - - - hello %d"


async def wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def listening(inventory: Inventory | None = None, **kinds) -> tuple[SyslogListener, list[Event]]:
    events: list[Event] = []
    listener = SyslogListener(events.append, inventory, **kinds)
    await listener.start()
    return listener, events


def udp_send(target: tuple[str, int], *datagrams: bytes, source: str = FW) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        for datagram in datagrams:
            sock.sendto(datagram, target)


async def connect(target: tuple[str, int], source: str = CS, ssl_context: ssl.SSLContext | None = None):
    return await asyncio.open_connection(*target, local_addr=(source, 0), ssl=ssl_context,
                                         server_hostname="127.0.0.1" if ssl_context else None)


def octets(*messages: bytes) -> bytes:
    return b"".join(b"%d %s" % (len(m), m) for m in messages)


async def closed_by_peer(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), 3.0) == b""
    except ConnectionError:
        return True


# --- UDP -----------------------------------------------------------------------------


async def test_udp_datagram_becomes_an_event_from_the_sender(small_inventory: Inventory) -> None:
    listener, events = await listening(small_inventory, udp=("127.0.0.1", 0))
    try:
        udp_send(listener.address("udp"), DENY + b"\n", HELLO % 1)
        await wait_for(lambda: len(events) == 2)
        deny = events[0]
        assert (deny.origin.device, deny.origin.role, deny.origin.site) == ("muni-01-001-fw", "fw", "muni-01-001")
        assert deny.body["peer"] == FW and deny.body["firewall"]["action"] == "deny"
        assert (deny.src_ip, deny.dest_ip) == ("192.168.10.23", "127.11.1.4")
        assert events[1].message == "hello 1"
        # sent from the FW's address: the peer wins over the hostname field
        assert events[1].origin.device == "muni-01-001-fw"
        assert listener.stats()["received"] == 2 and listener.stats()["events"] == 2
    finally:
        await listener.stop()


async def test_udp_malformed_is_counted_and_logged_once_per_reason_per_sender(
        small_inventory: Inventory, caplog: pytest.LogCaptureFixture) -> None:
    listener, events = await listening(small_inventory, udp=("127.0.0.1", 0))
    caplog.set_level(logging.WARNING, logger="collectors.syslog")
    try:
        target = listener.address("udp")
        udp_send(target, *([b"garbage"] * 20 + [b"<999>x"] * 5 + [HELLO % 1]))
        udp_send(target, b"garbage", source=CS)
        await wait_for(lambda: listener.stats().get("received") == 27)
        stats = listener.stats()
        assert stats["no_pri"] == 21 and stats["bad_pri"] == 5 and stats["events"] == 1
        warned = [(r.fields["peer"], r.fields["reason"]) for r in caplog.records  # type: ignore[attr-defined]
                  if r.name.startswith("collectors.syslog") and r.levelno >= logging.WARNING]
        assert sorted(warned) == [(FW, "bad_pri"), (FW, "no_pri"), (CS, "no_pri")]
        udp_send(target, HELLO % 2)  # still listening
        await wait_for(lambda: len(events) == 2)
    finally:
        await listener.stop()


async def test_async_consumer_and_failing_consumer(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[Event] = []

    async def slow(event: Event) -> None:
        await asyncio.sleep(0.01)
        seen.append(event)

    listener = SyslogListener(slow, udp=("127.0.0.1", 0), tcp=("127.0.0.1", 0))
    await listener.start()
    try:
        udp_send(listener.address("udp"), HELLO % 1)
        reader, writer = await connect(listener.address("tcp"))
        writer.write(octets(HELLO % 2, HELLO % 3))
        await writer.drain()
        await wait_for(lambda: len(seen) == 3)
        writer.close()
    finally:
        await listener.stop()

    def broken(event: Event) -> None:
        raise RuntimeError("consumer bug")

    listener = SyslogListener(broken, udp=("127.0.0.1", 0))
    await listener.start()
    try:
        udp_send(listener.address("udp"), HELLO % 1, HELLO % 2)
        await wait_for(lambda: listener.stats().get("callback_error") == 2)
        assert sum("consumer failed" in r.getMessage() for r in caplog.records) == 1
    finally:
        await listener.stop()


# --- TCP ---------------------------------------------------------------------------------


async def test_tcp_octet_counting_split_anywhere(small_inventory: Inventory) -> None:
    listener, events = await listening(small_inventory, tcp=("127.0.0.1", 0))
    try:
        reader, writer = await connect(listener.address("tcp"))
        writer.write(octets(HELLO % 1, HELLO % 2))  # two frames in one segment
        stream = octets(HELLO % 3, "<13>1 - - - - - - 改行\nを含む".encode(), DENY)
        for i in range(len(stream)):  # and frames split byte by byte
            writer.write(stream[i:i + 1])
            await writer.drain()
        await wait_for(lambda: len(events) == 5)
        assert [e.message for e in events[:4]] == ["hello 1", "hello 2", "hello 3", "改行\nを含む"]
        assert events[4].body["firewall"]["dst_port"] == 445
        assert {e.origin.device for e in events} == {"muni-01-001-cs1"}  # peer 127.11.1.4
        writer.close()
    finally:
        await listener.stop()


async def test_tcp_lf_framing_with_crlf_and_a_last_line_without_lf() -> None:
    listener, events = await listening(tcp=("127.0.0.1", 0))
    try:
        reader, writer = await connect(listener.address("tcp"))
        writer.write(HELLO % 1 + b"\n" + HELLO % 2 + b"\r\n\n" + HELLO % 3)
        await writer.drain()
        writer.write_eof()
        await wait_for(lambda: len(events) == 3)
        assert [e.message for e in events] == ["hello 1", "hello 2", "hello 3"]
        writer.close()
    finally:
        await listener.stop()


async def test_malformed_message_on_tcp_keeps_the_connection() -> None:
    listener, events = await listening(tcp=("127.0.0.1", 0))
    try:
        reader, writer = await connect(listener.address("tcp"))
        writer.write(octets(b"not syslog", b"<13>1 2024-99-99T00:00:00Z h a - - - x", HELLO % 1))
        await writer.drain()
        await wait_for(lambda: len(events) == 1)
        assert listener.stats()["no_pri"] == 1 and listener.stats()["bad_timestamp"] == 1
        writer.close()
    finally:
        await listener.stop()


@pytest.mark.parametrize("framing", ["octet", "lf"])
async def test_oversize_frame_closes_only_that_connection(framing: str) -> None:
    listener, events = await listening(tcp=("127.0.0.1", 0), max_length=1024)
    try:
        target = listener.address("tcp")
        good_reader, good_writer = await connect(target)
        bad_reader, bad_writer = await connect(target, source=FW)
        huge = b"<13>" + b"x" * 5000
        bad_writer.write(octets(HELLO % 1) + b"%d " % len(huge) + huge if framing == "octet"
                         else HELLO % 1 + b"\n" + huge + b"\n")
        await bad_writer.drain()
        assert await closed_by_peer(bad_reader)
        assert listener.stats()["frame_too_long"] == 1
        good_writer.write(octets(HELLO % 2) if framing == "octet" else HELLO % 2 + b"\n")
        await good_writer.drain()
        await wait_for(lambda: len(events) == 2)
        assert [e.message for e in events] == ["hello 1", "hello 2"]
        assert not good_reader.at_eof()
        good_writer.close()
        bad_writer.close()
    finally:
        await listener.stop()


async def test_bad_octet_count_closes_the_connection() -> None:
    listener, events = await listening(tcp=("127.0.0.1", 0))
    try:
        reader, writer = await connect(listener.address("tcp"))
        writer.write(b"12x <13>hello\n")
        await writer.drain()
        assert await closed_by_peer(reader)
        assert listener.stats()["bad_frame"] == 1 and events == []
        writer.close()
    finally:
        await listener.stop()


async def test_stop_closes_open_connections() -> None:
    listener, events = await listening(udp=("127.0.0.1", 0), tcp=("127.0.0.1", 0))
    reader, writer = await connect(listener.address("tcp"))
    writer.write(octets(HELLO % 1))
    await writer.drain()
    await wait_for(lambda: len(events) == 1)
    await listener.stop()
    assert await closed_by_peer(reader)
    writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection(*listener.address("tcp"))


def test_a_listener_needs_a_transport() -> None:
    with pytest.raises(ValueError):
        SyslogListener(lambda e: None)


# --- TLS ----------------------------------------------------------------------------------------


def tls_contexts(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jukimon syslog test")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


async def test_tls_octet_counting(tmp_path: Path, small_inventory: Inventory) -> None:
    server_ctx, client_ctx = tls_contexts(tmp_path)
    listener, events = await listening(small_inventory, tls=("127.0.0.1", 0, server_ctx))
    try:
        reader, writer = await connect(listener.address("tls"), source=FW, ssl_context=client_ctx)
        writer.write(octets(DENY, HELLO % 1))
        await writer.drain()
        await wait_for(lambda: len(events) == 2)
        assert events[0].origin.device == "muni-01-001-fw" and events[0].body["firewall"]["action"] == "deny"
        assert events[1].message == "hello 1"
        writer.close()
        # a client that does not speak TLS is a connection error, not a crash
        plain_reader, plain_writer = await connect(listener.address("tls"))
        plain_writer.write(octets(HELLO % 2))
        await plain_writer.drain()
        assert await closed_by_peer(plain_reader)
        plain_writer.close()
        assert len(events) == 2
    finally:
        await listener.stop()
