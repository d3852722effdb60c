"""Stage 2, the engine: admission, the policies, and the alert lifecycle, on the event loop.

It turns decoded objects into events (refusing what does not parse, what is out of time or a
duplicate delivery), feeds them to the engine and derives the alerts' ISA-18.2 views. It writes
nothing: every row it produces (events, rejections, transitions, actions, audit records, seals)
goes into a `Writes` with its id assigned here, for the persist stage to write in order. So
the engine never waits for the disk, and a write that fails can be retried unchanged.

Failure policy: an item that cannot be accepted is a stored rejection with a reason and a
counter, never an exception; a bug in a rule refuses that one event (loudly) instead of
crash-looping the daemon on a redelivered message.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from adapters.base import RateLimitedLog
from daemon import audit, lifecycle, snapshot
from daemon.config import Settings
from daemon.lifecycle import AlertView
from daemon.metrics import Metrics
from daemon.pipeline.decode import Decoder, reason_class
from daemon.pipeline.items import Ignored, Incoming, Kind, Outcome, Reject, Row, Skip
from daemon.store import Snapshot, Store, Writes
from policies.engine import Engine, EventRejected, Transition
from policies.events import Event, Rejection, SealEvent, parse_event
from policies.rules.authority import actor_of
from policies.site import Site
from policies.timefmt import format_ts, parse_ts, seconds

log = logging.getLogger("sealwatch.engine")

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
# The key naming who acted in a transition line, by state (docs/interfaces.md §5).
ACTOR_KEY = {"acknowledged": "acked_by", "shelved": "shelved_by", "unshelved": "unshelved_by"}
# Events only the daemon itself may produce (its own health).
DAEMON_TYPES = frozenset({"daemon.health"})
SUPERVISOR_ROLES = ("supervisor", "secrecy_officer")
DIGESTS_KEPT = 10_000
# Where a person acts (a console's gateway, the HTTP API, the CLI): every operator action must
# name who acts, even where a stream may omit it (policies/rules/authority.py).
PERSON_ORIGINS = frozenset({"mqtt", "http", "cli"})


@dataclass(slots=True)
class Result:
    """What one step of the engine stage produced."""

    writes: Writes = field(default_factory=Writes)
    outcomes: list[Outcome] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)  # transitions for the sinks


@dataclass(slots=True)
class LateWindow:
    """After a broker outage: events from `since` on are accepted late until `until` (wall)."""

    since: int
    until: int


class EngineStage:
    """The engine and everything derived from it; all methods run on the event loop."""

    def __init__(
        self,
        site: Site,
        settings: Settings,
        store: Store,
        decoder: Decoder,
        metrics: Metrics,
        clock: Callable[[], int],
    ) -> None:
        self.site = site
        self.tz = site.tz
        self.settings = settings
        self.store = store  # read only here: recovery and lookups
        self.decoder = decoder
        self.metrics = metrics
        self.clock = clock
        self.engine = Engine(site)
        self.views: dict[str, AlertView] = {}
        self.suppressions: list[dict[str, Any]] = []
        self.late: LateWindow | None = None
        self.recovery_s = 0.0
        self.events_since_snapshot = 0
        ids = store.next_ids()
        self._seq, self._tid = ids["events"], ids["transitions"]
        self._action_id, self._suppression_id = ids["actions"], ids["suppressions"]
        self._rejection_id = ids["rejections"]
        self.audit = store.audit
        self._seal_cache: dict[str, tuple[Any, ...]] = {}
        # Each seal's row as stored (the upsert keeps who started and ended it), for its hash.
        self._seal_rows: dict[str, tuple[Any, ...]] = {
            s["id"]: (
                s["id"],
                s["name"],
                s["classification"],
                s["start"],
                s["end"],
                s["planned_end"],
                s["status"],
                s["started_by"],
                s["ended_by"],
                s["precheck"],
            )
            for s in store.seals()
        }
        self._digests: deque[str] = deque()
        self._digest_set: set[str] = set()
        self._rlog = RateLimitedLog(log)
        self._reorder_us = seconds(settings.reorder_tolerance_s)
        self._future_us = seconds(settings.future_tolerance_s)

    @property
    def last_seq(self) -> int:
        return self._seq

    # -- recovery ----------------------------------------------------------------------------

    def recover(self) -> Result:
        """Rebuild the engine from the newest usable snapshot and the events stored after it."""
        t0 = time.monotonic()
        store = self.store
        snap = store.latest_snapshot()
        after_seq = after_tid = 0
        if snap is not None:
            try:
                self.engine = snapshot.load(snap.blob, self.site)
                after_seq, after_tid = snap.event_seq, snap.transition_id
            except snapshot.SnapshotRefused as exc:
                log.warning(
                    "snapshot at event %d not used (%s): rebuilding the engine from every "
                    "stored event",
                    snap.event_seq,
                    exc,
                )
        known = Counter(store.transition_keys_after(after_tid))
        produced: list[Transition] = []
        n = 0
        for stored in store.events_after(after_seq):
            ev = parse_event(stored.source, self.site)
            if isinstance(ev, Rejection):
                log.error("stored event %d no longer parses (%s); skipped", stored.seq, ev.reason)
                continue
            try:
                produced += self.engine.feed(ev)
            except EventRejected as exc:
                produced += self.engine.pending_transitions()
                log.error("stored event %d refused on recovery (%s)", stored.seq, exc.reason)
            except Exception:
                produced += self.engine.pending_transitions()
                log.exception("stored event %d failed in the engine on recovery", stored.seq)
            n += 1
        clock = _int_or_none(store.get_meta("clock"))
        if clock is not None:
            produced += self.engine.advance(clock)
        fresh = []
        for tr in produced:
            key = (tr.ts, tr.alert_id, tr.state)
            if known[key] > 0:
                known[key] -= 1  # already stored (and published or queued): not raised twice
            else:
                fresh.append(tr)
        self.views = {v["alert_id"]: AlertView.from_dict(v) for v in store.open_alert_views()}
        self.suppressions = store.suppressions(ending_after=self.clock())
        for d in store.recent_digests(DIGESTS_KEPT):
            self._remember(d)
        for stored in store.events_after(max(0, self._seq - 5000)):
            if stored.source.get("type") == "device.status":
                self.decoder.status[stored.source["device"]] = str(stored.source.get("state", ""))
        result = Result()
        # Each start (and each reload, which starts the pipeline again) records the meaning
        # of the site file it runs on: a configuration change is in the chain.
        result.writes.audit.append(
            self.audit.record(
                self.clock(),
                "config",
                {
                    "event": "start",
                    "site": self.site.id,
                    "site_fingerprint": snapshot.site_fingerprint(self.site),
                },
            )
        )
        result.rows = self._transitions(result.writes, fresh, None)
        self._sync_seals(result.writes)
        if self.engine.clock is not None:
            result.writes.meta["clock"] = str(self.engine.clock)
        self._ledger(result.writes)
        # A restart is an outage too: what the broker held for us may be older than the floor.
        if clock is not None:
            self.open_late_window(clock)
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
        return result

    def snapshot(self) -> Writes:
        self.events_since_snapshot = 0
        return Writes(
            snapshot=Snapshot(
                taken=self.clock(),
                event_seq=self._seq,
                transition_id=self._tid,
                clock=self.engine.clock,
                blob=snapshot.dump(self.engine, self.site),
            )
        )

    # -- broker outages ------------------------------------------------------------------------

    def open_late_window(self, since_us: int) -> None:
        """Accept events from `since_us` on, late, for as long again as the outage lasted.

        Gateways and the broker buffer what they could not deliver; it arrives after newer
        events from elsewhere (other gateways, Modbus, cameras) moved the engine's clock on.
        """
        now = self.clock()
        cap = seconds(self.settings.outage_lateness_max_s)
        since = max(since_us, now - cap)
        until = now + max(seconds(30.0), now - since)
        if self.late is not None and self.late.until > now:
            since = min(since, self.late.since)
        self.late = LateWindow(since, until)

    # -- one batch of items ------------------------------------------------------------------------

    def process(self, batch: list[Incoming]) -> Result:
        result = Result()
        for item in batch:
            result.outcomes.append(self._accept(item, result))
        self._sync_seals(result.writes)  # seals a timer started or ended before an event
        if self.engine.clock is not None:
            result.writes.meta["clock"] = str(self.engine.clock)
        self._ledger(result.writes)
        return result

    def tick(self, now: int) -> Result:
        result = Result()
        trs = self.engine.advance(now)
        if trs:
            result.rows = self._transitions(result.writes, trs, None)
            result.writes.meta["clock"] = str(self.engine.clock)
        # A seal of the site file starts and ends on a timer, with or without an alert.
        self._sync_seals(result.writes)
        if result.writes:
            self._ledger(result.writes)
        return result

    def _accept(self, item: Incoming, result: Result) -> Outcome:
        try:
            if item.kind == Kind.SYNC:
                return Outcome(True)
            objs = self.decoder.decode(item)
            outcome = Outcome(True)
            for obj in objs:
                outcome = self._feed(item, obj, result)
            return outcome
        except Ignored as exc:
            self.metrics.inc("sealwatch_mapping_ignored_total")
            return Outcome(True, str(exc))
        except Skip:
            return Outcome(True, "already known")
        except Reject as rej:
            self._rejection(result.writes, item, rej.kind, rej.reason)
            return Outcome(False, rej.reason)
        except Exception as exc:
            # Last resort: whatever this item is, it must not stop the items after it.
            log.error(
                "failed on an item from %s; refused", item.topic or item.origin, exc_info=True
            )
            reason = f"internal error: {type(exc).__name__}: {str(exc)[:200]}"
            self._rejection(result.writes, item, "internal_error", reason)
            return Outcome(False, reason)

    def _rejection(self, w: Writes, item: Incoming, kind: str, reason: str) -> None:
        raw = item.payload if isinstance(item.payload, bytes) else _dump(item.payload)
        self._rejection_id += 1
        w.rejections.append(
            (
                self._rejection_id,
                item.received,
                item.origin,
                item.topic,
                reason[:2000],
                len(raw),
                raw[:4096],
            )
        )
        self.metrics.inc("sealwatch_rejected_total", kind)
        where = item.topic or item.origin
        self._rlog.warning(f"reject:{kind}", "rejected from %s: %s", where, reason[:300])

    def _feed(self, item: Incoming, obj: dict[str, Any], result: Result) -> Outcome:
        if item.device is not None and obj.get("device", item.device) != item.device:
            raise Reject(
                "device_mismatch",
                f"device {str(obj.get('device'))[:80]!r} does not match the topic's device "
                f"{item.device!r}",
            )
        if obj.get("type") in DAEMON_TYPES and item.origin != "daemon":
            raise Reject("reserved", f"type {obj.get('type')!r} is reserved for the daemon itself")
        digest = None
        if isinstance(item.payload, bytes) and "ts" in obj:
            # A QoS 1 redelivery after a crash between storing and acking: same bytes, same ts.
            digest = hashlib.blake2b(
                item.payload, digest_size=12, key=(item.topic or "").encode()[:64]
            ).hexdigest()
            if digest in self._digest_set:
                self.metrics.inc("sealwatch_duplicates_total")
                raise Reject(
                    "duplicate",
                    "duplicate delivery: the same payload with the same ts on this topic is "
                    "already stored",
                )
        parsed = parse_event(obj, self.site, device=item.device, now_us=item.received)
        if isinstance(parsed, Rejection):
            raise Reject(reason_class(parsed.reason), parsed.reason)
        ev: Event = parsed
        now = self.clock()
        if ev.ts > now + self._future_us:
            raise Reject(
                "future",
                f"ts {str(ev.source.get('ts'))[:40]} is {(ev.ts - now) / 1e6:.1f} s in the future "
                "(device clock wrong?)",
            )
        device_ts = None
        floor = self.engine.floor
        if floor is not None and ev.ts < floor:
            behind = floor - ev.ts
            late = self.late
            in_window = (
                late is not None and now <= late.until and ev.ts >= late.since - self._reorder_us
            )
            if behind > self._reorder_us and not in_window:
                raise Reject(
                    "out_of_order",
                    f"out of order: ts {str(ev.source.get('ts'))[:40]} is {behind / 1e6:.1f} s "
                    "older than what the engine has already processed",
                )
            device_ts = ev.ts
            ev = ev.restamped(floor, self.tz)
            self.metrics.inc("sealwatch_restamped_total")
            if behind > self._reorder_us:
                self.metrics.inc("sealwatch_late_accepted_total")
        w = result.writes
        try:
            trs = self.engine.feed(ev, actor_required=item.origin in PERSON_ORIGINS)
        except EventRejected as exc:
            # Timers that fired before the refused event still happened.
            result.rows += self._transitions(w, self.engine.pending_transitions(), None)
            raise Reject(reason_class(exc.reason), exc.reason) from None
        except Exception as exc:
            # A bug in a rule must not take the daemon down (the broker would redeliver the
            # message after the restart and the daemon would crash on it again).
            log.error(
                "engine failed on %s event from %s; refused and stored as a rejection "
                "(please report this bug)",
                ev.type,
                ev.device,
                exc_info=True,
            )
            self.metrics.inc("sealwatch_engine_errors_total")
            result.rows += self._transitions(w, self.engine.pending_transitions(), None)
            raise Reject(
                "engine_error", f"internal error in the engine: {type(exc).__name__}: {exc}"
            ) from None
        # Who acted: the session's user, else the badge the action names as acting (for an
        # approval that is `granted_by`, not the person allowed out).
        actor = item.actor or (actor_of(ev) if ev.type in OPERATOR_TYPES else None)
        self._seq += 1
        seq = self._seq
        w.events.append(
            (
                seq,
                ev.ts,
                device_ts,
                item.received,
                ev.device,
                ev.type,
                item.origin,
                actor,
                digest,
                _dump(ev.source).decode(),
            )
        )
        if digest is not None:
            self._remember(digest)
        if ev.type == "device.status":
            self.decoder.status[ev.device] = str(ev.source.get("state"))
        self.metrics.inc("sealwatch_events_total", ev.type)
        self.events_since_snapshot += 1
        if ev.type in OPERATOR_TYPES:
            self._action(
                w, ev.ts, ev.type, actor, item.origin, ev.source.get("alert_id"), seq, ev.source
            )
        rows = self._transitions(w, trs, seq)
        result.rows += rows
        if isinstance(ev, SealEvent):
            # Who started or ended *this* seal: only the seal the event names is attributed.
            self._sync_seals(w, ev.seal, ev.type, actor)
        elif trs and any(t.policy == "pre-seal" for t in trs):
            self._sync_seals(w)
        return Outcome(True, None, seq, [r.as_dict() for r in rows])

    def _remember(self, digest: str) -> None:
        self._digests.append(digest)
        self._digest_set.add(digest)
        if len(self._digests) > DIGESTS_KEPT:
            self._digest_set.discard(self._digests.popleft())

    # -- transitions, alerts, actions, seals ----------------------------------------------------

    def _transitions(self, w: Writes, trs: list[Transition], event_seq: int | None) -> list[Row]:
        if not trs:
            return []
        open_now = {a.id: a for a in self.engine.open_alerts()}
        rows = []
        # Views closed earlier in this batch: a latched alert's `acknowledged` closes it and
        # its `cleared` follows at once; that one must start from the acknowledged view.
        closed_here: dict[str, AlertView] = {}
        for tr in trs:
            suppressed = self.is_suppressed(tr.subject, tr.ts)
            before = self.views.get(tr.alert_id) or closed_here.get(tr.alert_id)
            view = lifecycle.apply(before, tr, open_now.get(tr.alert_id), suppressed=suppressed)
            line = tr.to_dict(self.tz)
            if tr.acked_by:
                # who acted, under the name of what they did: a shelve is not an acknowledgement
                line[ACTOR_KEY.get(tr.state, "acked_by")] = tr.acked_by
            if tr.comment:
                line["comment"] = tr.comment
            if suppressed:
                line["suppressed"] = True
            text = _dump(line).decode()
            retained = (
                ""
                if view.closed
                else _dump(
                    {
                        **line,
                        "isa_state": view.isa_state,
                        "raised": format_ts(view.raised_ts, self.tz),
                    }
                ).decode()
            )
            self._tid += 1
            tid = self._tid
            w.transitions.append(
                (
                    tid,
                    event_seq,
                    tr.ts,
                    tr.alert_id,
                    tr.policy,
                    tr.subject,
                    tr.severity,
                    tr.state,
                    tr.clause,
                    tr.message,
                    tr.acked_by if tr.state == "acknowledged" else None,
                    tr.comment,
                    int(suppressed),
                    text,
                    retained,
                )
            )
            w.audit.append(self.audit.record(tr.ts, "transition", {"id": tid, **line}))
            w.alerts[tr.alert_id] = (
                view.isa_state,
                int(view.closed),
                _dump(view.to_dict()).decode(),
            )
            if view.isa_state == lifecycle.NORMAL:
                self.views.pop(tr.alert_id, None)
                closed_here[tr.alert_id] = view
            else:
                self.views[tr.alert_id] = view
            self.metrics.inc("sealwatch_transitions_total", tr.policy, tr.state)
            rows.append(Row(tid, tr.alert_id, line, text, retained))
        return rows

    def _action(
        self,
        w: Writes,
        ts: int,
        kind: str,
        actor: str | None,
        origin: str,
        alert_id: Any,
        event_seq: int | None,
        body: dict[str, Any],
    ) -> int:
        aid = str(alert_id) if alert_id is not None else None
        self._action_id += 1
        action_id = self._action_id
        w.actions.append((action_id, ts, kind, actor, origin, aid, event_seq, _dump(body).decode()))
        w.audit.append(
            self.audit.record(
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
        )
        self.metrics.inc("sealwatch_operator_actions_total", kind)
        return action_id

    def _sync_seals(
        self, w: Writes, seal_id: str | None = None, etype: str = "", actor: str | None = None
    ) -> None:
        """Write the row of every seal that changed since the last sync.

        Only the seal `seal_id` (the one a `seal.start`/`seal.end` event names) is attributed
        to `actor`: other seals may have changed at the same time (a seal of the site file
        started by its schedule, a timer that fired before the event) and keep who started
        and ended them, or nobody (a scheduled start has no starter).
        """
        for s in self.engine.seals():
            key = (s.status, s.start, s.end, s.planned_end, s.name, s.precheck)
            named = s.id == seal_id
            if self._seal_cache.get(s.id) == key and not named:
                continue
            self._seal_cache[s.id] = key
            prev = self._seal_rows.get(s.id)
            started_by = actor if named and etype == "seal.start" else None
            ended_by = actor if named and etype == "seal.end" else None
            if prev is not None:  # as the store's upsert does
                started_by = started_by if started_by is not None else prev[7]
                ended_by = ended_by if ended_by is not None else prev[8]
            row = (
                s.id,
                s.name,
                s.classification,
                s.start,
                s.end,
                s.planned_end,
                s.status,
                started_by,
                ended_by,
                s.precheck,
            )
            self._seal_rows[s.id] = row
            w.seals[s.id] = row

    def _ledger(self, w: Writes) -> None:
        """One `ledger` audit record naming every row this commit writes (table, id, content
        hash), so `audit verify` can tell any edited, deleted or inserted row."""
        tables = {
            "events": w.events,
            "rejections": w.rejections,
            "transitions": w.transitions,
            "actions": w.actions,
            "suppressions": w.suppressions,
            audit.SEALS: list(w.seals.values()),
        }
        body = audit.ledger_body(tables)
        if body:
            w.audit.append(self.audit.record(self.clock(), "ledger", body))

    def is_suppressed(self, subject: str, ts: int) -> bool:
        device = subject.split("/", 1)[0]
        return any(
            s["device"] == device and s["start"] <= ts <= s["end"] for s in self.suppressions
        )

    def known_alert(self, alert_id: str) -> bool:
        return alert_id in self.views or self.store.alert_view(alert_id) is not None

    # -- daemon-only operator actions (not engine events) ------------------------------------------

    def comment(self, alert_id: str, badge: str, text: str, origin: str) -> tuple[Outcome, Writes]:
        w = Writes()
        if not self.known_alert(alert_id):
            return Outcome(False, f"unknown alert {alert_id[:80]!r}"), w
        if not text.strip():
            return Outcome(False, "empty comment"), w
        now = self.clock()
        self._action(
            w,
            now,
            "alert.comment",
            badge,
            origin,
            alert_id,
            None,
            {"alert_id": alert_id, "badge": badge, "comment": text, "ts": format_ts(now, self.tz)},
        )
        self._ledger(w)
        return Outcome(True), w

    def suppression(
        self, device: str, start: str, end: str, reason: str, badge: str, origin: str
    ) -> tuple[Outcome, Writes]:
        """A maintenance window for a device, scheduled by a supervisor (ISA-18.2 design
        suppression): its alerts are stored and audited but flagged as suppressed."""
        w = Writes()
        if device not in self.site.device_kind:
            return Outcome(False, f"unknown device {device[:80]!r}"), w
        person = self.site.people.get(badge)
        if person is None or person.role not in SUPERVISOR_ROLES:
            return Outcome(False, f"badge {badge[:40]!r} is not a supervisor or secrecy officer"), w
        try:
            t0, t1 = parse_ts(start), parse_ts(end)
        except (ValueError, OverflowError) as exc:
            return Outcome(False, f"bad time: {exc}"), w
        if t1 <= t0:
            return Outcome(False, "end must be after start"), w
        if not reason.strip():
            return Outcome(False, "a maintenance window needs a reason"), w
        now = self.clock()
        self._suppression_id += 1
        sid = self._suppression_id
        w.suppressions.append((sid, device, t0, t1, reason, badge, now))
        self._action(
            w,
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
        self.suppressions.append(
            {
                "id": sid,
                "device": device,
                "start": t0,
                "end": t1,
                "reason": reason,
                "by": badge,
                "created": now,
            }
        )
        self._ledger(w)
        return Outcome(True, None, sid), w

    def audit_record(self, kind: str, body: dict[str, Any]) -> Writes:
        """An audit record of something outside the engine (a login, a user change)."""
        w = Writes()
        w.audit.append(self.audit.record(self.clock(), kind, body))
        return w

    def drop_ended_suppressions(self) -> None:
        now = self.clock()
        self.suppressions = [s for s in self.suppressions if s["end"] >= now]


def _dump(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj)
    except TypeError:  # integers beyond 64 bits and the like, from a hostile payload
        return json.dumps(obj, default=str, ensure_ascii=False).encode()


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
