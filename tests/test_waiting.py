"""wait_event: a cancel arriving together with the event still stops the waiting loop (3.11's wait_for lost it)."""

from __future__ import annotations

import asyncio

import pytest

from monitor.waiting import wait_event


async def test_a_cancel_that_meets_the_event_ends_the_loop() -> None:
    rounds = 0

    async def background(event: asyncio.Event) -> None:
        nonlocal rounds
        while True:
            await wait_event(event, 10)
            event.clear()
            rounds += 1

    event = asyncio.Event()
    task = asyncio.create_task(background(event))
    await asyncio.sleep(0)
    event.set()  # the event and the cancel in the same turn of the loop
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(2):
            await task
    assert task.cancelled() and rounds == 0


async def test_it_says_whether_the_event_came_or_the_time_ran_out() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.05) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_event(event, 5) is True
