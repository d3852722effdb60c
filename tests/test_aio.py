"""daemon/aio.py: waiting never swallows a cancellation. Python 3.11's `asyncio.wait_for`
does when the awaited event is set just before the cancel (the loop then waits again, and a
daemon's stop waited for ever on such a session task); `wait_event` must not."""

from __future__ import annotations

import asyncio

import pytest

from daemon.aio import wait_event, within

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
async def test_a_loop_on_wait_event_ends_when_cancelled_as_its_event_is_set(turns: int) -> None:
    event = asyncio.Event()

    async def loop() -> None:
        while True:
            await wait_event(event, 30)
            event.clear()

    task = asyncio.create_task(loop())
    for _ in range(3):
        await asyncio.sleep(0)  # the loop is waiting
    event.set()
    for _ in range(turns):
        await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=10)
    assert task in done and task.cancelled(), "the cancellation was swallowed"


async def test_wait_event_says_whether_the_event_came() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    event.set()
    assert await wait_event(event, 0.01) is True
    assert await wait_event(event, None) is True


async def test_within_gives_the_result_or_times_out() -> None:
    assert await within(asyncio.sleep(0, "done"), 5) == "done"
    with pytest.raises(TimeoutError):
        await within(asyncio.Event().wait(), 0.01)


async def test_a_cancel_lost_in_a_library_wait_for_is_raised_at_the_next_wait() -> None:
    """aiomqtt waits for each PUBACK with 3.11's wait_for, which loses a cancel that comes as
    the PUBACK does: the session task parks in wait_event next, which raises it."""
    puback, ready = asyncio.Event(), asyncio.Event()
    swallowed: list[bool] = []

    async def session_task() -> None:
        while True:
            try:  # what aiomqtt's publish does
                await asyncio.wait_for(puback.wait(), 30)
            except TimeoutError:
                pass
            swallowed.append(True)  # the cancel did not come through here
            await wait_event(ready, None)

    task = asyncio.create_task(session_task())
    for _ in range(3):
        await asyncio.sleep(0)
    puback.set()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=10)
    assert task in done and task.cancelled()
    assert swallowed == [True]  # 3.11's wait_for did lose it: the test shows the rescue
