"""Gathering what an MQTT subscriber receives, for the tests that count messages end to end."""

from __future__ import annotations

import asyncio
from typing import Callable

import aiomqtt


async def gather_messages(client: aiomqtt.Client, enough: Callable[[list[aiomqtt.Message]], bool],
                          timeout: float = 15.0) -> list[aiomqtt.Message]:
    """Messages as they come until ``enough(got)`` or ``timeout`` seconds: the caller asserts on what came."""
    got: list[aiomqtt.Message] = []
    try:
        async with asyncio.timeout(timeout):
            async for message in client.messages:
                got.append(message)
                if enough(got):
                    break
    except TimeoutError:
        pass
    return got
