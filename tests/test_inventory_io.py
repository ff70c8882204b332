"""The inventory file round-trips exactly, loads fast, and every kind of mistake is located."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.inventory import (
    Device,
    Inventory,
    InventoryError,
    Lifecycle,
    Role,
    Site,
    Tier,
    dumps_inventory,
    generate_inventory,
    load_inventory,
    loads_inventory,
    save_inventory,
    validate,
)
from monitor.inventory import yaml_io

AS_OF = dt.date(2025, 4, 1)


@pytest.fixture(scope="module")
def full() -> Inventory:
    return generate_inventory(seed=1, as_of=AS_OF)


@pytest.fixture(scope="module")
def full_text(full: Inventory) -> str:
    return dumps_inventory(full)


# -- full scale --------------------------------------------------------------------------------


def test_full_scale_round_trip_is_exact(full: Inventory, full_text: str, tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    save_inventory(full, path)
    assert path.read_text(encoding="utf-8") == full_text
    loaded = load_inventory(path)
    assert loaded == full
    for device_id, device in full.devices.items():  # field by field, not just dict equality
        assert dataclasses.astuple(loaded.devices[device_id]) == dataclasses.astuple(device)
    assert list(loaded.devices) == list(full.devices)
    assert dumps_inventory(loaded) == full_text


def test_one_entry_per_line(full: Inventory, full_text: str) -> None:
    lines = full_text.splitlines()
    entries = [line for line in lines if line.startswith("- {")]
    assert len(entries) == len(full.sites) + len(full.devices) + len(full.links)
    assert "version: 1" in lines and "sites:" in lines and "devices:" in lines and "links:" in lines
    otaru = next(line for line in lines if line.startswith("- {id: muni-01-002, "))
    assert "name: 小樽市" in otaru and 'prefecture: "01"' in otaru
    cs = next(line for line in lines if line.startswith("- {id: muni-01-002-cs1, "))
    assert "crypto: {algorithm: " in cs and "address: 127.11.2.4" in cs
    terminal = next(line for line in lines if line.startswith("- {id: muni-01-002-term01, "))
    assert "address" not in terminal and "crypto" not in terminal  # omitted when None


def test_general_yaml_reader_agrees_with_the_fast_one(full_text: str) -> None:
    # The first 3,000 lines are a complete document (sites and part of the devices).
    text = "\n".join(full_text.splitlines()[:3000]) + "\n"
    problems: list = []
    assert yaml_io._read_general(text, problems) == yaml_io._read_fast(text)
    assert problems == []


def test_block_style_yaml_is_read_too() -> None:
    text = """\
version: 1
name: hand-written
sites:
  - id: national
    tier: national
    name: 全国センター
    name_en: National Centre
    parent: ~
devices:
  - id: national-fw
    site: national
    role: national_fw
    name: 'FW: main'
    address: 127.1.0.1
    parents: []
    model: X
    installed: 2020-01-01
    hw_support_end: 2026-01-01
    sw_support_end: 2026-06-30
links: []
"""
    inv = loads_inventory(text)
    assert inv.name == "hand-written"
    assert inv.devices["national-fw"].name == "FW: main"
    assert loads_inventory(dumps_inventory(inv)) == inv


def test_hand_edited_entry_lines_outside_the_written_style() -> None:
    odd = GOOD.replace("- {id: pref-01-rt1, site: pref-01,", '- {"id": pref-01-rt1, site: !!str pref-01,')
    assert odd != GOOD
    assert loads_inventory(odd) == loads_inventory(GOOD)
    wrong = odd.replace("!!str pref-01,", "!!str pref-02,")
    assert _problems(wrong) == [(8, "pref-01-rt1", "unknown site 'pref-02'")]


def _tiny(site_name: str) -> Inventory:
    life = Lifecycle("M", dt.date(2020, 1, 1), dt.date(2026, 1, 1), dt.date(2026, 1, 1))
    site = Site("national", Tier.NATIONAL, site_name, site_name, None)
    device = Device("national-fw", "national", Role.NATIONAL_FW, site_name, "127.1.0.1", (), life)
    return Inventory({"national": site}, {"national-fw": device}, {}, name=site_name)


TRICKY = ["01", "08", "yes", "null", "~", "1.5", "2020-01-01", "", " lead", "trail ", "a: b", "a, b",
          "[x]", "{x}", "#x", "a #b", "- x", "-x", "? x", "'q'", '"dq"', "back\\slash", "tab\there",
          "new\nline", "\x85", "\u2028", "\ufeff", "全角\u3000空白", "東京都 新宿区", "@x", "`x`", "!x",
          "&a", "*a", "|", ">", "%x", "é", "\U0001f5fe", "\x7f", "a'b", 'a"b']


@pytest.mark.parametrize("name", TRICKY)
def test_tricky_strings_round_trip_and_are_real_yaml(name: str) -> None:
    inv = _tiny(name)
    text = dumps_inventory(inv)
    assert loads_inventory(text) == inv
    assert yaml.safe_load(text)["sites"][0]["name"] == name


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12))
def test_any_string_round_trips(name: str) -> None:
    text = dumps_inventory(_tiny(name))
    assert loads_inventory(text).sites["national"].name == name
    assert yaml.safe_load(text)["sites"][0]["name"] == name


_PIECES = st.sampled_from([" ", "-", "?", ":", ",", "[", "]", "{", "}", "#", " #", "&", "*", "!", "|", ">", "'",
                           '"', "%", "@", "`", "\\", "a", "0", ".", "~", "\u3000", "日", "é", "x: ", ", ", "null",
                           "2020-01-01", '\\"', "''", "\\u00e9", "\\x41", "\\n"])


@settings(max_examples=500, deadline=None)
@given(st.lists(_PIECES, max_size=10).map("".join), st.lists(_PIECES, max_size=10).map("".join))
def test_fast_reader_never_disagrees_with_yaml(v: str, w: str) -> None:
    """Whatever the line-by-line reader accepts, libyaml reads the same way."""
    text = f"version: 1\nname: {w}\nsites:\n- {{id: x, name: {v}, parents: [{v}, {w}], crypto: {{k: {v}, j: {w}}}}}  # c\n"
    try:
        fast = yaml_io._read_fast(text)
    except yaml_io._NotFast:
        return
    problems: list = []
    assert yaml_io._read_general(text, problems) == fast
    assert problems == []


# -- bad files ---------------------------------------------------------------------------------

GOOD = """\
version: 1
name: small
sites:
- {id: national, tier: national, name: 全国センター, name_en: National Centre, parent: null}
- {id: pref-01, tier: prefecture, name: 北海道, name_en: Hokkaido, parent: national, prefecture: "01", network: self_operated}
devices:
- {id: national-fw, site: national, role: national_fw, name: FW, address: 127.1.0.1, parents: [], model: X, installed: 2020-01-01, hw_support_end: 2026-01-01, sw_support_end: 2026-01-01}
- {id: pref-01-rt1, site: pref-01, role: router, name: RT, address: 127.11.0.2, parents: [national-fw], model: X, installed: 2020-01-01, hw_support_end: 2026-01-01, sw_support_end: 2026-01-01}
- {id: pref-01-cs, site: pref-01, role: cs, name: CS, address: 127.11.0.4, parents: [pref-01-rt1], model: X, installed: 2020-01-01, hw_support_end: 2026-01-01, sw_support_end: 2026-01-01, crypto: {algorithm: rsa, key_size: 2048, signature_hash: sha256}, cert_not_after: 2027-01-01}
- {id: pref-01-term01, site: pref-01, role: terminal, name: 端末, parents: [pref-01-cs], vein_reader: true, model: X, installed: 2020-01-01, hw_support_end: 2026-01-01, sw_support_end: 2026-01-01}
links:
- {id: line-pref-01-rt1, circuit_id: NTTE-01-000-A, carrier: NTT東日本, bandwidth_mbps: 1000, a: pref-01-rt1, b: national-fw}
"""


def test_the_small_example_is_valid() -> None:
    inv = loads_inventory(GOOD)
    assert len(inv.devices) == 4 and validate(inv) == []
    assert inv.devices["pref-01-term01"].address is None and inv.devices["pref-01-term01"].vein_reader


def _problems(text: str) -> list[tuple[int | None, str | None, str]]:
    with pytest.raises(InventoryError) as caught:
        loads_inventory(text, source="bad.yaml")
    assert "bad.yaml" in str(caught.value)
    return [(p.line, p.entry, p.message) for p in caught.value.problems]


BAD = {
    "malformed yaml": (("parents: [national-fw]", "parents: [national-fw"), 8, None, "not valid YAML"),
    "missing field": (("name: RT, address", "address"), 8, "pref-01-rt1", "missing field name"),
    "unknown field": (("name: RT,", "name: RT, colour: red,"), 8, "pref-01-rt1", "unknown field 'colour'"),
    "wrong type": (("bandwidth_mbps: 1000", "bandwidth_mbps: fast"), 12, "line-pref-01-rt1", "bandwidth_mbps: expected a whole number"),
    "bad enum": (("role: router", "role: switch"), 8, "pref-01-rt1", "role: text 'switch' is not one of"),
    "bad date": (("cert_not_after: 2027-01-01", "cert_not_after: 2027-02-30"), 9, "pref-01-cs", "invalid date 2027-02-30"),
    "not a date": (("installed: 2020-01-01, hw_support_end: 2026-01-01, sw_support_end: 2026-01-01, crypto",
                    "installed: soon, hw_support_end: 2026-01-01, sw_support_end: 2026-01-01, crypto"),
                   9, "pref-01-cs", "installed: expected a date"),
    "unquoted code": (('prefecture: "01"', "prefecture: 01"), 5, "pref-01", "expected text, got a number 01 (quote it)"),
    "bad crypto": (("key_size: 2048", "key_size: big"), 9, "pref-01-cs", "crypto.key_size: expected a whole number"),
    "duplicate id": (("id: pref-01-cs,", "id: pref-01-rt1,"), 9, "pref-01-rt1", "duplicate device id (first defined at line 8)"),
    "duplicate address": (("127.11.0.4", "127.11.0.2"), 9, "pref-01-cs", "duplicate address 127.11.0.2"),
    "outside loopback": (("127.11.0.4", "10.11.0.4"), 9, "pref-01-cs", "outside 127.0.0.0/8"),
    "not an address": (("127.11.0.4", "127.11.0.400"), 9, "pref-01-cs", "not an IPv4 address"),
    "polled without address": (("address: 127.11.0.4, ", ""), 9, "pref-01-cs", "no address"),
    "unknown site": (("site: pref-01, role: cs", "site: pref-99, role: cs"), 9, "pref-01-cs", "unknown site 'pref-99'"),
    "unknown parent": (("parents: [pref-01-rt1]", "parents: [pref-01-rt9]"), 9, "pref-01-cs", "unknown parent 'pref-01-rt9'"),
    "unknown parent site": (("parent: national, prefecture", "parent: nation, prefecture"), 5, "pref-01", "unknown parent site 'nation'"),
    "device cycle": (("parents: [pref-01-rt1]", "parents: [pref-01-term01]"), 9, "pref-01-cs",
                     "parent cycle: pref-01-cs → pref-01-term01 → pref-01-cs"),
    "own parent": (("parents: [pref-01-cs], vein", "parents: [pref-01-term01], vein"), 10, "pref-01-term01",
                   "parent cycle: pref-01-term01 → pref-01-term01"),
    "link end unknown": (("a: pref-01-rt1", "a: pref-01-rt7"), 12, "line-pref-01-rt1", "unknown device 'pref-01-rt7' at end a"),
    "link not a parent edge": (("b: national-fw}", "b: pref-01-cs}"), 12, "line-pref-01-rt1", "'pref-01-cs' is not a parent of 'pref-01-rt1'"),
    "duplicate field": (("name: RT,", "name: RT, name: RT2,"), 8, "pref-01-rt1", "field 'name' given twice"),
    "entry not a mapping": (("- {id: pref-01-term01", "- [id: pref-01-term01"), 10, None, "must be a mapping"),
    "unsupported version": (("version: 1", "version: 2"), 1, None, "unsupported version 2"),
    "unknown top-level key": (("name: small", "name: small\nowner: me"), 3, None, "unknown top-level key 'owner'"),
    "control character": (("name: CS,", "name: C\x01S,"), 9, None, "not valid YAML"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_kind_of_mistake_is_located(case: str) -> None:
    (old, new), line, entry, message = BAD[case]
    text = GOOD.replace(old, new, 1)
    if case == "entry not a mapping":
        text = text.replace("2026-01-01}\nlinks", "2026-01-01]\nlinks")
    assert text != GOOD
    problems = _problems(text)
    assert any(l == line and e == entry and message in m for l, e, m in problems), problems


def test_site_parent_cycle() -> None:
    text = GOOD.replace("tier: national, name: 全国センター, name_en: National Centre, parent: null",
                        "tier: agency, name: 全国センター, name_en: National Centre, parent: pref-01")
    assert _problems(text) == [(4, "national", "parent site cycle: national → pref-01 → national")]


def test_wrong_top_level_shapes() -> None:
    assert _problems("- a\n- b\n") == [(1, None, "the top level must be a mapping with version, name, sites, devices, links")]
    assert [m for _l, _e, m in _problems("")] == [
        "missing 'version: 1'", "missing top-level key 'sites'", "missing top-level key 'devices'", "missing top-level key 'links'"]
    lines = GOOD.splitlines()
    text = "\n".join([*lines[:2], "sites: national", *lines[5:]])
    assert any(l == 3 and "sites must be a list" in m for l, _e, m in _problems(text))


def test_every_problem_is_listed_not_just_the_first() -> None:
    text = (GOOD.replace("127.11.0.4", "10.0.0.4")
                .replace("role: router", "role: switch")
                .replace("bandwidth_mbps: 1000", "bandwidth_mbps: -5"))
    problems = _problems(text)
    assert [(l, e) for l, e, _m in problems] == [(8, "pref-01-rt1"), (9, "pref-01-cs"), (12, "line-pref-01-rt1")]


def test_an_entry_that_is_broken_does_not_drag_its_dependants_into_the_report() -> None:
    text = GOOD.replace("role: router", "role: switch")
    # pref-01-cs and the link refer to the broken router; only the router is reported.
    assert [(l, e) for l, e, _m in _problems(text)] == [(8, "pref-01-rt1")]


def test_problems_are_located_in_hand_written_block_yaml() -> None:
    text = """\
version: 1
sites:
  - id: national
    tier: national
    name: 全国センター
    name_en: National Centre
    parent: null
devices:
  - id: national-fw
    site: nowhere
    role: national_fw
    name: FW
    address: 127.1.0.1
    parents: []
    model: X
    installed: 2020-01-01
    hw_support_end: 2026-01-01
    sw_support_end: 2026-01-01
links: []
"""
    assert _problems(text) == [(9, "national-fw", "unknown site 'nowhere'")]


def test_error_message_names_file_and_line() -> None:
    with pytest.raises(InventoryError) as caught:
        loads_inventory(GOOD.replace("127.11.0.4", "10.0.0.4"), source="inv.yaml")
    assert "inv.yaml: line 9, pref-01-cs: address 10.0.0.4 is outside" in str(caught.value)


def test_unreadable_and_undecodable_files(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        load_inventory(tmp_path / "missing.yaml")
    path = tmp_path / "latin1.yaml"
    path.write_bytes(GOOD.encode().replace(b"name: CS,", b"name: C\xe9S,"))
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert caught.value.problems[0].line == 9


def test_cycle_check_has_no_recursion_limit() -> None:
    life = Lifecycle("M", dt.date(2020, 1, 1), dt.date(2026, 1, 1), dt.date(2026, 1, 1))
    site = Site("national", Tier.NATIONAL, "n", "n", None)
    devices = {}
    for i in range(20_000):
        parents = (f"d{i - 1}",) if i else ()
        devices[f"d{i}"] = Device(f"d{i}", "national", Role.ROUTER, "r", f"127.{i // 65536}.{i // 256 % 256}.{i % 256}", parents, life)
    chain = Inventory({"national": site}, devices, {})
    assert validate(chain) == []
    devices["d0"] = dataclasses.replace(devices["d0"], parents=("d19999",))
    problems = validate(Inventory({"national": site}, devices, {}))
    assert len(problems) == 1 and problems[0].entry == "d0" and "parent cycle: d0 → d19999 → d19998" in problems[0].message
