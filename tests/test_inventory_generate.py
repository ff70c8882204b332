"""The synthetic national inventory has the real shape and the addressing plan others rely on."""

from __future__ import annotations

import csv
import datetime as dt
import ipaddress
from collections import Counter, deque
from pathlib import Path

import pytest

from monitor.inventory import (
    Inventory,
    PrefectureNetwork,
    Role,
    Subsystem,
    Tier,
    default_inventory,
    generate_inventory,
    is_weak_crypto,
    validate,
)

AS_OF = dt.date(2025, 4, 1)
CSV = Path(__file__).resolve().parents[1] / "monitor" / "data" / "prefectures.csv"


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return generate_inventory(seed=1, as_of=AS_OF)


def csv_counts() -> dict[str, int]:
    with CSV.open(encoding="utf-8") as f:
        return {row["jis_code"].zfill(2): int(row["municipalities"]) for row in csv.DictReader(f)}


def test_national_shape_matches_the_csv(inv: Inventory) -> None:
    tiers = Counter(s.tier for s in inv.sites.values())
    assert tiers[Tier.NATIONAL] == 1 and tiers[Tier.AGGREGATION] == 1
    assert tiers[Tier.PREFECTURE] == 47
    assert tiers[Tier.MUNICIPALITY] == 1741
    assert 6 <= tiers[Tier.AGENCY] <= 10
    per_prefecture = Counter(s.prefecture for s in inv.sites_of_tier(Tier.MUNICIPALITY))
    assert dict(per_prefecture) == csv_counts()
    for site in inv.sites_of_tier(Tier.MUNICIPALITY):
        assert site.parent == f"pref-{site.prefecture}"
    assert {s.parent for s in inv.sites_of_tier(Tier.PREFECTURE)} == {"aggregation"}


def test_about_8800_polled_devices_exactly_as_the_topology_implies(inv: Inventory) -> None:
    munis = inv.sites_of_tier(Tier.MUNICIPALITY)
    # fw + CS pair (or CS + recovery) + one router per leased line
    expected_muni = sum(3 + (2 if s.redundant_lines else 1) for s in munis)
    national = 5 + 2 * len(Subsystem)
    agencies = 2 * len(inv.sites_of_tier(Tier.AGENCY))
    expected = national + (1 + 47) + agencies + 4 * 47 + expected_muni
    polled = sum(1 for _ in inv.polled_devices())
    assert polled == expected
    assert 8_700 <= polled <= 8_900


def test_addresses_unique_and_on_loopback(inv: Inventory) -> None:
    loopback = ipaddress.ip_network("127.0.0.0/8")
    addresses = [d.address for d in inv.devices.values() if d.address is not None]
    assert len(addresses) == len(set(addresses))
    assert all(ipaddress.ip_address(a) in loopback for a in addresses)
    for device in inv.devices.values():
        assert (device.address is None) == (device.role is Role.TERMINAL), device.id


def test_addressing_plan(inv: Inventory) -> None:
    by_address = {d.address: d.id for d in inv.devices.values() if d.address}
    assert by_address["127.1.0.1"] == "national-fw"
    assert by_address["127.1.0.2"] == "national-nms"
    assert by_address["127.1.0.10"] == "national-database-1"
    assert by_address["127.1.1.1"] == "aggregation-fw"
    assert by_address["127.1.1.23"] == "aggregation-pu-13"
    assert by_address["127.2.1.1"] == "agency-01-rt1"
    assert by_address["127.2.1.2"] == "agency-01-server"
    assert by_address["127.23.0.1"] == "pref-13-fw"
    assert by_address["127.23.0.3"] == "pref-13-rt2"
    assert by_address["127.23.0.4"] == "pref-13-core"
    assert by_address["127.11.2.1"] == "muni-01-002-fw"
    assert by_address["127.11.2.2"] == "muni-01-002-rt1"
    assert by_address["127.11.2.4"] == "muni-01-002-cs1"
    assert by_address["127.57.41.2"] == "muni-47-041-rt1"


def test_every_device_is_reached_from_the_national_fw(inv: Inventory) -> None:
    assert inv.devices["national-fw"].parents == ()
    roots = [d.id for d in inv.devices.values() if not d.parents]
    assert roots == ["national-fw"]
    seen = {"national-fw"}
    queue = deque(seen)
    while queue:
        for child in inv.children.get(queue.popleft(), ()):
            if child not in seen:
                seen.add(child)
                queue.append(child)
    assert seen == set(inv.devices)


def test_the_generated_inventory_validates(inv: Inventory) -> None:
    assert validate(inv) == []


def test_municipality_topology(inv: Inventory) -> None:
    otaru = {d.id: d for d in inv.devices_by_site["muni-01-002"]}
    assert inv.sites["muni-01-002"].name == "小樽市"
    assert otaru["muni-01-002-rt1"].parents == ("pref-01-core",)
    assert otaru["muni-01-002-rt2"].parents == ("pref-01-core",)
    assert otaru["muni-01-002-fw"].parents == ("muni-01-002-rt1", "muni-01-002-rt2")
    assert otaru["muni-01-002-cs1"].cluster == otaru["muni-01-002-cs2"].cluster == "muni-01-002-cs"
    assert all(d.prefecture == "01" for d in otaru.values())
    line = inv.link_by_edge[("muni-01-002-rt2", "pref-01-core")]
    assert line.id == "line-muni-01-002-rt2" and line.bandwidth_mbps in (10, 100)

    for site in inv.sites_of_tier(Tier.MUNICIPALITY):
        roles = Counter(d.role for d in inv.devices_by_site[site.id])
        assert roles[Role.ROUTER] == (2 if site.redundant_lines else 1), site.id
        assert roles[Role.FW] == 1
        assert (roles[Role.CS], roles[Role.CS_RECOVERY]) in ((2, 0), (1, 1)), site.id
        assert 2 <= roles[Role.TERMINAL] <= 40


def test_every_router_has_its_leased_line_along_a_parent_edge(inv: Inventory) -> None:
    routers = {d.id for d in inv.devices.values() if d.role is Role.ROUTER}
    assert {link.a for link in inv.links.values()} == routers
    assert len(inv.links) == len(routers)
    for link in inv.links.values():
        assert link.b in inv.devices[link.a].parents
        assert link.id == f"line-{link.a}"


def test_carriers_follow_the_ntt_regions(inv: Inventory) -> None:
    def carriers(code: str) -> Counter[str]:
        return Counter(l.carrier for l in inv.links.values() if l.a.startswith((f"muni-{code}-", f"pref-{code}-")))

    hokkaido, okinawa = carriers("01"), carriers("47")
    assert hokkaido["NTT東日本"] > 0 and hokkaido["NTT西日本"] == 0
    assert okinawa["NTT西日本"] > 0 and okinawa["NTT東日本"] == 0
    others = Counter(l.carrier for l in inv.links.values())
    assert 0.05 < (others["KDDI"] + others["ソフトバンク"]) / len(inv.links) < 0.5
    assert inv.links["line-muni-01-001-rt1"].circuit_id.endswith("-01-001-A")


def test_names_capitals_first_and_largest(inv: Inventory) -> None:
    assert inv.sites["muni-01-001"].name == "札幌市"
    assert inv.sites["muni-02-001"].name == "青森市"
    assert inv.sites["muni-13-001"].name == "新宿区"
    assert inv.sites["muni-47-001"].name == "那覇市"
    assert inv.sites["pref-13"].name == "東京都" and inv.sites["pref-13"].name_en == "Tokyo"
    assert all(s.name_en.isascii() for s in inv.sites.values())
    terminals = Counter(d.site for d in inv.devices.values() if d.role is Role.TERMINAL)
    for pref in inv.sites_of_tier(Tier.PREFECTURE):
        code = pref.prefecture
        sizes = {sid: n for sid, n in terminals.items() if sid.startswith(f"muni-{code}-")}
        assert max(sizes, key=sizes.__getitem__) == f"muni-{code}-001"


def test_redundancy_shares_as_configured(inv: Inventory) -> None:
    munis = inv.sites_of_tier(Tier.MUNICIPALITY)
    single_line = sum(1 for s in munis if not s.redundant_lines)
    single_cs = sum(1 for d in inv.devices.values() if d.role is Role.CS_RECOVERY)
    outsourced = sum(1 for s in inv.sites_of_tier(Tier.PREFECTURE) if s.network is PrefectureNetwork.OUTSOURCED)
    assert single_line == round(0.1 * 1741)
    assert single_cs == round(0.3 * 1741)
    assert outsourced == round(0.3 * 47)

    other = generate_inventory(seed=1, as_of=AS_OF, single_line_share=0.5, single_cs_share=0.0, outsourced_share=1.0)
    assert sum(1 for s in other.sites_of_tier(Tier.MUNICIPALITY) if not s.redundant_lines) == round(0.5 * 1741)
    assert not any(d.role is Role.CS_RECOVERY for d in other.devices.values())
    assert all(s.network is PrefectureNetwork.OUTSOURCED for s in other.sites_of_tier(Tier.PREFECTURE))
    assert validate(other) == []


def test_national_centre(inv: Inventory) -> None:
    servers = [d for d in inv.devices.values() if d.role is Role.NATIONAL_SERVER]
    assert Counter(d.subsystem for d in servers) == {s: 2 for s in Subsystem}
    assert all(d.cluster == f"national-{d.subsystem.value}" and d.parents == ("national-fw",) for d in servers)
    for did in ("national-nms", "national-ids", "national-callcenter", "national-card", "aggregation-fw"):
        assert inv.devices[did].parents == ("national-fw",)
    units = [d for d in inv.devices.values() if d.role is Role.PREFECTURE_UNIT]
    assert sorted(d.prefecture for d in units) == sorted(csv_counts())


def test_lifecycle_six_year_cycle_and_crypto_mix(inv: Inventory) -> None:
    tls = [d for d in inv.devices.values() if d.role.serves_tls]
    for device in inv.devices.values():
        life = device.lifecycle
        assert AS_OF - dt.timedelta(days=7 * 366) <= life.installed <= AS_OF
        assert life.hw_support_end.year == life.installed.year + 6
        assert abs((life.sw_support_end - life.hw_support_end).days) <= 366
        assert (life.crypto is not None) == device.role.serves_tls
        assert (life.cert_not_after is not None) == device.role.serves_tls
    weak = sum(1 for d in tls if is_weak_crypto(d.lifecycle.crypto))
    ecdsa = sum(1 for d in tls if d.lifecycle.crypto.algorithm == "ecdsa")
    expired = sum(1 for d in tls if d.lifecycle.cert_not_after < AS_OF)
    soon = sum(1 for d in tls if AS_OF <= d.lifecycle.cert_not_after <= AS_OF + dt.timedelta(days=30))
    assert 0.01 < weak / len(tls) < 0.06
    assert 0.06 < ecdsa / len(tls) < 0.15
    assert 0.002 < expired / len(tls) < 0.025
    assert 0.01 < soon / len(tls) < 0.06
    later = [d.lifecycle.cert_not_after for d in tls if d.lifecycle.cert_not_after > AS_OF + dt.timedelta(days=30)]
    assert min(later) >= AS_OF + dt.timedelta(days=180) and max(later) <= AS_OF + dt.timedelta(days=31 * 30)


def test_terminals_mostly_have_vein_readers(inv: Inventory) -> None:
    terminals = [d for d in inv.devices.values() if d.role is Role.TERMINAL]
    with_reader = sum(1 for d in terminals if d.vein_reader)
    assert 0.8 < with_reader / len(terminals) < 1.0
    assert all(d.parents == (f"{d.site}-fw",) for d in terminals)


def test_same_seed_same_inventory_other_seed_differs(inv: Inventory) -> None:
    again = generate_inventory(seed=1, as_of=AS_OF)
    assert again == inv
    assert list(again.devices) == list(inv.devices)
    other = generate_inventory(seed=2, as_of=AS_OF)
    assert other != inv
    single = {s.id for s in inv.sites.values() if not s.redundant_lines}
    assert single != {s.id for s in other.sites.values() if not s.redundant_lines}


def test_default_inventory_is_built_once() -> None:
    assert default_inventory() is default_inventory()
    assert default_inventory().devices.keys() == generate_inventory(seed=1).devices.keys()
