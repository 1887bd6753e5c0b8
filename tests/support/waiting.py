"""Waiting for another process or service to reach a state, with a generous bound."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

POLL_S = 0.05


async def until(condition: Callable[[], bool], what: str, *, within: float = 60.0) -> None:
    """Return once `condition()` holds; fail with `what` if it does not within `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if condition():
            return
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"not within {within:.0f}s: {what}")


async def until_answered(
    condition: Callable[[], Awaitable[bool]], what: str, *, within: float = 60.0
) -> None:
    """`until` for a condition that must do I/O to answer (read a topic, ask a server)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if await condition():
            return
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"not within {within:.0f}s: {what}")
