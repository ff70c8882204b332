"""Otaru (小樽市) has lost both leased lines: a served console for the call-centre and operations tests.

Everything answered once, then Otaru's two line routers stopped answering: the
engine judged the site DOWN (its CS and FW unreachable) and alerting raised one
``site_unreachable`` alarm. The judgement is saved to the store, so the state
history (transitions) is there for the pages that read it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import AsyncIterator

from dashboards.server import ConsoleServer, serve
from monitor.inventory.model import Inventory
from monitor.store import Store
from tests.console_fixtures import add_users, round_of_polls, static_context

OTARU = "muni-01-002"
OTARU_LINES = ("muni-01-002-rt1", "muni-01-002-rt2")
OTARU_CUT = f"site_unreachable:{OTARU}"


@contextlib.asynccontextmanager
async def otaru_cut_off(inventory: Inventory, directory: Path) -> AsyncIterator[ConsoleServer]:
    """The console (one user per role, ``tests.console_fixtures.USERS``) over a SQLite store in ``directory``."""
    store = await Store.open(f"sqlite+aiosqlite:///{directory}/jukimon.db")
    ctx = await static_context(inventory, store)
    round_of_polls(ctx)
    round_of_polls(ctx, failing=OTARU_LINES)
    await ctx.engine.stop()  # the engine is not running: this saves its judgement (states, transitions)
    server = await serve(ctx, port=0)
    await add_users(server.app.state.console.users)
    try:
        yield server
    finally:
        await server.stop()
        await store.close()
