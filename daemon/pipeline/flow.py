"""The pipeline: ingest → engine → persist → fan-out, wired together and run as tasks.

Everything that reaches the engine goes through `offer()` into one queue; one task takes
batches from it, runs the engine stage, and hands the rows to the persist stage; once they are
written (or, while the store fails, at once) the batch is released: PUBACKs to the broker,
replies to operators, transitions to the sinks. The store therefore holds exactly what the
engine was fed, in feed order, so `sealwatch export-events | sealwatch replay` gives the same
alerts. Nothing here waits for the disk.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

from adapters.mqtt_mapping import MappingRule
from daemon.config import Settings
from daemon.metrics import Metrics
from daemon.pipeline.decode import Decoder
from daemon.pipeline.evaluate import EngineStage, Result
from daemon.pipeline.items import Incoming, Kind, Outcome
from daemon.pipeline.mqtt_alerts import AlertPublisher
from daemon.pipeline.mqtt_head import HeadPublisher
from daemon.pipeline.persist import Commit, Persister, StoreHealth
from daemon.pipeline.sinks import FanOut, Listeners
from daemon.store import Store, Writes
from policies.events import DAEMON_DEVICE
from policies.site import Site

log = logging.getLogger("sealwatch.pipeline")


class Acker(Protocol):
    def ack_many(self, acks: list[Callable[[], None]]) -> None: ...


GATHER_TURNS = 4


def wall_us() -> int:
    return time.time_ns() // 1000


def new_metrics() -> Metrics:
    m = Metrics()
    m.counter("sealwatch_events_total", "Events accepted, by type", ("type",))
    m.counter("sealwatch_rejected_total", "Payloads rejected, by reason", ("reason",))
    m.counter("sealwatch_duplicates_total", "Redelivered payloads dropped")
    m.counter(
        "sealwatch_mapping_ignored_total", "Third-party messages a mapping's where left alone"
    )
    m.counter("sealwatch_engine_errors_total", "Events the engine failed on (a bug), refused")
    m.counter("sealwatch_restamped_total", "Events slightly out of order, re-stamped")
    m.counter("sealwatch_late_accepted_total", "Events buffered during an outage, accepted late")
    m.counter(
        "sealwatch_transitions_total", "Alert transitions, by policy and state", ("policy", "state")
    )
    m.counter("sealwatch_mqtt_reconnects_total", "MQTT connections lost and retried")
    m.counter("sealwatch_mqtt_sessions_lost_total", "Broker sessions found lost on reconnect")
    m.counter("sealwatch_published_total", "Alert transitions acked by the broker")
    m.counter("sealwatch_operator_actions_total", "Operator actions recorded", ("kind",))
    m.counter("sealwatch_store_failures_total", "Times the store went from writable to failing")
    return m


class Pipeline:
    """The running stages. Readers never get this object: they get daemon.view.ReadView."""

    def __init__(
        self,
        site: Site,
        settings: Settings,
        store: Store,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], int] = wall_us,
        mappings: list[MappingRule] | None = None,
    ) -> None:
        self.site = site
        self.settings = settings
        self.store = store
        self.clock = clock
        self.metrics = metrics or new_metrics()
        self.queue: asyncio.Queue[Incoming] = asyncio.Queue()
        self.decoder = Decoder(site.id, settings.max_payload_bytes, mappings)
        self.stage = EngineStage(site, settings, store, self.decoder, self.metrics, clock)
        self.persister = Persister(
            store,
            queue_max=settings.store_queue_max,
            retry_s=settings.store_retry_s,
            on_health=self._store_health,
        )
        self.fanout = FanOut(self.metrics)
        self.publisher = AlertPublisher(site.id, self._mark_published)
        self.listeners = Listeners()
        self.fanout.add(self.publisher)
        self.fanout.add(self.listeners)
        self._acker: Acker | None = None  # the broker session, once connected to it
        self.head: HeadPublisher | None = None  # the ledger's signed head (with a site key)
        self.problems: dict[str, str] = {}  # component → what is wrong (for /healthz)
        self.health_states: dict[str, str] = {}  # component → last daemon.health state sent
        self.last_tick = time.monotonic()
        self._hold_since: float | None = time.monotonic()  # until the broker backlog is in
        self._outage_since: int | None = None
        self._session_known = store.get_meta("mqtt_session") == settings.mqtt.client_id
        self._last_snapshot = time.monotonic()
        self._lag_us = round(settings.timer_lag_s * 1e6)
        self._paused = False
        m = self.metrics
        m.gauge(
            "sealwatch_queue_depth",
            "Items waiting for the engine",
            read=lambda: float(self.queue.qsize()),
        )
        m.gauge(
            "sealwatch_store_pending",
            "Accepted items not yet written to the store",
            read=lambda: float(self.persister.pending_items),
        )
        m.gauge(
            "sealwatch_store_degraded",
            "1 while store writes fail (alerting goes on; writes are held in memory)",
            read=lambda: float(self.persister.health is StoreHealth.DEGRADED),
        )
        m.gauge(
            "sealwatch_outbox_depth",
            "Transitions waiting to be published",
            read=lambda: float(len(self.publisher.outbox)),
        )
        m.gauge(
            "sealwatch_engine_lag_seconds",
            "Wall clock minus the engine clock",
            read=self.engine_lag_s,
        )
        m.gauge(
            "sealwatch_alerts",
            "Alerts not yet closed, by policy and ISA state",
            ("policy", "isa_state"),
            read=self._alert_gauge,
        )

    # -- start and stop ------------------------------------------------------------------------

    def start(self) -> None:
        """Recover the engine and start the writer (on the running loop)."""
        result = self.stage.recover()
        self.publisher.load(self.store.unpublished())
        self.persister.start()
        note = self._head_note()

        def release() -> None:
            self.fanout.deliver(result.rows)
            note()

        self.persister.submit(Commit(result.writes, release=release))

    async def stop(self, *, snapshot: bool) -> None:
        if snapshot and self.persister.health is StoreHealth.OK:
            self.persister.submit(Commit(self.stage.snapshot()))
        await self.persister.stop()

    # -- what other parts call -------------------------------------------------------------------

    def offer(self, item: Incoming) -> None:
        self.queue.put_nowait(item)

    async def submit(self, event: dict[str, Any], *, source: str) -> None:
        """EventSink for adapters: one normalized event."""
        self.offer(Incoming(Kind.EVENT, event, source, self.clock()))

    async def reject(self, source: str, payload: str, reason: str) -> None:
        """EventSink for adapters: device data that could not become an event."""
        self.offer(
            Incoming(
                Kind.REJECT, payload.encode(errors="replace"), source, self.clock(), reason=reason
            )
        )

    async def command(self, event: dict[str, Any], *, origin: str, actor: str | None) -> Outcome:
        """An operator action as an event, through the same path as any other."""
        fut: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self.offer(Incoming(Kind.EVENT, event, origin, self.clock(), actor=actor, reply=fut))
        return await fut

    async def comment(self, alert_id: str, badge: str, text: str, origin: str) -> Outcome:
        outcome, writes = self.stage.comment(alert_id, badge, text, origin)
        return await self._commit_for(outcome, writes)

    async def suppression(
        self, device: str, start: str, end: str, reason: str, badge: str, origin: str
    ) -> Outcome:
        outcome, writes = self.stage.suppression(device, start, end, reason, badge, origin)
        return await self._commit_for(outcome, writes)

    def audit(
        self, kind: str, body: dict[str, Any], release: Callable[[], None] | None = None
    ) -> None:
        """Record something outside the engine (a login, a user change, a notification) in the
        audit chain; `release` is called once it is written (persist before publish)."""
        writes = self.stage.audit_record(kind, body)
        note = self._head_note()
        done = note if release is None else _both(note, release)
        self.persister.submit(Commit(writes, release=done))

    async def _commit_for(self, outcome: Outcome, writes: Writes) -> Outcome:
        if not writes:
            return outcome
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        note = self._head_note()

        def release() -> None:
            _resolve(done)
            note()

        self.persister.submit(Commit(writes, 1, release=release))
        await done
        return outcome

    # -- the broker ------------------------------------------------------------------------------

    def attach(self, acker: Acker) -> None:
        """The broker session that sends PUBACKs for what the pipeline accepted (in batches)."""
        self._acker = acker

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

    def broker_lost(self, since_us: int) -> None:
        self.hold()
        if self._outage_since is None:
            self._outage_since = since_us
        self.problems["mqtt"] = "broker connection lost; reconnecting"

    def broker_back(self, session_present: bool) -> None:
        self.problems.pop("mqtt", None)
        if self._outage_since is not None:
            self.stage.open_late_window(self._outage_since)
            self._outage_since = None
        if not session_present and self._session_known:
            self.metrics.inc("sealwatch_mqtt_sessions_lost_total")
            reason = (
                "the broker came back without the daemon's session: messages it held for the "
                "daemon may be lost (is persistence on? see README)"
            )
            log.error(reason)
            self._health_event("mqtt-session", "lost", reason)
        elif session_present:
            self._health_event_if_needed("mqtt-session")
        if not self._session_known:
            self._session_known = True
            self.persister.submit(
                Commit(Writes(meta={"mqtt_session": self.settings.mqtt.client_id}))
            )

    # -- the store's health ----------------------------------------------------------------------

    def _store_health(self, health: StoreHealth, reason: str) -> None:
        if health is StoreHealth.DEGRADED:
            self.metrics.inc("sealwatch_store_failures_total")
            self.problems["store"] = (
                f"store writes failing ({reason}); alerting goes on, writes held in memory"
            )
            log.error(
                "store writes failing (%s): alerting goes on over MQTT and the dashboard; up to "
                "%d accepted items are held in memory and written when the store is back",
                reason,
                self.settings.store_queue_max,
            )
            self._health_event("store", "degraded", reason)
        else:
            self.problems.pop("store", None)
            log.warning(
                "store writable again: writing the %d items held meanwhile",
                self.persister.pending_items,
            )
            self._health_event("store", "ok", "")

    def _health_event(self, component: str, state: str, reason: str) -> None:
        self.health_states[component] = state
        event: dict[str, Any] = {
            "type": "daemon.health",
            "device": DAEMON_DEVICE,
            "component": component,
            "state": state,
        }
        if reason:
            event["reason"] = reason[:500]
        self.offer(Incoming(Kind.EVENT, event, "daemon", self.clock()))

    def _health_event_if_needed(self, component: str) -> None:
        if self.health_states.get(component) not in (None, "ok"):
            self._health_event(component, "ok", "")

    # -- the tasks -------------------------------------------------------------------------------

    async def run_engine(self) -> None:
        """The one consumer of the ingest queue."""
        settings = self.settings
        while True:
            if not self.persister.room.is_set():
                if not self._paused:
                    self._paused = True
                    log.error(
                        "ingest paused: %d accepted items wait for the store (the bound, "
                        "daemon.store_queue_max); the broker keeps what follows",
                        self.persister.pending_items,
                    )
                await self.persister.room.wait()
                self._paused = False
                log.warning("ingest resumed")
            batch = [await self.queue.get()]
            # The MQTT reader hands over one burst per loop iteration: give it a few turns so
            # a burst is evaluated and written as one batch.
            for _ in range(GATHER_TURNS):
                if self.queue.qsize() + len(batch) >= settings.batch_max:
                    break
                await asyncio.sleep(0)
            while len(batch) < settings.batch_max and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            self.process(batch)
            self.maybe_snapshot()

    def process(self, batch: list[Incoming]) -> None:
        if any(item.kind == Kind.SYNC for item in batch):
            self.release()
        result = self.stage.process(batch)
        self._commit(result, batch)

    async def run_ticks(self) -> None:
        """Fire due timers on the wall clock, `timer_lag_s` behind it."""
        while True:
            self.tick()
            await asyncio.sleep(self.settings.tick_s)

    def tick(self) -> None:
        self.last_tick = time.monotonic()
        if self.holding:
            return
        result = self.stage.tick(self.clock() - self._lag_us)
        if result.writes:
            self._commit(result, [])
        self.maybe_snapshot()

    def _commit(self, result: Result, batch: list[Incoming]) -> None:
        acks = [item.ack for item in batch if item.ack is not None]
        replies = [
            (item.reply, outcome)
            for item, outcome in zip(batch, result.outcomes, strict=False)
            if item.reply is not None
        ]
        rows = result.rows
        events = result.writes.events  # accepted events, for the telemetry tap
        note = self._head_note()

        def release() -> None:
            note()
            if acks:
                if self._acker is not None:
                    self._acker.ack_many(acks)
                else:
                    for ack in acks:
                        ack()
            for fut, outcome in replies:
                if not fut.done():
                    fut.set_result(outcome)
            self.fanout.deliver(rows)
            self.fanout.tap(events, rows)

        self.persister.submit(Commit(result.writes, len(batch), release))

    def _head_note(self) -> Callable[[], None]:
        """What the chain's head is once the commit being submitted is written: for the
        retained signed head (persist before publish)."""
        seq, digest = self.stage.audit.seq, self.stage.audit.head

        def note() -> None:
            if self.head is not None:
                self.head.note(seq, digest)

        return note

    def maybe_snapshot(self) -> None:
        n = self.stage.events_since_snapshot
        if n and (
            n >= self.settings.snapshot_every_events
            or time.monotonic() - self._last_snapshot >= self.settings.snapshot_interval_s
        ):
            self.snapshot()

    def snapshot(self) -> None:
        self._last_snapshot = time.monotonic()
        if self.persister.health is StoreHealth.DEGRADED:
            return  # it would only wait in memory; the next one after recovery will do
        self.persister.submit(Commit(self.stage.snapshot()))

    def _mark_published(self, ids: list[int]) -> None:
        self.metrics.inc("sealwatch_published_total", by=len(ids))
        self.persister.submit(Commit(Writes(published=ids)))

    # -- readings --------------------------------------------------------------------------------

    def engine_lag_s(self) -> float:
        clock = self.stage.engine.clock
        return 0.0 if clock is None else max(0.0, (self.clock() - clock) / 1e6)

    def _alert_gauge(self) -> dict[tuple[str, ...], float]:
        out: Counter[tuple[str, ...]] = Counter()
        for v in self.stage.views.values():
            out[(v.policy, v.isa_state)] += 1
        return {k: float(n) for k, n in out.items()}


def _both(first: Callable[[], None], then: Callable[[], None]) -> Callable[[], None]:
    def both() -> None:
        first()
        then()

    return both


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
