"""What every adapter shares: the sink it feeds, backoff, and quiet logging.

An adapter turns a device protocol into normalized events (CONTRACT §2, as plain dicts) and
hands them to an `EventSink`. It never talks to the engine or the store directly: the daemon's
sink validates each event with the one parser in `policies.events`, so bad device data becomes
a stored rejection, never a crash.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any, ClassVar, Protocol, Self


class EventSink(Protocol):
    """Where adapters deliver events. Implemented by the daemon's ingest queue."""

    async def submit(self, event: dict[str, Any], *, source: str) -> None:
        """Deliver one normalized event (a dict as in CONTRACT §2)."""

    async def reject(self, source: str, payload: str, reason: str) -> None:
        """Record device data that could not be turned into an event."""


def backoff_delay(attempt: int, cap_s: float = 30.0) -> float:
    """Capped, jittered backoff: uniform(0, 1.5 ** min(10, attempt)), at most cap_s."""
    return min(cap_s, random.uniform(0, 1.5 ** min(10, attempt)))


class RateLimitedLog:
    """Log a repeated message at most once per `interval_s` per key, counting the rest."""

    def __init__(self, logger: logging.Logger, interval_s: float = 30.0) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self._last: dict[str, tuple[float, int]] = {}

    def log(self, level: int, key: str, msg: str, *args: Any, exc_info: bool = False) -> None:
        now = time.monotonic()
        last, suppressed = self._last.get(key, (-1e18, 0))
        if now - last >= self.interval_s:
            if suppressed:
                msg = f"{msg} (and {suppressed} more like it since last logged)"
            self.logger.log(level, msg, *args, exc_info=exc_info)
            self._last[key] = (now, 0)
        else:
            self._last[key] = (last, suppressed + 1)

    def warning(self, key: str, msg: str, *args: Any) -> None:
        self.log(logging.WARNING, key, msg, *args)


class PeriodicScan:
    """An adapter that calls `scan_once()` every `interval_s`, owning one TaskGroup."""

    task_name: ClassVar[str] = "scan"
    interval_s: float

    async def scan_once(self) -> Any:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        self._task = self._tg.create_task(self._run(), name=self.task_name)
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self._task.cancel()
        await self._tg.__aexit__(*exc_info)

    async def _run(self) -> None:
        while True:
            await self.scan_once()
            await asyncio.sleep(self.interval_s)
