"""Stage 4, fan-out: committed alert transitions go to every sink.

A sink receives the rows of one commit (`deliver`) and must neither block nor raise: it keeps
its own queue and reports its own health. Fan-out guards each sink anyway — one failing sink
is logged (rate-limited) and counted, and the others still get every row. The MQTT alert
publisher (daemon/pipeline/mqtt_alerts.py) and the dashboard's live feed are sinks; the
notification and telemetry sinks of later work plug in the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from adapters.base import RateLimitedLog
from daemon.metrics import Metrics
from daemon.pipeline.items import Row

log = logging.getLogger("sealwatch.sinks")
Rows = list[Row]
Callback = Callable[[list[dict[str, Any]]], None]
# A tap gets each released commit's accepted events (store rows, store.Writes.events) and
# transitions — both may be empty: the engine's state may have changed anyway (a seal coming
# into force on a tick).
Tap = Callable[[list[tuple[Any, ...]], Rows], None]


class Sink(Protocol):
    """Where committed transitions go. `deliver` returns at once and never raises."""

    name: str

    def deliver(self, rows: Rows) -> None: ...


class Listeners:
    """A sink that calls in-process subscribers (the dashboard's live feed)."""

    name = "listeners"

    def __init__(self) -> None:
        self.callbacks: list[Callback] = []

    def subscribe(self, callback: Callback) -> None:
        """`callback(rows)` with each commit's transitions as dicts ({"id", **line})."""
        self.callbacks.append(callback)

    def unsubscribe(self, callback: Callback) -> None:
        if callback in self.callbacks:
            self.callbacks.remove(callback)

    def deliver(self, rows: Rows) -> None:
        dicts = [r.as_dict() for r in rows]
        for cb in list(self.callbacks):
            try:
                cb(dicts)
            except Exception:
                log.exception("a live subscriber failed; it stays subscribed")


class FanOut:
    """Delivers each commit's rows to every sink, in registration order."""

    def __init__(self, metrics: Metrics) -> None:
        self.sinks: list[Sink] = []
        self.taps: list[Tap] = []  # telemetry, Home Assistant: return at once, never raise
        self.metrics = metrics
        self._rlog = RateLimitedLog(log)
        metrics.counter("sealwatch_sink_errors_total", "Deliveries a sink failed on", ("sink",))

    def add(self, sink: Sink) -> None:
        self.sinks.append(sink)

    def deliver(self, rows: Rows) -> None:
        if not rows:
            return
        for sink in self.sinks:
            try:
                sink.deliver(rows)
            except Exception:
                self.metrics.inc("sealwatch_sink_errors_total", sink.name)
                self._rlog.log(
                    logging.ERROR,
                    f"sink:{sink.name}",
                    "sink %s failed to take %d transitions; the other sinks still get them",
                    sink.name,
                    len(rows),
                    exc_info=True,
                )

    def tap(self, events: list[tuple[Any, ...]], rows: Rows) -> None:
        """A released commit's accepted events and transitions to every tap."""
        for tap in self.taps:
            try:
                tap(events, rows)
            except Exception:
                self.metrics.inc("sealwatch_sink_errors_total", "tap")
                self._rlog.log(logging.ERROR, "tap", "a tap failed", exc_info=True)
