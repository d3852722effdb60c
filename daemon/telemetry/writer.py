"""Stage 2 of telemetry: the spool's oldest points to InfluxDB, in order, on its own thread.

influxdb-client is used in its synchronous mode (`write_options=SYNCHRONOUS`, no urllib3
retries): its batching mode retries on its own and then drops the batch, which is exactly what
must not happen here. This writer owns the retries instead: it writes the oldest batch (up to
`batch_size` points), removes it from the spool only once the database accepted it, and on a
failure leaves it first in line and tries again after a backoff (`retry_min_s`, doubling up to
`retry_max_s`, jittered). A batch the database refuses as bad data (HTTP 400, 413, 422) is
split in halves until the refused points are alone; those are dropped, counted and logged,
so one bad point never blocks the spool. Delivery is at least once: a write that timed out
may have been stored, and is sent again (InfluxDB overwrites a point with the same series and
time).
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from adapters.base import RateLimitedLog
from daemon.telemetry.options import InfluxOptions
from daemon.telemetry.spool import Spool

log = logging.getLogger("sealwatch.telemetry")
REFUSED = frozenset({400, 413, 422})  # the points themselves are wrong: retrying cannot help


def describe(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        body = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else exc.body
        why = f"HTTP {exc.status} {exc.reason or ''}".strip()
        if exc.status in (401, 403):
            why += ": the token is refused (daemon.influxdb.token_file / token_env)"
        return f"{why}: {str(body or '')[:200]}" if body else why
    text = str(exc)
    # urllib3 names the pool and the object in its messages: keep the reason at the end.
    return f"{type(exc).__name__}: {text.rsplit(': ', 1)[-1][:200]}"


class Writer:
    """`start()`, `stop()`; `on_state(ok, reason)` is called (on this thread) on each change."""

    def __init__(
        self,
        opts: InfluxOptions,
        spool: Spool,
        on_state: Callable[[bool, str], None],
    ) -> None:
        self.opts = opts
        self.spool = spool
        self.on_state = on_state
        self.client = InfluxDBClient(
            url=opts.url,
            token=opts.token or "",
            org=opts.org,
            timeout=int(opts.timeout_s * 1000),
            ssl_ca_cert=str(opts.ca_file) if opts.ca_file else None,
            retries=False,
        )
        self.api = self.client.write_api(write_options=SYNCHRONOUS)
        self.written = 0  # points the database accepted
        self.requests = 0  # write requests that succeeded
        self.failures = 0  # write attempts that failed (the batch stayed in the spool)
        self.refused = 0  # points the database refused as bad data (dropped)
        self.ok: bool | None = None  # None until the first write
        self.reason = ""
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rlog = RateLimitedLog(log, 30.0)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sealwatch-telemetry-writer")
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        """Stop after the write in progress (at most `timeout_s`); the rest waits on disk."""
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(self.opts.timeout_s + 2.0)
            self._thread = None
        self.client.close()

    # -- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        delay = self.opts.retry_min_s
        while not self._stop.is_set():
            try:
                batch = self.spool.peek(self.opts.batch_size)
            except Exception:
                self._rlog.exception("peek", "telemetry spool cannot be read")
                self._stop.wait(self.opts.retry_max_s)
                continue
            if batch is None:
                self.wake.wait(self.opts.flush_interval_s)
                self.wake.clear()
                continue
            try:
                refused = self._write(batch.lines)
            except Exception as exc:
                self.spool.give_back()
                self.failures += 1
                self._state(False, describe(exc))
                self._stop.wait(random.uniform(delay / 2, delay))
                delay = min(delay * 2, self.opts.retry_max_s)
                continue
            self.written += batch.points - refused
            try:
                self.spool.remove(batch)
            except sqlite3.Error as exc:  # its disk refuses writes: the batch goes again
                self.spool.give_back()
                self._rlog.log(
                    logging.ERROR,
                    "remove",
                    "telemetry spool cannot be written (%s): a batch the database took stays "
                    "in it and is written again (at least once)",
                    exc,
                )
                self._stop.wait(self.opts.retry_max_s)
                continue
            delay = self.opts.retry_min_s
            self._state(True, "")

    def _write(self, lines: list[str]) -> int:
        """Write `lines`; the number of points the database refused (and that are dropped)."""
        try:
            self._send(lines)
        except ApiException as exc:
            if exc.status not in REFUSED:
                raise
            if len(lines) == 1:
                self.refused += 1
                self._rlog.log(
                    logging.ERROR,
                    "refused",
                    "telemetry: the database refused a point (%s), dropped: %s",
                    describe(exc),
                    lines[0][:300],
                )
                return 1
            mid = len(lines) // 2
            return self._write(lines[:mid]) + self._write(lines[mid:])
        self.requests += 1
        return 0

    def _send(self, lines: list[str]) -> Any:
        return self.api.write(
            bucket=self.opts.bucket,
            org=self.opts.org,
            record=lines,
            write_precision=WritePrecision.US,  # type: ignore[arg-type]  # a str enum
        )

    def _state(self, ok: bool, reason: str) -> None:
        changed = ok != self.ok
        self.ok, self.reason = ok, reason
        if changed:
            self.on_state(ok, reason)
