"""The simulated devices' own traffic (simnet.chatter): real mutual-TLS exchanges between device addresses."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from monitor.japan_time import JST
from simnet.certs import SimulationCA
from simnet.chatter import Chatter, ChatterConfig, Roster
from simnet.clock import SimClock
from simnet.network import SimNetwork, SimnetConfig
from simnet.tls import client_context
from monitor.localservers import free_port
from tests.servers import free_udp_port

WEDNESDAY = dt.date(2026, 12, 2)


def at(hour: float) -> float:
    return dt.datetime.combine(WEDNESDAY, dt.time(), JST).timestamp() + hour * 3600


def test_kinds_follow_the_operating_and_batch_windows(small_inventory):
    roster = Roster(small_inventory)
    morning, night, batch, delivery = (roster.weights(at(h)) for h in (10.5, 3.0, 20.0, 6.1))
    assert morning["change_notification"] > 0.5 and morning["bulk_provision"] == 0 == morning["file_delivery"]
    assert night["change_notification"] < 0.02  # online traffic nearly stops at night
    assert batch["bulk_provision"] > 0 and delivery["file_delivery"] > 0


async def _run(inventory, tmp_path: Path, hour: float, seconds: float, **network_faults):
    clock = SimClock(speed=60, start=at(hour))
    net = SimNetwork(inventory, SimnetConfig(snmp_port=free_udp_port(), tls_port=free_port(), state_dir=tmp_path),
                     clock=clock)
    await net.start()
    chatter = Chatter(net, ChatterConfig(seed=3, per_cs_hour=30, max_per_second=20))  # the generated day's rate
    try:
        for kind, target in network_faults.items():
            net.inject(kind, target)
        await chatter.start()
        await asyncio.sleep(seconds)
    finally:
        await chatter.stop()
        stats = net.tls_pool.stats()
        await net.stop()
    return chatter.stats, stats


def test_devices_exchange_over_mutual_tls_in_business_hours(small_inventory, tmp_path):
    stats, tls = asyncio.run(_run(small_inventory, tmp_path, 10.5, 6.0))
    assert stats["change_notification"] >= 10 and stats["notification_forward"] >= 10
    assert stats["immediate_query"] >= 1 and stats["cs_notice"] >= 1
    assert not any(k.endswith("_failed") for k in stats), stats
    assert tls["handshake_failures"] == 0 and tls["handshakes"] >= stats["change_notification"]


def test_bulk_provision_in_the_batch_window(small_inventory, tmp_path):
    stats, _ = asyncio.run(_run(small_inventory, tmp_path, 20.0, 5.0))
    assert stats["bulk_provision"] >= 1 and stats["file_delivery"] == 0


def test_a_device_that_is_down_neither_sends_nor_receives(small_inventory, tmp_path):
    unit = Roster(small_inventory).units["01"]
    stats, _ = asyncio.run(_run(small_inventory, tmp_path, 10.5, 5.0, device_down=unit.id))
    assert stats["unreachable"] >= 1
    assert not any(k.endswith("_failed") for k in stats), stats  # nobody even tried


def test_a_client_with_a_foreign_certificate_is_refused(small_inventory, tmp_path):
    """Mutual authentication: the services verify a client certificate against the simulation CA."""

    async def scenario() -> tuple[bool, bool]:
        net = SimNetwork(small_inventory, SimnetConfig(snmp_port=free_udp_port(), tls_port=free_port(),
                                                       state_dir=tmp_path / "sim"))
        await net.start()
        try:
            pool = net.tls_pool
            unit = Roster(small_inventory).units["01"]
            cs = next(d for d in Roster(small_inventory).cs if d.prefecture == "01")
            own = await pool.client_context_for(cs)
            foreign_ca = SimulationCA.load_or_create(tmp_path / "foreign")
            foreign_dir = tmp_path / "foreign"
            (foreign_dir / "c.crt").write_bytes(foreign_ca.cert_pem)
            (foreign_dir / "c.key").write_bytes(foreign_ca.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
            foreign = client_context(foreign_dir / "c.crt", foreign_dir / "c.key", pool.ca.cert_pem)
            return await _banner(unit.address, pool.port, own), await _banner(unit.address, pool.port, foreign)
        finally:
            await net.stop()

    own_ok, foreign_ok = asyncio.run(scenario())
    assert own_ok and not foreign_ok


async def _banner(address: str, port: int, context: ssl.SSLContext) -> bool:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port, ssl=context), 5)
        line = await asyncio.wait_for(reader.readuntil(b"\r\n"), 5)
        writer.close()
        return line.startswith(b"JUKI ")
    except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
        return False


def test_config_is_checked():
    with pytest.raises(ValueError, match="chatter.per_cs_hour"):
        ChatterConfig(per_cs_hour=0).check("chatter")
