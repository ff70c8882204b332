"""保守作業時間帯: a device under maintenance through its own, its site's or its prefecture's window."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from monitor.maintenance import MaintenanceBook, MaintenanceError, MaintenanceWindow, Recurrence, ScopeKind

JST = ZoneInfo("Asia/Tokyo")


def jst(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return dt.datetime(year, month, day, hour, minute, tzinfo=JST).timestamp()


def window(id: str = "mw-1", scope_kind: str = "device", scope_id: str = "muni-01-002-cs1",
           start: float = jst(2026, 11, 25, 22), end: float = jst(2026, 11, 26, 2), **extra) -> MaintenanceWindow:
    extra.setdefault("author", "運用担当 佐藤")
    extra.setdefault("reason", "機器更改")
    return MaintenanceWindow(id, scope_kind, scope_id, start, end, created=jst(2026, 11, 20), **extra)


def test_one_off_window_covers_start_but_not_end(small_inventory):
    book = MaintenanceBook(small_inventory, [window()])
    assert book.active_for("muni-01-002-cs1", jst(2026, 11, 25, 21, 59)) is None
    assert book.active_for("muni-01-002-cs1", jst(2026, 11, 25, 22)).id == "mw-1"
    assert book.active_for("muni-01-002-cs1", jst(2026, 11, 26, 1, 59)).id == "mw-1"
    assert book.active_for("muni-01-002-cs1", jst(2026, 11, 26, 2)) is None
    assert book.active_for("muni-01-002-cs2", jst(2026, 11, 25, 23)) is None  # the other cluster node


def test_site_window_covers_every_device_of_the_municipality_only(small_inventory):
    book = MaintenanceBook(small_inventory, [window(scope_kind="site", scope_id="muni-01-002")])
    at = jst(2026, 11, 25, 23)
    otaru = [d.id for d in small_inventory.devices_by_site["muni-01-002"]]
    assert len(otaru) > 3
    assert all(book.active_for(device, at) is not None for device in otaru)
    assert book.active_for("muni-01-003-cs1", at) is None


def test_prefecture_window_covers_the_prefectures_devices_and_its_unit(small_inventory):
    book = MaintenanceBook(small_inventory, [window(scope_kind="prefecture", scope_id="47")])
    at = jst(2026, 11, 25, 23)
    assert book.active_for("muni-47-001-cs1", at) is not None
    assert book.active_for("aggregation-pu-47", at) is not None  # at the aggregation centre, serving Okinawa
    assert book.active_for("aggregation-pu-01", at) is None
    assert book.active_for("national-database-1", at) is None
    assert book.active_for("no-such-device", at) is None


def test_the_devices_own_window_is_reported_before_wider_ones(small_inventory):
    book = MaintenanceBook(small_inventory, [window("prefecture", "prefecture", "01"),
                                             window("own", "device", "muni-01-002-cs1")])
    assert book.active_for("muni-01-002-cs1", jst(2026, 11, 25, 23)).id == "own"
    assert [w.id for w in book.active_windows(jst(2026, 11, 25, 23))] == ["own", "prefecture"]


def test_daily_window_repeats_until_its_end_date(small_inventory):
    daily = window(start=jst(2026, 11, 25, 2), end=jst(2026, 11, 25, 3), recurrence="daily",
                   until=jst(2026, 11, 28))
    assert daily.recurrence is Recurrence.DAILY
    assert not daily.is_active(jst(2026, 11, 25, 1, 59))
    assert daily.occurrence_at(jst(2026, 11, 26, 2, 30)) == (jst(2026, 11, 26, 2), jst(2026, 11, 26, 3))
    assert not daily.is_active(jst(2026, 11, 26, 3))
    assert daily.is_active(jst(2026, 11, 27, 2))
    assert not daily.is_active(jst(2026, 11, 28, 2, 30))  # starts after until
    assert daily.final_end == jst(2026, 11, 27, 3)
    book = MaintenanceBook(small_inventory, [daily])
    assert book.expired(jst(2026, 11, 27, 2, 59)) == []
    assert book.expired(jst(2026, 11, 27, 3)) == [daily]


@pytest.mark.parametrize(("recurrence", "first", "until", "covered", "free", "final_end"), [
    # weekly, across midnight: Wednesday 23:00 – Thursday 01:00
    ("weekly", (jst(2026, 11, 25, 23), jst(2026, 11, 26, 1)), jst(2027, 1, 1),
     [jst(2026, 12, 2, 23, 30), jst(2026, 12, 3, 0, 30)], [jst(2026, 12, 3, 23, 30)], jst(2026, 12, 31, 1)),
    # monthly on the 31st: the last day of shorter months
    ("monthly", (jst(2026, 1, 31, 1), jst(2026, 1, 31, 2)), jst(2026, 6, 1),
     [jst(2026, 2, 28, 1, 30), jst(2026, 3, 31, 1, 30)], [jst(2026, 3, 28, 1, 30)], jst(2026, 5, 31, 2)),
])
def test_weekly_and_monthly_windows(recurrence, first, until, covered, free, final_end):
    repeating = window(start=first[0], end=first[1], recurrence=recurrence, until=until)
    assert all(repeating.is_active(ts) for ts in covered)
    assert not any(repeating.is_active(ts) for ts in free)
    assert repeating.final_end == final_end


def test_removed_window_no_longer_covers(small_inventory):
    book = MaintenanceBook(small_inventory, [window()])
    assert book.remove("mw-1").id == "mw-1"
    assert book.remove("mw-1") is None
    assert book.active_for("muni-01-002-cs1", jst(2026, 11, 25, 23)) is None
    assert book.windows() == []


@pytest.mark.parametrize(("changes", "message"), [
    ({"end": jst(2026, 11, 25, 21)}, "end must be after start"),
    ({"scope_kind": "building"}, "scope_kind must be one of device, site, prefecture"),
    ({"author": ""}, "author may not be empty"),
    ({"reason": "  "}, "reason may not be empty"),
    ({"recurrence": "yearly", "until": jst(2027, 1, 1)}, "recurrence must be one of"),
    ({"recurrence": "daily"}, "needs until"),
    ({"until": jst(2027, 1, 1)}, "until is only for a recurring window"),
    ({"recurrence": "daily", "end": jst(2026, 11, 26, 22), "until": jst(2027, 1, 1)}, "shorter than its period"),
    ({"start": "tonight"}, "start must be epoch seconds"),
])
def test_invalid_windows_are_refused_with_the_reason(changes, message):
    with pytest.raises(MaintenanceError, match=message):
        window(**changes)


def test_book_refuses_unknown_scopes_and_reused_ids(small_inventory):
    book = MaintenanceBook(small_inventory, [window()])
    with pytest.raises(MaintenanceError, match="id already in use"):
        book.add(window())
    for kind, scope in (("device", "muni-99-001-cs1"), ("site", "muni-13-001"), ("prefecture", "13")):
        with pytest.raises(MaintenanceError, match="in the inventory"):
            book.add(window("mw-2", kind, scope))


def test_json_round_trip_keeps_every_field():
    original = window(recurrence="weekly", until=jst(2027, 1, 1))
    data = json.loads(json.dumps(original.to_json()))
    assert data["scope_kind"] == "device" and data["recurrence"] == "weekly"
    restored = MaintenanceWindow.from_json(data)
    assert restored == original
    assert restored.scope_kind is ScopeKind.DEVICE
    del data["author"]
    with pytest.raises(MaintenanceError, match="author"):
        MaintenanceWindow.from_json(data)
