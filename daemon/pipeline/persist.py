"""Stage 3, persisting: a writer thread applies commits to SQLite in order, off the event loop.

Failure policy: a write that fails (disk full, read-only file system, database locked, I/O
error) is rolled back and retried every `retry_s` with the same rows, for as long as it takes.
Meanwhile the store is DEGRADED: the pipeline releases what it accepted at once (alerts go out
over MQTT and the dashboard, PUBACKs and replies are sent) and holds the rows here, in memory,
up to `queue_max` ingest items; beyond that, ingest pauses (the broker keeps the rest). When a
write succeeds again the store is OK and everything held is written in its original order.
What is held is lost only if the process dies while the store is failing.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from daemon.store import Store, Writes

log = logging.getLogger("sealwatch.persist")
COALESCE_MAX = 64  # commits written in one transaction when they queue up


class StoreHealth(enum.StrEnum):
    OK = "ok"
    DEGRADED = "degraded"


@dataclass(slots=True)
class Commit:
    """One unit for the writer: rows, the ingest items they hold, and what to release."""

    writes: Writes
    items: int = 0
    release: Callable[[], None] | None = None  # acks, replies, delivery to the sinks
    released: bool = False

    def let_go(self) -> None:
        if not self.released:
            self.released = True
            if self.release is not None:
                self.release()


@dataclass(slots=True)
class _Call:
    fn: Callable[[Store], Any]
    future: asyncio.Future[Any]


@dataclass(slots=True)
class _Stop:
    done: threading.Event = field(default_factory=threading.Event)


class Persister:
    """`start()`, `submit(commit)` from the loop, `await stop()`; health via `on_health`."""

    def __init__(
        self,
        store: Store,
        *,
        queue_max: int,
        retry_s: float,
        on_health: Callable[[StoreHealth, str], None],
    ) -> None:
        self.store = store
        self.queue_max = queue_max
        self.retry_s = retry_s
        self.on_health = on_health
        self.health = StoreHealth.OK
        self.reason = ""
        self.pending: deque[Commit] = deque()  # submitted, not yet written (loop side)
        self.pending_items = 0
        self.room = asyncio.Event()
        self.room.set()
        self._queue: deque[Commit | _Call | _Stop] = deque()
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- loop side ---------------------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="sealwatch-writer", daemon=True)
        self._thread.start()

    @property
    def full(self) -> bool:
        return self.pending_items >= self.queue_max

    def submit(self, commit: Commit) -> None:
        """Queue a commit (never blocks). While degraded it is released at once."""
        if not commit.writes and commit.items == 0:
            commit.let_go()
            return
        self.pending.append(commit)
        self.pending_items += commit.items
        if self.health is StoreHealth.DEGRADED:
            commit.let_go()
        if self.full:
            self.room.clear()
        self._put(commit)

    async def call(self, fn: Callable[[Store], Any]) -> Any:
        """Run `fn(store)` on the writer thread, after everything submitted before it."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._put(_Call(fn, fut))
        return await fut

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Write what is queued (up to `timeout_s` if the store keeps failing), then end."""
        if self._thread is None:
            return
        stop = _Stop()
        self._put(stop)
        done = await asyncio.to_thread(stop.done.wait, timeout_s)
        if not done:
            self._stopping.set()
            with self._wake:
                self._wake.notify_all()
            await asyncio.to_thread(self._thread.join, 5.0)
        if self.pending_items:
            log.error(
                "stopping with %d accepted items the store could not write (%s): they are "
                "lost; gateways' events among them were acknowledged to the broker",
                self.pending_items,
                self.reason or "store failing",
            )
        self._thread = None

    def _put(self, item: Commit | _Call | _Stop) -> None:
        with self._wake:
            self._queue.append(item)
            self._wake.notify()

    def _written(self, count: int) -> None:
        for _ in range(count):
            commit = self.pending.popleft()
            self.pending_items -= commit.items
            commit.let_go()
        if not self.full:
            self.room.set()

    def _health(self, health: StoreHealth, reason: str) -> None:
        if health is self.health:
            return
        self.health, self.reason = health, reason
        if health is StoreHealth.DEGRADED:
            # Alerting must not wait for the disk: release what is waiting to be written.
            for commit in self.pending:
                commit.let_go()
        self.on_health(health, reason)

    # -- writer thread -------------------------------------------------------------------------

    def _take(self) -> list[Commit | _Call | _Stop]:
        with self._wake:
            while not self._queue:
                self._wake.wait()
            first = self._queue.popleft()
            if not isinstance(first, Commit):
                return [first]
            group: list[Commit | _Call | _Stop] = [first]
            while self._queue and len(group) < COALESCE_MAX and isinstance(self._queue[0], Commit):
                group.append(self._queue.popleft())
            return group

    def _run(self) -> None:
        assert self._loop is not None
        loop = self._loop
        while True:
            group = self._take()
            head = group[0]
            if isinstance(head, _Stop):
                head.done.set()
                return
            if isinstance(head, _Call):
                self._run_call(head)
                continue
            writes = Writes()
            for c in group:
                assert isinstance(c, Commit)
                writes.merge(c.writes)
            if not self._write(writes):
                return  # stopping while the store fails
            loop.call_soon_threadsafe(self._written, len(group))

    def _write(self, writes: Writes) -> bool:
        assert self._loop is not None
        failing = False
        while True:
            try:
                self.store.apply(writes)
            except (sqlite3.Error, OSError) as exc:
                if not failing:
                    failing = True
                    reason = f"{type(exc).__name__}: {exc}"
                    self._loop.call_soon_threadsafe(self._health, StoreHealth.DEGRADED, reason)
                if self._stopping.wait(self.retry_s):
                    return False
                continue
            if failing or self.health is StoreHealth.DEGRADED:
                self._loop.call_soon_threadsafe(self._health, StoreHealth.OK, "")
            return True

    def _run_call(self, call: _Call) -> None:
        assert self._loop is not None
        fut = call.future
        try:
            result = call.fn(self.store)
        except BaseException as exc:  # handed to the awaiting coroutine
            self._loop.call_soon_threadsafe(_set_exception, fut, exc)
        else:
            self._loop.call_soon_threadsafe(_set_result, fut, result)


def _set_result(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exception(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
