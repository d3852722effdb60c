"""The machinery every rule shares: alerts, timers, seals in force, and the known world.

`Context` is what a rule sees. It owns the virtual clock (`now`, µs), the timer heap, the
alert book (raise/fold/clear/ack/shelve/escalate, each writing a `Transition`), and `World`,
the last known state of every device. The engine (`policies.engine`) drives it.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any, ClassVar

from policies.events import (
    AlarmInputEvent,
    AlarmPanelEvent,
    ApprovalGranted,
    BadgeEvent,
    CameraStatus,
    DeviceEvent,
    Event,
    JammerStatus,
    OperatorDuty,
    RecordingInventory,
)
from policies.site import Site
from policies.timefmt import format_ts, seconds

SEVERITY_RANK = {"minor": 0, "major": 1, "critical": 2}


class EventRejected(Exception):
    """A well-formed event the engine refuses (out of order, unknown alert, …)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of an alert's state (CONTRACT §3)."""

    ts: int
    alert_id: str
    policy: str
    subject: str
    severity: str
    state: str
    clause: str
    message: str
    acked_by: str | None = None
    comment: str | None = None

    def to_dict(self, tz: tzinfo) -> dict[str, Any]:
        """The CONTRACT §3 line (without `acked_by`, which the daemon adds for MQTT)."""
        return {
            "ts": format_ts(self.ts, tz),
            "alert_id": self.alert_id,
            "policy": self.policy,
            "subject": self.subject,
            "severity": self.severity,
            "state": self.state,
            "clause": self.clause,
            "message": self.message,
        }


@dataclass(slots=True)
class Alert:
    id: str
    policy: str
    subject: str
    severity: str
    clause: str
    message: str
    raised_ts: int
    latched: bool
    seal_only: bool
    active: bool = True  # the condition is present
    acked: bool = False
    acked_by: str | None = None
    shelved_until: int | None = None
    count: int = 1
    escalated: bool = False


@dataclass(slots=True)
class SealState:
    id: str
    name: str
    classification: str
    start: int | None  # when it actually came into force
    end: int | None  # when it actually ended
    planned_start: int | None
    planned_end: int | None
    status: str = "pending"  # pending | active | ended
    source: str = "site"  # site | event
    # the last pre-seal record when it came into force (precheck.recorded): passed | failed |
    # none (no record since the engine started)
    precheck: str = "none"


@dataclass(slots=True)
class World:
    """The last known state of the site, updated from every accepted event."""

    doors_open: dict[str, int] = field(default_factory=dict)  # door -> opened at
    last_seen: dict[str, int] = field(default_factory=dict)
    jammer: dict[str, JammerStatus] = field(default_factory=dict)
    camera: dict[str, CameraStatus] = field(default_factory=dict)
    inventory: dict[str, RecordingInventory] = field(default_factory=dict)  # last per camera
    panel_armed: dict[str, bool] = field(default_factory=dict)
    panel_power: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    on_duty: dict[str, set[str]] = field(default_factory=dict)  # monitoring zone -> badges
    location: dict[str, str] = field(default_factory=dict)  # badge -> zone
    approvals: dict[str, tuple[int, int]] = field(default_factory=dict)  # badge -> (from, to)
    offline: set[str] = field(default_factory=set)


class Rule:
    """One policy. Subclasses set the class attributes and override the hooks they need."""

    policy: ClassVar[str]
    clause: ClassVar[str]
    severity: ClassVar[str]
    handles: ClassVar[tuple[str, ...]] = ()
    seal_only: ClassVar[bool] = False
    latched: ClassVar[bool] = False

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.site = ctx.site
        self.tunables = ctx.site.policies
        # this policy's active alerts by subject (the context's own dict, never replaced)
        self.mine = ctx.active_alerts(self.policy)

    def applies(self) -> bool:
        """False when the site has nothing this rule could watch."""
        return True

    def on_event(self, ev: Event) -> None:
        """Called for each accepted event whose type is in `handles`."""

    def on_start(self) -> None:
        """Called once, at the engine's first event."""

    def on_seal_start(self) -> None:
        """Called when a sealed period begins (no seal was in force before)."""

    def on_seal_end(self) -> None:
        """Called when the last seal in force ends."""

    def raise_(
        self,
        subject: str,
        message: str,
        *,
        severity: str | None = None,
        clause: str | None = None,
        latched: bool | None = None,
        fold: bool = True,
    ) -> Alert:
        return self.ctx.raise_alert(
            self.policy,
            subject,
            message,
            severity=severity or self.severity,
            clause=clause or self.clause,
            latched=self.latched if latched is None else latched,
            seal_only=self.seal_only,
            fold=fold,
        )

    def clear(self, subject: str) -> None:
        if subject in self.mine:  # the common case, a report that all is well, stays cheap
            self.ctx.clear_alert(self.policy, subject)

    def active(self, subject: str) -> Alert | None:
        return self.mine.get(subject)


class Deadlines:
    """Per-key "silent for too long" deadlines, with one heap entry per key.

    `touch(key, t)` records activity; when `period` passes with none, `on_expire(key)` is
    called once, exactly at the deadline, and the key is `expired` until touched or armed
    again. `last` may be a dict kept up to date elsewhere (the world's last_seen), so that the
    hot path records activity without calling in here at all.
    """

    def __init__(
        self,
        ctx: Context,
        period_us: int,
        on_expire: Callable[[str], None],
        last: dict[str, int] | None = None,
    ) -> None:
        self.ctx = ctx
        self.period = period_us
        self.on_expire = on_expire
        self.last: dict[str, int] = {} if last is None else last
        self.gen: dict[str, int] = {}
        self.armed: set[str] = set()
        self.expired: set[str] = set()

    def touch(self, key: str, t: int) -> None:
        self.last[key] = t
        if key not in self.armed:
            self.arm(key, t)

    def arm(self, key: str, t: int) -> None:
        """Start counting from `t` (or from later activity) without recording activity."""
        self.armed.add(key)
        self.expired.discard(key)
        g = self.gen.get(key, 0) + 1
        self.gen[key] = g
        self.ctx.schedule(t + self.period, self._fire, (key, g, t))

    def stop(self, key: str) -> None:
        self.armed.discard(key)
        self.expired.discard(key)
        self.gen[key] = self.gen.get(key, 0) + 1

    def stop_all(self) -> None:
        for key in list(self.armed | self.expired):
            self.stop(key)

    def _fire(self, arg: tuple[str, int, int]) -> None:
        key, g, since = arg
        if self.gen.get(key) != g or key not in self.armed:
            return
        due = max(self.last.get(key, since), since) + self.period
        if due > self.ctx.now:
            self.ctx.schedule(due, self._fire, arg)
            return
        self.armed.discard(key)
        self.expired.add(key)
        self.on_expire(key)


class Context:
    """Clock, timers, alerts, seals and world, shared by every rule."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.tz = site.tz
        self.now = 0
        self.started = False
        self.sealed = False  # at least one seal in force
        self.seals: dict[str, SealState] = {}
        self.world = World()
        self.out: list[Transition] = []
        self._heap: list[tuple[int, int, int, Callable[[Any], None], Any]] = []
        self._seq = 0
        self._active: dict[str, dict[str, Alert]] = {}  # policy -> subject -> alert
        self._open: dict[str, Alert] = {}  # id -> alert not yet closed
        self._occurrence: dict[tuple[str, str], int] = {}
        self._escalation_us = seconds(site.policies.ack_escalation_s)

    # -- timers ------------------------------------------------------------------------------

    def schedule(self, due: int, fn: Callable[[Any], None], arg: Any = None, prio: int = 1) -> None:
        """Call fn(arg) at `due`. prio 0 fires before events of the same instant, 1 after."""
        self._seq += 1
        heapq.heappush(self._heap, (due, prio, self._seq, fn, arg))

    def run_timers(self, limit: int, inclusive: bool) -> None:
        heap = self._heap
        while heap:
            due, prio = heap[0][0], heap[0][1]
            if due > limit or (due == limit and not inclusive and prio != 0):
                return
            _, _, _, fn, arg = heapq.heappop(heap)
            if due > self.now:
                self.now = due
            fn(arg)

    # -- alerts ------------------------------------------------------------------------------

    def active_alert(self, policy: str, subject: str) -> Alert | None:
        return self._active.get(policy, {}).get(subject)

    def active_alerts(self, policy: str) -> dict[str, Alert]:
        """The live dict of a policy's active alerts by subject (read it, don't change it)."""
        return self._active.setdefault(policy, {})

    def open_alert(self, alert_id: str) -> Alert | None:
        return self._open.get(alert_id)

    def open_alerts(self) -> list[Alert]:
        return list(self._open.values())

    def _emit(
        self, a: Alert, state: str, acked_by: str | None = None, comment: str | None = None
    ) -> None:
        self.out.append(
            Transition(
                self.now,
                a.id,
                a.policy,
                a.subject,
                a.severity,
                state,
                a.clause,
                a.message,
                acked_by,
                comment,
            )
        )

    def raise_alert(
        self,
        policy: str,
        subject: str,
        message: str,
        *,
        severity: str,
        clause: str,
        latched: bool,
        seal_only: bool,
        fold: bool = True,
    ) -> Alert:
        """Raise (policy, subject), or fold a repeat into the active alert."""
        by_subject = self._active.setdefault(policy, {})
        a = by_subject.get(subject)
        if a is not None:
            if fold:
                a.count += 1
            if SEVERITY_RANK[severity] > SEVERITY_RANK[a.severity]:
                a.severity, a.clause, a.message = severity, clause, message
                self._emit(a, "escalated")
                self._arm_escalation(a)
            return a
        key = (policy, subject)
        n = self._occurrence.get(key, 0) + 1
        self._occurrence[key] = n
        digest = hashlib.sha256(
            f"{self.site.id}|{policy}|{subject}|{self.now}|{n}".encode()
        ).hexdigest()[:16]
        a = Alert(digest, policy, subject, severity, clause, message, self.now, latched, seal_only)
        by_subject[subject] = a
        self._open[a.id] = a
        self._emit(a, "raised")
        self._arm_escalation(a)
        return a

    def clear_alert(self, policy: str, subject: str) -> None:
        """The condition ended: clear unless latched (those wait for an acknowledgement)."""
        by_subject = self._active.get(policy)
        a = by_subject.get(subject) if by_subject else None
        if a is None or a.latched:
            return
        self._close_condition(a)

    def _close_condition(self, a: Alert) -> None:
        del self._active[a.policy][a.subject]
        a.active = False
        self._emit(a, "cleared")
        if a.acked:
            del self._open[a.id]

    def clear_seal_only(self) -> None:
        for by_subject in list(self._active.values()):
            for a in list(by_subject.values()):
                if a.seal_only and not a.latched:
                    self._close_condition(a)

    def _arm_escalation(self, a: Alert) -> None:
        if a.severity == "critical" and not a.acked and not a.escalated:
            self.schedule(self.now + self._escalation_us, self._escalate, a.id)

    def _escalate(self, alert_id: str) -> None:
        a = self._open.get(alert_id)
        if a is None or not a.active or a.acked or a.escalated or a.severity != "critical":
            return
        if a.shelved_until is not None:
            return  # re-armed when unshelved
        a.escalated = True
        self._emit(a, "escalated")

    def acknowledge(self, alert_id: str, badge: str, comment: str | None) -> None:
        a = self._require_open(alert_id)
        if a.acked:
            raise EventRejected(f"alert '{alert_id}' is already acknowledged")
        a.acked, a.acked_by = True, badge
        self._emit(a, "acknowledged", badge, comment)
        if a.latched and a.active:
            self._close_condition(a)
        elif not a.active:
            del self._open[a.id]

    def shelve(self, alert_id: str, badge: str, until: int, reason: str) -> None:
        a = self._require_open(alert_id)
        if not a.active:
            raise EventRejected(f"alert '{alert_id}' has already cleared")
        if until <= self.now:
            raise EventRejected("shelve 'until' must be in the future")
        a.shelved_until = until
        self._emit(a, "shelved", badge, reason)
        self.schedule(until, self._shelve_expired, (alert_id, until))

    def unshelve(self, alert_id: str, badge: str | None) -> None:
        a = self._require_open(alert_id)
        if a.shelved_until is None:
            raise EventRejected(f"alert '{alert_id}' is not shelved")
        a.shelved_until = None
        self._emit(a, "unshelved", badge)
        if a.active and not a.acked and not a.escalated:
            self._arm_escalation(a)

    def _shelve_expired(self, arg: tuple[str, int]) -> None:
        alert_id, until = arg
        a = self._open.get(alert_id)
        if a is not None and a.shelved_until == until:
            self.unshelve(alert_id, None)

    def _require_open(self, alert_id: str) -> Alert:
        a = self._open.get(alert_id)
        if a is None:
            raise EventRejected(f"unknown or already closed alert '{alert_id}'")
        return a

    # -- world -------------------------------------------------------------------------------


# -- world updates: what an event of each type changes besides last_seen (Engine.feed applies
# them); each returns False when a door event changed nothing.


def _door_open(ctx: Context, ev: Event) -> bool:
    doors = ctx.world.doors_open
    if ev.device in doors:
        return False
    doors[ev.device] = ev.ts
    return True


def _door_closed(ctx: Context, ev: Event) -> bool:
    return ctx.world.doors_open.pop(ev.device, None) is not None


def _jammer(ctx: Context, ev: Event) -> bool:
    assert isinstance(ev, JammerStatus)
    ctx.world.jammer[ev.device] = ev
    return True


def _camera(ctx: Context, ev: Event) -> bool:
    assert isinstance(ev, CameraStatus)
    ctx.world.camera[ev.device] = ev
    return True


def _inventory(ctx: Context, ev: Event) -> bool:
    assert isinstance(ev, RecordingInventory)
    ctx.world.inventory[ev.device] = ev
    return True


def _panel(ctx: Context, ev: Event) -> bool:
    assert isinstance(ev, AlarmPanelEvent)
    w = ctx.world
    if ev.armed is not None:
        w.panel_armed[ev.device] = ev.armed
    mains, battery = w.panel_power.get(ev.device, (None, None))
    w.panel_power[ev.device] = (ev.mains or mains, ev.battery or battery)
    return True


def _input(ctx: Context, ev: Event) -> bool:
    assert isinstance(ev, AlarmInputEvent)
    ctx.world.inputs[ev.device] = ev.state
    ctx.world.last_seen[ctx.site.alarm_inputs[ev.device].panel] = ev.ts
    return True


def _granted(ctx: Context, ev: Event) -> bool:
    assert isinstance(ev, BadgeEvent)
    ctx.world.location[ev.badge] = ctx.site.doors[ev.device].zone_entered(ev.direction)
    return True


def _duty(ctx: Context, ev: Event) -> bool:
    assert isinstance(ev, OperatorDuty)
    zone = ctx.site.consoles[ev.device].zone
    badges = ctx.world.on_duty.setdefault(zone, set())
    if ev.state == "on":
        badges.add(ev.badge)
    else:
        badges.discard(ev.badge)
    return True


def _approval(ctx: Context, ev: Event) -> bool:
    assert isinstance(ev, ApprovalGranted)
    ctx.world.approvals[ev.badge] = (ev.ts, ev.ts + seconds(ev.valid_s))
    return True


def _status(ctx: Context, ev: Event) -> bool:
    assert isinstance(ev, DeviceEvent)
    if ev.state == "offline":
        ctx.world.offline.add(ev.device)
    return True


WORLD_UPDATES: dict[str, Callable[[Context, Event], bool]] = {
    "door.opened": _door_open,
    "door.forced": _door_open,
    "door.closed": _door_closed,
    "jammer.status": _jammer,
    "camera.status": _camera,
    "recording.inventory": _inventory,
    "alarm.panel": _panel,
    "alarm.input": _input,
    "badge.granted": _granted,
    "operator.duty": _duty,
    "approval.granted": _approval,
    "device.status": _status,
}
