"""Running the simulation as a long-lived service: start, banner, wait, stop cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import logging
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

from monitor.inventory.model import Inventory, Role
from simnet.audit_sender import AuditSender
from simnet.chatter import Chatter, ChatterConfig
from simnet.control import DEFAULT_CONTROL, ControlServer
from simnet.fw_logs import FirewallLogSource
from simnet.network import SimNetwork, SimnetConfig

log = logging.getLogger("simnet.service")


def default_ports() -> tuple[int, int]:
    """SNMP and TLS on their real ports when we may bind them, else the usual unprivileged stand-ins."""
    return (161, 443) if os.geteuid() == 0 else (1161, 8443)


@dataclass
class RunningSimulation:
    network: SimNetwork
    control: ControlServer | None
    startup_seconds: float
    firewall_logs: FirewallLogSource | None = None
    audit: AuditSender | None = None
    chatter: Chatter | None = None

    async def stop(self) -> None:
        if self.chatter is not None:
            await self.chatter.stop()
        if self.audit is not None:
            await self.audit.stop()
        if self.firewall_logs is not None:
            await self.firewall_logs.stop()
        if self.control is not None:
            await self.control.stop()
        await self.network.stop()


async def start_simulation(inventory: Inventory, config: SimnetConfig,
                           control: tuple[str, int] | None = DEFAULT_CONTROL,
                           syslog_target: tuple[str, int] | None = None,
                           audit_target: tuple[str, int] | None = None,
                           chatter: ChatterConfig | None = None) -> RunningSimulation:
    """The network, its control channel, (if targets are given) its firewalls' syslog and operators' audit
    streams, and (with ``chatter``) the devices' own traffic to each other."""
    began = time.monotonic()
    network = SimNetwork(inventory, config)
    await network.start()
    sim = RunningSimulation(network, None, 0.0)
    try:
        if control is not None:
            sim.control = ControlServer(network, *control)
            await sim.control.start()
        if syslog_target is not None:
            sim.firewall_logs = FirewallLogSource(network, syslog_target)
            await sim.firewall_logs.start()
        if audit_target is not None:
            sim.audit = AuditSender.for_network(inventory, network.clock, audit_target, config.state_dir)
            await sim.audit.start()
        if chatter is not None:
            sim.chatter = Chatter(network, chatter)
            await sim.chatter.start()
    except (OSError, RuntimeError):
        await sim.stop()
        raise
    sim.startup_seconds = time.monotonic() - began
    return sim


def banner(sim: RunningSimulation) -> str:
    net, cfg = sim.network, sim.network.config
    lines = [f"simulated national network: {len(net.devices)} devices up in {sim.startup_seconds:.1f} s"]
    for row in net.listening_summary():
        lines.append(f"  {row['tier']:<13} {row['devices']:>5} devices  {row['first']} … {row['last']}"
                     f"  ({row['tls']} with TLS)")
    lines.append(f"  SNMP udp/{cfg.snmp_port}: v2c community '{cfg.community}', "
                 f"v3 user '{cfg.v3_user}' ({cfg.v3_auth_protocol}/AES, authPriv)")
    if cfg.tls:
        lines.append(f"  TLS service tcp/{cfg.tls_port} on every CS and server")
    if sim.control is not None:
        lines.append(f"  fault control: {sim.control.host}:{sim.control.port} (jukimon simnet fault --help)")
    if cfg.trap_receivers:
        lines.append(f"  SNMP notifications (v{cfg.trap_version}) to "
                     + ", ".join(f"{h}:{p}" for h, p in cfg.trap_receivers))
    if sim.firewall_logs is not None:
        host, port = sim.firewall_logs.target
        lines.append(f"  firewall syslog to {host}:{port}")
    if sim.audit is not None:
        host, port = sim.audit.target
        lines.append(f"  operators' audit stream (TLS syslog) to {host}:{port}")
    if sim.chatter is not None:
        lines.append(f"  device chatter: up to {sim.chatter.per_second:.2g}/s simulated "
                     f"(≤ {sim.chatter.config.max_per_second:g}/s real), mutual TLS between device addresses")
    example = next((s for s in net.devices.values() if s.device.role is Role.CS), None) or next(
        iter(net.devices.values()), None)
    if example is not None:
        port = "" if cfg.snmp_port == 161 else f":{cfg.snmp_port}"
        lines.append(f"  try: snmpget -v2c -c {cfg.community} {example.device.address}{port} 1.3.6.1.2.1.1.3.0"
                     f"   (sysUpTime of {example.device.name})")
    return "\n".join(lines)


async def wait_for_signal() -> None:
    """Return on SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def start_then_wait_for_signal(start: Callable[[], Awaitable[None]]) -> bool:
    """``start()``, then wait for SIGINT or SIGTERM; True when it had started.

    The handlers are in place from the beginning: a signal during a long start-up (a full-scale
    job on a busy machine takes half a minute) cancels ``start()`` — which must undo what it did
    when cancelled — and returns False. Before, Ctrl-C in that half minute left a job that hung.
    """
    signalled = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, signalled.set)
    starting = asyncio.ensure_future(start())
    waiting = asyncio.ensure_future(signalled.wait())
    try:
        await asyncio.wait({starting, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            log.info("signal during start-up: undoing the start")
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            return False
        starting.result()  # a failed start raises here
        await waiting
        return True
    finally:
        for task in (starting, waiting):
            task.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def serve_until_signal(inventory: Inventory, config: SimnetConfig,
                             control: tuple[str, int] | None = DEFAULT_CONTROL,
                             syslog_target: tuple[str, int] | None = None,
                             audit_target: tuple[str, int] | None = None,
                             chatter: ChatterConfig | None = None) -> None:
    """Start the simulation, print where it listens, run until SIGINT/SIGTERM, stop cleanly."""
    sim = await start_simulation(inventory, config, control, syslog_target, audit_target, chatter)
    print(banner(sim), flush=True)
    try:
        await wait_for_signal()
    finally:
        await sim.stop()
