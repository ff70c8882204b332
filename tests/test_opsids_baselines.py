"""Baseline-judged detections: an operator's and an agency's own history sets the bar; quiet gaps are allowed."""

from __future__ import annotations

import datetime as dt
import json

from ids.operations import AlertType, OperationsIds, OpsIdsSettings
from ids.operations.alerts import JST
from monitor.inventory import default_inventory

SITE = "muni-13-001"
KEY = OpsIdsSettings(pseudonym_key_id="t", pseudonym_keys={"t": "test-key-0123456789"})
MONDAY = dt.datetime(2026, 11, 2, 10, 0, tzinfo=JST)


def lookups(at: dt.datetime, n: int, operator: str = f"{SITE}-op001") -> list[str]:
    """``n`` look-ups spread over the hour from ``at``, random-looking distinct codes."""
    return [json.dumps({"ts": (at + dt.timedelta(seconds=i * 3500 / n)).isoformat(), "organisation": SITE,
                        "terminal": f"{SITE}-term01", "operator": operator, "action": "lookup",
                        "purpose": "M01", "resident": f"{(i * 7_919_111 + n * 104_729) % 10**11:011d}",
                        "resident_municipality": SITE}) for i in range(n)]


def provision(at: dt.datetime, count: int, agency: str = "agency-05") -> str:
    return json.dumps({"ts": at.isoformat(), "organisation": agency, "terminal": f"{agency}-server",
                       "operator": f"{agency}-system", "action": "provision", "purpose": "A05",
                       "resident_count": count})


def alerts_of(lines: list[str], kind: AlertType) -> list:
    return [a for a in OperationsIds(default_inventory(), KEY).feed(lines) if a.type is kind]


def busy_operator_history() -> list[str]:
    """Four Mondays at 10:00 with 30 look-ups each: a busy counter clerk in a big city."""
    return [line for week in range(4) for line in lookups(MONDAY + dt.timedelta(weeks=week), 30)]


def test_a_busy_operator_is_judged_by_their_own_hour_of_week_baseline():
    fifth = MONDAY + dt.timedelta(weeks=4)
    assert alerts_of(busy_operator_history() + lookups(fifth, 110), AlertType.BULK_LOOKUP) == []
    [alert] = alerts_of(busy_operator_history() + lookups(fifth, 130), AlertType.BULK_LOOKUP)
    assert alert.evidence["operator_baseline"] == 30 and alert.evidence["threshold"] == 120
    assert alert.evidence["lookups_this_hour"] == 121


def test_without_history_the_floor_judges():
    assert alerts_of(lookups(MONDAY, 40), AlertType.BULK_LOOKUP) == []
    [alert] = alerts_of(lookups(MONDAY, 41), AlertType.BULK_LOOKUP)
    assert alert.evidence == {"lookups_this_hour": 41, "threshold": 40, "operator_baseline": None,
                              "organisation_baseline": None}


def test_a_batch_far_above_the_agencys_usual_one_is_an_overpull():
    months = [MONDAY.replace(month=m, day=5) for m in (6, 7, 8, 9)]
    usual = [provision(at, 30_000 + 500 * i) for i, at in enumerate(months[:3])]
    assert alerts_of([*usual, provision(months[3], 60_000)], AlertType.AGENCY_OVERPULL) == []
    [alert] = alerts_of([*usual, provision(months[3], 120_000)], AlertType.AGENCY_OVERPULL)
    assert alert.evidence["median_batch"] == 30_500 and "median batch" in alert.rule


def test_a_fortnight_away_is_not_dormant_but_four_weeks_are():
    back_after_two = lookups(MONDAY, 3) + lookups(MONDAY + dt.timedelta(days=14), 3)
    assert alerts_of(back_after_two, AlertType.DORMANT_ACCOUNT) == []
    [alert] = alerts_of(lookups(MONDAY, 3) + lookups(MONDAY + dt.timedelta(days=28), 3), AlertType.DORMANT_ACCOUNT)
    assert 27.9 < alert.evidence["idle_days"] < 28.1
