"""The deterministic engine: events and time in, alert transitions out (CONTRACT §3–§4).

`feed(event)` first fires every timer due before the event (timers due at the same instant
fire after it), then applies the event; `advance(now)` fires timers due up to `now`. Pure: no
I/O, no wall clock, so the live daemon, `sealwatch replay` and the tests run the same code.
"""

from __future__ import annotations

from collections.abc import Callable

from policies.core import (
    WORLD_UPDATES,
    Alert,
    Context,
    EventRejected,
    Rule,
    SealState,
    Transition,
    World,
)
from policies.events import (
    AlertAck,
    AlertShelve,
    AlertUnshelve,
    Event,
    PrecheckRecorded,
    SealEvent,
)
from policies.rules.access import BadgeDeniedBurst, EscortedExit, TwoPerson, ZoneAuthorization
from policies.rules.alarms import Intrusion, PerimeterArmed, Power
from policies.rules.authority import AUTHORITY, UnauthorisedAction
from policies.rules.cameras import CameraIntegrity, VideoRetention
from policies.rules.daemon import DaemonHealthRule
from policies.rules.devices import DeviceOffline
from policies.rules.doors import DoorForced, DoorHeldOpen, EntranceInterlock, SingleEntrance
from policies.rules.inspections import InspectionDue
from policies.rules.jammers import JammerHealth, JammerUptime
from policies.rules.phones import DutyPhone, ProhibitedDevice
from policies.rules.preseal import PreSeal
from policies.rules.presence import UnbadgedPresence
from policies.rules.staffing import MonitoringStaffed, Patrol
from policies.site import Site
from policies.timefmt import to_us

__all__ = ["RULES", "Alert", "Engine", "EventRejected", "SealState", "Transition", "World"]

RULES: tuple[type[Rule], ...] = (
    JammerUptime,
    JammerHealth,
    SingleEntrance,
    EntranceInterlock,
    DoorForced,
    DoorHeldOpen,
    ZoneAuthorization,
    BadgeDeniedBurst,
    EscortedExit,
    TwoPerson,
    Intrusion,
    PerimeterArmed,
    Power,
    CameraIntegrity,
    VideoRetention,
    DeviceOffline,
    MonitoringStaffed,
    Patrol,
    ProhibitedDevice,
    DutyPhone,
    PreSeal,
    InspectionDue,
    DaemonHealthRule,
    UnauthorisedAction,
    UnbadgedPresence,
)


OPERATOR_TYPES = frozenset(
    {"alert.ack", "alert.shelve", "alert.unshelve", "seal.start", "seal.end", "precheck.recorded"}
)


class Engine:
    """Runs every policy of a site over a stream of events on a virtual clock."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.ctx = Context(site)
        self.rules = [r for r in (cls(self.ctx) for cls in RULES) if r.applies()]
        self.preseal = next((r for r in self.rules if isinstance(r, PreSeal)), None)
        self.offline = next((r for r in self.rules if isinstance(r, DeviceOffline)), None)
        self.authority = next(r for r in self.rules if isinstance(r, UnauthorisedAction))
        self._dispatch: dict[str, list[Callable[[Event], None]]] = {}
        for rule in self.rules:
            for etype in rule.handles:
                self._dispatch.setdefault(etype, []).append(rule.on_event)
        self.floor: int | None = None  # the earliest ts a new event may carry
        self._sealed_checked = True
        self.precheck: PrecheckRecorded | None = None  # the last pre-seal record

    # -- the public surface ------------------------------------------------------------------

    @property
    def clock(self) -> int | None:
        return self.ctx.now if self.ctx.started else None

    @property
    def world(self) -> World:
        return self.ctx.world

    def open_alerts(self) -> list[Alert]:
        """Alerts not yet closed: active ones and cleared ones awaiting acknowledgement."""
        return self.ctx.open_alerts()

    def seals(self) -> list[SealState]:
        return list(self.ctx.seals.values())

    def feed(self, ev: Event, *, actor_required: bool = False) -> list[Transition]:
        """Apply one event; raise EventRejected (changing nothing) if it cannot be applied.

        `actor_required`: the live daemon's consoles, HTTP API and CLI must name who acts even
        where a stream may omit it (`badge` on seal.*, `granted_by`).
        """
        ctx = self.ctx
        t = ev.ts
        # Authority first (policies/rules/authority.py): who acts, before whether it can apply.
        refused = self.authority.refusal(ev, actor_required) if ev.type in AUTHORITY else None
        if not ctx.started:
            if refused is None and ev.type in OPERATOR_TYPES:
                # A rejected first event must not start the clock: try it on a fresh engine.
                Engine(self.site)._probe(ev)
            self._start(t)
        elif self.floor is not None and t < self.floor:
            raise EventRejected("out of order: older than the last accepted event")
        heap = ctx._heap
        if heap and heap[0][0] <= t:
            ctx.run_timers(t, inclusive=False)
        ctx.now = t
        if refused is not None:
            # The attempt is news (an alert) though the action is refused: the alert's
            # transition comes out with pending_transitions(), like the timers' above.
            self.floor = t
            self.authority.attempt(ev, refused)
            raise EventRejected(refused)
        etype = ev.type
        operator = etype in OPERATOR_TYPES
        if operator:
            # On a rejection the timers that fired stay fired; their transitions come out
            # with the next call (or pending_transitions()).
            self._check_operator_event(ev)
        self.floor = t
        # The world first (inline: this runs once per event), then
        # the rules that care about this type. A door event that changed nothing is not
        # news, but a forced door always is.
        world = ctx.world
        world.last_seen[ev.device] = t
        if world.offline:
            world.offline.discard(ev.device)
        update = WORLD_UPDATES.get(etype)
        if update is None or update(ctx, ev) or etype == "door.forced":
            for handler in self._dispatch.get(etype, ()):
                handler(ev)
        # device-offline: activity is already in the world's last_seen; call the rule only
        # when there is an alert to clear, a silent device back, or a device.status
        offline = self.offline
        if offline is not None and (
            offline.mine or offline.silence.expired or etype == "device.status"
        ):
            offline.on_event(ev)
        if operator:
            self._operator_event(ev)
        out = ctx.out
        if out:
            ctx.out = []
        return out

    def _probe(self, ev: Event) -> None:
        """Raise EventRejected if `ev`, as the very first event, would be refused."""
        self._start(ev.ts)
        self._check_operator_event(ev)

    def advance(self, now: int) -> list[Transition]:
        """Let the clock run to `now`, firing every timer due up to and including it."""
        ctx = self.ctx
        if not ctx.started or now < ctx.now:
            return self._take()
        ctx.run_timers(now, inclusive=True)
        ctx.now = now
        self.floor = now + 1
        return self._take()

    def pending_transitions(self) -> list[Transition]:
        """Transitions produced by timers before an event that was then rejected."""
        return self._take()

    # -- internals ---------------------------------------------------------------------------

    def _take(self) -> list[Transition]:
        out = self.ctx.out
        self.ctx.out = []
        return out

    def _start(self, t0: int) -> None:
        ctx = self.ctx
        ctx.started = True
        ctx.now = t0
        for spec in self.site.seals:
            start, end = (
                to_us(spec.start) if spec.start else None,
                (to_us(spec.end) if spec.end else None),
            )
            seal = SealState(spec.id, spec.name, spec.classification, None, None, start, end)
            ctx.seals[spec.id] = seal
            if end is not None and end < t0:
                seal.status = "ended"
                continue
            if start is not None and start <= t0:
                self._activate(seal, t0, seen=start == t0)
                seal.start = start  # in force since its planned start, watched or not
            elif start is not None:
                ctx.schedule(start, self._file_seal_due, spec.id, prio=0)
            if end is not None:
                ctx.schedule(end, self._seal_end_due, (spec.id, end))
        for rule in self.rules:
            rule.on_start()

    def _file_seal_due(self, seal_id: str) -> None:
        seal = self.ctx.seals[seal_id]
        if seal.status == "pending":
            self._activate(seal, self.ctx.now, seen=True)

    def _seal_end_due(self, arg: tuple[str, int]) -> None:
        seal_id, end = arg
        seal = self.ctx.seals[seal_id]
        if seal.status == "active" and seal.planned_end == end:
            self._end(seal)

    def _activate(self, seal: SealState, t: int, *, seen: bool) -> None:
        ctx = self.ctx
        seal.status, seal.start = "active", t
        last = self.precheck
        seal.precheck = "none" if last is None else "passed" if last.passed else "failed"
        if not ctx.sealed:
            ctx.sealed = True
            self._sealed_checked = False
        # The checks run after every event of this instant, so that e.g. an operator coming
        # on duty at the same moment as the seal starts counts.
        ctx.schedule(t, self._seal_checks, (seal.id, seen))

    def _seal_checks(self, arg: tuple[str, bool]) -> None:
        seal_id, seen = arg
        seal = self.ctx.seals[seal_id]
        if seal.status != "active":
            return
        if not self._sealed_checked:
            self._sealed_checked = True
            for rule in self.rules:
                rule.on_seal_start()
        if seen and self.preseal is not None:
            self.preseal.check(seal_id)

    def _end(self, seal: SealState) -> None:
        ctx = self.ctx
        seal.status, seal.end = "ended", ctx.now
        if any(s.status == "active" for s in ctx.seals.values()):
            return
        ctx.sealed = False
        self._sealed_checked = True
        for rule in self.rules:
            rule.on_seal_end()
        ctx.clear_seal_only()

    def _check_operator_event(self, ev: Event) -> None:
        """Refuse an operator action that cannot apply, before anything changes."""
        ctx = self.ctx
        if isinstance(ev, AlertAck | AlertShelve | AlertUnshelve):
            a = ctx.open_alert(ev.alert_id)
            if a is None:
                raise EventRejected(f"unknown or already closed alert '{ev.alert_id}'")
            if isinstance(ev, AlertAck) and a.acked:
                raise EventRejected(f"alert '{ev.alert_id}' is already acknowledged")
            if isinstance(ev, AlertShelve):
                if not a.active:
                    raise EventRejected(f"alert '{ev.alert_id}' has already cleared")
                if ev.until <= ev.ts:
                    raise EventRejected("shelve 'until' must be after the event's time")
            if isinstance(ev, AlertUnshelve) and a.shelved_until is None:
                raise EventRejected(f"alert '{ev.alert_id}' is not shelved")
        elif isinstance(ev, SealEvent):
            seal = ctx.seals.get(ev.seal)
            if ev.type == "seal.start":
                if seal is None and (ev.name is None or ev.classification is None):
                    raise EventRejected(
                        f"unknown seal '{ev.seal}': a new seal needs 'name' and 'classification'"
                    )
                if seal is not None and seal.status == "active":
                    raise EventRejected(f"seal '{ev.seal}' is already in force")
                if seal is not None and seal.status == "ended":
                    raise EventRejected(f"seal '{ev.seal}' has already ended")
                if ev.end is not None and ev.end <= ev.ts:
                    raise EventRejected("the planned 'end' must be after the start")
            elif seal is None or seal.status != "active":
                raise EventRejected(f"seal '{ev.seal}' is not in force")

    def _operator_event(self, ev: Event) -> None:
        ctx = self.ctx
        if isinstance(ev, AlertAck):
            ctx.acknowledge(ev.alert_id, ev.badge, ev.comment)
        elif isinstance(ev, AlertShelve):
            ctx.shelve(ev.alert_id, ev.badge, ev.until, ev.reason)
        elif isinstance(ev, AlertUnshelve):
            ctx.unshelve(ev.alert_id, ev.badge)
        elif isinstance(ev, SealEvent):
            if ev.type == "seal.start":
                seal = ctx.seals.get(ev.seal)
                if seal is None:
                    assert ev.name is not None and ev.classification is not None
                    seal = SealState(
                        ev.seal,
                        ev.name,
                        ev.classification,
                        None,
                        None,
                        ev.ts,
                        ev.end,
                        source="event",
                    )
                    ctx.seals[ev.seal] = seal
                elif ev.end is not None:
                    seal.planned_end = ev.end
                if seal.planned_end is not None:
                    ctx.schedule(seal.planned_end, self._seal_end_due, (seal.id, seal.planned_end))
                self._activate(seal, ev.ts, seen=True)
            else:
                self._end(ctx.seals[ev.seal])
        elif isinstance(ev, PrecheckRecorded):
            self.precheck = ev
