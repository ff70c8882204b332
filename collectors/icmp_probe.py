"""ICMP echo: round-trip time and loss, where a device is reachable by ICMP.

In the loopback simulation every 127.x address is the local kernel, so ICMP
says nothing there and is off by default; on a real network (and in the tests'
network namespaces) it measures the path. icmplib does the packet work
(raw sockets as root, unprivileged ping sockets otherwise).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from icmplib import async_ping
from icmplib.exceptions import ICMPLibError


@dataclass(frozen=True, slots=True)
class IcmpCheck:
    sent: int
    received: int
    rtt_avg_ms: float | None
    rtt_max_ms: float | None
    error: str | None = None

    @property
    def loss(self) -> float:
        return 1.0 - self.received / self.sent if self.sent else 1.0


async def check_icmp(address: str, *, count: int = 3, interval: float = 0.2, timeout: float = 1.0,
                     source: str | None = None) -> IcmpCheck:
    """Send ``count`` echo requests (from ``source`` if given); never raises for network trouble."""
    try:
        host = await async_ping(address, count=count, interval=interval, timeout=timeout,
                                privileged=os.geteuid() == 0, source=source)
    except ICMPLibError as exc:
        return IcmpCheck(count, 0, None, None, error=f"{type(exc).__name__}: {exc}")
    if not host.packets_received:
        return IcmpCheck(host.packets_sent, 0, None, None)
    return IcmpCheck(host.packets_sent, host.packets_received, host.avg_rtt, host.max_rtt)
