"""Where a live drill's faults go — a simulated network in this process or one behind its control channel —
and the safety interlock in front of both.

The interlock refuses any fault whose target is not in the simulation's inventory
or is not simulated: a simulated device answers on a loopback management address
(127.x.y.z, see ``simnet``); a line or site is simulated when every device at its
ends is. A drill must never reach a production device, whatever its scenario says.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Protocol

from monitor.inventory.model import Inventory
from simnet.control import DEFAULT_CONTROL, control_request
from simnet.faults import FaultKind
from simnet.network import SimNetwork


class DrillRefused(Exception):
    """The drill (or one inject) was refused: the message says why."""


class FaultTarget(Protocol):
    inventory: Inventory

    async def check(self) -> None: ...

    async def inject(self, kind: FaultKind, target: str, params: dict[str, Any]) -> str: ...

    async def clear(self, fault_id: str) -> None: ...

    async def active(self) -> list[str]: ...


def check_simulated(inventory: Inventory, kind: FaultKind, target: str) -> None:
    """The safety interlock: raise ``DrillRefused`` unless the target is a simulated part of the inventory."""
    if kind.target_kind == "link":
        link = inventory.links.get(target)
        if link is None:
            raise DrillRefused(f"{target!r} is not a leased line of the simulation's inventory")
        devices = [link.a, link.b]
    elif kind.target_kind == "site":
        if target not in inventory.sites:
            raise DrillRefused(f"{target!r} is not a site of the simulation's inventory")
        devices = [d.id for d in inventory.devices_by_site.get(target, []) if d.address is not None]
    else:
        if target not in inventory.devices:
            raise DrillRefused(f"{target!r} is not a device of the simulation's inventory")
        devices = [target]
    for device_id in devices:
        address = inventory.devices[device_id].address if device_id in inventory.devices else None
        if address is None or not ipaddress.ip_address(address).is_loopback:
            raise DrillRefused(f"{target!r}: {device_id} is not marked simulated (management address "
                               f"{address or 'none'} is not on loopback)")


class InProcessFaults:
    """Faults into a ``SimNetwork`` running in this process (tests, rehearsals)."""

    def __init__(self, network: SimNetwork) -> None:
        self.network = network
        self.inventory = network.inventory

    async def check(self) -> None:
        return None

    async def inject(self, kind: FaultKind, target: str, params: dict[str, Any]) -> str:
        check_simulated(self.inventory, kind, target)
        return self.network.inject(kind, target, **params).id

    async def clear(self, fault_id: str) -> None:
        self.network.clear(fault_id)

    async def active(self) -> list[str]:
        return [f.id for f in self.network.faults()]


class ControlFaults:
    """Faults into a simulation in another process, through its control channel (``simnet.control``)."""

    def __init__(self, inventory: Inventory, host: str = DEFAULT_CONTROL[0], port: int = DEFAULT_CONTROL[1]) -> None:
        self.inventory = inventory
        self.host, self.port = host, port

    async def check(self) -> None:
        """The simulation answers and runs this inventory (same number of simulated devices)."""
        status = await self._request({"op": "status"})
        expected = sum(1 for d in self.inventory.polled_devices() if d.address is not None)
        if status.get("devices") != expected:
            raise DrillRefused(f"the simulation on {self.host}:{self.port} has {status.get('devices')} devices, "
                               f"the drill's inventory {expected}: not the same network")

    async def inject(self, kind: FaultKind, target: str, params: dict[str, Any]) -> str:
        check_simulated(self.inventory, kind, target)
        reply = await self._request({"op": "inject", "kind": kind.value, "target": target, "params": params})
        return str(reply["fault"]["id"])

    async def clear(self, fault_id: str) -> None:
        await self._request({"op": "clear", "id": fault_id})

    async def active(self) -> list[str]:
        return [f["id"] for f in (await self._request({"op": "list"}))["faults"]]

    async def _request(self, request: dict[str, Any]) -> dict[str, Any]:
        reply = await control_request(request, self.host, self.port)
        if not reply.get("ok"):
            raise DrillRefused(f"the simulation refused {request['op']}: {reply.get('error')}")
        return reply
