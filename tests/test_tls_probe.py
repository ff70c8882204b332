"""The TLS service check against simulated servers whose certificates follow their lifecycle data."""

from __future__ import annotations

import dataclasses
import time

import pytest
import pytest_asyncio

from collectors.tls_probe import check_tls
from monitor.inventory.model import Inventory
from simnet.network import SimNetwork, SimnetConfig

pytestmark = pytest.mark.asyncio(loop_scope="module")
TLS_PORT = 21443


def _pick(inv: Inventory, predicate) -> str:
    return next(d.id for d in inv.devices.values() if d.role.serves_tls and d.address and predicate(d.lifecycle))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def servers(full_inventory: Inventory, tmp_path_factory: pytest.TempPathFactory):
    """Three servers of the national fleet, each standing alone: strong, weak, nearly expired."""
    chosen = {
        "strong": _pick(full_inventory, lambda lc: lc.crypto.algorithm == "rsa" and lc.crypto.key_size == 2048
                        and lc.crypto.signature_hash == "sha256"),
        "weak": _pick(full_inventory, lambda lc: lc.crypto.key_size == 1024 and lc.crypto.signature_hash == "sha1"),
        "ecdsa": _pick(full_inventory, lambda lc: lc.crypto.algorithm == "ecdsa"),
    }
    devices = {i: dataclasses.replace(full_inventory.devices[i], parents=()) for i in chosen.values()}
    sites = {d.site: full_inventory.sites[d.site] for d in devices.values()}
    net = SimNetwork(Inventory(sites, devices, {}), SimnetConfig(snmp_port=21161, tls_port=TLS_PORT,
                                                                state_dir=tmp_path_factory.mktemp("tls")))
    await net.start()
    yield net, {k: full_inventory.devices[v] for k, v in chosen.items()}
    await net.stop()


async def test_strong_certificate_facts(servers) -> None:
    _, devices = servers
    device = devices["strong"]
    check = await check_tls(device.address, TLS_PORT)
    assert check.ok and check.certificate is not None, check.error
    facts = check.certificate
    assert (facts.key_algorithm, facts.key_size, facts.signature_hash) == ("rsa", 2048, "sha256")
    assert not facts.weak
    assert device.id in facts.subject
    assert abs(facts.not_after - _end_of_day(device.lifecycle.cert_not_after)) < 86_400
    assert check.connect_ms is not None and check.handshake_ms is not None


async def test_weak_certificate_is_flagged(servers) -> None:
    _, devices = servers
    check = await check_tls(devices["weak"].address, TLS_PORT)
    assert check.ok, check.error
    assert check.certificate.key_size == 1024 and check.certificate.signature_hash == "sha1"
    assert check.certificate.weak


async def test_ecdsa_certificate(servers) -> None:
    _, devices = servers
    check = await check_tls(devices["ecdsa"].address, TLS_PORT)
    assert check.ok and check.certificate.key_algorithm == "ecdsa" and check.certificate.key_size == 256


async def test_expired_certificate_shows_negative_days_left(servers) -> None:
    net, devices = servers
    fault = net.inject("cert_expired", devices["strong"].id)
    check = await check_tls(devices["strong"].address, TLS_PORT)
    net.clear(fault.id)
    assert check.ok and check.certificate.days_left(time.time()) < 0


async def test_silent_server_times_out_and_closed_port_is_refused(servers) -> None:
    net, devices = servers
    fault = net.inject("device_down", devices["ecdsa"].id)
    began = time.monotonic()
    check = await check_tls(devices["ecdsa"].address, TLS_PORT, timeout=0.5)
    net.clear(fault.id)
    assert not check.ok and check.error == "timeout" and time.monotonic() - began < 1.0
    refused = await check_tls(devices["ecdsa"].address, TLS_PORT + 1, timeout=0.5)
    assert not refused.ok and refused.error == "refused"


def _end_of_day(day) -> float:
    import datetime as dt

    return dt.datetime.combine(day, dt.time(23, 59, 59), dt.timezone.utc).timestamp()
