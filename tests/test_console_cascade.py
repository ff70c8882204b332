"""The console's report cascade page: issue a report, watch receipts come in (link, phone), remind the missing.

Over a served console on the small inventory (Hokkaido and Okinawa, 6 municipalities each), a real SQLite
store, the real cascade (signed mails through its SMTP pool) and the embedded mail sink as the mail server.
Okinawa forwards to its municipalities itself; Hokkaido lets Jukimon forward. The cascade's clock is
simulated so that "overdue" comes without waiting.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest

from alerting.cascade import Cascade, Channel, open_cascade
from alerting.notify.mailsink import MailSink
from dashboards.auth import UserRole
from dashboards.server import ConsoleServer
from monitor.inventory.model import Inventory
from tests.browser import ARTIFACTS, chromium, screenshot, signed_in
from tests.console_fixtures import PASSWORD, USERS, ConsoleClient, served
from tests.test_cascade_fixtures import SimClock, cascade_settings

NOC = USERS[UserRole.NOC_OPERATOR]
HOKKAIDO = {"pref-01", *(f"muni-01-{n:03d}" for n in range(1, 7))}


@dataclass
class Setup:
    console: ConsoleServer
    cascade: Cascade
    sink: MailSink
    clock: SimClock

    def mails(self, kind: str = "report") -> dict[str, str]:
        """Recipient organisation → subject, of the mails of this kind the sink holds."""
        return {m["X-Jukimon-Organisation"]: m["Subject"] for m in self.sink.messages()
                if m["X-Jukimon-Kind"].startswith(kind)}

    async def client(self, role: UserRole = UserRole.NOC_OPERATOR) -> ConsoleClient:
        client = ConsoleClient(self.console.url)
        await client.login(USERS[role])
        return client


@pytest.fixture
async def setup(small_inventory: Inventory, tmp_path: Path) -> AsyncIterator[Setup]:
    clock = SimClock(time.time())
    async with MailSink(tmp_path / "mail") as sink, served(small_inventory, tmp_path) as console:
        ctx = console.app.state.console.ctx
        settings = cascade_settings(tmp_path, sink.port, forwarding_overrides={"47": "prefecture"})
        cascade = await open_cascade(ctx.store, small_inventory, settings, clock=clock)
        ctx.extra["cascade"] = cascade
        try:
            yield Setup(console, cascade, sink, clock)
        finally:
            await cascade.close()


@contextlib.asynccontextmanager
async def signed_in_client(setup: Setup, role: UserRole = UserRole.NOC_OPERATOR) -> AsyncIterator[ConsoleClient]:
    client = await setup.client(role)
    try:
        yield client
    finally:
        await client.close()


async def open_drill(client: ConsoleClient, *, scope: list[str], title: str = "処理装置Xのネットワーク切断",
                     body: str = "集約センターでウイルス感染の疑い。") -> httpx.Response:
    await client.get("/cascade")
    return await client.http.post("/cascade/incidents", data={
        "csrf_token": client.csrf, "title": title, "drill": "on", "body": body, "scope": "chosen",
        "prefecture": scope})


def report_id(page: httpx.Response) -> str:
    found = re.search(r"/cascade/([A-Za-z0-9_.-]+\.\d+)$", str(page.url))
    assert found, page.url
    return found.group(1)


async def test_a_first_report_to_hokkaido_is_sent_counted_and_shown_as_a_drill(setup: Setup) -> None:
    async with signed_in_client(setup) as noc:
        page = await open_drill(noc, scope=["01"])
        assert page.status_code == 200
        report = report_id(page)
        assert report.startswith("drill-") and report.endswith(".1")
        assert "7 通のうち 7 通" in page.text  # the prefecture and its six municipalities (Jukimon forwards)
        assert "【訓練】これは訓練です" in page.text and 'class="tag drill"' in page.text
        assert set(setup.mails()) == HOKKAIDO
        assert all(subject.startswith("【訓練】【初報】") for subject in setup.mails().values())

        progress = (await noc.get(f"/cascade/{report}/progress")).json()
        counts = progress["counts"]
        assert (counts["targets"], counts["sent"], counts["delivered"], counts["confirmed"], counts["overdue"]) == (
            7, 7, 7, 0, 0)
        assert [(p["code"], p["confirmed"], p["targets"]) for p in progress["prefectures"]] == [("01", 0, 7)]
        assert {m["id"] for m in progress["missing"]} == HOKKAIDO

        overview = (await noc.get("/cascade")).text
        assert "処理装置Xのネットワーク切断" in overview and f'href="/cascade/{report}"' in overview
        row = re.search(rf'<tr data-report="{re.escape(report)}">(.*?)</tr>', overview, re.S)
        assert row and [int(n) for n in re.findall(r'class="num[^"]*">(\d+)<', row.group(1))] == [7, 7, 7, 0, 0]

        # the next report numbers itself; the final one closes the incident
        incident = report.rsplit(".", 1)[0]
        second = await noc.post(f"/cascade/incidents/{incident}/reports", {"body": "第2報本文", "scope": "all"})
        assert report_id(second) == f"{incident}.2"
        final = await noc.post(f"/cascade/incidents/{incident}/reports", {"body": "復旧しました", "final": "on",
                                                                           "scope": "all"})
        assert report_id(final) == f"{incident}.3" and "終報" in final.text
        refused = await noc.post(f"/cascade/incidents/{incident}/reports", {"body": "もう一通", "scope": "all"})
        assert "この障害は終報済みです" in refused.text and f"{incident}.4" not in setup.cascade.tracker.reports

    issued = await setup.console.app.state.console.audit.entries(action="cascade.report.issue")
    assert [(e.target, e.result, e.user) for e in reversed(issued)] == [
        (f"{incident}.1", "ok", NOC), (f"{incident}.2", "ok", NOC), (f"{incident}.3", "ok", NOC),
        (incident, "failed", NOC)]


async def test_receipts_by_link_and_by_phone_then_reminders_only_to_the_missing(setup: Setup) -> None:
    async with signed_in_client(setup) as noc:
        report = report_id(await open_drill(noc, scope=["01"]))
        link = next(m for m in setup.sink.messages() if m["X-Jukimon-Organisation"] == "muni-01-002")
        url = re.search(r"/cascade/confirm\?token=[A-Za-z0-9_.%-]+", link.get_content())
        assert url

        async with httpx.AsyncClient(base_url=setup.console.url) as stranger:  # no session: the token suffices
            clicked = await stranger.get(url.group(0))
        assert clicked.status_code == 200 and "受信確認を受け付けました" in clicked.text

        phoned = await noc.post(f"/cascade/{report}/receipts", {"org": "pref-01", "caller": "北海道 田中"})
        assert "北海道 の受信確認を記録しました" in phoned.text
        by_name = await noc.post(f"/cascade/{report}/receipts", {"org": "小樽市"})
        assert "小樽市 は" in by_name.text and "受信確認済みです" in by_name.text  # the link came first
        unknown = await noc.post(f"/cascade/{report}/receipts", {"org": "muni-47-001"})
        assert "この報告の送信先ではありません" in unknown.text

        tracker = setup.cascade.tracker
        assert (tracker.delivery(report, "muni-01-002").confirmed_via,  # type: ignore[union-attr]
                tracker.delivery(report, "pref-01").confirmed_via,  # type: ignore[union-attr]
                tracker.delivery(report, "pref-01").confirmed_by) == ("link", "console", NOC)  # type: ignore[union-attr]
        progress = (await noc.get(f"/cascade/{report}/progress")).json()
        assert progress["counts"]["confirmed"] == 2
        assert {m["id"] for m in progress["missing"]} == HOKKAIDO - {"pref-01", "muni-01-002"}
        otaru = (await noc.get(f"/cascade/{report}/progress", params={"pref": "01"})).json()["organisations"][2]
        assert (otaru["id"], otaru["confirmed_via"], otaru["confirmed_by"], otaru["reminders"]) == (
            "muni-01-002", "link", "cs-admin@muni-01-002.lg.jp.example", 0)
        table = (await noc.get(f"/cascade/{report}", params={"pref": "01"})).text
        assert "メールのリンク" in table and "コンソール (電話)" in table and f"<td>{NOC}</td>" in table

        nothing_due = await noc.post(f"/cascade/{report}/remind")
        assert "督促を 0 通送信しました" in nothing_due.text
        setup.clock.now += setup.cascade.tracker.confirm_within + 1
        page = await noc.get(f"/cascade/{report}")
        assert page.text.count('data-status="overdue"') >= 5
        reminded = await noc.post(f"/cascade/{report}/remind")
        assert "督促を 5 通送信しました" in reminded.text
        assert set(setup.mails("reminder")) == HOKKAIDO - {"pref-01", "muni-01-002"}
        assert all("【再送・受信確認のお願い】" in s for s in setup.mails("reminder").values())

    receipts = await setup.console.app.state.console.audit.entries(action="cascade.receipt")
    assert [(e.target, e.result, e.detail.get("caller")) for e in reversed(receipts)] == [
        (f"{report}/pref-01", "ok", "北海道 田中"), (f"{report}/muni-01-002", "ok", ""),
        (f"{report}/muni-47-001", "failed", "")]


async def test_a_prefecture_that_forwards_itself_is_marked_forwarded(setup: Setup) -> None:
    async with signed_in_client(setup) as noc:
        report = report_id(await open_drill(noc, scope=["47"]))
        assert set(setup.mails()) == {"pref-47"}  # Okinawa forwards itself
        page = await noc.get(f"/cascade/{report}", params={"pref": "47"})
        assert page.text.count('data-status="not_forwarded"') == 6 * 2  # the row and its tag
        forwarded = await noc.post(f"/cascade/{report}/forward/pref-47")
        assert "沖縄県 の転送を記録し、市区町村へ 6 通を送信しました" in forwarded.text
        assert {o for o in setup.mails() if o.startswith("muni-47-")} == {f"muni-47-{n:03d}" for n in range(1, 7)}
        counts = (await noc.get(f"/cascade/{report}/progress")).json()["counts"]
        assert (counts["delivered"], counts["awaiting_forward"]) == (7, 0)


async def test_refusals_csrf_and_roles(setup: Setup) -> None:
    async with signed_in_client(setup) as noc:
        await noc.get("/cascade")
        no_token = await noc.post("/cascade/incidents", {"title": "x", "body": "y", "scope": "all"}, token="")
        assert no_token.status_code == 403
    async with signed_in_client(setup, UserRole.CALL_CENTER) as call_centre:
        page = (await call_centre.get("/cascade")).text
        assert 'action="/cascade/incidents"' not in page
        refused = await call_centre.post("/cascade/incidents", {"title": "x", "body": "y", "scope": "all"})
        assert refused.status_code == 403
    async with signed_in_client(setup, UserRole.AUDITOR) as auditor:
        report = report_id(await open_drill_as_admin(setup))
        refused = await auditor.post(f"/cascade/{report}/receipts", {"org": "pref-01"})
        assert refused.status_code == 403
    assert setup.cascade.tracker.delivery(report, "pref-01").confirmed_at is None  # type: ignore[union-attr]
    assert len(setup.cascade.tracker.incidents) == 1  # only the admin's
    trail = await setup.console.app.state.console.audit.entries()
    assert {(e.action, e.user) for e in trail if e.result == "denied"} >= {
        ("csrf.refused", NOC), ("access.denied", USERS[UserRole.CALL_CENTER]),
        ("access.denied", USERS[UserRole.AUDITOR])}


async def open_drill_as_admin(setup: Setup) -> httpx.Response:
    async with signed_in_client(setup, UserRole.ADMIN) as admin:
        return await open_drill(admin, scope=["01"])


async def test_what_operators_typed_is_shown_as_text(setup: Setup) -> None:
    async with signed_in_client(setup) as noc:
        page = await open_drill(noc, scope=["01"], title='<img src=x onerror="alert(1)">',
                                body="<script>alert('本文')</script>\n二行目")
        assert "<script>alert" not in page.text and "<img src=x" not in page.text
        assert "&lt;script&gt;alert(&#39;本文&#39;)&lt;/script&gt;\n二行目" in page.text
        assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page.text
        assert "<img src=x" not in (await noc.get("/cascade")).text


async def test_without_a_cascade_the_pages_say_so(small_inventory: Inventory, tmp_path: Path) -> None:
    async with served(small_inventory, tmp_path) as console:
        client = ConsoleClient(console.url)
        await client.login(NOC)
        page = await client.get("/cascade")
        assert "障害連絡 (カスケード) が設定されていません" in page.text
        assert (await client.get("/cascade/confirm", params={"token": "x"})).status_code == 503
        await client.close()


async def test_the_page_follows_receipts_without_a_reload(setup: Setup) -> None:
    async with signed_in_client(setup) as noc:
        report = report_id(await open_drill(noc, scope=["01", "47"]))
        await noc.post(f"/cascade/{report}/receipts", {"org": "pref-01"})
        await noc.post(f"/cascade/{report}/receipts", {"org": "muni-01-003"})
    setup.clock.now += setup.cascade.tracker.confirm_within + 1
    async with chromium() as browser:
        page = await signed_in(browser, setup.console.url, NOC, PASSWORD)
        await page.goto(f"/cascade/{report}?pref=01")
        await page.wait_for_selector("text=【訓練】これは訓練です")
        assert await page.text_content("[data-count=confirmed]") == "2"
        await setup.cascade.tracker.confirm(report, "muni-01-005", Channel.MQTT, "muni-01-005")
        await page.wait_for_function("document.querySelector('[data-count=confirmed]').textContent === '3'")
        assert await page.locator("[data-missing] tr", has_text="muni-01-005").count() == 0
        assert "MQTT" in await page.locator("[data-orgs] tr", has_text="muni-01-005").inner_text()
        await screenshot(page, "cascade")
    assert (ARTIFACTS / "cascade.png").stat().st_size > 10_000
