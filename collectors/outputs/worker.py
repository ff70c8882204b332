"""Stopping an output's background task: let it finish its own shutdown in time, else cancel it."""

from __future__ import annotations

import asyncio


async def finish_or_cancel(task: asyncio.Task[None], grace: float) -> None:
    """Wait up to ``grace`` seconds for ``task`` to end by itself; cancel it if it does not (or fails)."""
    try:
        await asyncio.wait_for(asyncio.shield(task), grace)
    except (asyncio.TimeoutError, Exception):  # noqa: B014 - whatever ended it, make sure it is gone
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
