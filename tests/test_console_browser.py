"""The console in a real browser (Debian's chromium, headless) over a running simulated network.

The chain is the real one, in process: SimNetwork (Hokkaidō and Okinawa, four
municipalities each) → CollectorService (SNMPv3, 1 s cadence) → StateEngine →
AlertingService, with the short-term history, and the console served on a free
port. A fault is injected into the simulation and the NOC board, already open,
recolours the site without a reload. Screenshots of the main pages are kept in
tests/artifacts/ for people to look at.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Callable

import pytest
import pytest_asyncio
from playwright.async_api import Browser, expect

from alerting.model import AlarmStatus
from alerting.service import AlertingService
from collectors.history import History
from collectors.service import CollectorService
from collectors.snmp.client import Credentials
from collectors.snmp.udp_client import SnmpUdpClient
from dashboards.auth import UserRole
from dashboards.context import ConsoleContext
from dashboards.server import serve
from monitor.config import CollectorSettings
from monitor.envelope import Sample
from monitor.inventory.model import Inventory
from monitor.inventory.subset import subset_by_prefecture
from monitor.state.engine import StateEngine
from monitor.state.health import HealthSettings
from monitor.state.model import State, SubjectKind
from monitor.state.settings import MonitorSettings
from monitor.store import Store
from simnet.network import SimNetwork, SimnetConfig
from tests.browser import chromium, screenshot, signed_in
from tests.console_fixtures import PASSWORD, USERS, MemoryOutbox, add_users, weekday_calendar
from tests.servers import free_port, free_udp_port

pytestmark = pytest.mark.asyncio(loop_scope="module")
SNMP_PORT, TLS_PORT = free_udp_port(), free_port()
V3 = Credentials("3", user="jukimon", auth_key="jukimon-auth-key", priv_key="jukimon-priv-key")
SETTINGS = MonitorSettings(health=HealthSettings(down_after=2, up_after=1), settle=0.2, tick=0.5, hold_max=8.0,
                           checkpoint_every=1.0)
OTARU = "muni-01-002"


@pytest.fixture(scope="module")
def inventory(full_inventory: Inventory) -> Inventory:
    return subset_by_prefecture(full_inventory, ["01", "47"], max_municipalities=4)


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.2)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser():
    async with chromium() as browser:
        yield browser


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def live(inventory: Inventory, tmp_path_factory: pytest.TempPathFactory, browser: Browser):
    work = tmp_path_factory.mktemp("console-live")
    net = SimNetwork(inventory, SimnetConfig(snmp_port=SNMP_PORT, tls_port=TLS_PORT, state_dir=work / "simnet"))
    await net.start()
    store = await Store.open(f"sqlite+aiosqlite:///{work}/jukimon.db")
    settings = dataclasses.replace(CollectorSettings(), intervals={}, default_interval=1.0, tls_interval=5.0,
                                   timeout=1.0, retries=0)
    collectors = CollectorService(inventory, settings, SnmpUdpClient(V3, timeout=1.0, retries=0), [],
                                  snmp_port=SNMP_PORT, tls_port=TLS_PORT)
    engine = StateEngine(inventory, SETTINGS, store=store, calendar_clock=weekday_calendar(),
                         recheck=collectors.recheck)
    alerting = AlertingService(inventory, None, MemoryOutbox(), store)
    history = History(retention_seconds=3600, resolution=1.0, raw_seconds=3600)
    collectors.sinks.append(engine.sink)
    collectors.sinks.append(lambda records: history.add_many(r for r in records if isinstance(r, Sample)))
    await engine.start()
    await alerting.start(engine.active())
    engine.listeners.append(alerting.on_changes)
    collectors.start()
    console = await serve(ConsoleContext(inventory, engine, store, alerting, history,
                                         secret_key=b"browser-test-secret-key-32bytes!"), port=0)
    await add_users(console.app.state.console.users)
    await until(lambda: all(r.state is State.UP for (k, _), r in engine.states.items() if k is SubjectKind.DEVICE)
                and len(engine.states) > 0, 40, "every device UP at start")
    yield net, console, alerting
    await console.stop()
    await collectors.stop()
    await alerting.stop()
    await engine.stop()
    await store.close()
    await net.stop()


async def test_each_role_signs_in_and_is_refused_what_it_may_not_do(live, browser: Browser) -> None:
    net, console, alerting = live
    fingerprint = "device_down:muni-47-002-cs1"
    net.inject("device_down", "muni-47-002-cs1")
    await until(lambda: alerting.alarm(fingerprint) is not None, 20, "an alarm to act on")
    forbidden_ack = (UserRole.CALL_CENTER, UserRole.AUDITOR, UserRole.DRILL_CONTROLLER)
    for role, name in USERS.items():
        page = await signed_in(browser, console.url, name, PASSWORD)
        await expect(page.locator(".who")).to_contain_text(name)
        if role in forbidden_ack:
            await page.goto(f"/alarms/{fingerprint}")
            await expect(page.locator("#ack")).to_have_count(0)
            status = await page.evaluate("""async (fp) => {
                const token = document.querySelector('input[name=csrf_token]').value;
                const body = new URLSearchParams({fingerprint: fp, csrf_token: token});
                return (await fetch('/alarms/acknowledge', {method: 'POST', body})).status;
            }""", fingerprint)
            assert status == 403, f"{role} acknowledged an alarm"
        elif role is UserRole.NOC_OPERATOR:
            response = await page.goto("/audit")
            assert response is not None and response.status == 403
            await expect(page.locator(".error-page")).to_contain_text("権限がありません")
        else:  # the admin may do everything
            assert (await page.goto("/audit")).status == 200  # type: ignore[union-attr]
            await page.goto(f"/alarms/{fingerprint}")
            await expect(page.locator("#ack")).to_have_count(1)
        await page.context.close()
    assert alerting.alarm(fingerprint).status is AlarmStatus.FIRING  # type: ignore[union-attr]


async def test_the_board_shows_an_injected_fault_without_a_reload(live, browser: Browser) -> None:
    net, console, _ = live
    page = await signed_in(browser, console.url, USERS[UserRole.NOC_OPERATOR], PASSWORD)
    await page.goto("/")
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "open")
    tile = page.locator(f'.tile[data-site="{OTARU}"]')
    await expect(tile).to_have_attribute("data-state", "up")
    await page.evaluate("window.__sameDocument = true")
    net.inject("site_lines_cut", OTARU)
    await expect(tile).to_have_attribute("data-state", "down", timeout=20_000)
    await expect(page.locator('[data-pref="01"]')).to_have_attribute("data-state", "down")
    await expect(page.locator(".toast.raised").first).to_be_visible()
    assert await page.evaluate("window.__sameDocument === true"), "the page was reloaded"
    await screenshot(page, "noc-board")
    await page.context.close()


async def test_acknowledging_an_alarm_in_the_browser(live, browser: Browser) -> None:
    net, console, alerting = live
    fingerprint = f"site_unreachable:{OTARU}"
    if not any(fault.target == OTARU for fault in net.faults()):  # run alone, without the board test
        net.inject("site_lines_cut", OTARU)
    await until(lambda: alerting.alarm(fingerprint) is not None, 20, "the Otaru alarm")
    page = await signed_in(browser, console.url, USERS[UserRole.NOC_OPERATOR], PASSWORD)
    await page.goto("/alarms")
    row = page.locator(f'tr[data-fingerprint="{fingerprint}"]')
    await expect(row).to_contain_text("発生中")
    await screenshot(page, "alarms")
    await row.locator("a").first.click()
    await page.fill("form[action='/alarms/acknowledge'] input[name=text]", "回線事業者に確認中")
    async with page.expect_navigation():
        await page.click("#ack")
    await expect(page.locator(".flash.ok")).to_contain_text("1 件のアラームを確認しました")
    await expect(page.locator(".timeline")).to_contain_text("回線事業者に確認中")
    alarm = alerting.alarm(fingerprint)
    assert alarm is not None and alarm.status is AlarmStatus.ACKNOWLEDGED
    assert alarm.acknowledged_by == USERS[UserRole.NOC_OPERATOR]
    await screenshot(page, "alarm-detail")
    await page.context.close()


async def test_switching_to_english(live, browser: Browser) -> None:
    _, console, _ = live
    page = await signed_in(browser, console.url, USERS[UserRole.NOC_OPERATOR], PASSWORD)
    await page.goto("/prefectures/01")
    async with page.expect_navigation():
        await page.click("#lang-switch")
    assert await page.get_attribute("html", "lang") == "en"
    await expect(page.locator(".mainnav")).to_contain_text("Alarms")
    await expect(page.locator("h1")).to_have_text("Hokkaido")
    await expect(page.locator("#clock")).to_contain_text("JST")
    await screenshot(page, "prefecture-en")
    async with page.expect_navigation():
        await page.click("#lang-switch")
    assert await page.get_attribute("html", "lang") == "ja"
    await page.context.close()


async def test_screenshots_of_the_main_pages(live, browser: Browser) -> None:
    _, console, _ = live
    page = await signed_in(browser, console.url, USERS[UserRole.NOC_OPERATOR], PASSWORD)
    for name, path, ready in (("prefecture", "/prefectures/01", ".bigtile"),
                              ("site", f"/sites/{OTARU}", "table.data"),
                              ("device", "/devices/muni-01-001-cs1?range=15m", ".graph svg polyline")):
        await page.goto(path)
        await expect(page.locator(ready).first).to_be_visible()
        await screenshot(page, name)
    await page.context.close()
    auditor = await signed_in(browser, console.url, USERS[UserRole.AUDITOR], PASSWORD)
    await auditor.goto("/audit")
    await expect(auditor.locator("table.data")).to_contain_text("login")
    await screenshot(auditor, "audit")
    await auditor.context.close()
    login = await browser.new_page(base_url=console.url)
    await login.goto("/login")
    await screenshot(login, "login")
    await login.close()
