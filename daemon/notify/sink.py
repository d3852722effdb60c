"""The notification sink: committed transitions → routes and the escalation chain → the outbox
→ one delivery lane per receiver.

`deliver(rows)` (from the fan-out) only queues the rows. `run()` is the background task:
it routes each transition once (the outbox's cursor), writes the deliveries and chain steps to
the outbox in one transaction, takes the chain's timer steps on the wall clock, and runs a lane
per (channel, address): deliveries in order, each retried with exponential backoff
(`retry_initial_s` doubling to `retry_max_s`, jittered) until the receiver takes it — held on
disk meanwhile, so a restart goes on where it stopped.

Every chain step, every delivery and the first failure of each is an audit-ledger record
(`notification.escalated`, `notification.sent`, `notification.failed`), published on
`sealwatch/SITE/notifications` once written. A receiver that fails is a `/healthz` problem
and one log line when it starts failing and one when it is back; the counters and the outbox
depth are metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import tzinfo
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import aiomqtt
import orjson

from adapters.base import RateLimitedLog
from daemon.aio import wait_event
from daemon.damaged import set_aside_since
from daemon.metrics import Metrics
from daemon.notify import channels
from daemon.notify.chain import ChainState, Step, TransitionIn
from daemon.notify.config import Notifications
from daemon.notify.outbox import Outbox, Pending
from daemon.notify.routing import Delivery, deliveries, routed, zone_map, zones_of
from daemon.pipeline.flow import Pipeline
from daemon.pipeline.items import Row
from policies.timefmt import format_ts

log = logging.getLogger("sealwatch.notify")
T = TypeVar("T")
OUTBOX_FILE = "notifications.db"
PRUNE_EVERY_S = 3600.0
FEED_MAX = 10_000
DAMAGE_NOTICE_S = 86_400.0  # a damaged outbox set aside is a /healthz problem this long …
DAMAGE_CHECK_S = 60.0  # … (or until its file is moved away), looked at this often
OPEN_RETRY_MAX_S = 10.0  # an outbox that cannot be opened is tried again at least this often
Lane = tuple[str, str]  # channel, address
Key = tuple[str, str, str]  # delivery id, channel, address


class NotificationFeed:
    """A session task: notification records on `sealwatch/SITE/notifications` (QoS 1)."""

    name = "mqtt-notifications"

    def __init__(self, site_id: str) -> None:
        self.topic = f"sealwatch/{site_id}/notifications"
        self.queue: deque[bytes] = deque(maxlen=FEED_MAX)  # the ledger keeps them all
        self.ready = asyncio.Event()

    def put(self, record: dict[str, Any]) -> None:
        self.queue.append(orjson.dumps(record))
        self.ready.set()

    async def run(self, client: aiomqtt.Client) -> None:
        while True:
            if not self.queue:
                self.ready.clear()
                await wait_event(self.ready, None)
                continue
            payload = self.queue.popleft()
            try:
                await client.publish(self.topic, payload, qos=1)
            except BaseException:
                self.queue.appendleft(payload)
                raise


@dataclasses.dataclass
class _Batch:
    """Routed transitions not yet in the outbox (its write failed: tried again)."""

    items: list[Delivery]
    steps: list[Step]
    cursor: int | None


class NotificationSink:
    name = "notifications"

    outbox_class: Callable[[Path], Outbox] = Outbox

    def __init__(self, config: Notifications, pipeline: Pipeline) -> None:
        self.p = pipeline
        self.site = pipeline.site
        self.zones = zone_map(self.site)
        self.feed = NotificationFeed(self.site.id)
        # where routing starts when notifications are newly configured: after what is stored
        # now, before what recovery is about to release
        self._floor = pipeline.store.next_ids()["transitions"]
        self._setup(
            config,
            pipeline.settings.data_dir / OUTBOX_FILE,
            pipeline.metrics,
            pipeline.problems,
            pipeline.clock,
            self.site.tz,
        )

    def _setup(
        self,
        config: Notifications,
        path: Path,
        metrics: Metrics,
        problems: dict[str, str],
        clock: Callable[[], int],
        tz: tzinfo,
    ) -> None:
        """What every host shares (the site's pipeline, or the centre: daemon/central)."""
        self.config = config
        self.path = path
        self.metrics = metrics
        self.problems = problems
        self.clock = clock
        self.tz = tz
        self.outbox: Outbox | None = None
        self.cursor = 0
        self._incoming: deque[dict[str, Any]] = deque()
        self._unsaved: deque[_Batch] = deque()
        # sent, but the outbox does not record it yet (its disk failing): not sent again
        self._unmarked: dict[Key, int] = {}
        self._wake = asyncio.Event()
        self._chains: dict[str, ChainState] = {}
        self._latest: dict[str, dict[str, Any]] = {}  # alert id → its last line (for steps ≥ 2)
        self._lanes: dict[Lane, asyncio.Task[None]] = {}
        self._kicks: dict[Lane, asyncio.Event] = {}
        self._failing: dict[Lane, str] = {}
        self._depth: dict[str, int] = {}
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="notify-outbox")
        self._http: aiohttp.ClientSession | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._rlog = RateLimitedLog(log)
        self.sent = 0
        m = metrics
        m.counter(
            "sealwatch_notifications_sent_total",
            "Notifications delivered, by channel",
            ("channel",),
        )
        m.counter(
            "sealwatch_notifications_failed_total",
            "Delivery attempts that failed (each is retried), by channel",
            ("channel",),
        )
        m.gauge(
            "sealwatch_notification_outbox_depth",
            "Notifications waiting in the outbox, by channel",
            ("channel",),
            read=lambda: {(c,): float(self._depth.get(c, 0)) for c in self.config.channels},
        )
        m.counter(
            "sealwatch_notification_outbox_damaged_total",
            "Outbox files found damaged and set aside (what they held was not sent)",
        )
        m.gauge(
            "sealwatch_notification_outbox_unwritten",
            "Notifications routed or sent that the outbox file does not record yet (its disk "
            "refuses writes): held in memory, written when it can be",
            read=lambda: float(sum(len(b.items) for b in self._unsaved) + len(self._unmarked)),
        )

    # -- the sink ----------------------------------------------------------------------------------

    def deliver(self, rows: list[Row]) -> None:
        self._incoming.extend(r.as_dict() for r in rows)
        self._wake.set()

    # -- the task ----------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            wait = self.config.retry_initial_s
            while self.outbox is None:
                try:
                    self.outbox = await self._db(self.outbox_class, self.path)
                except (sqlite3.Error, OSError) as exc:
                    self._problem(
                        "outbox",
                        f"notification outbox {self.path} unusable ({exc}); "
                        f"{len(self._incoming)} alert transitions wait in memory to be routed",
                    )
                    await asyncio.sleep(wait)
                    wait = min(wait * 2, OPEN_RETRY_MAX_S)
            self._problem("outbox", None)
            if self.outbox.damaged is not None:
                aside, why = self.outbox.damaged
                self.metrics.inc("sealwatch_notification_outbox_damaged_total")
                log.error(
                    "notification outbox %s is damaged (%s): set aside as %s and started afresh "
                    "from the newest stored transition. Deliveries that waited in it and "
                    "transitions not yet routed are NOT sent (the store and the ledger still "
                    "have every alert); escalation steps of open critical alerts are taken "
                    "again. /healthz says so for %d h or until that file is moved away",
                    self.path,
                    why,
                    aside.name,
                    DAMAGE_NOTICE_S // 3600,
                )
            self._damage_check()
            # no pooled connections: a receiver that restarted is not met on a dead socket
            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                await self._start()
                await self._loop()
        finally:
            await self._close()

    async def _close(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self.outbox is not None:
            outbox = self.outbox
            self.outbox = None
            with contextlib.suppress(Exception):
                await asyncio.shield(self._db(outbox.close))
        self._executor.shutdown(wait=False)

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _start(self) -> None:
        """Route what was stored but not routed before the last stop; rebuild the chains."""
        assert self.outbox is not None
        store = self.p.store
        cursor = await self._db(self.outbox.cursor)
        if cursor is None:  # notifications newly configured: from now on, not the history
            cursor = self._floor
            await self._db(self.outbox.add, [], [], cursor, self.clock())
        self.cursor = cursor
        if self.config.escalation is not None:
            taken = await self._db(self.outbox.taken)
            late: list[Step] = []
            for view in store.open_alert_views():
                alert_id = str(view.get("alert_id"))
                for line in store.transitions(alert_id=alert_id):
                    if int(line["id"]) <= cursor:
                        late += [
                            s for s in self._chain_feed(line) if (alert_id, s.level) not in taken
                        ]
            if late:
                log.warning(
                    "%d escalation steps fell due while stopped: taking them now", len(late)
                )
                self._save(self._step_items(late), late, None)
        backlog: list[dict[str, Any]] = []
        while page := store.transitions(since_id=cursor, limit=10_000):
            backlog += page
            cursor = int(page[-1]["id"])
        if backlog:
            log.info("routing %d transitions stored since the last stop", len(backlog))
        self._incoming.extendleft(reversed(backlog))
        for lane in await self._db(self.outbox.lanes):
            self._kick(lane)
        await self._refresh_depth()

    async def _loop(self) -> None:
        next_prune = 0.0
        loop = asyncio.get_running_loop()
        next_damage_check = loop.time() + DAMAGE_CHECK_S
        while True:
            self._wake.clear()
            if self._incoming:
                self._route(list(self._incoming))
                self._incoming.clear()
            now = self.clock()
            timer_steps = [s for st in self._chains.values() for s in st.advance(now)]
            if timer_steps:
                self._save(self._step_items(timer_steps), timer_steps, None)
            for alert_id in [a for a, st in self._chains.items() if st.done]:
                del self._chains[alert_id]
                self._latest.pop(alert_id, None)
            await self._flush()
            if loop.time() >= next_prune:
                next_prune = loop.time() + PRUNE_EVERY_S
                await self._prune()
            if loop.time() >= next_damage_check:
                next_damage_check = loop.time() + DAMAGE_CHECK_S
                self._damage_check()
            timeout: float | None = 1.0 if self._unsaved or self._unmarked else None
            if "notify:outbox-damaged" in self.problems:
                timeout = min(timeout or DAMAGE_CHECK_S, DAMAGE_CHECK_S)
            dues = [d for st in self._chains.values() if (d := st.next_due()) is not None]
            if dues:
                wait = max(0.0, (min(dues) - self.clock()) / 1e6)
                timeout = wait if timeout is None else min(timeout, wait)
            await wait_event(self._wake, timeout)

    # -- routing -----------------------------------------------------------------------------------

    def _seals(self) -> frozenset[str]:
        return frozenset(s.id for s in self.p.stage.engine.seals() if s.status == "active")

    def _chain_for(self, key: str, line: dict[str, Any]) -> ChainState | None:
        """The alert's escalation chain: kept, started by a critical raise or escalation, or
        None (no chain configured, or none for this alert)."""
        esc = self.config.escalation
        if esc is None:
            return None
        st = self._chains.get(key)
        if st is None:
            if line.get("severity") != "critical" or line.get("state") not in (
                "raised",
                "escalated",
            ):
                return None
            st = self._chains[key] = ChainState(esc, key)
        return st

    def _chain_feed(self, line: dict[str, Any]) -> list[Step]:
        """The chain steps this transition takes (timer steps due before it first)."""
        alert_id = str(line["alert_id"])
        st = self._chain_for(alert_id, line)
        if st is None:
            return []
        t = TransitionIn.of(line)
        steps = st.advance(t.ts, inclusive=False) + st.feed(t)
        self._latest[alert_id] = line
        return steps

    def _route(self, lines: list[dict[str, Any]]) -> None:
        items: list[Delivery] = []
        steps: list[Step] = []
        cursor = self.cursor
        seals = self._seals()
        for line in lines:
            tid = int(line["id"])
            if tid <= cursor:
                continue  # routed already (the catch-up and the fan-out can both bring it)
            cursor = max(cursor, tid)
            alert_id = str(line["alert_id"])
            zones = zones_of(self.zones, str(line.get("subject", "")))
            names = list(routed(self.config, line, zones, seals))
            step = None
            for s in self._chain_feed(line):
                if s.transition_id == tid:
                    step = s
                    names += [n for n in s.recipients if n not in names]
                else:  # a timer step that fell due before this transition
                    items += self._step_items([s])
                steps.append(s)
            if names:
                items += deliveries(
                    self.config, self.site, line, f"{alert_id}-{tid}", names, zones, seals, step
                )
        self.cursor = cursor
        self._save(items, steps, cursor)

    def _step_items(self, steps: list[Step]) -> list[Delivery]:
        """Deliveries for timer steps (level ≥ 2): the alert's latest line, the step's people."""
        out: list[Delivery] = []
        seals = self._seals()
        for s in steps:
            line = self._latest.get(s.alert_id)
            if line is None or not s.recipients:
                continue
            zones = zones_of(self.zones, str(line.get("subject", "")))
            did = (
                f"{s.alert_id}-L{s.level}"
                if s.transition_id is None
                else (f"{s.alert_id}-{s.transition_id}")
            )
            out += deliveries(self.config, self.site, line, did, s.recipients, zones, seals, s)
        return out

    def _save(self, items: list[Delivery], steps: list[Step], cursor: int | None) -> None:
        if items or steps or cursor is not None:
            self._unsaved.append(_Batch(items, steps, cursor))

    async def _flush(self) -> None:
        """Write routed batches to the outbox, in order; a failing disk keeps them in memory
        (their lanes deliver them from there meanwhile) and they are tried again each second;
        then record what was sent meanwhile."""
        assert self.outbox is not None
        while self._unsaved:
            b = self._unsaved[0]
            try:
                _added, new_steps = await self._db(
                    self.outbox.add, b.items, b.steps, b.cursor, self.clock()
                )
            except sqlite3.Error as exc:
                self._not_writable(exc)
                for lane in dict.fromkeys(
                    (d.channel, d.address) for x in self._unsaved for d in x.items
                ):
                    self._kick(lane)  # delivered from memory meanwhile
                return
            self._unsaved.popleft()
            for s in new_steps:
                self._record(
                    "notification.escalated",
                    {
                        "alert_id": s.alert_id,
                        "level": s.level,
                        "recipients": list(s.recipients),
                        "due": format_ts(s.due, self.tz),
                        "cause": s.cause,
                        "transition_id": s.transition_id,
                    },
                )
            for lane in dict.fromkeys((d.channel, d.address) for d in b.items):
                self._kick(lane)
        if self._unmarked:
            keys = list(self._unmarked)
            try:
                await self._db(self.outbox.mark_sent, [(*k, self._unmarked[k]) for k in keys])
            except sqlite3.Error as exc:
                self._not_writable(exc)
                return
            for k in keys:
                self._unmarked.pop(k, None)
        self._problem("outbox", None)
        await self._refresh_depth()

    def _not_writable(self, exc: sqlite3.Error) -> None:
        waiting = sum(len(x.items) for x in self._unsaved)
        self._problem(
            "outbox",
            f"notification outbox not writable ({exc}); {waiting} notifications wait in "
            f"memory (delivered from there meanwhile), {len(self._unmarked)} sent not yet "
            "recorded; all are lost if the daemon stops before it is writable again",
        )

    async def _prune(self) -> None:
        assert self.outbox is not None
        before = self.clock() - round(self.config.keep_sent_days * 86_400e6)
        try:
            await self._db(self.outbox.prune, before, list(self._chains))
        except sqlite3.Error as exc:
            self._rlog.log(logging.WARNING, "prune", "notification outbox not pruned: %s", exc)

    async def _refresh_depth(self) -> None:
        assert self.outbox is not None
        with contextlib.suppress(sqlite3.Error):
            self._depth = await self._db(self.outbox.depth)

    # -- delivery lanes ----------------------------------------------------------------------------

    def _kick(self, lane: Lane) -> None:
        kick = self._kicks.setdefault(lane, asyncio.Event())
        kick.set()
        if lane not in self._lanes and self._tg is not None:
            self._lanes[lane] = self._tg.create_task(self._lane(lane), name=f"notify:{lane[0]}")

    async def _lane(self, lane: Lane) -> None:
        assert self.outbox is not None
        channel = self.config.channels.get(lane[0])
        kick = self._kicks[lane]
        if channel is None:
            self._rlog.log(
                logging.ERROR,
                f"gone:{lane[0]}",
                "notifications wait for channel %s, which the site file no longer has",
                lane[0],
            )
            self._lanes.pop(lane, None)
            return
        backoff = self.config.retry_initial_s
        while True:
            kick.clear()
            try:
                rows = await self._db(self.outbox.pending, *lane, 50 + len(self._unmarked))
            except sqlite3.Error as exc:
                self._rlog.log(logging.ERROR, "pending", "notification outbox unreadable: %s", exc)
                await asyncio.sleep(self.config.retry_max_s)
                continue
            rows = [r for r in rows if self._key(r) not in self._unmarked][:50]
            if not rows:
                rows = self._in_memory(lane)
            if not rows:
                if kick.is_set():
                    continue
                self._lanes.pop(lane, None)
                return
            for item in rows:
                while not await self._attempt(lane, item):
                    item = dataclasses.replace(item, attempts=item.attempts + 1)
                    await asyncio.sleep(backoff * random.uniform(0.8, 1.0))
                    backoff = min(backoff * 2, self.config.retry_max_s)
                backoff = self.config.retry_initial_s

    @staticmethod
    def _key(item: Pending | Delivery) -> Key:
        return item.delivery_id, item.channel, item.address

    def _in_memory(self, lane: Lane) -> list[Pending]:
        """The lane's deliveries the outbox could not take yet (newer than all it holds)."""
        return [
            Pending(-1, d.delivery_id, d.channel, d.address, d.alert_id, d.recipients, d.message, 0)
            for b in self._unsaved
            for d in b.items
            if (d.channel, d.address) == lane and self._key(d) not in self._unmarked
        ][:50]

    async def _attempt(self, lane: Lane, item: Pending) -> bool:
        """Send one delivery; True once the receiver took it (and the outbox knows, or it is
        noted to be recorded when the outbox can be written)."""
        assert self.outbox is not None and self._http is not None
        channel = self.config.channels[lane[0]]
        try:
            await channels.send(channel, item, self._http)
        except Exception as exc:
            error = (
                str(exc) if isinstance(exc, channels.SendError) else f"{type(exc).__name__}: {exc}"
            )
            if not isinstance(exc, channels.SendError):
                log.exception("sending a notification by %s failed unexpectedly", lane[0])
            # visible at once (problem, log on change, metric), then noted in the outbox
            self._lane_state(lane, error)
            self.metrics.inc("sealwatch_notifications_failed_total", lane[0])
            if item.attempts == 0:
                self._record("notification.failed", {**self._about(lane, item), "error": error})
            if item.id >= 0:
                with contextlib.suppress(sqlite3.Error):
                    await self._db(self.outbox.failed, item.id, error)
            return False
        try:
            if item.id < 0:  # from memory: recorded once its batch is in the outbox
                self._unmarked[self._key(item)] = self.clock()
                self._wake.set()  # (the loop may be waiting with nothing left to write)
            else:
                await self._db(self.outbox.sent, item.id, self.clock())
        except sqlite3.Error:
            # It went out; the outbox does not know yet: noted, recorded when it can be (a
            # daemon that dies meanwhile sends it again, under the same delivery id).
            self._unmarked[self._key(item)] = self.clock()
            self._wake.set()
        self.sent += 1
        self.metrics.inc("sealwatch_notifications_sent_total", lane[0])
        self._record(
            "notification.sent", {**self._about(lane, item), "attempts": item.attempts + 1}
        )
        self._lane_state(lane, None)
        await self._refresh_depth()
        return True

    def _about(self, lane: Lane, item: Pending) -> dict[str, Any]:
        return {
            "delivery_id": item.delivery_id,
            "alert_id": item.alert_id,
            "channel": lane[0],
            "recipients": list(item.recipients),
        }

    # -- visibility --------------------------------------------------------------------------------

    def _lane_state(self, lane: Lane, error: str | None) -> None:
        ch = lane[0]
        if error is None:
            if self._failing.pop(lane, None) is not None:
                log.warning("notifications by %s are delivered again", ch)
        else:
            if lane not in self._failing:
                log.error(
                    "notifications by %s not delivered (%s): held in the outbox and retried",
                    ch,
                    error,
                )
            self._failing[lane] = error
        failing = [e for (c, _), e in self._failing.items() if c == ch]
        self._problem(
            f"channel:{ch}",
            None
            if not failing
            else f"notifications by {ch} not delivered ({failing[-1]}); "
            f"{self._depth.get(ch, 0)} waiting in the outbox, retried",
        )

    def _damage_check(self) -> None:
        """A damaged outbox set aside in the last DAMAGE_NOTICE_S is a problem until its file
        is moved out of the data dir (the operator's acknowledgement)."""
        try:
            found = set_aside_since(self.path, time.time() - DAMAGE_NOTICE_S)
        except OSError:
            found = []
        self._problem(
            "outbox-damaged",
            None
            if not found
            else f"notification outbox was damaged and set aside as {found[-1].name}: the "
            "notifications waiting in it were not sent (move that file out of the data dir "
            "once seen)",
        )

    def _problem(self, what: str, text: str | None) -> None:
        key = f"notify:{what}"
        problems = self.problems
        if text is None:
            if problems.pop(key, None) is not None and what == "outbox":
                log.warning("notification outbox writable again")
        else:
            if key not in problems and what == "outbox":
                log.error("%s", text)
            problems[key] = text

    def _record(self, kind: str, body: dict[str, Any]) -> None:
        """A `notification.*` record: logged, and kept by `_keep`."""
        if kind != "notification.failed":
            log.info("%s %s", kind, orjson.dumps(body).decode())
        self._keep(kind, body)

    def _keep(self, kind: str, body: dict[str, Any]) -> None:
        """At a site: an audit-ledger record, published on MQTT once it is written (the centre
        keeps it in its outbox's log table instead: daemon/central/notify.py)."""
        record = {"kind": kind, "ts": format_ts(self.clock(), self.tz), **body}
        self.p.audit(kind, body, release=lambda: self.feed.put(record))
