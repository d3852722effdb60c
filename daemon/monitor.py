"""The live loop: one ingest queue, one engine task, the timer tick, snapshots and recovery.

Everything that reaches the engine goes through `offer()` into one queue; a single task
parses, feeds the engine, and stores the accepted event with its transitions in one SQLite
transaction before anything is published. The store therefore holds exactly what the engine
was fed, in feed order, so `sealwatch export-events | sealwatch replay` gives the same alerts.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import pickle
import re
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from adapters.base import RateLimitedLog
from daemon import lifecycle
from daemon.config import Settings
from daemon.lifecycle import AlertView
from daemon.metrics import Metrics
from daemon.store import Snapshot, Store
from policies.engine import Engine, EventRejected, Transition
from policies.events import Event, Rejection, parse_event
from policies.site import Site
from policies.timefmt import format_ts, parse_ts, seconds

log = logging.getLogger("sealwatch.monitor")

OPERATOR_TYPES = frozenset(
    {
        "alert.ack",
        "alert.shelve",
        "alert.unshelve",
        "seal.start",
        "seal.end",
        "approval.granted",
        "inspection.done",
        "review.done",
    }
)
SUPERVISOR_ROLES = ("supervisor", "secrecy_officer")
DIGESTS_KEPT = 10_000
GATHER_TURNS = 4


def wall_us() -> int:
    return time.time_ns() // 1000


@dataclass(slots=True)
class Incoming:
    """One thing for the engine task: an MQTT payload, an adapter's event, a command."""

    kind: str  # event | status | wrong_topic | reject | sync
    payload: bytes | dict[str, Any]
    origin: str  # mqtt, http, cli, or an adapter's name
    received: int
    topic: str | None = None
    device: str | None = None  # the default device (the topic's last level)
    actor: str | None = None
    retained: bool = False
    reason: str | None = None  # for kind == reject
    ack: Callable[[], None] | None = None  # MQTT PUBACK, sent once the event is stored
    reply: asyncio.Future[Outcome] | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    accepted: bool
    reason: str | None = None
    seq: int | None = None
    transitions: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "reason": self.reason,
            "seq": self.seq,
            "transitions": self.transitions,
        }


class Reject(Exception):
    """Internal: this payload is refused for `reason` (class `kind` for the counter);
    `transitions` are the stored rows of timers that fired before it was refused."""

    def __init__(
        self, kind: str, reason: str, transitions: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(reason)
        self.kind, self.reason = kind, reason
        self.transitions = transitions or []


def reason_class(reason: str) -> str:
    """A short, bounded label for a rejection reason (metrics must not explode)."""
    head = re.split(r"['\":(\d]", reason, maxsplit=1)[0].strip().lower()
    return re.sub(r"[^a-z]+", "_", head).strip("_")[:40] or "invalid"


def site_digest(site: Site) -> str:
    return hashlib.sha256(repr(site).encode()).hexdigest()


def new_metrics() -> Metrics:
    m = Metrics()
    m.counter("sealwatch_events_total", "Events accepted, by type", ("type",))
    m.counter("sealwatch_rejected_total", "Payloads rejected, by reason", ("reason",))
    m.counter("sealwatch_duplicates_total", "Redelivered payloads dropped")
    m.counter("sealwatch_engine_errors_total", "Events the engine failed on (a bug), refused")
    m.counter("sealwatch_restamped_total", "Events slightly out of order, re-stamped")
    m.counter(
        "sealwatch_transitions_total", "Alert transitions, by policy and state", ("policy", "state")
    )
    m.counter("sealwatch_mqtt_reconnects_total", "MQTT connections lost and retried")
    m.counter("sealwatch_published_total", "Alert transitions acked by the broker")
    m.counter("sealwatch_operator_actions_total", "Operator actions recorded", ("kind",))
    return m


class Monitor:
    """The engine, its store and its queues. All methods run on the event loop's thread."""

    def __init__(
        self,
        site: Site,
        settings: Settings,
        store: Store,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], int] = wall_us,
    ) -> None:
        self.site = site
        self.tz = site.tz
        self.settings = settings
        self.store = store
        self.clock = clock
        self.metrics = metrics or new_metrics()
        self.queue: asyncio.Queue[Incoming] = asyncio.Queue()
        self.outbox: deque[tuple[int, str, str, str]] = deque()  # (id, alert, line, retained)
        self.outbox_ready = asyncio.Event()
        self.listeners: list[Callable[[list[dict[str, Any]]], None]] = []
        self.engine = Engine(site)
        self.views: dict[str, AlertView] = {}
        self.suppressions: list[dict[str, Any]] = []
        self._seal_cache: dict[str, tuple[Any, ...]] = {}
        self._digests: deque[str] = deque()
        self._digest_set: set[str] = set()
        self._status: dict[str, str] = {}
        self._hold_since: float | None = time.monotonic()  # until the broker backlog is in
        self._events_since_snapshot = 0
        self._last_snapshot = time.monotonic()
        self.last_tick = time.monotonic()
        self.recovery_s = 0.0
        self._rlog = RateLimitedLog(log)
        self._lag_us = seconds(settings.timer_lag_s)
        self._reorder_us = seconds(settings.reorder_tolerance_s)
        self._future_us = seconds(settings.future_tolerance_s)
        self.metrics.gauge(
            "sealwatch_queue_depth",
            "Items waiting for the engine",
            read=lambda: float(self.queue.qsize()),
        )
        self.metrics.gauge(
            "sealwatch_outbox_depth",
            "Transitions waiting to be published",
            read=lambda: float(len(self.outbox)),
        )
        self.metrics.gauge(
            "sealwatch_engine_lag_seconds",
            "Wall clock minus the engine clock",
            read=self.engine_lag_s,
        )
        self.metrics.gauge(
            "sealwatch_alerts",
            "Alerts not yet closed, by policy and ISA state",
            ("policy", "isa_state"),
            read=self._alert_gauge,
        )

    # -- what other parts call -------------------------------------------------------------

    def offer(self, item: Incoming) -> None:
        self.queue.put_nowait(item)

    async def submit(self, event: dict[str, Any], *, source: str) -> None:
        """EventSink for adapters: one normalized event."""
        self.offer(Incoming("event", event, source, self.clock()))

    async def reject(self, source: str, payload: str, reason: str) -> None:
        """EventSink for adapters: device data that could not become an event."""
        self.offer(Incoming("reject", payload.encode(), source, self.clock(), reason=reason))

    async def command(self, event: dict[str, Any], *, origin: str, actor: str | None) -> Outcome:
        """An operator action as an event, through the same path as any other."""
        fut: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self.offer(Incoming("event", event, origin, self.clock(), actor=actor, reply=fut))
        return await fut

    def ack_many(self, acks: list[Callable[[], None]]) -> None:
        """Send the PUBACKs of a stored batch (the MQTT link replaces this to coalesce)."""
        for ack in acks:
            ack()

    def hold(self) -> None:
        """Stop the timer clock until `release` (the broker backlog is being delivered)."""
        if self._hold_since is None:
            self._hold_since = time.monotonic()

    def release(self) -> None:
        self._hold_since = None

    @property
    def holding(self) -> bool:
        if self._hold_since is None:
            return False
        if time.monotonic() - self._hold_since > self.settings.ingest_hold_max_s:
            log.warning(
                "broker backlog not confirmed after %.0f s; running the clock on",
                self.settings.ingest_hold_max_s,
            )
            self._hold_since = None
            return False
        return True

    def engine_lag_s(self) -> float:
        clock = self.engine.clock
        return 0.0 if clock is None else max(0.0, (self.clock() - clock) / 1e6)

    def _alert_gauge(self) -> dict[tuple[str, ...], float]:
        out: Counter[tuple[str, ...]] = Counter()
        for v in self.views.values():
            out[(v.policy, v.isa_state)] += 1
        return {k: float(n) for k, n in out.items()}

    # -- recovery --------------------------------------------------------------------------

    def recover(self) -> None:
        """Rebuild the engine from the newest snapshot and the events stored after it."""
        t0 = time.monotonic()
        snap = self.store.latest_snapshot()
        digest = site_digest(self.site)
        after_seq = after_tid = 0
        if snap is not None and self.store.get_meta("snapshot_site") == digest:
            self.engine = pickle.loads(snap.blob)
            after_seq, after_tid = snap.event_seq, snap.transition_id
        elif snap is not None:
            log.warning(
                "the site file changed since the last snapshot: rebuilding the engine "
                "from every stored event"
            )
        known = Counter(self.store.transition_keys_after(after_tid))
        produced: list[Transition] = []
        n = 0
        for stored in self.store.events_after(after_seq):
            ev = parse_event(stored.source, self.site)
            if isinstance(ev, Rejection):
                log.error("stored event %d no longer parses (%s); skipped", stored.seq, ev.reason)
                continue
            try:
                produced += self.engine.feed(ev)
            except EventRejected as exc:
                produced += self.engine.pending_transitions()
                log.error("stored event %d refused on recovery (%s)", stored.seq, exc.reason)
            n += 1
        clock = self.store.get_meta("clock")
        if clock is not None:
            produced += self.engine.advance(int(clock))
        fresh = []
        for tr in produced:
            key = (tr.ts, tr.alert_id, tr.state)
            if known[key] > 0:
                known[key] -= 1  # already stored (and published or queued): not raised twice
            else:
                fresh.append(tr)
        self.views = {v["alert_id"]: AlertView.from_dict(v) for v in self.store.open_alert_views()}
        self.suppressions = self.store.suppressions(ending_after=self.clock())
        for d in self.store.recent_digests(DIGESTS_KEPT):
            self._remember(d)
        for stored in self.store.events_after(max(0, self.store.last_event_seq() - 5000)):
            if stored.source.get("type") == "device.status":
                self._status[stored.source["device"]] = stored.source.get("state", "")
        if fresh:
            with self.store.transaction():
                self._store_transitions(fresh, None)
        self._sync_seals()
        self.reload_outbox()
        self.recovery_s = time.monotonic() - t0
        log.info(
            "recovered in %.3f s: snapshot at event %d, %d events re-fed, %d transitions "
            "already stored, %d new",
            self.recovery_s,
            after_seq,
            n,
            len(produced) - len(fresh),
            len(fresh),
        )

    def reload_outbox(self) -> None:
        """Queue every transition the broker has not acked (on start and on reconnect)."""
        self.outbox.clear()
        self.outbox.extend(self.store.unpublished())
        if self.outbox:
            self.outbox_ready.set()

    def snapshot(self) -> None:
        self.store.set_meta("snapshot_site", site_digest(self.site))
        self.store.save_snapshot(
            Snapshot(
                taken=self.clock(),
                event_seq=self.store.last_event_seq(),
                transition_id=self.store.last_transition_id(),
                clock=self.engine.clock,
                blob=pickle.dumps(self.engine, protocol=pickle.HIGHEST_PROTOCOL),
            )
        )
        self._events_since_snapshot = 0
        self._last_snapshot = time.monotonic()

    def maybe_snapshot(self) -> None:
        if self._events_since_snapshot and (
            self._events_since_snapshot >= self.settings.snapshot_every_events
            or time.monotonic() - self._last_snapshot >= self.settings.snapshot_interval_s
        ):
            self.snapshot()

    # -- the tasks -------------------------------------------------------------------------

    async def run_engine(self) -> None:
        """The one consumer of the ingest queue."""
        while True:
            batch = [await self.queue.get()]
            # The MQTT reader hands over one message per loop iteration: give it a few turns
            # so a burst is stored in one transaction (a commit per event caps ingest).
            for _ in range(GATHER_TURNS):
                if self.queue.qsize() + len(batch) >= self.settings.batch_max:
                    break
                await asyncio.sleep(0)
            while len(batch) < self.settings.batch_max and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            self.process(batch)
            self.maybe_snapshot()

    async def run_ticks(self) -> None:
        """Fire due timers on the wall clock, `timer_lag_s` behind it."""
        while True:
            self.tick()
            await asyncio.sleep(self.settings.tick_s)

    def tick(self) -> None:
        self.last_tick = time.monotonic()
        if self.holding:
            return
        trs = self.engine.advance(self.clock() - self._lag_us)
        if trs:
            with self.store.transaction():
                rows = self._store_transitions(trs, None)
                self.store.set_meta("clock", str(self.engine.clock))
            self._after_commit(rows)
        self.maybe_snapshot()

    def process(self, batch: list[Incoming]) -> None:
        """Parse, feed and store a batch in one transaction; then ack, reply and publish."""
        outcomes: list[Outcome] = []
        rows: list[dict[str, Any]] = []
        with self.store.transaction():
            for item in batch:
                outcome = self._accept(item)
                outcomes.append(outcome)
                rows += outcome.transitions
            # The clock the stored transitions were computed up to (recovery replays to it).
            self.store.set_meta("clock", str(self.engine.clock))
        acks = [item.ack for item in batch if item.ack is not None]
        if acks:
            self.ack_many(acks)
        for item, outcome in zip(batch, outcomes, strict=True):
            if item.reply is not None and not item.reply.done():
                item.reply.set_result(outcome)
        self._after_commit(rows)

    def _after_commit(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.outbox_ready.set()
            for listener in self.listeners:
                listener(rows)

    # -- one item --------------------------------------------------------------------------

    def _accept(self, item: Incoming) -> Outcome:
        try:
            return self._feed(item)
        except Reject as rej:
            self._store_rejection(item, rej.kind, rej.reason)
            return Outcome(False, rej.reason, transitions=rej.transitions)

    def _store_rejection(self, item: Incoming, kind: str, reason: str) -> None:
        raw = item.payload if isinstance(item.payload, bytes) else orjson.dumps(item.payload)
        self.store.add_rejection(
            received=item.received, origin=item.origin, topic=item.topic, reason=reason, payload=raw
        )
        self.metrics.inc("sealwatch_rejected_total", kind)
        where = item.topic or item.origin
        self._rlog.warning(f"reject:{kind}", "rejected from %s: %s", where, reason)

    def _decode(self, item: Incoming) -> dict[str, Any] | None:
        """The payload as a JSON object (None for a sync marker, already handled)."""
        if item.kind == "reject":
            raise Reject("adapter", item.reason or "rejected by adapter")
        if item.kind == "sync":
            self.release()
            return None
        if isinstance(item.payload, dict):
            return item.payload
        size = len(item.payload)
        if size > self.settings.max_payload_bytes:
            raise Reject(
                "too_large",
                f"payload of {size} bytes is over the {self.settings.max_payload_bytes} byte limit",
            )
        if item.kind == "wrong_topic":
            raise Reject(
                "wrong_topic",
                f"wrong topic '{item.topic}' (expected "
                f"sealwatch/{self.site.id}/events/DEVICE or …/status/"
                "DEVICE)",
            )
        if item.kind == "status":
            state = item.payload.decode("utf-8", "replace").strip()
            if state not in ("online", "offline"):
                raise Reject(
                    "bad_status", f"status payload must be online or offline, got {state[:40]!r}"
                )
            if item.retained and self._status.get(item.device or "") == state:
                raise _Skip  # a retained status we already know, redelivered on resubscribe
            return {"type": "device.status", "device": item.device, "state": state}
        try:
            obj = orjson.loads(item.payload)
        except orjson.JSONDecodeError as exc:
            raise Reject("not_json", f"not valid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise Reject("not_object", f"expected a JSON object, got {type(obj).__name__}")
        return obj

    def _feed(self, item: Incoming) -> Outcome:
        try:
            obj = self._decode(item)
        except _Skip:
            return Outcome(True, "already known")
        if obj is None:
            return Outcome(True)
        if item.device is not None and obj.get("device", item.device) != item.device:
            raise Reject(
                "device_mismatch",
                f"device '{obj.get('device')}' does not match the topic's device '{item.device}'",
            )
        digest = None
        if isinstance(item.payload, bytes) and "ts" in obj:
            # A QoS 1 redelivery after a crash between storing and acking: same bytes, same ts.
            digest = hashlib.blake2b(
                item.payload, digest_size=12, key=(item.topic or "").encode()[:64]
            ).hexdigest()
            if digest in self._digest_set:
                # Dropped, but recorded: a rejection row says what came twice.
                self.metrics.inc("sealwatch_duplicates_total")
                raise Reject(
                    "duplicate",
                    "duplicate delivery: the same payload with the same "
                    "ts on this topic is already stored",
                )
        parsed = parse_event(obj, self.site, device=item.device, now_us=item.received)
        if isinstance(parsed, Rejection):
            raise Reject(reason_class(parsed.reason), parsed.reason)
        ev: Event = parsed
        now = self.clock()
        if ev.ts > now + self._future_us:
            raise Reject(
                "future",
                f"ts {ev.source.get('ts')} is {(ev.ts - now) / 1e6:.1f} s "
                "in the future (device clock wrong?)",
            )
        device_ts = None
        floor = self.engine.floor
        if floor is not None and ev.ts < floor:
            behind = floor - ev.ts
            if behind > self._reorder_us:
                raise Reject(
                    "out_of_order",
                    f"out of order: ts {ev.source.get('ts')} is {behind / 1e6:.1f} s "
                    "older than what the engine has already processed",
                )
            device_ts = ev.ts
            ev = ev.restamped(floor, self.tz)
            self.metrics.inc("sealwatch_restamped_total")
        try:
            trs = self.engine.feed(ev)
        except EventRejected as exc:
            # Timers that fired before the refused event still happened: stored, published
            # and shown like any other transition.
            rows = self._store_transitions(self.engine.pending_transitions(), None)
            raise Reject(reason_class(exc.reason), exc.reason, rows) from None
        except Exception as exc:
            # A bug in a rule must not take the daemon down: the message would never be
            # acknowledged, the broker would redeliver it after the restart, and the daemon
            # would crash on it again. The event is refused and kept as a rejection; the
            # engine may hold a partial update from it, which the log says loudly.
            log.error(
                "engine failed on %s event from %s; refused and stored as a rejection "
                "(please report this bug)",
                ev.type,
                ev.device,
                exc_info=True,
            )
            self.metrics.inc("sealwatch_engine_errors_total")
            rows = self._store_transitions(self.engine.pending_transitions(), None)
            raise Reject(
                "engine_error", f"internal error in the engine: {type(exc).__name__}: {exc}", rows
            ) from None
        actor = item.actor or (
            str(ev.source["badge"]) if ev.type in OPERATOR_TYPES and "badge" in ev.source else None
        )
        seq = self.store.add_event(
            ts=ev.ts,
            device=ev.device,
            type=ev.type,
            source=ev.source,
            received=item.received,
            origin=item.origin,
            device_ts=device_ts,
            actor=actor,
            digest=digest,
        )
        if digest is not None:
            self._remember(digest)
        if ev.type == "device.status":
            self._status[ev.device] = str(ev.source.get("state"))
        self.metrics.inc("sealwatch_events_total", ev.type)
        self._events_since_snapshot += 1
        if ev.type in OPERATOR_TYPES:
            self._record_action(
                ev.ts, ev.type, actor, item.origin, ev.source.get("alert_id"), seq, ev.source
            )
        rows = self._store_transitions(trs, seq)
        if ev.type.startswith("seal.") or any(t.policy == "pre-seal" for t in trs):
            self._sync_seals(actor if ev.type.startswith("seal.") else None, ev.type)
        return Outcome(True, None, seq, rows)

    def _remember(self, digest: str) -> None:
        self._digests.append(digest)
        self._digest_set.add(digest)
        if len(self._digests) > DIGESTS_KEPT:
            self._digest_set.discard(self._digests.popleft())

    # -- transitions, alerts, actions, seals --------------------------------------------------

    def _store_transitions(
        self, trs: list[Transition], event_seq: int | None
    ) -> list[dict[str, Any]]:
        if not trs:
            return []
        open_now = {a.id: a for a in self.engine.open_alerts()}
        rows = []
        for tr in trs:
            suppressed = self.is_suppressed(tr.subject, tr.ts)
            engine_alert = open_now.get(tr.alert_id)
            view = lifecycle.apply(
                self.views.get(tr.alert_id), tr, engine_alert, suppressed=suppressed
            )
            line = tr.to_dict(self.tz)
            if tr.acked_by:
                line["acked_by"] = tr.acked_by
            if tr.comment:
                line["comment"] = tr.comment
            if suppressed:
                line["suppressed"] = True
            text = orjson.dumps(line).decode()
            retained = (
                ""
                if view.closed
                else orjson.dumps(
                    {
                        **line,
                        "isa_state": view.isa_state,
                        "raised": format_ts(view.raised_ts, self.tz),
                    }
                ).decode()
            )
            tid = self.store.add_transition(
                event_seq=event_seq,
                row=_fields(tr),
                suppressed=suppressed,
                line=text,
                retained=retained,
            )
            self.store.audit.append(tr.ts, "transition", {"id": tid, **line})
            self.store.save_alert(tr.alert_id, view.isa_state, view.closed, view.to_dict())
            if view.isa_state == lifecycle.NORMAL:
                self.views.pop(tr.alert_id, None)
            else:
                self.views[tr.alert_id] = view
            self.outbox.append((tid, tr.alert_id, text, retained))
            self.metrics.inc("sealwatch_transitions_total", tr.policy, tr.state)
            rows.append({"id": tid, **line})
        return rows

    def _record_action(
        self,
        ts: int,
        kind: str,
        actor: str | None,
        origin: str,
        alert_id: Any,
        event_seq: int | None,
        body: dict[str, Any],
    ) -> None:
        aid = str(alert_id) if alert_id is not None else None
        action_id = self.store.add_action(
            ts=ts,
            kind=kind,
            actor=actor,
            origin=origin,
            alert_id=aid,
            event_seq=event_seq,
            body=body,
        )
        self.store.audit.append(
            ts,
            "action",
            {
                "id": action_id,
                "kind": kind,
                "actor": actor,
                "origin": origin,
                "alert_id": aid,
                "event_seq": event_seq,
                "body": body,
            },
        )
        self.metrics.inc("sealwatch_operator_actions_total", kind)

    def _sync_seals(self, actor: str | None = None, etype: str = "") -> None:
        for s in self.engine.seals():
            key = (s.status, s.start, s.end, s.planned_end, s.name)
            if self._seal_cache.get(s.id) == key:
                continue
            self._seal_cache[s.id] = key
            self.store.save_seal(
                id=s.id,
                name=s.name,
                classification=s.classification,
                start=s.start,
                end=s.end,
                planned_end=s.planned_end,
                status=s.status,
                started_by=actor if etype == "seal.start" else None,
                ended_by=actor if etype == "seal.end" else None,
            )

    def is_suppressed(self, subject: str, ts: int) -> bool:
        device = subject.split("/", 1)[0]
        return any(
            s["device"] == device and s["start"] <= ts <= s["end"] for s in self.suppressions
        )

    # -- daemon-only operator actions (not engine events) --------------------------------------

    def add_comment(self, alert_id: str, badge: str, text: str, origin: str) -> Outcome:
        if self.store.alert_view(alert_id) is None:
            return Outcome(False, f"unknown alert '{alert_id}'")
        if not text.strip():
            return Outcome(False, "empty comment")
        now = self.clock()
        with self.store.transaction():
            self._record_action(
                now,
                "alert.comment",
                badge,
                origin,
                alert_id,
                None,
                {
                    "alert_id": alert_id,
                    "badge": badge,
                    "comment": text,
                    "ts": format_ts(now, self.tz),
                },
            )
        return Outcome(True)

    def add_suppression(
        self, device: str, start: str, end: str, reason: str, badge: str, origin: str
    ) -> Outcome:
        """A maintenance window for a device, scheduled by a supervisor (ISA-18.2 design
        suppression): its alerts are stored and audited but flagged as suppressed."""
        if device not in self.site.device_kind:
            return Outcome(False, f"unknown device '{device}'")
        person = self.site.people.get(badge)
        if person is None or person.role not in SUPERVISOR_ROLES:
            return Outcome(False, f"badge '{badge}' is not a supervisor or secrecy officer")
        try:
            t0, t1 = parse_ts(start), parse_ts(end)
        except ValueError as exc:
            return Outcome(False, f"bad time: {exc}")
        if t1 <= t0:
            return Outcome(False, "end must be after start")
        if not reason.strip():
            return Outcome(False, "a maintenance window needs a reason")
        now = self.clock()
        with self.store.transaction():
            sid = self.store.add_suppression(
                device=device, start=t0, end=t1, reason=reason, by_badge=badge, created=now
            )
            self._record_action(
                now,
                "maintenance.window",
                badge,
                origin,
                None,
                None,
                {
                    "id": sid,
                    "device": device,
                    "start": start,
                    "end": end,
                    "reason": reason,
                    "badge": badge,
                },
            )
        self.suppressions = self.store.suppressions(ending_after=now)
        return Outcome(True, None, sid)


class _Skip(Exception):
    """Internal: nothing to do for this item (it is acked and counted as accepted)."""


def _fields(tr: Transition) -> dict[str, Any]:
    return {
        k: getattr(tr, k)
        for k in (
            "ts",
            "alert_id",
            "policy",
            "subject",
            "severity",
            "state",
            "clause",
            "message",
            "acked_by",
            "comment",
        )
    }
