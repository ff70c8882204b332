"""Ctrl-C or SIGTERM during a long start-up stops the job instead of leaving it hanging."""

from __future__ import annotations

import asyncio
import os
import signal

from simnet.service import start_then_wait_for_signal


async def test_a_signal_during_start_up_cancels_the_start_and_says_it_never_started() -> None:
    undone: list[str] = []

    async def slow_start() -> None:
        try:
            await asyncio.sleep(30)  # a full-scale start on a busy machine
        except asyncio.CancelledError:
            undone.append("start undone")
            raise

    asyncio.get_running_loop().call_later(0.2, os.kill, os.getpid(), signal.SIGINT)
    started = await asyncio.wait_for(start_then_wait_for_signal(slow_start), 5)
    assert started is False and undone == ["start undone"]


async def test_after_a_finished_start_the_signal_ends_the_wait() -> None:
    steps: list[str] = []

    async def quick_start() -> None:
        steps.append("started")

    asyncio.get_running_loop().call_later(0.2, os.kill, os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(start_then_wait_for_signal(quick_start), 5) is True
    assert steps == ["started"]
