"""The collector service against a running simulation, at a fast cadence: what an operator's tools receive."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
import pytest_asyncio

from collectors.service import CollectorService
from collectors.snmp.client import Credentials
from collectors.snmp.udp_client import SnmpUdpClient
from monitor.config import CollectorSettings
from monitor.envelope import Event, EventType, Sample
from monitor.inventory.model import Inventory
from monitor.inventory.subset import subset_by_prefecture
from simnet.network import SimNetwork, SimnetConfig

pytestmark = pytest.mark.asyncio(loop_scope="module")
SNMP_PORT, TLS_PORT = 29161, 29443
V3 = Credentials("3", user="jukimon", auth_key="jukimon-auth-key", priv_key="jukimon-priv-key")


@pytest.fixture(scope="module")
def inventory(full_inventory: Inventory) -> Inventory:
    return subset_by_prefecture(full_inventory, ["13"], max_municipalities=3)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def net(inventory: Inventory, tmp_path_factory: pytest.TempPathFactory):
    network = SimNetwork(inventory, SimnetConfig(snmp_port=SNMP_PORT, tls_port=TLS_PORT,
                                                 state_dir=tmp_path_factory.mktemp("simnet")))
    await network.start()
    yield network
    await network.stop()


class Recorder:
    def __init__(self) -> None:
        self.records: list[Sample | Event] = []

    def __call__(self, records: list[Sample | Event]) -> None:
        self.records.extend(records)

    def samples(self, measurement: str, device: str) -> list[Sample]:
        return [r for r in self.records if isinstance(r, Sample) and r.measurement == measurement
                and r.origin.device == device]

    def events(self, event_type: EventType, device: str) -> list[Event]:
        return [r for r in self.records if isinstance(r, Event) and r.event_type is event_type
                and r.origin.device == device]


def fast_settings() -> CollectorSettings:
    return dataclasses.replace(CollectorSettings(), intervals={}, default_interval=1.0, tls_interval=2.0,
                               timeout=0.4, retries=0)


async def running_service(inventory: Inventory, recorder: Recorder) -> CollectorService:
    service = CollectorService(inventory, fast_settings(), SnmpUdpClient(V3, timeout=0.4, retries=0), [recorder],
                               snmp_port=SNMP_PORT, tls_port=TLS_PORT)
    service.start()
    return service


async def test_every_device_yields_its_samples_with_origin(net: SimNetwork, inventory: Inventory) -> None:
    recorder = Recorder()
    service = await running_service(inventory, recorder)
    await asyncio.sleep(3.5)
    await service.stop()
    for device in inventory.polled_devices():
        polls = recorder.samples("poll", device.id)
        assert len(polls) >= 2 and all(p.fields["ok"] for p in polls), device.id
        assert polls[0].origin.site == device.site and polls[0].origin.prefecture == device.prefecture
        assert recorder.samples("host", device.id) and recorder.samples("storage", device.id)
        rated = [s for s in recorder.samples("interface", device.id) if "in_bps" in s.fields]
        assert rated, device.id  # from the second poll on, rates
        first_poll = recorder.events(EventType.POLL, device.id)
        assert len(first_poll) == 1 and first_poll[0].body["reachable"] and first_poll[0].body["first"]
    core = recorder.samples("interface", "pref-13-core")
    assert {s.tags.get("if_alias") for s in core} >= {l.circuit_id for l in inventory.links.values()
                                                      if l.b == "pref-13-core"}


async def test_reboot_is_reported_and_rates_do_not_spike(net: SimNetwork, inventory: Inventory) -> None:
    recorder = Recorder()
    service = await running_service(inventory, recorder)
    await asyncio.sleep(2.5)
    net.inject("reboot", "muni-13-001-fw")
    await asyncio.sleep(3.0)
    await service.stop()
    reboots = [e for e in recorder.events(EventType.STATE, "muni-13-001-fw") if e.body.get("change") == "reboot"]
    assert len(reboots) == 1
    fw = net.devices["muni-13-001-fw"]
    speeds = {i.index: i.speed_mbps * 1e6 for i in fw.interfaces}
    rates = [(int(s.tags["if_index"]), s.fields["in_bps"]) for s in recorder.samples("interface", fw.device.id)
             if "in_bps" in s.fields]
    assert rates and all(0 <= bps <= speeds[i] for i, bps in rates)
    after = [s for s in recorder.samples("interface", fw.device.id) if s.ts > reboots[0].ts and "in_bps" in s.fields]
    assert after  # rates resume on the poll after the one that saw the reboot


async def test_silent_device_is_one_event_then_one_recovery(net: SimNetwork, inventory: Inventory) -> None:
    recorder = Recorder()
    service = await running_service(inventory, recorder)
    await asyncio.sleep(1.5)
    fault = net.inject("device_down", "muni-13-002-cs1")
    await asyncio.sleep(3.0)
    net.clear(fault.id)
    await asyncio.sleep(4.0)
    await service.stop()
    changes = [e.body["reachable"] for e in recorder.events(EventType.POLL, "muni-13-002-cs1")]
    assert changes == [True, False, True]  # first poll, not answering, answering again — no repeats
    failed = [p for p in recorder.samples("poll", "muni-13-002-cs1") if not p.fields["ok"]]
    assert failed and all(p.fields["error"] == "timeout" for p in failed)


async def test_tls_facts_and_an_expired_certificate(net: SimNetwork, inventory: Inventory) -> None:
    recorder = Recorder()
    fault = net.inject("cert_expired", "muni-13-003-cs1")
    service = await running_service(inventory, recorder)
    await asyncio.sleep(2.5)
    await service.stop()
    net.clear(fault.id)
    expired = recorder.samples("tls", "muni-13-003-cs1")
    assert expired and expired[0].fields["days_left"] < 0
    healthy = recorder.samples("tls", "muni-13-001-cs1")
    crypto = inventory.devices["muni-13-001-cs1"].lifecycle.crypto
    assert healthy[0].fields["key_size"] == crypto.key_size
    assert healthy[0].fields["signature_hash"] == crypto.signature_hash and healthy[0].fields["days_left"] > 0


async def test_inventory_changes_apply_without_restart(net: SimNetwork, inventory: Inventory) -> None:
    recorder = Recorder()
    service = await running_service(inventory, recorder)
    await asyncio.sleep(1.5)
    smaller = Inventory(inventory.sites, {k: v for k, v in inventory.devices.items() if not k.startswith("muni-13-003")},
                        {k: v for k, v in inventory.links.items() if not k.startswith("line-muni-13-003")})
    service.set_inventory(smaller)
    recorder.records.clear()
    await asyncio.sleep(2.5)
    await service.stop()
    polled = {r.origin.device for r in recorder.records if isinstance(r, Sample) and r.measurement == "poll"}
    assert not any(d.startswith("muni-13-003") for d in polled) and "muni-13-001-cs1" in polled
