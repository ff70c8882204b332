"""Lifecycle checks and the renewal plan: support deadlines, certificate expiry, 暗号危殆化, live facts first."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

import pytest

from monitor.config import ConfigError
from monitor.inventory.model import CryptoProfile, Device, Inventory, Lifecycle
from monitor.lifecycle import LifecycleChecker, LifecycleFinding, LifecycleSettings, start_of_day, to_conditions
from monitor.lifecycle_report import lifecycle_command, render_text, renewal_plan
from monitor.terminal import display_width
from monitor.state.model import ConditionKind

TODAY = dt.date(2026, 4, 1)
NOW = start_of_day(TODAY)
DAY = 86_400
STRONG = CryptoProfile("rsa", 2048, "sha256")
CS = "muni-01-001-cs1"
CS2 = "muni-01-001-cs2"
ROUTER = "muni-01-001-rt1"
OKINAWA_FW = "muni-47-001-fw"


def days(n: int) -> dt.date:
    return TODAY + dt.timedelta(days=n)


def healthy(device: Device) -> Lifecycle:
    """Renewed last year: support for five more years, a strong certificate valid for two."""
    tls = device.role.serves_tls
    return Lifecycle("MODEL", days(-365), days(5 * 365), days(5 * 365), STRONG if tls else None,
                     days(730) if tls else None)


@pytest.fixture(scope="module")
def fleet(small_inventory: Inventory) -> Inventory:
    """The small network with every device healthy: only what a test changes can be found."""
    devices = {d.id: replace(d, lifecycle=healthy(d)) for d in small_inventory.devices.values()}
    return replace(small_inventory, devices=devices)


def with_lifecycle(inventory: Inventory, device_id: str, **changes: object) -> Inventory:
    device = inventory.devices[device_id]
    devices = {**inventory.devices, device_id: replace(device, lifecycle=replace(device.lifecycle, **changes))}
    return replace(inventory, devices=devices)


def end_of(day: dt.date) -> float:
    """A certificate's notAfter on ``day``, as X.509 states it (UTC) and the simulated network issues it."""
    return dt.datetime.combine(day, dt.time(23, 59, 59), dt.timezone.utc).timestamp()


def kinds(findings: list[LifecycleFinding]) -> dict[str, LifecycleFinding]:
    return {f.kind: f for f in findings}


def tls_values(not_after: float, *, key: tuple[str, int] = ("rsa", 2048), digest: str = "sha256") -> dict[str, object]:
    """A ``tls`` sample's fields as collectors/service.py emits them."""
    return {"ok": True, "connect_ms": 0.4, "days_left": round((not_after - NOW) / DAY, 2), "key_algorithm": key[0],
            "key_size": key[1], "signature_hash": digest, "weak": False, "not_after": not_after}


# -- a healthy fleet ------------------------------------------------------------------------


def test_a_healthy_fleet_has_nothing_to_renew(fleet: Inventory) -> None:
    checker = LifecycleChecker(fleet)
    assert checker.findings(TODAY, NOW) == []
    assert checker.findings_for(CS, TODAY) == []
    assert "更改・更新が必要な機器はありません" in lifecycle_command(fleet, False, TODAY)


# -- support deadlines ----------------------------------------------------------------------


@pytest.mark.parametrize(("left", "severity"), [
    (366, None), (365, "warning"), (91, "warning"), (90, "critical"), (0, "critical"), (-1, "critical"),
])
def test_hardware_support_end_warns_a_year_ahead_and_is_critical_from_90_days(
        fleet: Inventory, left: int, severity: str | None) -> None:
    inventory = with_lifecycle(fleet, ROUTER, hw_support_end=days(left))
    found = kinds(LifecycleChecker(inventory).findings_for(ROUTER, TODAY))
    if severity is None:
        assert found == {}
        return
    finding = found["hw_support_end"]
    assert (finding.severity, finding.due, finding.source) == (severity, days(left), "inventory")
    assert finding.fingerprint == f"lifecycle:{ROUTER}:hw_support_end"
    assert days(left).isoformat() in finding.summary


def test_support_summaries_say_how_many_days_are_left_or_have_passed(fleet: Inventory) -> None:
    inventory = with_lifecycle(fleet, ROUTER, hw_support_end=days(-40), sw_support_end=days(200))
    found = kinds(LifecycleChecker(inventory).findings_for(ROUTER, TODAY))
    assert found["hw_support_end"].summary == "HWサポート終了済み (2026-02-20, 40日経過)"
    assert found["sw_support_end"].summary == "SWサポート終了まで残り200日 (2026-10-18)"
    assert found["sw_support_end"].severity == "warning"


def test_thresholds_come_from_the_settings(fleet: Inventory) -> None:
    inventory = with_lifecycle(fleet, CS, sw_support_end=days(500), crypto=CryptoProfile("rsa", 2048, "sha256"))
    settings = LifecycleSettings(warn_days_support=730, critical_days_support=600, min_rsa_bits=3072)
    found = kinds(LifecycleChecker(inventory, settings).findings_for(CS, TODAY))
    assert found["sw_support_end"].severity == "critical"
    assert found["weak_key"].summary == "RSA 2048ビット鍵は危殆化対象 (3072ビット以上が必要)"


# -- certificates from the inventory --------------------------------------------------------


@pytest.mark.parametrize(("left", "kind", "severity"), [
    (61, None, None), (60, "cert_expiry", "warning"), (15, "cert_expiry", "warning"),
    (14, "cert_expiry", "critical"), (0, "cert_expiry", "critical"), (-1, "cert_expired", "critical"),
])
def test_certificate_expiry_thresholds(fleet: Inventory, left: int, kind: str | None, severity: str | None) -> None:
    inventory = with_lifecycle(fleet, CS, cert_not_after=days(left))
    found = LifecycleChecker(inventory).findings_for(CS, TODAY)
    assert [(f.kind, f.severity, f.due) for f in found] == ([] if kind is None else [(kind, severity, days(left))])


def test_certificate_summaries_carry_the_days_and_the_date(fleet: Inventory) -> None:
    soon = with_lifecycle(fleet, CS, cert_not_after=days(12))
    assert LifecycleChecker(soon).findings_for(CS, TODAY)[0].summary == "証明書の有効期限まで残り12日 (2026-04-13)"
    gone = with_lifecycle(fleet, CS, cert_not_after=days(-3))
    assert LifecycleChecker(gone).findings_for(CS, TODAY)[0].summary == "証明書の有効期限切れ (2026-03-29, 3日経過)"


@pytest.mark.parametrize(("crypto", "expected"), [
    (CryptoProfile("rsa", 1024, "sha256"), {"weak_key": "RSA 1024ビット鍵は危殆化対象 (2048ビット以上が必要)"}),
    (CryptoProfile("rsa", 2048, "sha256"), {}),
    (CryptoProfile("ecdsa", 224, "sha256"), {"weak_key": "ECDSA 224ビット鍵は危殆化対象 (256ビット以上が必要)"}),
    (CryptoProfile("ecdsa", 256, "sha384"), {}),
    (CryptoProfile("rsa", 2048, "sha1"), {"weak_signature": "SHA-1署名は危殆化対象 (使用不可: MD5, SHA-1)"}),
    (CryptoProfile("rsa", 2048, "md5"), {"weak_signature": "MD5署名は危殆化対象 (使用不可: MD5, SHA-1)"}),
])
def test_compromised_crypto_from_the_inventory(fleet: Inventory, crypto: CryptoProfile,
                                               expected: dict[str, str]) -> None:
    found = LifecycleChecker(with_lifecycle(fleet, CS, crypto=crypto)).findings_for(CS, TODAY)
    assert {f.kind: f.summary for f in found} == expected
    assert all(f.severity == "warning" and f.due is None and f.source == "inventory" for f in found)


# -- certificates read live -----------------------------------------------------------------


def test_a_renewed_certificate_read_live_clears_what_the_inventory_still_says(fleet: Inventory) -> None:
    inventory = with_lifecycle(fleet, CS, crypto=CryptoProfile("rsa", 1024, "sha1"), cert_not_after=days(5))
    checker = LifecycleChecker(inventory)
    assert set(kinds(checker.findings_for(CS, TODAY))) == {"weak_key", "weak_signature", "cert_expiry"}
    checker.observe_tls(CS, tls_values(end_of(days(400))), NOW - 60)
    assert checker.findings_for(CS, TODAY) == []


def test_a_weak_expiring_certificate_read_live_overrides_a_healthy_inventory(fleet: Inventory) -> None:
    checker = LifecycleChecker(fleet)
    checker.observe_tls(CS, tls_values(end_of(days(10)), key=("rsa", 1024), digest="sha1"), NOW)
    found = kinds(checker.findings_for(CS, TODAY, NOW))
    assert set(found) == {"weak_key", "weak_signature", "cert_expiry"}
    assert all(f.source == "live" for f in found.values())
    assert (found["cert_expiry"].severity, found["cert_expiry"].due) == ("critical", days(10))
    assert "残り10日" in found["cert_expiry"].summary
    assert checker.findings_for(CS2, TODAY, NOW) == []  # only that device


def test_a_live_certificate_expires_at_its_instant_not_at_the_end_of_the_day(fleet: Inventory) -> None:
    checker = LifecycleChecker(fleet)
    instant = end_of(TODAY)  # 08:59:59 JST the next day
    checker.observe_tls(CS, tls_values(instant), NOW)
    still = kinds(checker.findings_for(CS, TODAY + dt.timedelta(days=1), instant - 60))["cert_expiry"]
    assert still.summary == "証明書の有効期限まで残り0日 (2026-04-01)" and still.severity == "critical"
    expired = kinds(checker.findings_for(CS, TODAY + dt.timedelta(days=1), instant + 60))
    assert set(expired) == {"cert_expired"} and expired["cert_expired"].severity == "critical"


def test_a_failed_check_or_a_late_older_sample_keeps_the_last_certificate_seen(fleet: Inventory) -> None:
    checker = LifecycleChecker(fleet)
    checker.observe_tls(CS, tls_values(end_of(days(5))), NOW)
    checker.observe_tls(CS, {"ok": False, "error": "timeout"}, NOW + 60)
    checker.observe_tls(CS, tls_values(end_of(days(500))), NOW - 300)  # read before the one above, delivered after
    assert [f.due for f in checker.findings_for(CS, TODAY, NOW)] == [days(5)]


def test_days_left_is_enough_when_a_sample_has_no_not_after(fleet: Inventory) -> None:
    checker = LifecycleChecker(fleet)
    values = {k: v for k, v in tls_values(end_of(days(20))).items() if k != "not_after"}
    checker.observe_tls(CS, values, NOW)
    assert [(f.kind, f.due) for f in checker.findings_for(CS, TODAY, NOW)] == [("cert_expiry", days(20))]


def test_malformed_facts_from_the_bus_are_ignored(fleet: Inventory) -> None:
    checker = LifecycleChecker(fleet)
    checker.observe_tls(CS, {**tls_values(end_of(days(1))), "key_size": True}, NOW)
    checker.observe_tls(CS, {**tls_values(1e20), "days_left": 1e15}, NOW)
    checker.observe_tls(CS, {**tls_values(end_of(days(1))), "key_algorithm": None}, NOW)
    assert checker.findings_for(CS, TODAY, NOW) == []


def test_facts_for_a_device_outside_the_inventory_are_ignored(fleet: Inventory) -> None:
    checker = LifecycleChecker(fleet)
    checker.observe_tls("muni-99-999-cs1", tls_values(end_of(days(-1))), NOW)
    assert checker.findings(TODAY, NOW) == []


# -- the fleet and conditions ---------------------------------------------------------------


def test_fleet_findings_put_the_most_severe_first(fleet: Inventory) -> None:
    inventory = with_lifecycle(fleet, ROUTER, hw_support_end=days(200))
    inventory = with_lifecycle(inventory, CS, cert_not_after=days(-2))
    checker = LifecycleChecker(inventory)
    checker.observe_tls(CS2, tls_values(end_of(days(30)), key=("rsa", 1024)), NOW)
    found = checker.findings(TODAY, NOW)
    assert [(f.device, f.kind) for f in found] == [
        (CS, "cert_expired"), (CS2, "weak_key"), (CS2, "cert_expiry"), (ROUTER, "hw_support_end")]


def test_findings_become_lifecycle_conditions(fleet: Inventory) -> None:
    inventory = with_lifecycle(fleet, CS, cert_not_after=days(12))
    (condition,) = to_conditions(LifecycleChecker(inventory).findings(TODAY), NOW)
    assert condition.kind is ConditionKind.LIFECYCLE
    assert (condition.fingerprint, condition.subject, condition.severity) == (
        f"lifecycle:{CS}:cert_expiry", CS, "critical")
    assert condition.started == NOW and "残り12日" in condition.summary
    assert condition.details == {"finding": "cert_expiry", "source": "inventory", "due": "2026-04-13"}


def test_settings_are_checked_with_the_key_named() -> None:
    with pytest.raises(ConfigError, match=r"lifecycle\.critical_days_cert"):
        LifecycleSettings(warn_days_cert=10, critical_days_cert=20).check("lifecycle")
    with pytest.raises(ConfigError, match=r"lifecycle\.forbidden_hashes"):
        LifecycleSettings(forbidden_hashes=("SHA1",)).check("lifecycle")
    LifecycleSettings().check("lifecycle")


# -- the renewal plan -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def plan_inventory(fleet: Inventory) -> Inventory:
    inventory = with_lifecycle(fleet, ROUTER, hw_support_end=days(39))  # 2026-05-10
    inventory = with_lifecycle(inventory, CS, cert_not_after=days(49))  # 2026-05-20
    inventory = with_lifecycle(inventory, OKINAWA_FW, sw_support_end=days(91))  # 2026-07-01
    inventory = with_lifecycle(inventory, CS2, hw_support_end=days(-10), crypto=CryptoProfile("rsa", 1024, "sha256"))
    return inventory


def test_the_plan_groups_what_is_due_by_month_with_overdue_and_compromised_first(plan_inventory: Inventory) -> None:
    plan = renewal_plan(LifecycleChecker(plan_inventory).findings(TODAY), plan_inventory, today=TODAY)
    assert [(r.month, r.due_by) for r in plan.rows] == [
        (None, None), ("2026-05", dt.date(2026, 5, 31)), ("2026-07", dt.date(2026, 7, 31))]
    now, may, july = plan.rows
    assert [e.device for e in now.entries] == [CS2]
    assert now.by_kind == {"hw_support_end": 1, "weak_key": 1}
    assert [e.device for e in may.entries] == [ROUTER, CS]  # soonest first
    assert may.by_kind == {"hw_support_end": 1, "cert_expiry": 1}
    assert may.by_role == {"cs": 1, "router": 1} and may.by_prefecture == {"01": 2}
    assert july.by_prefecture == {"47": 1} and july.by_role == {"fw": 1}
    assert (plan.device_count, plan.finding_count) == (4, 5)


def test_the_plan_as_json(plan_inventory: Inventory) -> None:
    data = json.loads(lifecycle_command(plan_inventory, True, TODAY))
    assert (data["as_of"], data["devices"], data["findings"]) == ("2026-04-01", 4, 5)
    may = data["rows"][1]
    assert may["month"] == "2026-05" and may["due_by"] == "2026-05-31" and may["devices"] == 2
    assert may["by_severity"] == {"critical": 1, "warning": 1}
    entry = may["entries"][1]
    assert entry["device"] == CS and entry["prefecture_name"] == "北海道" and entry["due"] == "2026-05-20"
    assert entry["findings"] == [{"kind": "cert_expiry", "severity": "warning", "due": "2026-05-20",
                                  "source": "inventory", "summary": "証明書の有効期限まで残り49日 (2026-05-20)",
                                  "fingerprint": f"lifecycle:{CS}:cert_expiry"}]
    assert data["rows"][0]["month"] is None and data["rows"][0]["entries"][0]["due"] == "2026-03-22"


def test_the_plan_as_text_has_japanese_headings_and_aligned_columns(plan_inventory: Inventory) -> None:
    plan = renewal_plan(LifecycleChecker(plan_inventory).findings(TODAY), plan_inventory, today=TODAY)
    text = render_text(plan)
    assert "基準日 2026-04-01" in text and "対象 4台 / 5件" in text
    assert "■ 至急 (期限超過・危殆化)  1台  重大 1" in text
    assert "■ 2026-05 (2026-05-31まで)  2台  重大 1  警告 1" in text
    assert "種別  HWサポート終了 1  証明書期限間近 1" in text and "沖縄県 1" in text
    may = text.split("■ 2026-05")[1].split("■")[0].splitlines()
    table = [line for line in may if line.startswith("  機器") or line.startswith("  muni-")]
    assert len(table) == 3
    # The due date starts at the same terminal column on every line, Japanese prefecture names included.
    columns = {display_width(line[:line.index("期限" if "機器" in line else "2026-")]) for line in table}
    assert len(columns) == 1


def test_the_text_lists_a_limited_number_of_devices_per_month(plan_inventory: Inventory) -> None:
    plan = renewal_plan(LifecycleChecker(plan_inventory).findings(TODAY), plan_inventory, today=TODAY)
    text = render_text(plan, devices_per_row=1)
    assert "… 他 1台 (--json で全件)" in text and CS not in text.split("■ 2026-05")[1].split("■")[0]
