"""The centre's notifications: daemon/notify's sink, fed with the transitions every site sends
(already counted once per alert id, state and ts by `state.Centre`) instead of a pipeline's.

The same routes, durable outbox (`DATA_DIR/notifications.db`), delivery lanes with backoff,
HMAC-signed webhooks, mail and SMS, and escalation chain (`chain.ChainState`, run on the wall
clock from the transitions: the site's `acknowledged` arrives, the chain stops). What differs,
because the centre has no site file, store or ledger:

- routes filter by `sites` (the site a transition came from), not by zone; a route's `seal`
  matches the seals in force in the site's latest summary;
- an alert is known as `SITE:ALERT_ID` (chains, steps taken, the outbox's alert id), and a
  delivery id is `SITE:ALERT_ID-STATE@TS` for a transition (the same transition delivered
  twice by the cluster gives the same id, kept once by the outbox) and `SITE:ALERT_ID-L<n>`
  for a timer step of the chain: ids never collide between sites;
- the `notification.*` records a site writes to its audit ledger go to a plain `records`
  table of the outbox file (the centre keeps no tamper-evident ledger), and to the log.

Not kept across a restart of the centre: the chains of open alerts (the steps they took are,
so a redelivered transition takes none twice); a chain restarts with the next critical raise.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from daemon.central.config import CentralConfig
from daemon.metrics import Metrics
from daemon.notify.chain import Step, TransitionIn
from daemon.notify.outbox import Outbox
from daemon.notify.routing import Delivery, deliveries, routed
from daemon.notify.sink import OUTBOX_FILE, NotificationSink
from daemon.pipeline.items import Row
from policies.timefmt import format_ts

log = logging.getLogger("sealwatch.central")
RECORDS = """
CREATE TABLE IF NOT EXISTS records(
    id INTEGER PRIMARY KEY, ts TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL);
"""
SITE_KEY = "__site"  # the site of a chain's latest line (kept with it, removed with it)


@dataclass(frozen=True, slots=True)
class Place:
    """A site of CENTRAL.yaml, as a message names it."""

    id: str
    name: str
    timezone: str


class CentralOutbox(Outbox):
    """The outbox, plus a plain log table of `notification.*` records."""

    def _connect(self) -> sqlite3.Connection:
        conn = super()._connect()
        conn.executescript(RECORDS)
        return conn

    def keep(self, ts: str, kind: str, body: str) -> None:
        self.conn.execute("INSERT INTO records(ts, kind, body) VALUES (?, ?, ?)", (ts, kind, body))

    def records(self) -> list[dict[str, Any]]:
        return [
            {"ts": ts, "kind": kind, **orjson.loads(body)}
            for ts, kind, body in self.conn.execute(
                "SELECT ts, kind, body FROM records ORDER BY id"
            )
        ]


def wall_us() -> int:
    return time.time_ns() // 1000


class CentralNotifications(NotificationSink):
    outbox_class = CentralOutbox

    def __init__(
        self,
        config: CentralConfig,
        metrics: Metrics,
        problems: dict[str, str],
        seals_of: Callable[[str], frozenset[str]],
        clock: Callable[[], int] = wall_us,
    ) -> None:
        assert config.notifications is not None and config.data_dir is not None
        self.places = {s.id: Place(s.id, s.name, config.timezone) for s in config.sites}
        self.seals_of = seals_of
        self._setup(
            config.notifications,
            config.data_dir / OUTBOX_FILE,
            metrics,
            problems,
            clock,
            ZoneInfo(config.timezone),
        )
        metrics.gauge(
            "sealwatch_notification_chains_open",
            "Critical alerts whose escalation chain is running",
            read=lambda: float(len(self._chains)),
        )

    def take(self, site_id: str, line: dict[str, Any]) -> None:
        """A new transition from a site (`Centre.on_transition`)."""
        self._incoming.append({"site": site_id, "line": line})
        self._wake.set()

    def deliver(self, rows: list[Row]) -> None:  # pragma: no cover - a site's fan-out only
        raise TypeError("the centre's notifications take site transitions: use take()")

    def status(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "waiting": sum(self._depth.values()),
            "chains_open": len(self._chains),
            "chains": sorted(self._chains)[:100],  # SITE:ALERT_ID of the first hundred
            "failing": sorted({ch for ch, _ in self._failing}),
        }

    async def _start(self) -> None:
        """No store to catch up from: the cluster's persistent session redelivers what came
        while the centre was away. Deliveries left in the outbox go on."""
        assert self.outbox is not None
        for lane in await self._db(self.outbox.lanes):
            self._kick(lane)
        await self._refresh_depth()

    def _route(self, lines: list[dict[str, Any]]) -> None:
        items: list[Delivery] = []
        steps: list[Step] = []
        for item in lines:
            site_id, line = str(item["site"]), item["line"]
            place = self.places.get(site_id)
            if place is None:
                continue  # the Centre rejects unknown sites before this
            key = f"{site_id}:{line['alert_id']}"
            seals = self.seals_of(site_id)
            names = list(routed(self.config, line, frozenset(), seals, site_id))
            step = None
            for s, own in self._feed(site_id, key, line):
                if own:
                    step = s
                    names += [n for n in s.recipients if n not in names]
                else:  # a timer step that fell due before this transition
                    items += self._step_items([s])
                steps.append(s)
            if names:
                did = f"{key}-{line['state']}@{line['ts']}"
                got = deliveries(self.config, place, line, did, names, frozenset(), seals, step)
                items += [dataclasses.replace(d, alert_id=key) for d in got]
        self._save(items, steps, None)

    def _feed(self, site_id: str, key: str, line: dict[str, Any]) -> list[tuple[Step, bool]]:
        """The chain's steps for this transition: (step, taken by this transition itself)."""
        st = self._chain_for(key, line)
        if st is None:
            return []
        t = TransitionIn.of({**line, "alert_id": key, "id": None})
        timers = st.advance(t.ts, inclusive=False)
        own = st.feed(t)
        self._latest[key] = {**line, SITE_KEY: site_id}
        return [(s, False) for s in timers] + [(s, True) for s in own]

    def _step_items(self, steps: list[Step]) -> list[Delivery]:
        """Deliveries of timer steps (level ≥ 2): the alert's latest line, the step's people."""
        out: list[Delivery] = []
        for s in steps:
            kept = self._latest.get(s.alert_id)
            if kept is None or not s.recipients:
                continue
            line = {k: v for k, v in kept.items() if k != SITE_KEY}
            site_id = str(kept[SITE_KEY])
            got = deliveries(
                self.config,
                self.places[site_id],
                line,
                f"{s.alert_id}-L{s.level}",
                s.recipients,
                frozenset(),
                self.seals_of(site_id),
                s,
            )
            out += [dataclasses.replace(d, alert_id=s.alert_id) for d in got]
        return out

    def _keep(self, kind: str, body: dict[str, Any]) -> None:
        """A plain log row in the outbox file (no ledger at the centre)."""
        outbox = self.outbox
        if not isinstance(outbox, CentralOutbox):
            return
        ts = format_ts(self.clock(), self.tz)
        with contextlib.suppress(RuntimeError):  # the executor is shut down: stopping
            fut = asyncio.get_running_loop().run_in_executor(
                self._executor, outbox.keep, ts, kind, orjson.dumps(body).decode()
            )
            fut.add_done_callback(self._kept)

    def _kept(self, fut: asyncio.Future[None]) -> None:
        if fut.cancelled() or fut.exception() is None:
            return
        self._rlog.log(
            logging.WARNING, "records", "notification record not kept: %s", fut.exception()
        )
