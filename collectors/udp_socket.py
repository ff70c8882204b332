"""A UDP socket the event loop empties in batches, each datagram with the kernel's arrival time.

asyncio's datagram transport reads one datagram per readiness event, that is one per turn of
the event loop. With a busy loop (start-up: every device's tables learnt at once; a storm) a
socket receiving thousands of SNMP answers a second falls seconds behind — seen at full scale
as a receive queue of 800 KB: answers that came in time timed out (devices judged down) and
round trips measured when the answer was handled included the queue (thousands of devices
judged slow). ``DrainingUdpSocket`` reads up to ``batch`` datagrams per readiness event and
asks the kernel for each one's arrival time (``SO_TIMESTAMPNS``, Linux), so a measured latency
is the network's, not the monitor's own backlog.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
import time
from typing import Callable

SO_TIMESTAMPNS = 35  # Linux <asm-generic/socket.h>; the same number is SCM_TIMESTAMPNS (not in Python's socket)
_TIMESPEC = struct.Struct("@qq")  # struct timespec on 64-bit Linux: seconds, nanoseconds
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size)
MAX_DATAGRAM = 65535

Handler = Callable[[bytes, tuple[str, int], float], None]  # data, sender, arrival (time.time() clock)


class DrainingUdpSocket:
    """A bound, non-blocking UDP socket; ``on_datagram`` is called for every datagram, in arrival order.

    ``on_error`` hears of a failed receive (e.g. an ICMP error reported on the socket); sending raises
    ``OSError`` to the caller. Close with ``close()``.
    """

    def __init__(self, sock: socket.socket, on_datagram: Handler, *, batch: int = 512,
                 on_error: Callable[[OSError], None] | None = None) -> None:
        self._sock, self._on_datagram, self._on_error, self.batch = sock, on_datagram, on_error, batch
        self._stamped = _enable_timestamps(sock)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._drain)

    @classmethod
    def bind(cls, host: str, port: int, on_datagram: Handler, *, receive_buffer: int | None = None,
             batch: int = 512, on_error: Callable[[OSError], None] | None = None) -> DrainingUdpSocket:
        """Bind ``host:port`` (port 0: any free one); call from the running loop."""
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            if receive_buffer:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            sock.bind((host, port))
            return cls(sock, on_datagram, batch=batch, on_error=on_error)
        except BaseException:
            sock.close()
            raise

    @property
    def local_address(self) -> tuple[str, int]:
        host, port = self._sock.getsockname()[:2]
        return host, port

    @property
    def socket(self) -> socket.socket:
        return self._sock

    def sendto(self, data: bytes, address: tuple[str, int]) -> None:
        """Send now (UDP does not block; a full send buffer raises ``BlockingIOError``, an ``OSError``)."""
        self._sock.sendto(data, address)

    def close(self) -> None:
        if self._sock.fileno() >= 0:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()

    def _drain(self) -> None:
        """Up to ``batch`` datagrams, then back to the loop (other sockets and timers wait meanwhile)."""
        for _ in range(self.batch):
            try:
                data, ancillary, _flags, sender = self._sock.recvmsg(MAX_DATAGRAM, _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if self._on_error is not None:
                    self._on_error(exc)
                continue
            self._on_datagram(data, sender[:2], self._arrival(ancillary))

    def _arrival(self, ancillary: list[tuple[int, int, bytes]]) -> float:
        if self._stamped:
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= _TIMESPEC.size:
                    seconds, nanoseconds = _TIMESPEC.unpack_from(payload)
                    return seconds + nanoseconds / 1e9
        return time.time()


def _enable_timestamps(sock: socket.socket) -> bool:
    """Kernel receive timestamps where Linux offers them; elsewhere the time of reading stands in."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True
