"""Live capture: frames from an interface (``lo`` for the simulation) into an ``Engine``.

A PF_PACKET socket, as scapy's listen socket and libpcap use, read directly: scapy's
``L2ListenSocket`` keeps the outgoing copy of every loopback frame (each packet on ``lo``
would be seen twice; libpcap drops it, so do we) and asks for a 64 KiB receive buffer that
a scan or flood overruns. The frames go undissected to the engine's decoder. Needs root.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
from typing import Protocol

from ids.traffic.engine import EngineStats
from ids.traffic.pcapio import LINKTYPE_ETHERNET
from monitor.logs import fields

log = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
RECEIVE_BUFFER = 64 << 20
DRAIN = 1024  # frames read per wake-up at most
_SO_RCVBUFFORCE = 33  # Linux; Python does not export it (root may exceed net.core.rmem_max)


class FrameSink(Protocol):
    """What ``capture`` feeds: an ``Engine`` judging, or a ``replay.FrameLearner`` learning a baseline."""

    stats: EngineStats

    def frame(self, ts: float, linktype: int, data: bytes) -> None: ...

    def close(self) -> None: ...


def open_capture(interface: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, RECEIVE_BUFFER)
    sock.bind((interface, 0))
    return sock


def capture(engine: FrameSink, interface: str, stop: threading.Event, ready: threading.Event | None = None) -> None:
    """Feed every frame seen on ``interface`` to the engine until ``stop`` is set; then close it (ends its flows)."""
    sock = open_capture(interface)
    loopback = interface == "lo"
    log.info("capture started", extra=fields(interface=interface))
    if ready is not None:
        ready.set()
    sock.setblocking(False)
    try:
        while not stop.is_set():
            if not select.select([sock], [], [], 0.2)[0]:
                continue
            for _ in range(DRAIN):  # what is queued, without a select per frame; then look at stop again
                try:
                    data, address = sock.recvfrom(65_536)
                except BlockingIOError:
                    break
                if loopback and address[2] == PACKET_OUTGOING:
                    continue
                engine.frame(time.time(), LINKTYPE_ETHERNET, data)
    finally:
        sock.close()
        engine.close()
        log.info("capture stopped", extra=fields(interface=interface, packets=engine.stats.packets,
                                                  malformed=engine.stats.malformed, alerts=engine.stats.alerts))
