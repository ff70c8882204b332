"""Maintenance windows, silences and reports: planned work keeps Otaru out of the alarms, the month's report says
what the network did (availability from the state history, incidents and MTTR) and prints to A4.

The arithmetic (availability, incidents) is tested on hand-made histories; the pages over a served console on a
small inventory, a real state engine and alerting, as in the other console tests.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import AsyncIterator

import pytest
import pytest_asyncio

from alerting.model import Alarm, AlarmStatus
from dashboards.auth import UserRole
from dashboards.reporting import month_period, summarise, time_in_states
from dashboards.reporting.availability import JST
from dashboards.server import ConsoleServer
from monitor.inventory.model import Inventory
from monitor.state.model import State, SubjectKind, Transition
from tests.browser import ARTIFACTS, chromium, screenshot, signed_in
from tests.otaru import OTARU, OTARU_LINES, otaru_cut_off
from tests.console_fixtures import PASSWORD, USERS, ConsoleClient, round_of_polls

on_the_console_loop = pytest.mark.asyncio(loop_scope="module")  # the served console's loop, for the page tests

NOVEMBER = month_period("2026-11")
HOUR = 3600.0
NOC = USERS[UserRole.NOC_OPERATOR]


def site(subject: str, old: State, new: State, at: float) -> Transition:
    return Transition(SubjectKind.SITE, subject, old, new, at)


# --- availability and incidents, by hand ----------------------------------------------------------------------------


def test_a_month_is_the_calendar_month_in_japan() -> None:
    assert NOVEMBER.start == dt.datetime(2026, 11, 1, tzinfo=JST).timestamp()
    assert NOVEMBER.end - NOVEMBER.start == 30 * 86_400 and NOVEMBER.label == "2026-11"
    with pytest.raises(ValueError):
        month_period("2026-13")


def test_planned_stops_count_neither_way_and_outages_count_against() -> None:
    """One hour down, two hours of maintenance, twelve hours outside the operating window, in a 30-day month."""
    start = NOVEMBER.start
    history = [site("otaru", State.UP, State.DOWN, start + 10 * HOUR), site("otaru", State.DOWN, State.UP, start + 11 * HOUR),
               site("otaru", State.UP, State.MAINTENANCE, start + 20 * HOUR),
               site("otaru", State.MAINTENANCE, State.UP, start + 22 * HOUR),
               site("otaru", State.UP, State.OFF_SCHEDULE, start + 100 * HOUR),
               site("otaru", State.OFF_SCHEDULE, State.UP, start + 112 * HOUR)]
    found = time_in_states(history, {"otaru": State.UP, "naha": State.UP}, ["otaru", "naha"], NOVEMBER,
                           now=NOVEMBER.end + 86_400)
    otaru = found["otaru"]
    assert otaru.outage == HOUR and otaru.seconds[State.MAINTENANCE] == 2 * HOUR
    assert otaru.ratio == pytest.approx(1 - HOUR / (30 * 24 * HOUR - 14 * HOUR))
    assert found["naha"].ratio == 1.0, "no transition in or after the month: the state it is in now, all month"


def test_the_state_at_the_start_is_the_old_side_of_the_first_change_after_it() -> None:
    start = NOVEMBER.start
    later = [site("otaru", State.DOWN, State.UP, start + 5 * HOUR),  # down since before the month began
             site("otaru", State.UP, State.DOWN, NOVEMBER.end + HOUR)]  # after the month: only says how it began
    otaru = time_in_states(later, {"otaru": State.DOWN}, ["otaru"], NOVEMBER, now=NOVEMBER.end + 2 * HOUR)["otaru"]
    assert otaru.outage == 5 * HOUR and otaru.serving == 30 * 24 * HOUR - 5 * HOUR


def test_a_month_not_over_is_counted_up_to_now() -> None:
    now = NOVEMBER.start + 48 * HOUR
    otaru = time_in_states([site("otaru", State.UP, State.UNREACHABLE, NOVEMBER.start + 47 * HOUR)],
                           {"otaru": State.UNREACHABLE}, ["otaru"], NOVEMBER, now)["otaru"]
    assert (otaru.serving, otaru.outage) == (47 * HOUR, HOUR)
    never = time_in_states([], {}, ["new-site"], NOVEMBER, now)["new-site"]
    assert never.ratio is None, "never observed: no availability rather than 0 % or 100 %"


def alarm(fingerprint: str, kind: str, started: float, *, resolved: float | None = None, acked: float | None = None,
          severity: str = "critical", source: str = "monitor", drill: bool = False,
          in_maintenance: bool = False) -> Alarm:
    return Alarm(fingerprint, {"kind": kind, "source": source, "tier": "municipality"}, fingerprint, severity, started,
                 AlarmStatus.RESOLVED if resolved else AlarmStatus.FIRING, acknowledged_at=acked, resolved_at=resolved,
                 in_maintenance=in_maintenance, drill=drill)


def test_incidents_are_real_failures_of_the_month_with_their_repair_times() -> None:
    t0 = NOVEMBER.start + 86_400
    alarms = [alarm("a", "site_unreachable", t0, resolved=t0 + 2 * HOUR, acked=t0 + 600),
              alarm("b", "device_down", t0 + HOUR, resolved=t0 + 2 * HOUR, acked=t0 + HOUR + 1200, severity="error"),
              alarm("c", "device_down", t0 + 3 * HOUR),  # still open: not in MTTR, longest so far
              alarm("drill", "device_down", t0, resolved=t0 + 1, drill=True),
              alarm("planned", "device_down", t0, in_maintenance=True),
              alarm("renewal", "lifecycle", t0), alarm("night", "off_schedule", t0),
              alarm("october", "device_down", NOVEMBER.start - 60),
              alarm("scan", "port_scan", t0, source="ids")]
    summary = summarise(alarms, NOVEMBER, now=NOVEMBER.end)
    assert summary.count == 3 and summary.resolved == 2
    assert summary.by_severity == {"critical": 2, "error": 1} and summary.by_kind == {"device_down": 2,
                                                                                      "site_unreachable": 1}
    assert summary.mttr == pytest.approx(1.5 * HOUR) and summary.mtta == pytest.approx(900)
    assert [a.fingerprint for a in summary.longest] == ["c", "a", "b"]
    assert (summary.detections, summary.detections_by_kind) == (1, {"port_scan": 1})


# --- the pages --------------------------------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def console(small_inventory: Inventory, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ConsoleServer]:
    async with otaru_cut_off(small_inventory, tmp_path_factory.mktemp("operations")) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def noc(console: ConsoleServer) -> AsyncIterator[ConsoleClient]:
    client = ConsoleClient(console.url)
    assert (await client.login(NOC)).status_code == 200
    yield client
    await client.close()


def _local(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, JST).strftime("%Y-%m-%dT%H:%M")


@on_the_console_loop
async def test_a_maintenance_window_puts_otaru_in_maintenance_and_is_kept_in_the_store(
        console: ConsoleServer, noc: ConsoleClient) -> None:
    ctx = console.app.state.console.ctx
    now = console.app.state.console.now()
    await noc.get("/maintenance")
    added = await noc.post("/maintenance/windows", {
        "scope_kind": "site", "scope": "小樽市", "start": _local(now - HOUR), "end": _local(now + HOUR),
        "recurrence": "", "until": "", "reason": "回線工事"})
    assert "保守作業 (小樽市) を登録しました" in added.text and 'data-window="active"' in added.text
    [window] = ctx.engine.maintenance.windows()
    assert (window.scope_kind.value, window.scope_id, window.author) == ("site", OTARU, NOC)
    assert [w["id"] for w in await ctx.store.load_maintenance()] == [window.id]
    round_of_polls(ctx, failing=OTARU_LINES)
    assert ctx.engine.states[(SubjectKind.SITE, OTARU)].state is State.MAINTENANCE

    await noc.get("/maintenance")
    removed = await noc.post(f"/maintenance/windows/{window.id}/delete")
    assert f"保守作業 {window.id} を削除しました" in removed.text
    assert ctx.engine.maintenance.windows() == [] and await ctx.store.load_maintenance() == []
    round_of_polls(ctx, failing=OTARU_LINES)
    assert ctx.engine.states[(SubjectKind.SITE, OTARU)].state is State.DOWN
    audit = await console.app.state.console.audit.entries(action="maintenance.")
    assert [(e.action, e.target) for e in reversed(audit)] == [("maintenance.create", window.id),
                                                              ("maintenance.delete", window.id)]


@on_the_console_loop
@pytest.mark.parametrize(("scope_kind", "scope", "start", "end"), [
    ("site", "どこにもない町", 0, HOUR),  # not in the inventory
    ("prefecture", "北海道", HOUR, 0),  # ends before it starts
])
async def test_a_window_that_cannot_be_is_refused_and_nothing_saved(console: ConsoleServer, noc: ConsoleClient,
                                                                   scope_kind: str, scope: str, start: float,
                                                                   end: float) -> None:
    now = console.app.state.console.now()
    await noc.get("/maintenance")
    refused = await noc.post("/maintenance/windows", {"scope_kind": scope_kind, "scope": scope,
                                                      "start": _local(now + start), "end": _local(now + end),
                                                      "reason": "x"})
    assert 'class="flash error"' in refused.text and "登録できませんでした" in refused.text
    assert console.app.state.console.ctx.engine.maintenance.windows() == []


@on_the_console_loop
async def test_a_silence_quiets_otaru_until_expired_by_hand(console: ConsoleServer, noc: ConsoleClient) -> None:
    alerting = console.app.state.console.ctx.alerting
    now = console.app.state.console.now()
    await noc.get("/maintenance")
    made = await noc.post("/maintenance/silences", {"matchers": f'site="{OTARU}"\nkind=site_unreachable',
                                                    "start": _local(now - 60), "end": _local(now + 2 * HOUR),
                                                    "reason": "通信事業者の工事"})
    [silence] = alerting.silences.active(now)
    assert f"サイレンス {silence.id} を作成しました" in made.text
    row = re.search(r'<tr class="silence-active">.*?</tr>', made.text, re.S).group()
    assert 'site=&#34;muni-01-002&#34;' in row and '<td class="num">1</td>' in row  # Otaru's alarm matches
    expired = await noc.post(f"/maintenance/silences/{silence.id}/expire")
    assert f"サイレンス {silence.id} を終了しました" in expired.text
    assert alerting.silences.silences[silence.id].expired_by == NOC and alerting.silences.active(now + 1) == []
    refused = await noc.post("/maintenance/silences", {"matchers": "site=~.*", "start": _local(now),
                                                       "end": _local(now + HOUR), "reason": "全部"})
    assert "全アラームが対象になります" in refused.text, "a silence that matches everything is refused"


@on_the_console_loop
async def test_maintenance_forms_need_the_token_and_the_noc(console: ConsoleServer, noc: ConsoleClient) -> None:
    await noc.get("/maintenance")
    forged = await noc.post("/maintenance/windows", {"scope_kind": "site", "scope": OTARU, "start": "2026-12-02T10:00",
                                                     "end": "2026-12-02T11:00", "reason": "x"}, token="forged")
    assert forged.status_code == 403 and console.app.state.console.ctx.engine.maintenance.windows() == []
    caller = ConsoleClient(console.url)
    await caller.login(USERS[UserRole.CALL_CENTER])
    assert (await caller.get("/maintenance")).status_code == 403
    assert (await caller.get("/reports/monthly")).status_code == 403
    await caller.close()


@on_the_console_loop
async def test_the_monthly_report_shows_otarus_outage_and_its_incident(console: ConsoleServer) -> None:
    auditor = ConsoleClient(console.url)
    await auditor.login(USERS[UserRole.AUDITOR])
    month = dt.datetime.fromtimestamp(console.app.state.console.now(), JST).strftime("%Y-%m")
    report = (await auditor.get("/reports/monthly", params={"month": month})).text
    assert "月次運用報告 令和" in report and "対象月は終わっていません" in report
    otaru = re.search(r"<tr><td>小樽市 <small.*?</tr>", report, re.S).group()
    assert re.search(r">99\.\d{3} %<", otaru), "down for seconds: under 100 %, never rounded up to it"
    assert "稼働率100%未満の拠点 (1拠点)" in report and "小樽市 全回線断" in report
    assert "IDS (不正侵入検知) はまだ監視に接続されていません" in report
    assert (await auditor.get("/reports/monthly", params={"month": "2026-13"})).status_code == 400
    await auditor.post("/lang", {"lang": "en", "next": f"/reports/monthly?month={month}"})
    english = (await auditor.get("/reports/monthly", params={"month": month})).text
    assert "Monthly operations report" in english and "Sites under 100 % (1)" in english
    await auditor.close()


@on_the_console_loop
async def test_the_renewal_plan_lists_what_is_due_first(noc: ConsoleClient) -> None:
    plan = (await noc.get("/reports/lifecycle", params={"as_of": "2026-12-02"})).text
    assert "基準日 2026-12-02" in plan and "至急 (期限超過・危殆化)" in plan
    urgent = (await noc.get("/reports/lifecycle", params={"as_of": "2026-12-02", "month": "now"})).text
    assert 'id="devices"' in urgent and "RSA 1024ビット鍵は危殆化対象" in urgent
    assert (await noc.get("/reports/lifecycle", params={"as_of": "yesterday"})).status_code == 400


@on_the_console_loop
async def test_the_monthly_report_prints_to_a4(console: ConsoleServer) -> None:
    async with chromium() as browser:
        page = await signed_in(browser, console.url, NOC, PASSWORD)
        await page.goto("/reports/monthly")
        await screenshot(page, "report_monthly")
        # The page size is the stylesheet's (@page size: A4), as in the browser's own "print to PDF".
        pdf = await page.pdf(prefer_css_page_size=True, print_background=True)
        (ARTIFACTS / "report_monthly.pdf").write_bytes(pdf)
        boxes = [[float(n) for n in box.split()] for box in re.findall(rb"/MediaBox\s*\[([\d.\s]+)\]", pdf)]
        assert boxes and all(box == pytest.approx([0, 0, 595.3, 841.9], abs=1.5) for box in boxes), \
            f"every page A4 portrait (595 × 842 pt): {boxes}"
        await page.emulate_media(media="print")
        assert not await page.is_visible(".topbar") and not await page.is_visible("#print-report")
        assert await page.is_visible("article.report")
