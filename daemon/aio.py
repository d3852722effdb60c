"""asyncio helpers that never swallow a cancellation.

Python 3.11's `asyncio.wait_for` loses the caller's cancellation when the awaited thing
completes at the same moment (the task then goes on as if nothing happened): a loop like
`while True: await wait_for(event.wait(), period)` kept a daemon from stopping, for good.
`asyncio.timeout` (3.11) has no such race; these wrap it. Libraries still use `wait_for`
(aiomqtt waits for each PUBACK with it), so a task that parks in `wait_event` first raises a
cancellation that was requested but lost on the way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


def raise_lost_cancel() -> None:
    """Raise the CancelledError that was requested of this task but swallowed on the way."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def wait_event(event: asyncio.Event, timeout_s: float | None) -> bool:
    """Wait for `event` at most `timeout_s` (None: for ever); True if it was set. A
    cancellation this task lost (in a library's `wait_for`) is raised first."""
    raise_lost_cancel()
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
