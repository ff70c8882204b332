"""The collectors' SNMP client against simulated agents over real UDP: v2c and v3, good and bad days."""

from __future__ import annotations

import time

import pytest
import pytest_asyncio

from collectors.snmp.client import Credentials, SnmpAuthError, SnmpTimeout
from collectors.snmp.probe import TablesChanged, learn_tables, poll_device
from collectors.snmp.udp_client import SnmpUdpClient
from collectors.snmp.walk import walk_columns
from monitor.inventory.model import Inventory
from monitor.snmp.message import Missing
from simnet.network import SimNetwork, SimnetConfig

pytestmark = pytest.mark.asyncio(loop_scope="module")
PORT = 24161
UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SYS_NAME = (1, 3, 6, 1, 2, 1, 1, 5, 0)
V2C = Credentials("2c", community="public")
V3 = Credentials("3", user="jukimon", auth_protocol="SHA", auth_key="jukimon-auth-key", priv_key="jukimon-priv-key")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def net(small_inventory: Inventory):
    network = SimNetwork(small_inventory, SimnetConfig(snmp_port=PORT, tls=False))
    await network.start()
    yield network
    await network.stop()


def address(net: SimNetwork, device_id: str) -> str:
    return net.devices[device_id].device.address  # type: ignore[return-value]


@pytest.fixture(params=["v2c", "v3"])
async def client(request):
    c = SnmpUdpClient(V2C if request.param == "v2c" else V3, timeout=0.5, retries=1)
    yield c
    await c.close()


async def test_get_returns_decoded_values(net: SimNetwork, client: SnmpUdpClient) -> None:
    varbinds = await client.get(address(net, "muni-01-001-cs1"), PORT, [SYS_NAME, UPTIME])
    assert varbinds[0] == (SYS_NAME, b"muni-01-001-cs1")
    assert isinstance(varbinds[1][1], int) and varbinds[1][1] > 0


async def test_missing_objects_are_told_apart(net: SimNetwork, client: SnmpUdpClient) -> None:
    varbinds = await client.get(address(net, "muni-01-001-cs1"), PORT,
                                [(1, 3, 6, 1, 2, 1, 1, 3, 7), (1, 3, 6, 1, 4, 1, 99, 0)])
    assert [v for _, v in varbinds] == [Missing.NO_SUCH_INSTANCE, Missing.NO_SUCH_OBJECT]
    end = await client.get_bulk(address(net, "muni-01-001-cs1"), PORT, 0, 1, [(1, 3, 6, 1, 9)])
    assert end[0][1] is Missing.END_OF_MIB_VIEW


async def test_walk_of_a_core_router_with_many_ports(net: SimNetwork, client: SnmpUdpClient) -> None:
    core = net.devices["pref-01-core"]
    _, rows = await walk_columns(client, core.device.address, PORT, [(1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 18)],
                                 max_repetitions=5)
    aliases = {v.decode() for v in rows[(1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 18)].values()}
    assert {i.alias for i in core.interfaces} == aliases  # every port, across several GETBULK rounds


async def test_device_poll_and_names(net: SimNetwork, client: SnmpUdpClient) -> None:
    device = net.devices["muni-01-002-rt1"]
    tables = await learn_tables(client, device.device.address, PORT)
    assert tables.interfaces[1] == ("wan0", device.interfaces[0].alias)
    assert len(tables.processors) == device.profile.cpus
    raw = await poll_device(client, device.device.address, PORT, tables)
    assert set(raw.interfaces) == {i.index for i in device.interfaces}
    assert raw.interfaces[1]["oper_status"] == 1 and raw.interfaces[1]["speed_mbps"] == device.interfaces[0].speed_mbps
    assert len(raw.processors) == device.profile.cpus and raw.storages
    tables.interfaces[99] = ("ghost", "")  # a port the device does not have
    tables.build_plan()
    with pytest.raises(TablesChanged):
        await poll_device(client, device.device.address, PORT, tables)


async def test_silent_device_times_out_within_the_timeout(net: SimNetwork, client: SnmpUdpClient) -> None:
    fault = net.inject("device_down", "muni-01-003-cs1")
    began = time.monotonic()
    try:
        with pytest.raises(SnmpTimeout):
            await client.get(address(net, "muni-01-003-cs1"), PORT, [UPTIME])
    finally:
        net.clear(fault.id)
    assert time.monotonic() - began < 0.5 * 2 + 0.3  # two attempts of 0.5 s


async def test_v3_follows_an_agent_reboot(net: SimNetwork) -> None:
    client = SnmpUdpClient(V3, timeout=0.5, retries=0)
    target = address(net, "muni-01-001-fw")
    first = (await client.get(target, PORT, [UPTIME]))[0][1]
    net.inject("reboot", "muni-01-001-fw")  # engine boots +1: our cached time window is now wrong
    second = (await client.get(target, PORT, [UPTIME]))[0][1]
    await client.close()
    assert second < first
    assert client.stats["resyncs"] == 1


async def test_wrong_keys_are_an_authentication_error_not_a_timeout(net: SimNetwork) -> None:
    for credentials in (Credentials("3", user="jukimon", auth_key="not-the-right-key", priv_key="jukimon-priv-key"),
                        Credentials("3", user="nobody", auth_key="jukimon-auth-key", priv_key="jukimon-priv-key")):
        client = SnmpUdpClient(credentials, timeout=0.5, retries=0)
        with pytest.raises(SnmpAuthError):
            await client.get(address(net, "muni-01-001-cs1"), PORT, [UPTIME])
        await client.close()


async def test_wrong_community_is_a_timeout(net: SimNetwork) -> None:
    client = SnmpUdpClient(Credentials("2c", community="guess"), timeout=0.3, retries=0)
    with pytest.raises(SnmpTimeout):
        await client.get(address(net, "muni-01-001-cs1"), PORT, [UPTIME])
    await client.close()


async def test_answers_from_another_address_are_ignored(net: SimNetwork) -> None:
    import socket

    from monitor.snmp import ber, message

    client = SnmpUdpClient(V2C, timeout=0.3, retries=0)
    decoy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    decoy.bind(("127.99.0.1", 0))
    asked = "127.99.0.2"  # nobody answers there; a decoy tries to answer in its place
    task = __import__("asyncio").create_task(client.get(asked, PORT, [UPTIME]))
    await __import__("asyncio").sleep(0.05)
    local_port = client._socket.local_address[1]  # type: ignore[union-attr]
    forged = message.encode_v2c(b"public", message.encode_pdu(
        ber.RESPONSE, client._next_id, 0, 0, message.varbind(UPTIME, ber.timeticks(1))))
    decoy.sendto(forged, ("127.0.0.1", local_port))
    with pytest.raises(SnmpTimeout):
        await task
    decoy.close()
    await client.close()
    assert client.stats["unmatched"] == 1


async def test_poll_command_prints_what_would_be_recorded(net: SimNetwork) -> None:
    import asyncio
    import json
    import sys
    from pathlib import Path

    async def poll(*args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monitor.cli", "poll", *args, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1])
        out, _ = await proc.communicate()
        return proc.returncode or 0, out.decode()

    router = net.devices["muni-01-002-rt1"]
    code, out = await poll(f"{router.device.address}:{PORT}", "--json")
    assert code == 0, out
    result = json.loads(out)
    assert result["system"]["name"] == "muni-01-002-rt1" and result["system"]["location"] == "小樽市"
    assert result["interfaces"][0]["alias"] == router.interfaces[0].alias
    assert result["interfaces"][0]["oper_status"] == "up" and result["cpu_pct"]
    code, out = await poll(f"{router.device.address}:{PORT}", "--v3-user", "jukimon", "--auth-key",
                           "jukimon-auth-key", "--priv-key", "jukimon-priv-key")
    assert code == 0 and "wan0" in out and router.interfaces[0].alias in out
    code, out = await poll(f"{router.device.address}:{PORT}", "--v3-user", "jukimon", "--auth-key",
                           "definitely-wrong", "--priv-key", "jukimon-priv-key")
    assert code == 3 and "wrong digest" in out
