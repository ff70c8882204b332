"""The console's test chain without a simulation: a real StateEngine, AlertingService and Store over a small inventory.

``served(...)`` gives a running console over it. States are made the way the collectors make them — poll samples into ``engine.sink``
then ``engine.evaluate()`` — and alarms follow from the engine's conditions through
``AlertingService.on_changes``. The console is served by ``dashboards.server.serve``
on a free loopback port and driven over HTTP (``ConsoleClient``) or by the browser.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import time
from pathlib import Path
from typing import AsyncIterator, Callable, Iterable

import httpx

from alerting.model import Notification
from alerting.service import AlertingService
from collectors.history import History
from dashboards.auth import UserBook, UserRole
from dashboards.context import ConsoleContext
from dashboards.server import ConsoleServer, serve
from monitor.envelope import Sample, origin_of
from monitor.inventory.model import Inventory
from monitor.state.engine import StateEngine
from monitor.state.health import HealthSettings
from monitor.state.settings import MonitorSettings
from monitor.store import Store

JST = dt.timezone(dt.timedelta(hours=9))
WEEKDAY_10H = dt.datetime(2026, 12, 2, 10, 0, tzinfo=JST)  # inside the common operating window
PASSWORD = "correct-horse-battery"
USERS = {role: role.value.replace("-", "_") for role in UserRole}  # one user per role, named after it


class MemoryOutbox:
    """Where notifications go in these tests: kept in memory, once by id."""

    def __init__(self) -> None:
        self.kept: dict[str, Notification] = {}

    async def enqueue(self, n: Notification) -> None:
        self.kept.setdefault(n.id, n)


def weekday_calendar() -> Callable[[], float]:
    offset = WEEKDAY_10H.timestamp() - time.time()
    return lambda: time.time() + offset


async def static_context(inventory: Inventory, store: Store) -> ConsoleContext:
    """Engine (not running: tests call ``evaluate``), alerting (restored, no background tick), history."""
    engine = StateEngine(inventory, MonitorSettings(health=HealthSettings(down_after=1, up_after=1)), store=store,
                         calendar_clock=weekday_calendar())
    alerting = AlertingService(inventory, None, MemoryOutbox(), store)
    await alerting.restore()
    engine.listeners.append(alerting.on_changes)
    return ConsoleContext(inventory, engine, store, alerting, History(), secret_key=b"console-test-secret-key-32bytes!")


def poll(ctx: ConsoleContext, devices: Iterable[str], ok: bool, ts: float | None = None) -> None:
    """One poll answer (or its absence) per device, as the collectors report it."""
    ts = time.time() if ts is None else ts
    inventory = ctx.inventory
    ctx.engine.sink([Sample("poll", ts, origin_of(inventory, inventory.devices[d]), {"ok": ok}, {"probe": "snmp"})
                     for d in devices])


def round_of_polls(ctx: ConsoleContext, failing: Iterable[str] = ()) -> None:
    """Every device polled once — ``failing`` ones without an answer — then judged.

    Everything else answering in the same round is what lets the engine judge a
    failure at once: its parents have answered since it failed (no verification hold).
    """
    failing = set(failing)
    ts = time.time()
    poll(ctx, [d.id for d in ctx.inventory.polled_devices() if d.id not in failing], True, ts)
    poll(ctx, failing, False, ts)
    ctx.engine.evaluate()


async def add_users(users: UserBook) -> None:
    for role, name in USERS.items():
        await users.add(name, role, PASSWORD)


@contextlib.asynccontextmanager
async def served(inventory: Inventory, directory: Path,
                 failing: Iterable[str] = ()) -> AsyncIterator[ConsoleServer]:
    """The console over a static context (every device polled once, ``failing`` silent), with one user per role."""
    store = await Store.open(f"sqlite+aiosqlite:///{directory}/jukimon.db")
    ctx = await static_context(inventory, store)
    round_of_polls(ctx, failing)
    server = await serve(ctx, port=0)
    try:
        await add_users(server.app.state.console.users)
        yield server
    finally:
        await server.stop()
        await store.close()


class ConsoleClient:
    """An HTTP session against a served console, with the CSRF token of its current page."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, follow_redirects=True, timeout=10)
        self.csrf = ""

    async def get(self, path: str, **kw: object) -> httpx.Response:
        response = await self.http.get(path, **kw)  # type: ignore[arg-type]
        found = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
        if found:
            self.csrf = found.group(1)
        return response

    async def post(self, path: str, data: dict[str, str] | None = None, *, token: str | None = None) -> httpx.Response:
        """A form post carrying the session's token (or ``token`` instead, "" for none)."""
        form = dict(data or {})
        token = self.csrf if token is None else token
        if token:
            form["csrf_token"] = token
        return await self.http.post(path, data=form)

    async def login(self, name: str, password: str = PASSWORD) -> httpx.Response:
        await self.get("/login")
        response = await self.post("/login", {"name": name, "password": password, "next": "/"})
        found = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
        if found:
            self.csrf = found.group(1)
        return response

    async def close(self) -> None:
        await self.http.aclose()
