"""The telemetry sink: what the pipeline committed → points → the spool → the database.

`take(events, rows)` is the pipeline's tap (daemon/pipeline/sinks.py `FanOut.tap`), called on
the event loop after each commit is released: it only appends to an in-memory inbox, so it
never blocks and never raises. A collector thread turns the inbox into line protocol every
`flush_interval_s` (or once `batch_size` points wait) and appends it to the spool on disk; the
writer thread (writer.py) sends the spool to the database. `run()` (a task of the daemon)
adds the daemon's own gauges every `stats_interval_s` and keeps the health current: a
`/healthz` problem and a log line on each change while the database is unreachable or the
spool nears its bound.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from adapters.base import RateLimitedLog
from daemon.pipeline.flow import Pipeline
from daemon.pipeline.items import Row
from daemon.telemetry.options import InfluxOptions
from daemon.telemetry.points import Points
from daemon.telemetry.spool import Spool
from daemon.telemetry.writer import Writer
from policies.site import Site

log = logging.getLogger("sealwatch.telemetry")
SPOOL_FILE = "telemetry-spool.db"
Inbox = deque[tuple[list[tuple[Any, ...]], list[Row]] | list[str]]


class Telemetry:
    """Created by the runtime when `daemon.influxdb` is set; `start()`, `run()`, `stop()`."""

    def __init__(self, site: Site, opts: InfluxOptions, data_dir: Path, pipeline: Pipeline) -> None:
        self.opts = opts
        self.pipeline = pipeline
        self.points = Points(site)
        self.spool_path = data_dir / SPOOL_FILE
        self.spool: Spool | None = None
        self.writer: Writer | None = None
        self._inbox: Inbox = deque()
        self._pending = 0  # items taken since the collector was last woken (loop side only)
        self._held: list[str] = []  # lines the spool could not take (its disk failing)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._warned = False
        self.errors = 0  # items that could not become points (a bug), logged
        self.held_dropped = 0
        self.spool_failing: str | None = None  # why the spool refuses writes, while it does
        self._rlog = RateLimitedLog(log, 30.0)
        self._register_metrics()

    # -- metrics -------------------------------------------------------------------------------

    def _register_metrics(self) -> None:
        m = self.pipeline.metrics

        def spool(attr: str) -> float:
            return float(getattr(self.spool, attr, 0) or 0)

        def writer(attr: str) -> float:
            return float(getattr(self.writer, attr, 0) or 0)

        m.gauge(
            "sealwatch_telemetry_spool_bytes",
            "Bytes of points waiting in the telemetry spool",
            read=lambda: spool("bytes"),
        )
        m.gauge(
            "sealwatch_telemetry_spool_points",
            "Points waiting in the telemetry spool",
            read=lambda: spool("points"),
        )
        m.gauge(
            "sealwatch_telemetry_spool_limit_bytes",
            "The spool's bound (daemon.influxdb.spool_max_bytes)",
            read=lambda: float(self.opts.spool_max_bytes),
        )
        m.gauge(
            "sealwatch_telemetry_spool_warning",
            "1 while the spool is above spool_warning_pct of its bound",
            read=lambda: float(bool(self.spool and self.spool.warned)),
        )
        m.gauge(
            "sealwatch_telemetry_up",
            "1 while the last write to the database succeeded, 0 while writes fail",
            read=lambda: float(bool(self.writer and self.writer.ok is not False)),
        )
        m.counter(
            "sealwatch_telemetry_points_written_total",
            "Points the database accepted",
            read=lambda: writer("written"),
        )
        m.counter(
            "sealwatch_telemetry_write_failures_total",
            "Write attempts that failed (the batch stayed in the spool)",
            read=lambda: writer("failures"),
        )
        m.counter(
            "sealwatch_telemetry_dropped_total",
            "Points dropped, by reason: spool bound, damaged spool, refused by the database, "
            "spool disk failing, conversion error",
            ("reason",),
            read=lambda: {
                ("bound",): spool("dropped_bound"),
                ("corrupt",): spool("dropped_corrupt"),
                ("refused",): writer("refused"),
                ("spool_unwritable",): float(self.held_dropped),
                ("error",): float(self.errors),
            },
        )

    # -- loop side -----------------------------------------------------------------------------

    def start(self) -> None:
        """Open the spool and start both threads. A spool that cannot be opened (its disk)
        leaves the daemon running without telemetry, loudly."""
        self._loop = asyncio.get_running_loop()
        try:
            self.spool = Spool(
                self.spool_path, self.opts.spool_max_bytes, self.opts.spool_warning_pct
            )
        except (sqlite3.Error, OSError) as exc:
            reason = f"telemetry spool {self.spool_path} cannot be opened ({exc}): no telemetry"
            log.error("%s; the daemon runs on without it", reason)
            self.pipeline.problems["telemetry"] = reason
            return
        self.writer = Writer(self.opts, self.spool, self._state_threadsafe)
        self.pipeline.fanout.taps.append(self.take)
        self._thread = threading.Thread(target=self._collect_loop, name="sealwatch-telemetry")
        self._thread.daemon = True
        self._thread.start()
        self.writer.start()
        log.info(
            "telemetry to %s (org %s, bucket %s), spool %s (bound %d bytes)",
            self.opts.url,
            self.opts.org,
            self.opts.bucket,
            self.spool_path,
            self.opts.spool_max_bytes,
        )

    def take(self, events: list[tuple[Any, ...]], rows: list[Row]) -> None:
        """The pipeline's tap: a committed batch's events and transitions (never blocks)."""
        if not (events or rows):
            return
        self._inbox.append((events, rows))
        self._pending += len(events) + len(rows)
        if self._pending >= self.opts.batch_size:
            self._pending = 0
            self._wake.set()

    async def run(self) -> None:
        """The daemon's own gauges every `stats_interval_s`; health checks every second."""
        next_stats = time.monotonic()
        while True:
            now = time.monotonic()
            if self.spool is not None and now >= next_stats:
                next_stats = now + self.opts.stats_interval_s
                self._stats()
            self._check_spool()
            await asyncio.sleep(min(1.0, self.opts.stats_interval_s))

    def _stats(self) -> None:
        m = self.pipeline.metrics
        try:
            lines = self.points.stats(
                time.time_ns() // 1000, m.unlabelled(), m.read("sealwatch_alerts")
            )
        except Exception:
            self.errors += 1
            self._rlog.exception("stats", "telemetry: the daemon's gauges could not be read")
            return
        self._inbox.append(lines)

    def _check_spool(self) -> None:
        """The spool logs its own warning (before the bound); /healthz follows it here."""
        self._warned = self.spool is not None and self.spool.warned
        self._problem()

    def _state_threadsafe(self, ok: bool, reason: str) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._state, ok, reason)

    def _state(self, ok: bool, reason: str) -> None:
        points = self.spool.points if self.spool is not None else 0
        if ok:
            log.warning(
                "telemetry database %s reachable again: writing the %d spooled points in order",
                self.opts.url,
                points,
            )
        else:
            log.error(
                "telemetry database %s unreachable (%s): points wait in the spool (%d now, "
                "bound %d bytes) and are written in order when it is back",
                self.opts.url,
                reason,
                points,
                self.opts.spool_max_bytes,
            )
        self._problem()

    def _problem(self) -> None:
        problems = self.pipeline.problems
        spool, writer = self.spool, self.writer
        if spool is None or writer is None:
            return
        parts = []
        if writer.ok is False:
            parts.append(f"telemetry database {self.opts.url} unreachable ({writer.reason})")
        if self._warned:
            parts.append(
                f"telemetry spool at {spool.fill * 100:.0f}% of its {spool.max_bytes} bytes"
            )
        if (failing := self.spool_failing) is not None:
            parts.append(
                f"telemetry spool {self.spool_path} not writable ({failing}); {len(self._held)} "
                f"points held in memory, {self.held_dropped} dropped"
            )
        if parts:
            problems["telemetry"] = "; ".join(parts) + f"; {spool.points} points spooled"
        else:
            problems.pop("telemetry", None)

    async def stop(self) -> None:
        """Everything taken goes to the spool (on disk); the writer stops after its write."""
        if self.spool is None:
            return
        if self._thread is not None:
            self._stop.set()
            self._wake.set()
            await asyncio.to_thread(self._thread.join, 30.0)
            self._thread = None
        if self.writer is not None:
            await asyncio.to_thread(self.writer.stop)
        if self.spool.points:
            log.info("telemetry: %d points wait in the spool for the next start", self.spool.points)
        self.spool.close()
        self.spool = None

    # -- the collector thread --------------------------------------------------------------------

    def _collect_loop(self) -> None:
        while True:
            stopping = self._stop.is_set()
            if not stopping:
                self._wake.wait(self.opts.flush_interval_s)
                self._wake.clear()
            self._collect()
            if stopping:
                return

    def _collect(self) -> None:
        assert self.spool is not None and self.writer is not None
        lines = self._held
        self._held = []
        while self._inbox:
            item = self._inbox.popleft()
            if isinstance(item, list):
                lines += item
                continue
            events, rows = item
            try:
                lines += self.points.events(events)
                lines += self.points.transitions(rows)
            except Exception:
                self.errors += len(events) + len(rows)
                self._rlog.exception("convert", "telemetry: a batch could not become points")
        size = self.opts.batch_size
        for i in range(0, len(lines), size):
            try:
                self.spool.append(lines[i : i + size])
            except (sqlite3.Error, OSError) as exc:
                self._hold(lines[i:], exc)
                break
        else:
            if self.spool_failing is not None and lines:
                self.spool_failing = None
                log.warning(
                    "telemetry spool %s writable again: the %d points held in memory are "
                    "spooled (%d were dropped meanwhile)",
                    self.spool_path,
                    len(lines),
                    self.held_dropped,
                )
        self.writer.wake.set()

    def _hold(self, lines: list[str], exc: BaseException) -> None:
        """The spool's disk fails: keep the lines in memory (up to the spool's bound)."""
        keep = lines
        size = sum(len(x) + 1 for x in keep)
        while keep and size > self.opts.spool_max_bytes:
            size -= len(keep[0]) + 1
            keep = keep[1:]
            self.held_dropped += 1
        self._held = keep
        if self.spool_failing is None:
            log.error(
                "telemetry spool %s cannot be written (%s): points are held in memory up to "
                "%d bytes (daemon.influxdb.spool_max_bytes) and spooled when it can be; beyond, "
                'the oldest are dropped (sealwatch_telemetry_dropped_total{reason="%s"})',
                self.spool_path,
                exc,
                self.opts.spool_max_bytes,
                "spool_unwritable",
            )
        self.spool_failing = f"{type(exc).__name__}: {exc}"
