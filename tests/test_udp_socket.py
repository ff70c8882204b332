"""A busy event loop must not look like a slow network: batches and kernel arrival times on real UDP."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Iterator

import pytest

from collectors.snmp.client import Credentials
from collectors.snmp.udp_client import SnmpUdpClient, _correlation_id
from collectors.udp_socket import DrainingUdpSocket
from monitor.snmp import ber, message

UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)


async def test_a_backlog_is_read_in_one_turn_of_the_loop_with_each_datagrams_arrival_time() -> None:
    got: list[tuple[bytes, float]] = []
    receiver = DrainingUdpSocket.bind("127.0.0.1", 0, lambda data, _sender, arrived: got.append((data, arrived)),
                                      receive_buffer=1 << 20)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sent_at = time.time()
        for i in range(300):
            sender.sendto(f"{i}".encode(), receiver.local_address)
        time.sleep(0.3)  # the loop busy elsewhere while they arrive
        await asyncio.sleep(0)  # one turn: asyncio's own transport would have read one datagram
        await asyncio.sleep(0)
        handled_at = time.time()
    finally:
        sender.close()
        receiver.close()
    assert [data for data, _ in got] == [f"{i}".encode() for i in range(300)]
    # arrival: when the kernel had them, not when the busy loop got round to them
    assert all(sent_at - 0.01 <= arrived <= sent_at + 0.2 for _, arrived in got)
    assert handled_at - got[-1][1] >= 0.25


@pytest.fixture
def agent() -> Iterator[tuple[str, int]]:
    """An SNMP v2c responder on its own thread: it answers while the test's event loop is blocked."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    stop = threading.Event()

    def answer() -> None:
        while not stop.is_set():
            try:
                data, sender = sock.recvfrom(65535)
            except TimeoutError:
                continue
            reply = message.encode_v2c(b"public", message.encode_pdu(
                ber.RESPONSE, _correlation_id(data), 0, 0, message.varbind(UPTIME, ber.timeticks(42))))
            sock.sendto(reply, sender)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()
    finally:
        stop.set()
        thread.join()
        sock.close()


async def test_the_round_trip_is_the_networks_even_when_the_answer_waits_for_a_busy_loop(
        agent: tuple[str, int]) -> None:
    client = SnmpUdpClient(Credentials("2c", community="public"), timeout=5.0, retries=0)
    try:
        began = time.monotonic()
        asking = asyncio.create_task(client.get(*agent, [UPTIME]))
        await asyncio.sleep(0)  # the request leaves
        time.sleep(0.5)  # …and the loop is busy while the answer comes back
        assert await asking == [(UPTIME, 42)]
        waited_s = time.monotonic() - began
        round_trip = client.round_trip_ms(*agent)
    finally:
        await client.close()
    assert waited_s >= 0.5
    assert round_trip is not None and round_trip < 100, round_trip
