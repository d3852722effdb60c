"""What every adapter shares: the sink it feeds, backoff, quiet logging, and the rule that
no device data of any shape ends a process.

An adapter turns a device protocol into normalized events (CONTRACT §2, as plain dicts) and
hands them to an `EventSink`. It never talks to the engine or the store directly: the daemon's
sink validates each event with the one parser in `policies.events`, so bad device data becomes
a stored rejection, never a crash.

The failure policy every adapter follows:

- Device data that cannot be an event becomes `sink.reject(source, payload, reason)`; a device
  that stops answering becomes a health event (`device.status` offline, `camera.status` down,
  an inventory that says the folder is empty or unreadable). Both are logged on a change of
  state and at most once per `RateLimitedLog.interval_s` after that, never once per poll.
- Anything else that goes wrong inside an adapter's loop (a bug, a sink that raises) is
  caught at the loop, counted (`errors`), logged with its traceback (rate-limited), and the
  loop goes on after a pause. Only `asyncio.CancelledError` ends a loop: it is never caught.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, Self

# Times outside [2000, 2100) are implausible for any device of a site: adapters reject them
# (the event parser downstream does too). Aware datetimes in UTC.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


class EventSink(Protocol):
    """Where adapters deliver events. Implemented by the daemon's ingest queue."""

    async def submit(self, event: dict[str, Any], *, source: str) -> None:
        """Deliver one normalized event (a dict as in CONTRACT §2)."""

    async def reject(self, source: str, payload: str, reason: str) -> None:
        """Record device data that could not be turned into an event."""


def backoff_delay(attempt: int, cap_s: float = 30.0) -> float:
    """Capped, jittered backoff: uniform(0, 1.5 ** min(10, attempt)), at most cap_s."""
    # The jitter is drawn under the cap: min(cap, uniform(0, x)) would sit on the cap.
    return random.uniform(0, min(cap_s, 1.5 ** min(10, attempt)))


def plausible_time(t: datetime) -> bool:
    """An aware datetime inside [2000, 2100); False for naive ones."""
    if t.tzinfo is None:
        return False
    try:
        return EARLIEST <= t < LATEST
    except OverflowError:  # year 1 or 9999 with an offset: not representable in UTC
        return False


def printable(text: str, limit: int = 512) -> str:
    """`text` as valid UTF-8 of at most about `limit` characters, for payloads and reasons.

    File names that are not UTF-8 reach Python as lone surrogates (surrogateescape); they
    would make the store, orjson and the log fail later, so they are written as \\x escapes.
    """
    if len(text) > limit:
        text = f"{text[:limit]}… ({len(text)} characters)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:  # bytes of a file name that is not UTF-8: \xff
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # other lone surrogates: \ud800
            return text.encode("utf-8", "backslashreplace").decode("utf-8")
        return raw.decode("utf-8", "backslashreplace")
    return text


class RateLimitedLog:
    """Quiet logging for things that repeat every poll.

    `log`/`warning`: at most once per `interval_s` per key, counting the rest.
    `on_change`: at once when the state for a key changes, else as `log` (a reminder with the
    count). `settled` logs once that a key's trouble is over and forgets its state.
    `exception`: `log` at ERROR with the current traceback.
    """

    def __init__(self, logger: logging.Logger, interval_s: float = 30.0) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self._last: dict[str, tuple[float, int]] = {}
        self._state: dict[str, str] = {}

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

    def exception(self, key: str, msg: str, *args: Any) -> None:
        self.log(logging.ERROR, key, msg, *args, exc_info=True)

    def on_change(self, level: int, key: str, state: str, msg: str, *args: Any) -> None:
        if self._state.get(key) != state:
            self._state[key] = state
            self._last.pop(key, None)  # a new state is always logged
        self.log(level, key, msg, *args)

    def settled(self, key: str, msg: str, *args: Any) -> None:
        if self._state.pop(key, None) is not None:
            self._last.pop(key, None)
            self.logger.info(msg, *args)


class PeriodicScan:
    """An adapter that calls `scan_once()` every `interval_s`, owning one TaskGroup.

    A scan that raises (a bug: scans turn bad data into rejections themselves) is counted in
    `errors`, logged with its traceback at most every 30 s, and the next scan runs on time.
    """

    task_name: ClassVar[str] = "scan"
    interval_s: float
    errors: int = 0
    _scan_log: RateLimitedLog | None = None

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
            try:
                await self.scan_once()
            except Exception:
                self.errors += 1
                if self._scan_log is None:
                    self._scan_log = RateLimitedLog(logging.getLogger(type(self).__module__))
                self._scan_log.exception(
                    "scan",
                    "%s: scan failed; scanning again in %g s",
                    self.task_name,
                    self.interval_s,
                )
            await asyncio.sleep(self.interval_s)
