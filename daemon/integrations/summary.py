"""The site's summary for the centre, retained on `sealwatch/SITE/summary` (docs/central.md).

What a provincial centre needs to know of a site at a glance, in one message the site broker's
bridge forwards: the seals in force with their jammer downtime so far (the dashboard's seal
panel), the active alerts by severity, the worst of them, and the active alerts themselves (at
most `MAX_ALERTS`, worst first), so a centre that starts — or fails over to a cluster node
that never saw the retained copy — is complete after one period without asking the site.

A session task and a sink like Home Assistant's states: `note()` (each committed batch) marks
it dirty; `run(client)` publishes at most every `min_interval_s` when something changed, and
every `period_s` regardless (the centre's "last seen", and its catch-up). Failure policy:
while the broker is away nothing is sent; the first round of a new connection sends the
latest. A view of the engine, not a record: nothing here is stored.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiomqtt
import orjson

from daemon.aio import wait_event
from daemon.http.state import SEVERITY_RANK, StateBuilder
from daemon.lifecycle import AlertView
from daemon.pipeline.items import Row
from daemon.view import ReadView, format_time

MAX_ALERTS = 100
PERIOD_S = 30.0


def _rank(a: AlertView) -> tuple[int, int]:
    return (SEVERITY_RANK.get(a.severity, -1), -a.raised_ts)


class SiteSummary:
    """`note()` when something may have changed; `run(client)` for each connection."""

    name = "site-summary"

    def __init__(
        self, view: ReadView, *, min_interval_s: float = 1.0, period_s: float = PERIOD_S
    ) -> None:
        self.view = view
        self.topic = f"sealwatch/{view.site.id}/summary"
        self.min_interval_s = min_interval_s
        self.period_s = period_s
        self.seals = StateBuilder(view, {})
        self.ready = asyncio.Event()
        self.published = 0

    def note(self, _events: list[tuple[Any, ...]], _rows: list[Row]) -> None:
        """A tap of the fan-out: after every released commit."""
        self.ready.set()

    def build(self) -> dict[str, Any]:
        view = self.view
        active = sorted(
            (a for a in view.open_alerts() if a.active and not a.closed), key=_rank, reverse=True
        )
        counts = {s: 0 for s in SEVERITY_RANK}
        for a in active:
            counts[a.severity] = counts.get(a.severity, 0) + 1
        alerts = [
            {
                "alert_id": a.alert_id,
                "policy": a.policy,
                "subject": a.subject,
                "severity": a.severity,
                "isa_state": a.isa_state,
                "message": a.message,
                "raised": format_time(a.raised_ts, view.tz),
            }
            for a in active[:MAX_ALERTS]
        ]
        now_ms = view.clock() // 1000
        return {
            "site": view.site.id,
            "name": view.site.name,
            "ts": format_time(view.clock(), view.tz),
            "seals": [
                _uptime(s, now_ms) for s in self.seals.seal_panel() if s["status"] == "active"
            ],
            "active": counts,
            "worst": alerts[0] if alerts else None,
            "alerts": alerts,
            "alerts_truncated": max(0, len(active) - MAX_ALERTS),
        }

    async def run(self, client: aiomqtt.Client) -> None:
        self.ready.set()  # a new connection: send the latest at once
        while True:
            await wait_event(self.ready, self.period_s)
            self.ready.clear()
            started = time.monotonic()
            await client.publish(self.topic, orjson.dumps(self.build()), qos=1, retain=True)
            self.published += 1
            await asyncio.sleep(max(0.0, self.min_interval_s - (time.monotonic() - started)))


def _uptime(seal: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """A seal of the dashboard's panel with each band's jammer uptime so far (ms and %)."""
    elapsed = max(0, (seal.get("end_ms") or now_ms) - (seal.get("start_ms") or now_ms))
    bands = []
    for b in seal["bands"]:
        up = max(0, elapsed - b["down_ms"])
        pct = 100.0 if elapsed == 0 else round(100.0 * up / elapsed, 3)
        bands.append({**b, "up_ms": up, "uptime_pct": pct})
    keep = ("id", "name", "classification", "status", "start", "planned_end", "interruptions")
    return {**{k: seal.get(k) for k in keep}, "elapsed_ms": elapsed, "bands": bands}
