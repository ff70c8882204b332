"""Waiting for an ``asyncio.Event`` with a timeout without ever losing a cancellation.

Python 3.11's ``asyncio.wait_for`` can swallow a ``cancel()`` that arrives just as the awaited
thing completes (CPython gh-86296, fixed in 3.12 by rebuilding ``wait_for`` on ``asyncio.timeout``).
A background loop around ``wait_for(event.wait(), t)`` then runs on, and whoever awaits the
cancelled task waits for ever: seen as a full-scale main job that hung when stopped during a busy
start-up, its poll scheduler still dispatching. ``asyncio.timeout`` does not have the flaw.
"""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """True once ``event`` is set, False after ``timeout`` seconds; a cancellation always propagates."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True
