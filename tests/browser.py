"""Playwright helpers for the console's browser tests: Debian's chromium, headless, never a downloaded browser.

Usage::

    async with chromium() as browser:
        page = await signed_in(browser, console.url, "noc_operator", PASSWORD)
        await page.goto(console.url + "/alarms")
        await screenshot(page, "alarms")          # tests/artifacts/alarms.png

``chromium()`` skips the test on a developer machine without ``/usr/bin/chromium``
(``apt-get install chromium``) and fails in CI, where a skip would hide lost coverage.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import AsyncIterator

from playwright.async_api import Browser, Page, async_playwright

from tests.servers import require

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
VIEWPORT = {"width": 1600, "height": 1000}


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    require(CHROMIUM, "chromium")

    # Chromium refuses to sandbox as root (CI containers run as root); the pages are our own, on loopback.
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield browser
        finally:
            await browser.close()


async def signed_in(browser: Browser, base_url: str, name: str, password: str) -> Page:
    """A fresh browser context (its own cookies) signed in as ``name``, on the page the login leads to."""
    context = await browser.new_context(base_url=base_url, viewport=VIEWPORT, locale="ja-JP",
                                        timezone_id="Asia/Tokyo")
    page = await context.new_page()
    await page.goto("/login")
    await page.fill("input[name=name]", name)
    await page.fill("input[name=password]", password)
    async with page.expect_navigation():
        await page.click("button[type=submit]")
    return page


async def screenshot(page: Page, name: str) -> Path:
    """Save the whole page as ``tests/artifacts/<name>.png`` (kept for people to look at)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
