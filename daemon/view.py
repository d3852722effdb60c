"""What the readers (HTTP API, dashboard, seal archive) may see and ask for — nothing more.

Readers never hold the runtime. They get two small objects:

`ReadView` — read-only:
  - `site`, `tz`, `clock()`                       the site model, its time zone, now (µs)
  - `open_alerts()`, `open_alert(id)`             alerts not yet closed (ISA-18.2 views)
  - `alert_record(id)`                            the stored view of any alert, closed too
  - `closed_on_ack(since)`                        latched alerts closed by acknowledgement
  - `transitions(alert_id)`, `actions(alert_id)`  an alert's history and operator actions
  - `seal_records()`, `suppressions()`            seals and maintenance windows as stored
  - `latest_event(type)`                         the newest stored event of a type
  - `raised_counts(start, end)`                   alerts raised in a window, by severity
  - `events_after(seq, limit)`                    accepted events, as fed to the engine
  - `events_around(start, end, devices=, actors=, limit=)`  an alert's context (detail view)
  - `badges_seen_since(since)`                    each badge's newest event (the muster)
  - `rejections(limit)`                           the newest refused payloads
  - `recent_events(...)`, `recent_transitions(...)`, `events_since(seq, limit)`,
    `last_event_seq()`, `policy_transitions(policy, since)`   timeline and live-feed queries
  - `events_between(...)`, `transitions_between(...)`          a seal's window (archive)
  - `audit_head()`, `signed_head()`, `audit_verify()`  the chain's head (signed); a full check
  - `device(id)`, `people_inside()`, `seals()`    the engine's known world, as plain data
  - `on_duty()`                                   badges on duty in the monitoring rooms
  - `health()`, `render_metrics()`                /healthz and /metrics
  - `subscribe(cb)`, `unsubscribe(cb)`            committed transition rows, as they happen
  - `declare_counter/declare_gauge/count/metric`  the readers' own metrics (logins, denials)
  - `close()`

  Queries run on the view's own read-only SQLite connection (`mode=ro`), so they see
  committed data only and can never write, whichever thread writes the store.

`Actions` — the writes a reader may request:
  - `command(event, origin=, actor=) -> Outcome`  an operator action, as an event
  - `add_comment(alert_id, badge, text, origin) -> Outcome`
  - `add_suppression(device, start, end, reason, badge, origin) -> Outcome`
  - `record_auth(what, fields)`                   an authentication record in the audit chain

Both sit on the running `daemon.pipeline.flow.Pipeline`; only their insides know it.
`format_time` formats any stored time for display and never raises.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any
from urllib.request import pathname2url

import orjson

from daemon import audit
from daemon.aio import within
from daemon.lifecycle import AlertView
from daemon.pipeline.flow import Pipeline
from daemon.pipeline.items import Outcome
from daemon.pipeline.mqtt import MqttSession
from daemon.pipeline.persist import StoreHealth
from policies.site import Site
from policies.timefmt import format_ts

__all__ = [
    "Actions",
    "AlertView",
    "CameraFacts",
    "DeviceFacts",
    "EventRow",
    "Health",
    "JammerFacts",
    "Outcome",
    "ReadView",
    "SealFacts",
    "TransitionRow",
    "format_time",
]

Listener = Callable[[list[dict[str, Any]]], None]
COMMAND_TIMEOUT_S = 30.0
_MIN_US = -62135596800 * 1_000_000  # 0001-01-01T00:00:00Z
_MAX_US = 253402300799 * 1_000_000  # 9999-12-31T23:59:59Z


def format_time(us: int, tz: tzinfo = UTC) -> str:
    """RFC 3339 in `tz` for any stored time; never raises (a time a datetime cannot hold,
    or that overflows in `tz`, is written in UTC or as the nearest representable bound)."""
    try:
        return format_ts(us, tz)
    except (OverflowError, ValueError, OSError, TypeError):
        pass
    try:
        return format_ts(us, UTC)
    except (OverflowError, ValueError, OSError, TypeError):
        pass
    if not isinstance(us, int):
        return "?"
    return "after 9999-12-31T23:59:59Z" if us > _MAX_US else "before 0001-01-01T00:00:00Z"


# -- plain data handed to readers -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JammerFacts:
    output: bool
    bands: dict[str, float]
    faults: tuple[str, ...]
    temperature_c: float | None


@dataclass(frozen=True, slots=True)
class CameraFacts:
    stream: str
    tamper: str | None
    fps: float | None


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """What the engine last knew of one device."""

    last_seen_us: int | None
    reported_offline: bool  # a device.status offline, or silent past its heartbeat
    door_open: bool = False
    input_state: str | None = None
    panel_armed: bool | None = None
    mains: str | None = None
    battery: str | None = None
    jammer: JammerFacts | None = None
    camera: CameraFacts | None = None


@dataclass(frozen=True, slots=True)
class SealFacts:
    """A seal as the engine runs it (µs times; None where not known yet)."""

    id: str
    name: str
    classification: str
    status: str  # pending | active | ended
    start: int | None
    end: int | None
    planned_start: int | None
    planned_end: int | None


@dataclass(frozen=True, slots=True)
class EventRow:
    seq: int
    ts: int
    device: str
    type: str
    actor: str | None
    source: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TransitionRow:
    id: int
    ts: int
    line: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Health:
    status: str  # ok | degraded
    problems: list[str]
    mqtt_connected: bool
    store: str  # ok | degraded (writes failing, alerting goes on)
    store_pending: int  # accepted items not yet written
    engine_lag_s: float
    queue: int
    unpublished: int
    open_alerts: int
    recovery_s: float
    db_bytes: int
    audit_head: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- the read-only view ------------------------------------------------------------------------


def _open_ro(path: Path, *, immutable: bool = False) -> sqlite3.Connection:
    mode = "immutable=1" if immutable else "mode=ro"
    conn = sqlite3.connect(
        f"file:{pathname2url(str(path.resolve()))}?{mode}",
        uri=True,
        isolation_level=None,
        check_same_thread=False,
        timeout=5.0,
    )
    conn.execute("PRAGMA query_only=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def _loads(text: Any) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except (orjson.JSONDecodeError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


class ReadView:
    """Everything readers read (see the module's docstring)."""

    def __init__(self, pipeline: Pipeline, session: MqttSession | None = None) -> None:
        self._p = pipeline
        self._session = session
        self.db_path: Path = pipeline.store.path
        self._ro = _open_ro(self.db_path, immutable=not pipeline.store.writable)
        self._immutable = not pipeline.store.writable

    @property
    def _conn(self) -> sqlite3.Connection:
        """The read-only connection; on a store opened on a full disk (read as it was last
        closed), a live one as soon as the store is writable again."""
        if self._immutable and self._p.store.writable:
            self._ro = _open_ro(self.db_path)
            self._immutable = False
        return self._ro

    def close(self) -> None:
        self._ro.close()

    # -- the site and the time ----------------------------------------------------------------

    @property
    def site(self) -> Site:
        return self._p.site

    @property
    def tz(self) -> tzinfo:
        return self._p.stage.tz

    def clock(self) -> int:
        """Now, in µs since the epoch (the daemon's clock)."""
        return self._p.clock()

    # -- alerts ---------------------------------------------------------------------------------

    def open_alerts(self) -> list[AlertView]:
        """Every alert not yet closed (views are immutable: safe to keep)."""
        return list(self._p.stage.views.values())

    def open_alert(self, alert_id: str) -> AlertView | None:
        return self._p.stage.views.get(alert_id)

    def alert_record(self, alert_id: str) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT view FROM alerts WHERE alert_id=?", (alert_id,)).fetchone()
        return None if row is None else _loads(row[0])

    def closed_on_ack(self, since_us: int, limit: int = 200) -> list[AlertView]:
        """Alerts closed by their acknowledgement (a latched alert: acknowledged and cleared at
        the same instant) from `since_us` on, newest first, as stored."""
        rows = self._conn.execute(
            "SELECT a.view FROM transitions c "
            "JOIN transitions k ON k.alert_id = c.alert_id AND k.state = 'acknowledged' "
            "AND k.ts = c.ts JOIN alerts a ON a.alert_id = c.alert_id "
            "WHERE c.state = 'cleared' AND c.ts >= ? AND a.closed = 1 ORDER BY c.id DESC LIMIT ?",
            (since_us, limit),
        ).fetchall()
        out = []
        for r in rows:
            try:
                out.append(AlertView.from_dict(_loads(r[0])))
            except TypeError:  # a view stored by a newer release: not shown
                continue
        return out

    def transitions(self, alert_id: str, limit: int = 10_000) -> list[dict[str, Any]]:
        rows = self._conn.execute(
            "SELECT id, line FROM transitions WHERE alert_id = ? ORDER BY id LIMIT ?",
            (alert_id, limit),
        ).fetchall()
        return [{"id": r[0], **_loads(r[1])} for r in rows]

    def actions(self, alert_id: str, limit: int = 1000) -> list[dict[str, Any]]:
        rows = self._conn.execute(
            "SELECT id, ts, kind, actor, origin, alert_id, event_seq, body FROM actions "
            "WHERE alert_id = ? ORDER BY id LIMIT ?",
            (alert_id, limit),
        ).fetchall()
        keys = ("id", "ts", "kind", "actor", "origin", "alert_id", "event_seq")
        return [{**dict(zip(keys, r[:7], strict=True)), "body": _loads(r[7])} for r in rows]

    # -- seals, maintenance, events, rejections ------------------------------------------------

    def seal_records(self) -> list[dict[str, Any]]:
        rows = self._conn.execute(
            f"SELECT {audit.SEAL_COLUMNS} FROM seals ORDER BY start"
        ).fetchall()
        return [dict(zip(audit.SEAL_KEYS, r, strict=True)) for r in rows]

    def latest_event(self, event_type: str) -> EventRow | None:
        """The newest stored event of one type (e.g. the last `precheck.recorded`)."""
        row = self._conn.execute(
            "SELECT seq, ts, device, type, actor, source FROM events WHERE type = ? "
            "ORDER BY seq DESC LIMIT 1",
            (event_type,),
        ).fetchone()
        return None if row is None else self._event_row(row)

    def raised_counts(self, start_us: int, end_us: int) -> dict[str, int]:
        """Alerts raised in [start, end], by severity (a seal's calendar line)."""
        rows = self._conn.execute(
            "SELECT severity, COUNT(*) FROM transitions WHERE state = 'raised' "
            "AND ts >= ? AND ts <= ? GROUP BY severity",
            (start_us, end_us),
        ).fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    def suppressions(self) -> list[dict[str, Any]]:
        keys = ("id", "device", "start", "end", "reason", "by", "created")
        rows = self._conn.execute(
            'SELECT id, device, start, "end", reason, by_badge, created FROM suppressions '
            "ORDER BY id"
        ).fetchall()
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def events_after(self, seq: int, limit: int) -> list[dict[str, Any]]:
        """Accepted events after `seq` in feed order, as received (their JSON objects)."""
        rows = self._conn.execute(
            "SELECT source FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        ).fetchall()
        return [_loads(r[0]) for r in rows]

    def events_around(
        self,
        start_us: int,
        end_us: int,
        *,
        devices: set[str],
        actors: set[str],
        limit: int = 200,
    ) -> list[EventRow]:
        """Events of `devices`, or naming one of `actors` as their `badge`, with
        start <= ts <= end, oldest first; at most `limit` (the newest of the window)."""
        rows = self._conn.execute(
            "SELECT seq, ts, device, type, actor, source FROM events "
            "WHERE ts >= ? AND ts <= ? AND (device IN (SELECT value FROM json_each(?)) "
            "OR json_extract(source, '$.badge') IN (SELECT value FROM json_each(?))) "
            "ORDER BY ts DESC, seq DESC LIMIT ?",
            (
                start_us,
                end_us,
                orjson.dumps(sorted(devices)).decode(),
                orjson.dumps(sorted(actors)).decode(),
                limit,
            ),
        ).fetchall()
        return [self._event_row(r) for r in reversed(rows)]

    def badges_seen_since(self, since_us: int) -> dict[str, int]:
        """Each badge's newest stored event (a `badge` field: badge reads, patrol visits,
        duty changes …) at or after `since_us`, in µs."""
        rows = self._conn.execute(
            "SELECT json_extract(source, '$.badge') AS b, MAX(ts) FROM events "
            "WHERE ts >= ? AND b IS NOT NULL GROUP BY b",
            (since_us,),
        ).fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    def rejections(self, limit: int) -> list[dict[str, Any]]:
        keys = ("id", "received", "origin", "topic", "reason", "size")
        rows = self._conn.execute(
            "SELECT id, received, origin, topic, reason, size FROM rejections "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [dict(zip(keys, r, strict=True)) for r in rows]

    # -- timeline and live feed -----------------------------------------------------------------

    def recent_events(
        self,
        *,
        before_us: int | None,
        devices: set[str] | None,
        exclude_types: frozenset[str],
        limit: int,
    ) -> list[EventRow]:
        """Events newest first (by ts, then seq)."""
        sql = "SELECT seq, ts, device, type, actor, source FROM events"
        where: list[str] = []
        args: list[Any] = []
        if before_us is not None:
            where.append("ts < ?")
            args.append(before_us)
        if exclude_types:
            where.append("type NOT IN (SELECT value FROM json_each(?))")
            args.append(orjson.dumps(sorted(exclude_types)).decode())
        if devices is not None:
            where.append("device IN (SELECT value FROM json_each(?))")
            args.append(orjson.dumps(sorted(devices)).decode())
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY ts DESC, seq DESC LIMIT ?"
        args.append(limit)
        return [self._event_row(r) for r in self._conn.execute(sql, args).fetchall()]

    def recent_transitions(
        self, *, before_us: int | None, severities: set[str] | None, limit: int
    ) -> list[TransitionRow]:
        """Alert transitions newest first (by ts, then id)."""
        sql = "SELECT id, ts, line FROM transitions"
        where: list[str] = []
        args: list[Any] = []
        if before_us is not None:
            where.append("ts < ?")
            args.append(before_us)
        if severities is not None:
            where.append("severity IN (SELECT value FROM json_each(?))")
            args.append(orjson.dumps(sorted(severities)).decode())
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY ts DESC, id DESC LIMIT ?"
        args.append(limit)
        return [
            TransitionRow(int(r[0]), int(r[1]), _loads(r[2]))
            for r in self._conn.execute(sql, args).fetchall()
        ]

    def events_since(self, seq: int, limit: int) -> list[EventRow]:
        """Events stored after `seq`, oldest first."""
        rows = self._conn.execute(
            "SELECT seq, ts, device, type, actor, source FROM events WHERE seq > ? "
            "ORDER BY seq LIMIT ?",
            (seq, limit),
        ).fetchall()
        return [self._event_row(r) for r in rows]

    def last_event_seq(self) -> int:
        row = self._conn.execute("SELECT MAX(seq) FROM events").fetchone()
        return int(row[0] or 0)

    def policy_transitions(self, policy: str, since_us: int) -> list[tuple[int, str, str, str]]:
        """(ts, subject, state, alert_id) of one policy's transitions from `since_us` on."""
        rows = self._conn.execute(
            "SELECT ts, subject, state, alert_id FROM transitions "
            "WHERE policy = ? AND ts >= ? ORDER BY id",
            (policy, since_us),
        ).fetchall()
        return [(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]

    @staticmethod
    def _event_row(r: Any) -> EventRow:
        return EventRow(int(r[0]), int(r[1]), str(r[2]), str(r[3]), r[4], _loads(r[5]))

    # -- a seal's window (the archive) ----------------------------------------------------------

    def events_between(self, start: int, end: int, types: tuple[str, ...]) -> list[dict[str, Any]]:
        rows = self._conn.execute(
            "SELECT source FROM events WHERE ts >= ? AND ts <= ? "
            "AND type IN (SELECT value FROM json_each(?)) ORDER BY seq",
            (start, end, orjson.dumps(list(types)).decode()),
        ).fetchall()
        return [_loads(r[0]) for r in rows]

    def transitions_between(self, start: int, end: int) -> list[dict[str, Any]]:
        rows = self._conn.execute(
            "SELECT ts, line FROM transitions WHERE ts >= ? AND ts <= ? ORDER BY id",
            (start, end),
        ).fetchall()
        return [{"ts_us": r[0], **_loads(r[1])} for r in rows]

    # -- the audit chain ------------------------------------------------------------------------

    def audit_head(self) -> str:
        row = self._conn.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        if row is not None:
            return str(row[0])
        anchor = self._conn.execute("SELECT value FROM meta WHERE key='audit_anchor'").fetchone()
        return str(anchor[0]) if anchor else audit.GENESIS

    def signed_head(self) -> dict[str, Any] | None:
        """The ledger's newest written head, signed with the site key (None without a key)."""
        head = self._p.head
        signed = head.signed() if head is not None else None
        return None if signed is None else dict(orjson.loads(signed.to_json()))

    def audit_verify(self) -> audit.Verdict:
        """Check the whole chain on a connection of its own (call it from a worker thread)."""
        conn = _open_ro(self.db_path)
        try:
            return audit.verify(conn)
        finally:
            conn.close()

    # -- the engine's known world ---------------------------------------------------------------

    def device(self, device_id: str) -> DeviceFacts:
        w = self._p.stage.engine.world
        js = w.jammer.get(device_id)
        cs = w.camera.get(device_id)
        mains, battery = w.panel_power.get(device_id, (None, None))
        return DeviceFacts(
            last_seen_us=w.last_seen.get(device_id),
            reported_offline=device_id in w.offline,
            door_open=device_id in w.doors_open,
            input_state=w.inputs.get(device_id),
            panel_armed=w.panel_armed.get(device_id),
            mains=mains,
            battery=battery,
            jammer=(
                JammerFacts(js.output, dict(js.bands), tuple(js.faults), js.temperature_c)
                if js is not None
                else None
            ),
            camera=CameraFacts(cs.stream, cs.tamper, cs.fps) if cs is not None else None,
        )

    def people_inside(self) -> dict[str, list[str]]:
        """Badges by the zone the engine last placed them in (sorted)."""
        by_zone: dict[str, list[str]] = {}
        for badge, zone in self._p.stage.engine.world.location.items():
            by_zone.setdefault(zone, []).append(badge)
        for badges in by_zone.values():
            badges.sort()
        return by_zone

    def on_duty(self) -> set[str]:
        """Badges on duty in any monitoring room now (the engine's world)."""
        return {b for badges in self._p.stage.engine.world.on_duty.values() for b in badges}

    def seals(self) -> list[SealFacts]:
        return [
            SealFacts(
                s.id,
                s.name,
                s.classification,
                s.status,
                s.start,
                s.end,
                s.planned_start,
                s.planned_end,
            )
            for s in self._p.stage.engine.seals()
        ]

    def precheck(self, badge: str | None = None) -> dict[str, Any]:
        """The pre-seal readiness checks (EXAM-2.8.14) against the engine's current world, read
        only: each item with its result and problems, as the `pre-seal` alert would list them."""
        preseal = self._p.stage.engine.preseal
        record = preseal.record() if preseal is not None else {"items": [], "passed": True}
        return {
            "ts": format_time(self.clock(), self.tz),
            "site": self.site.id,
            "inspector": badge,
            **record,
        }

    # -- health and metrics ---------------------------------------------------------------------

    def health(self) -> Health:
        p = self._p
        problems = list(p.problems.values())
        connected = self._session.connected.is_set() if self._session is not None else False
        if not connected and "mqtt" not in p.problems:
            problems.append("MQTT broker not connected")
        store = p.persister.health
        return Health(
            status="ok" if not problems else "degraded",
            problems=problems,
            mqtt_connected=connected,
            store=str(store),
            store_pending=p.persister.pending_items,
            engine_lag_s=p.engine_lag_s(),
            queue=p.queue.qsize(),
            unpublished=len(p.publisher.outbox),
            open_alerts=len(p.stage.views),
            recovery_s=p.stage.recovery_s,
            db_bytes=self._db_bytes(),
            audit_head=p.stage.audit.head if store is StoreHealth.OK else self.audit_head(),
        )

    def _db_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += Path(str(self.db_path) + suffix).stat().st_size
            except OSError:
                pass
        return total

    def render_metrics(self) -> str:
        return self._p.metrics.render()

    def declare_counter(self, name: str, help: str, labels: tuple[str, ...] = ()) -> None:
        self._p.metrics.counter(name, help, labels)

    def declare_gauge(self, name: str, help: str, read: Callable[[], float]) -> None:
        self._p.metrics.gauge(name, help, read=read)

    def count(self, name: str, *labels: str) -> None:
        self._p.metrics.inc(name, *labels)

    def metric(self, name: str, *labels: str) -> float:
        return self._p.metrics.get(name, *labels)

    # -- committed transitions ------------------------------------------------------------------

    def subscribe(self, callback: Listener) -> None:
        """Call `callback(rows)` with the transition rows of each commit, right after it."""
        self._p.listeners.subscribe(callback)

    def unsubscribe(self, callback: Listener) -> None:
        self._p.listeners.unsubscribe(callback)


# -- the writes readers may request ------------------------------------------------------------


class Actions:
    """Operator actions and authentication records (see the module's docstring)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._p = pipeline

    async def command(self, event: dict[str, Any], *, origin: str, actor: str | None) -> Outcome:
        """Feed an operator action as an event; its outcome once stored (or refused).
        Raises TimeoutError if the engine does not answer within COMMAND_TIMEOUT_S."""
        return await within(self._p.command(event, origin=origin, actor=actor), COMMAND_TIMEOUT_S)

    async def add_comment(self, alert_id: str, badge: str, text: str, origin: str) -> Outcome:
        return await within(self._p.comment(alert_id, badge, text, origin), COMMAND_TIMEOUT_S)

    async def add_suppression(
        self, device: str, start: str, end: str, reason: str, badge: str, origin: str
    ) -> Outcome:
        return await within(
            self._p.suppression(device, start, end, reason, badge, origin), COMMAND_TIMEOUT_S
        )

    def record_auth(self, what: str, fields: dict[str, Any]) -> None:
        """A login, logout or refusal in the hash-chained audit log."""
        now = self._p.clock()
        self._p.audit("auth", {"event": what, "ts": format_time(now, self._p.stage.tz), **fields})
