"""asyncio helpers that never swallow a cancellation.

Python 3.11's `asyncio.wait_for` loses the caller's cancellation when the awaited thing
completes at the same moment (the task then goes on as if nothing happened): a loop like
`while True: await wait_for(event.wait(), period)` kept a daemon from stopping, for good.
`asyncio.timeout` (3.11) has no such race; these wrap it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def wait_event(event: asyncio.Event, timeout_s: float | None) -> bool:
    """Wait for `event` at most `timeout_s` (None: for ever); True if it was set."""
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def within(awaitable: Awaitable[T], timeout_s: float) -> T:
    """`awaitable` within `timeout_s` (TimeoutError after)."""
    async with asyncio.timeout(timeout_s):
        return await awaitable
