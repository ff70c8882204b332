"""Sends the simulated devices' SNMP notifications to the configured trap receivers.

Only a device that can reach the network sends (a router behind a cut line
cannot tell anyone; the router at the other end of the line can). Failed
authentications are limited to one notification per device per second, as a
flood of bad requests must not become a flood of traps.
"""

from __future__ import annotations

import time
from typing import Callable

from simnet.device import SimDevice, SimInterface
from simnet.snmp import traps
from simnet.snmp.agent import SnmpAgentServer
from simnet.snmp.engine import AgentConfig


class TrapNotifier:
    def __init__(self, agent: SnmpAgentServer, config: AgentConfig, receivers: list[tuple[str, int]], *,
                 version: str, community: bytes, user: bytes, now: Callable[[], float]):
        if version not in ("2c", "3"):
            raise ValueError("trap version must be 2c or 3")
        self.agent = agent
        self.config = config
        self.receivers = receivers
        self.version = version
        self.community = community
        self.user = user
        self.now = now
        self._last_auth_trap: dict[str, float] = {}

    def link_changed(self, sim: SimDevice, iface: SimInterface) -> None:
        trap_oid = traps.LINK_UP if iface.oper_up else traps.LINK_DOWN
        self._send(sim, trap_oid, traps.link_objects(iface.index, not iface.admin_down, iface.oper_up))

    def restarted(self, sim: SimDevice, *, cold: bool) -> None:
        self._send(sim, traps.COLD_START if cold else traps.WARM_START, [])

    def authentication_failed(self, sim: SimDevice) -> None:
        device_id = sim.device.id
        now = time.monotonic()
        if now - self._last_auth_trap.get(device_id, -10.0) < 1.0:
            return
        self._last_auth_trap[device_id] = now
        self._send(sim, traps.AUTHENTICATION_FAILURE, [])

    def _send(self, sim: SimDevice, trap_oid: traps.Oid, objects: list) -> None:
        if not self.receivers or not sim.answering:
            return
        varbinds = traps.notification_varbinds(sim.uptime_ticks(self.now()), trap_oid, objects)
        if self.version == "3":
            keys = self.config.keys.keys_for(sim.identity.engine_id, self.user)
            if keys is None:
                return
            payload = traps.encode_trap_v3(sim.identity, keys, varbinds)
        else:
            payload = traps.encode_trap_v2c(self.community, varbinds)
        for receiver in self.receivers:
            self.agent.send_from(sim.device.id, payload, receiver)
