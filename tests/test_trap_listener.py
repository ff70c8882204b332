"""The collectors' trap receiver against the simulation's notifications, v2c and v3 authPriv."""

from __future__ import annotations

import asyncio
import socket

import pytest

from collectors.snmp.client import Credentials
from collectors.snmp.traps import TrapListener
from monitor.envelope import Event, EventType, Severity
from monitor.inventory.model import Inventory
from simnet.network import SimNetwork, SimnetConfig

V3 = Credentials("3", community="public", user="jukimon", auth_key="jukimon-auth-key", priv_key="jukimon-priv-key")


async def run(inventory: Inventory, version: str, credentials: Credentials, scenario) -> tuple[list[Event], dict]:
    events: list[Event] = []
    listener = TrapListener(events.append, inventory, credentials)
    host, port = await listener.start("127.0.0.1", 0)
    net = SimNetwork(inventory, SimnetConfig(snmp_port=27161, tls=False, trap_receivers=((host, port),),
                                             trap_version=version))
    await net.start()
    try:
        await scenario(net)
        await asyncio.sleep(0.2)
    finally:
        await net.stop()
        await listener.stop()
    return events, dict(listener.stats)


@pytest.mark.parametrize("version", ["2c", "3"])
async def test_line_cut_arrives_as_link_down_from_the_core_router(small_inventory: Inventory, version: str) -> None:
    line = next(l for l in small_inventory.links.values() if l.a == "muni-01-002-rt1")

    async def cut_and_restore(net: SimNetwork) -> None:
        fault = net.inject("line_cut", line.id)
        await asyncio.sleep(0.1)
        net.clear(fault.id)

    events, stats = await run(small_inventory, version, V3, cut_and_restore)
    # The cut: only the far end (the core router) can still speak. The repair: both ends report linkUp.
    assert [(e.body["trap"], e.origin.device) for e in events] == [
        ("linkDown", line.b), ("linkUp", line.b), ("linkUp", line.a)]
    down = events[0]
    assert down.event_type is EventType.TRAP and down.severity is Severity.ERROR
    assert down.origin.device == line.b and down.origin.tier == "prefecture"
    assert down.src_ip == small_inventory.devices[line.b].address
    assert isinstance(down.body["if_index"], int) and down.body["uptime_s"] > 0
    assert stats == {"accepted": 3}


async def test_traps_with_wrong_credentials_are_counted_not_believed(small_inventory: Inventory) -> None:
    async def reboot(net: SimNetwork) -> None:
        net.inject("reboot", "muni-01-001-cs1")

    wrong = Credentials("3", community="private", user="jukimon", auth_key="another-auth-key",
                        priv_key="jukimon-priv-key")
    events, stats = await run(small_inventory, "3", wrong, reboot)
    assert events == [] and stats == {"wrong_digest": 1}
    events, stats = await run(small_inventory, "2c", wrong, reboot)
    assert events == [] and stats == {"community": 1}


async def test_garbage_datagrams_do_not_stop_the_listener(small_inventory: Inventory) -> None:
    events: list[Event] = []
    listener = TrapListener(events.append, small_inventory, V3)
    host, port = await listener.start("127.0.0.1", 0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for junk in (b"", b"\x30\x03\x02\x01", b"\xff" * 50, bytes(range(256))):
            s.sendto(junk, (host, port))
    await asyncio.sleep(0.1)
    net = SimNetwork(small_inventory, SimnetConfig(snmp_port=27162, tls=False, trap_receivers=((host, port),)))
    await net.start()
    net.inject("reboot", "pref-01-fw")
    await asyncio.sleep(0.2)
    await net.stop()
    await listener.stop()
    assert listener.stats["malformed"] == 4 and [e.body["trap"] for e in events] == ["warmStart"]
