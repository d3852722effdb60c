"""An `EventSink` that keeps everything and lets a test await a condition on it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class CollectingSink:
    """Collects submitted events and rejections; `wait_for` awaits a condition."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.rejections: list[tuple[str, str, str]] = []  # (source, payload, reason)
        self._changed = asyncio.Condition()

    async def submit(self, event: dict[str, Any], *, source: str) -> None:
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    async def reject(self, source: str, payload: str, reason: str) -> None:
        async with self._changed:
            self.rejections.append((source, payload, reason))
            self._changed.notify_all()

    def of_type(self, type_: str, device: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e["type"] == type_ and (device is None or e["device"] == device)
        ]

    def states(self, device: str) -> list[str]:
        return [e["state"] for e in self.of_type("device.status", device)]

    async def wait_for(
        self, condition: Callable[[CollectingSink], bool], deadline_s: float = 20.0
    ) -> None:
        """Wait until `condition(self)` holds; TimeoutError after `deadline_s` seconds."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: condition(self)), deadline_s)


async def eventually(condition: Callable[[], bool], deadline_s: float = 20.0) -> None:
    """Poll `condition` until it holds (for state no sink event announces)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.01)
