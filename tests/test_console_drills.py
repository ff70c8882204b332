"""The console's drill page: a drill controller starts a drill, watches it, pauses, resumes, aborts, reads the report.

Over a served console on the small inventory (Hokkaido and Okinawa, 6 municipalities each) with a real SQLite
store, the real report cascade over the embedded mail sink, and — for live drills — an in-process simulated
network behind its real control channel (as the main job's simulation child offers it). Rehearsals (simulated
participants) get their own cascade and mail sink in the drill's report directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Callable

import pytest
from markupsafe import escape

from alerting.cascade import Cascade, open_cascade
from alerting.notify.mailsink import MailSink
from dashboards.auth import UserRole
from dashboards.drill_control import DrillControl
from dashboards.server import ConsoleServer
from drills import EntryKind
from monitor.inventory.model import Inventory
from simnet.control import ControlServer
from simnet.network import SimNetwork
from tests.browser import chromium, screenshot
from tests.browser import signed_in as signed_in_browser
from tests.console_fixtures import PASSWORD, USERS, ConsoleClient, served
from tests.test_cascade_fixtures import cascade_settings

DRILL = USERS[UserRole.DRILL_CONTROLLER]
XSS = '<script>alert("drill")</script><img src=x onerror=alert(2)>'

ISOLATION = """\
title: 北海道の処理装置の切断（小規模）
mode: live
window: {start: 2021-12-08T09:30:00+09:00, end: 2021-12-08T11:30:00+09:00}
participants:
  - {role: noc, delay: {distribution: fixed, median: 2m}}
  - {role: prefecture, delay: {distribution: fixed, median: 3m}}
timeline:
  - {at: 0m, id: cut, fault: {kind: isolate, target: aggregation-pu-01}}
  - {at: 100m, id: back, clear: cut}
expect:
  - {id: detect, action: detect, by: noc, after: cut, within: 5m}
"""

CALL = f"""\
title: 電話連絡の訓練
mode: tabletop
window: {{start: 2026-06-16T10:00:00+09:00, end: 2026-06-16T10:30:00+09:00}}
participants:
  - {{role: noc, delay: {{distribution: fixed, median: 1m}}}}
  - {{role: prefecture, delay: {{distribution: fixed, median: 2m}}}}
  - {{role: municipality, delay: {{distribution: fixed, median: 4m}}}}
timeline:
  - at: 0m
    id: call
    message: {{to: noc, text: '{XSS}'}}
  - {{at: 1m, id: first, report: {{step: 初報, body: 訓練の初報です。}}}}
expect:
  - {{id: open, action: open_incident, by: noc, after: call, within: 5m}}
  - {{id: all, confirm: first, within: 20m}}
"""


@dataclass
class Setup:
    console: ConsoleServer
    cascade: Cascade
    sink: MailSink
    network: SimNetwork
    reports: Path

    @property
    def control(self) -> DrillControl:
        control = self.console.app.state.console.ctx.extra["drill_control"]
        assert isinstance(control, DrillControl)
        return control


@pytest.fixture
async def setup(small_inventory: Inventory, tmp_path: Path) -> AsyncIterator[Setup]:
    scenarios = {}
    for name, text in (("isolation", ISOLATION), ("call", CALL)):
        scenarios[name] = tmp_path / f"{name}.yml"
        scenarios[name].write_text(text, encoding="utf-8")
    network = SimNetwork(small_inventory)
    simulation = ControlServer(network, "127.0.0.1", 0)
    await simulation.start()
    async with MailSink(tmp_path / "mail") as sink, served(small_inventory, tmp_path) as console:
        ctx = console.app.state.console.ctx
        cascade = await open_cascade(ctx.store, small_inventory, cascade_settings(tmp_path, sink.port, mqtt=False))
        ctx.extra.update({"cascade": cascade, "simnet_control": (simulation.host, simulation.port),
                          "drill_reports": tmp_path / "drills", "drill_scenarios": scenarios})
        ctx.extra["drill_control"] = DrillControl.from_context(ctx, pdf=False)  # as the main job makes it
        try:
            yield Setup(console, cascade, sink, network, tmp_path / "drills")
        finally:
            await ctx.extra["drill_control"].close()
            await cascade.close()
            await simulation.stop()


@contextlib.asynccontextmanager
async def signed_in(setup: Setup, role: UserRole = UserRole.DRILL_CONTROLLER) -> AsyncIterator[ConsoleClient]:
    client = ConsoleClient(setup.console.url)
    await client.login(USERS[role])
    try:
        yield client
    finally:
        await client.close()


async def start(client: ConsoleClient, scenario: str, *, mode: str = "tabletop", participants: str = "simulated",
                speed: str = "inf") -> str:
    await client.get("/drills")
    page = await client.post("/drills/start", {"scenario": scenario, "mode": mode, "participants": participants,
                                               "speed": speed})
    assert page.status_code == 200
    return page.text


async def eventually(condition: Callable[[], bool], what: str) -> None:
    """Let the drill task (on this event loop) work until the condition holds (bounded, not timed)."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def panel_status(page: str) -> str:
    found = re.search(r'class="panel-body" data-status="([a-z]+)"', page)
    assert found, page[:2000]
    return found.group(1)


async def test_a_tabletop_rehearsal_runs_to_its_end_and_its_report_is_served(setup: Setup) -> None:
    async with signed_in(setup) as drill:
        listing = (await drill.get("/drills")).text
        assert "準備中" not in listing  # the real page, not the placeholder
        assert 'class="tag drill">訓練<' in listing and "【訓練】" in listing
        row = re.search(r'<tr data-scenario="annual-virus-isolation">(.*?)</tr>', listing, re.S)
        assert row and "実動訓練" in row.group(1) and "2時間" in row.group(1)
        assert "机上訓練" in re.search(r'<tr data-scenario="operator-misuse">(.*?)</tr>', listing, re.S).group(1)

        page = await start(drill, "annual-virus-isolation")
        assert "訓練「都道府県サーバ集約センターにおけるウイルス疑義（処理装置Xの切断）」を開始しました" in page
        run = setup.control.current
        assert run is not None
        await eventually(lambda: run.done, "the drill ends")

        panel = (await drill.get("/drills/panel")).text
        assert panel_status(panel) == "finished"
        assert [html.unescape(r) for r in re.findall(r'data-report="[^"]+">\s*<td>([^<]+)</td>', panel)] == [
            "初報", "第2報", "終報"]  # a rehearsal's own cascade: counts here, no /cascade link
        assert "/cascade/" not in panel
        states = re.findall(r'data-expectation="[^"]+" data-state="([a-z]+)"', panel)
        assert states and "pending" not in states  # the drill is over: every expectation is met or missed
        assert "訓練終了" in panel and "（机上）isolate → aggregation-pu-13" in panel

        page = (await drill.get("/drills")).text
        assert f'/drills/reports/{run.id}/report.html' in page and "訓練結果" in page
        assert f'<tr data-run="{run.id}">' in page  # and among the earlier drills
        report = await drill.get(f"/drills/reports/{run.id}/report.html")
        assert report.status_code == 200 and "訓練" in report.text
        assert "script-src" not in report.headers["content-security-policy"]  # default-src 'none': no script
        assert (await drill.get(f"/drills/reports/{run.id}/metrics.json")).json()["status"] == "finished"
        assert (await drill.get(f"/drills/reports/{run.id}/..%2Fjukimon.db")).status_code == 404
        assert (await drill.get("/drills/reports/..%2F..%2Fetc/report.html")).status_code == 404

    assert setup.sink.messages() == []  # a rehearsal never mails the real recipients
    started = await setup.console.app.state.console.audit.entries(action="drill.start")
    assert [(e.target, e.result, e.user) for e in started] == [(run.id, "ok", DRILL)]


async def test_pause_resume_and_abort_of_a_live_drill_leave_no_fault_behind(setup: Setup) -> None:
    async with signed_in(setup) as drill:
        await start(drill, "isolation", mode="live", speed="1")
        run = setup.control.current
        assert run is not None
        await eventually(lambda: bool(setup.network.faults()), "the fault is injected")
        assert [f.target for f in setup.network.faults()] == ["aggregation-pu-01"]

        paused = await drill.post("/drills/pause")
        assert "訓練を一時停止しました" in paused.text and panel_status(paused.text) == "paused"
        busy = await start(drill, "call")
        assert "別の訓練が実施中です" in busy and setup.control.current is run
        resumed = await drill.post("/drills/resume")
        assert "訓練を再開しました" in resumed.text and panel_status(resumed.text) == "running"

        aborted = await drill.post("/drills/abort")
        assert "訓練を中止しました" in aborted.text
        await eventually(lambda: run.done, "the aborted drill ends")
        assert setup.network.faults() == []
        assert run.runner is not None
        clears = [(e.subject, e.data["reason"]) for e in run.runner.timeline.of(EntryKind.CLEAR)]
        assert clears == [("cut", "abort")]
        panel = (await drill.get("/drills/panel")).text
        assert panel_status(panel) == "aborted" and "一時停止" in panel and "再開" in panel and "訓練中止" in panel
        assert (await drill.post("/drills/abort")).text.count("実施中の訓練はありません") == 1

    actions = await setup.console.app.state.console.audit.entries()
    assert [e.action for e in reversed(actions) if e.action.startswith("drill.")] == [
        "drill.start", "drill.pause", "drill.start", "drill.resume", "drill.abort", "drill.abort"]
    assert [e.result for e in reversed(actions) if e.action.startswith("drill.")] == [
        "ok", "ok", "failed", "ok", "ok", "failed"]


async def test_with_real_participants_the_running_cascade_sends_in_real_time_and_actions_are_recorded(
        setup: Setup) -> None:
    async with signed_in(setup) as drill:
        refused = await start(drill, "call", participants="real", speed="60")
        assert "実参加者の訓練は等速 (実時間) でのみ実施できます" in refused and setup.control.current is None

        await start(drill, "call", participants="real", speed="1")
        run = setup.control.current
        assert run is not None and run.shared_cascade
        recorded = await drill.post("/drills/action", {"action": "open_incident"})
        assert "「open_incident」の実施を記録しました" in recorded.text
        assert 'data-expectation="open" data-state="met"' in recorded.text
        unknown = await drill.post("/drills/action", {"action": "delete_everything"})
        assert "記録できません" in unknown.text

        await drill.post("/drills/abort")
        await eventually(lambda: run.done, "the aborted drill ends")
    assert run.metrics is not None and run.metrics.status == "aborted"
    assert (setup.reports / run.id / "report.html").is_file()


async def test_a_call_centre_user_cannot_see_or_start_a_drill(setup: Setup) -> None:
    async with signed_in(setup, UserRole.CALL_CENTER) as call_centre:
        assert (await call_centre.get("/drills")).status_code == 403
        await call_centre.get("/")  # a page with the session's token
        refused = await call_centre.post("/drills/start", {"scenario": "call", "mode": "tabletop",
                                                           "participants": "simulated", "speed": "inf"})
        assert refused.status_code == 403
    assert setup.control.current is None
    denied = await setup.console.app.state.console.audit.entries(action="access.denied")
    assert {e.target for e in denied} == {"/drills", "/drills/start"}


async def test_a_start_without_the_csrf_token_is_refused(setup: Setup) -> None:
    async with signed_in(setup) as drill:
        await drill.get("/drills")
        refused = await drill.post("/drills/start", {"scenario": "call", "mode": "tabletop",
                                                     "participants": "simulated", "speed": "inf"}, token="")
        assert refused.status_code == 403
        assert (await drill.get("/drills/panel")).status_code == 204  # no drill: no panel
    assert setup.control.current is None
    assert [e.target for e in await setup.console.app.state.console.audit.entries(action="csrf.refused")] == [
        "/drills/start"]


async def test_markup_in_a_scenario_message_is_shown_as_text(setup: Setup) -> None:
    async with signed_in(setup) as drill:
        await start(drill, "call")
        run = setup.control.current
        assert run is not None
        await eventually(lambda: run.done, "the drill ends")
        page = (await drill.get("/drills")).text
        assert XSS not in page and "<script>alert" not in page and "<img src=x" not in page
        assert str(escape(XSS)) in page  # on the timeline, as the text it is
        report = (await drill.get(f"/drills/reports/{run.id}/report.html")).text
        assert "<script>alert" not in report and "<img src=x" not in report


async def test_without_the_simulation_or_a_cascade_only_tabletop_rehearsals_are_offered(
        small_inventory: Inventory, tmp_path: Path) -> None:
    async with served(small_inventory, tmp_path) as console:  # nothing in ctx.extra: the page makes its controller
        drill = ConsoleClient(console.url)
        await drill.login(DRILL)
        page = (await drill.get("/drills")).text
        assert "机上訓練のみ実施できます" in page
        assert re.search(r'<input type="radio" name="mode" value="live" disabled>', page)
        assert re.search(r'<input type="radio" name="participants" value="real" disabled>', page)
        live = await drill.post("/drills/start", {"scenario": "annual-virus-isolation", "mode": "live",
                                                  "participants": "simulated", "speed": "inf"})
        assert "実動訓練はできません" in live.text
        real = await drill.post("/drills/start", {"scenario": "annual-virus-isolation", "mode": "tabletop",
                                                  "participants": "real", "speed": "1"})
        assert "障害連絡が設定されていないため" in real.text
        await drill.close()
        assert console.app.state.console.ctx.extra["drill_control"].current is None


async def test_in_the_browser_the_running_drill_updates_in_place_and_is_aborted_with_a_click(setup: Setup) -> None:
    async with chromium() as browser:
        page = await signed_in_browser(browser, setup.console.url, DRILL, PASSWORD)
        await page.goto("/drills")
        await page.check('input[name=scenario][value=call]')
        await page.select_option("select[name=speed]", "60")
        async with page.expect_navigation():
            await page.click(".drill-start button.primary")
        await page.evaluate("window.notReloaded = true")
        # the 初報 goes out one drill minute in: the panel shows it without the page being loaded again
        await page.wait_for_selector("#drill-panel tr[data-report]", timeout=20_000)
        assert await page.evaluate("window.notReloaded === true")
        await screenshot(page, "drills-running")
        async with page.expect_navigation():
            await page.click("#drill-panel button.danger")
        await page.wait_for_selector('.panel-body[data-status="aborted"]', timeout=20_000)
        assert await page.locator(".drill-start").count() == 1  # the start form is back
