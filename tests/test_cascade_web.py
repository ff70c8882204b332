"""The confirm page: one click records the receipt and says so in Japanese; bad links are refused plainly."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest

from alerting.cascade import (CascadeSettings, CascadeStore, Directory, Incident, LinkSigner, Report, Tracker,
                              confirm_app)
from monitor.inventory import Inventory
from monitor.store import Store
from tests.test_cascade_fixtures import BASE_URL, T0, SimClock

DRILL = Incident("drill-2021", "処理装置Xの切断 <script>alert(1)</script>", drill=True, opened=T0)
REPORT = Report(DRILL.id, 2, "第2報本文", T0)


@dataclass
class Site:
    tracker: Tracker
    links: LinkSigner
    client: httpx.AsyncClient
    clock: SimClock

    async def get(self, url: str) -> httpx.Response:
        return await self.client.get(url)


@pytest.fixture
async def site(tmp_path: Path, small_inventory: Inventory) -> AsyncIterator[Site]:
    clock = SimClock()
    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path}/jukimon.db") as db:
        tracker = await Tracker.open(await CascadeStore.open(db), Directory.from_inventory(small_inventory),
                                     CascadeSettings(), clock)
        await tracker.open_incident(DRILL)
        await tracker.add_report(REPORT)
        links = LinkSigner(b"k" * 32, BASE_URL, ttl=3600, clock=clock)
        transport = httpx.ASGITransport(app=confirm_app(tracker, links))
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield Site(tracker, links, client, clock)


async def test_click_confirms_once(site: Site) -> None:
    url = site.links.url(REPORT.id, "muni-01-002")
    site.clock.now = T0 + 125
    page = await site.get(url)
    assert page.status_code == 200
    assert "受信確認を受け付けました" in page.text and "小樽市 様" in page.text and "第2報" in page.text
    assert "2021年12月08日 09:32（JST）" in page.text
    assert "【訓練】これは訓練です" in page.text
    assert page.headers["cache-control"] == "no-store"
    delivery = site.tracker.delivery(REPORT.id, "muni-01-002")
    assert delivery is not None
    assert (delivery.confirmed_at, delivery.confirmed_via, delivery.confirmed_by) == (
        T0 + 125, "link", "cs-admin@muni-01-002.lg.jp.example")

    site.clock.now = T0 + 600
    again = await site.get(url)
    assert again.status_code == 200
    assert "受信確認済みです" in again.text and "09:32" in again.text and "メールのリンク" in again.text
    assert delivery.confirmed_at == T0 + 125


async def test_page_escapes_what_it_shows(site: Site) -> None:
    page = await site.get(site.links.url(REPORT.id, "pref-01"))
    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


async def test_refusals(site: Site) -> None:
    good = site.links.token(REPORT.id, "pref-47")
    tampered = site.links.token(REPORT.id, "pref-01").split(".")[0] + "." + good.split(".")[1]
    cases = {
        f"/cascade/confirm?token={tampered}": (400, "改ざん"),
        "/cascade/confirm?token=": (400, "リンクが不完全です"),
        "/cascade/confirm": (400, "リンクが不完全です"),
        f"/cascade/confirm?token={site.links.token('drill-2021.7', 'pref-47')}": (404, "送信されていません"),
    }
    for path, (status, text) in cases.items():
        page = await site.get(path)
        assert (page.status_code, text in page.text) == (status, True), path
    site.clock.now = T0 + 3601
    expired = await site.get(f"/cascade/confirm?token={good}")
    assert expired.status_code == 410 and "有効期限が切れています" in expired.text
    assert all(d.confirmed_at is None for d in site.tracker.deliveries(REPORT.id))
