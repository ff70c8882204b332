"""UDP transport for the simulated agents: one socket per device address.

Each device gets its own socket on its own loopback address, as a real agent
would; what a request gets back (nothing, late, or lost) is decided by the
device's live state, which the network keeps up to date.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from typing import Callable, Iterable

from monitor.logs import fields
from simnet.device import SimDevice
from simnet.mib import DeviceView, layout_for
from monitor.snmp.ber import BerError
from simnet.snmp.engine import AgentConfig, RequestRejected, handle_request

log = logging.getLogger("simnet.snmp")


class _DeviceEndpoint(asyncio.DatagramProtocol):
    def __init__(self, server: "SnmpAgentServer", device: SimDevice):
        self.server = server
        self.device = device
        self.layout = layout_for(device)
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server.answer(self, data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("socket error", extra=fields(device=self.device.device.id, error=str(exc)))


class SnmpAgentServer:
    """Serves SNMP for a set of simulated devices on ``port`` of each device's address."""

    def __init__(self, config: AgentConfig, now: Callable[[], float], *, port: int = 161,
                 rng: random.Random | None = None):
        self.config = config
        self.now = now
        self.port = port
        self.rng = rng or random.Random()
        self.stats: Counter[str] = Counter()
        self._endpoints: dict[str, _DeviceEndpoint] = {}
        self.on_bad_community: Callable[[SimDevice], None] | None = None
        self._warned: set[str] = set()

    async def start(self, devices: Iterable[SimDevice]) -> None:
        loop = asyncio.get_running_loop()
        for device in devices:
            address = device.device.address
            assert address is not None
            _, endpoint = await loop.create_datagram_endpoint(
                lambda d=device: _DeviceEndpoint(self, d), local_addr=(address, self.port)
            )
            self._endpoints[device.device.id] = endpoint

    async def stop(self) -> None:
        for endpoint in self._endpoints.values():
            if endpoint.transport is not None:
                endpoint.transport.close()
        self._endpoints.clear()
        await asyncio.sleep(0)

    def answer(self, endpoint: _DeviceEndpoint, data: bytes, addr: tuple[str, int]) -> None:
        device = endpoint.device
        self.stats["requests"] += 1
        if not device.answering:
            self.stats["silent"] += 1
            return
        if device.loss and self.rng.random() < device.loss:
            self.stats["lost"] += 1
            return
        try:
            reply = handle_request(data, DeviceView(device, self.now(), endpoint.layout),
                                   device.identity, self.config)
        except BerError as exc:
            self._reject(device, "malformed", str(exc))
            return
        except RequestRejected as exc:
            self._reject(device, "rejected", str(exc))
            if exc.bad_community and self.on_bad_community is not None:
                self.on_bad_community(device)
            return
        except Exception:  # a bug must not take the whole simulated network down
            self.stats["errors"] += 1
            log.exception("agent failed on a request", extra=fields(device=device.device.id))
            return
        self.stats["responses"] += 1
        transport = endpoint.transport
        if transport is None:
            return
        if device.delay > 0:
            asyncio.get_running_loop().call_later(device.delay, _send_if_open, transport, reply, addr)
        else:
            transport.sendto(reply, addr)

    def send_from(self, device_id: str, payload: bytes, receiver: tuple[str, int]) -> None:
        """Send a datagram (a notification) from the device's own agent socket."""
        endpoint = self._endpoints.get(device_id)
        if endpoint is not None and endpoint.transport is not None and not endpoint.transport.is_closing():
            endpoint.transport.sendto(payload, receiver)
            self.stats["notifications"] += 1

    def _reject(self, device: SimDevice, kind: str, reason: str) -> None:
        self.stats[kind] += 1
        # one log line per kind of problem, not one per packet
        key = f"{kind}:{reason.split(' at offset')[0]}"
        if key not in self._warned and len(self._warned) < 1000:
            self._warned.add(key)
            log.warning("SNMP request refused", extra=fields(device=device.device.id, kind=kind, reason=reason))


def _send_if_open(transport: asyncio.DatagramTransport, reply: bytes, addr: tuple[str, int]) -> None:
    if not transport.is_closing():
        transport.sendto(reply, addr)
