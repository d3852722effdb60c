"""EXAM-2.8.8: "Sealed staff move only within their assigned work/living zones unless approved."

Also EXAM-2.8.15 (guards never enter the sealed area), EXAM-2.8.9 (an exit needs approval and
two guards), EXAM-2.8.13 / 2.8.16 (two-person rule on the safe room and the supply hatch) and
CITY-key-3 (repeated denials at a key door are an attempt to get in).
"""

from __future__ import annotations

from collections import deque

from policies.core import Context, Rule
from policies.events import BadgeEvent, Event
from policies.timefmt import seconds

TRANSIT_KINDS = frozenset({"public", "screening"})


class ZoneAuthorization(Rule):
    """A badge granted into a zone that is not among the person's zones."""

    policy = "zone-authorization"
    clause = "EXAM-2.8.8"
    severity = "major"
    handles = ("badge.granted",)
    latched = True

    def on_event(self, ev: Event) -> None:
        assert isinstance(ev, BadgeEvent)
        site = self.site
        door = site.doors[ev.device]
        entrance = site.entrance
        if entrance is not None and door.id == entrance.inner and ev.direction == "out":
            return  # judged by escorted-exit
        zone = site.zones[door.zone_entered(ev.direction)]
        if zone.kind in TRANSIT_KINDS:
            return
        person = site.people.get(ev.badge)
        if person is None:
            self.raise_(
                ev.badge,
                f"unknown badge {ev.badge} granted into {zone.id} at {door.id}",
                severity="critical",
            )
        elif zone.id not in person.zones:
            guard_inside = person.role == "guard" and zone.sealed
            self.raise_(
                ev.badge,
                f"{person.name} ({person.role}) entered {zone.id} at {door.id}"
                + (
                    ": guards never enter the sealed area"
                    if guard_inside
                    else ", which is not among their zones"
                ),
                severity="critical" if guard_inside else "major",
                clause="EXAM-2.8.15" if guard_inside else "EXAM-2.8.8",
            )


class BadgeDeniedBurst(Rule):
    """`count` denials of one badge within `within_s`."""

    policy = "badge-denied-burst"
    clause = "CITY-key-3"
    severity = "major"
    handles = ("badge.denied",)
    latched = True

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        burst = self.tunables.badge_denied_burst
        self.count, self.within_s = burst.count, burst.within_s
        self.within = seconds(burst.within_s)
        self.recent: dict[str, deque[int]] = {}

    def on_event(self, ev: Event) -> None:
        assert isinstance(ev, BadgeEvent)
        q = self.recent.setdefault(ev.badge, deque())
        q.append(ev.ts)
        while ev.ts - q[0] > self.within:
            q.popleft()
        if len(q) >= self.count:
            self.raise_(
                ev.badge,
                f"badge {ev.badge} denied {len(q)} times within "
                f"{self.within_s:g} s (last at {ev.device})",
            )
            q.clear()


class EscortedExit(Rule):
    """During a seal, sealed staff leave only with an approval and two guards at the entrance."""

    policy = "escorted-exit"
    clause = "EXAM-2.8.9"
    severity = "critical"
    handles = ("badge.granted",)
    seal_only = True
    latched = True

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.window = seconds(self.tunables.two_person_window_s)
        self.window_s = self.tunables.two_person_window_s
        self.guard_grants: deque[tuple[int, str]] = deque()  # at entrance.outer

    def applies(self) -> bool:
        return self.site.entrance is not None

    def on_event(self, ev: Event) -> None:
        assert isinstance(ev, BadgeEvent)
        entrance = self.site.entrance
        assert entrance is not None
        person = self.site.people.get(ev.badge)
        if ev.device == entrance.outer:
            if person is not None and person.role == "guard":
                q = self.guard_grants
                q.append((ev.ts, ev.badge))
                while q and q[0][0] < ev.ts - 2 * self.window:
                    q.popleft()
            return
        if (
            ev.device != entrance.inner
            or ev.direction != "out"
            or not self.ctx.sealed
            or person is None
            or person.role != "sealed_staff"
        ):
            return
        approval = self.ctx.world.approvals.get(ev.badge)
        if approval is None or not approval[0] <= ev.ts <= approval[1]:
            self.raise_(
                ev.badge,
                f"{person.name} left the sealed area at {ev.device} without a valid exit approval",
            )
            return
        self.ctx.schedule(ev.ts + self.window, self._escort_due, (ev.badge, ev.ts))

    def _escort_due(self, arg: tuple[str, int]) -> None:
        badge, t = arg
        lo, hi = t - self.window, t + self.window
        guards = {b for (tg, b) in self.guard_grants if lo <= tg <= hi}
        if len(guards) < 2:
            name = self.site.people[badge].name
            self.raise_(
                badge,
                f"{name} left the sealed area escorted by {len(guards)} "
                f"guard(s) badged at the entrance within {self.window_s:g} s; "
                "two are required",
            )


class TwoPerson(Rule):
    """A two_person door opens only after two distinct authorised badges within the window."""

    policy = "two-person"
    clause = "EXAM-2.8.13"
    severity = "critical"
    handles = ("badge.granted", "door.opened", "door.forced")
    latched = True

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.doors = frozenset(d.id for d in self.site.doors.values() if d.two_person)
        self.window = seconds(self.tunables.two_person_window_s)
        self.window_s = self.tunables.two_person_window_s
        self.grants: dict[str, deque[tuple[int, str]]] = {d: deque() for d in self.doors}

    def applies(self) -> bool:
        return bool(self.doors)

    def on_event(self, ev: Event) -> None:
        door_id = ev.device
        if door_id not in self.doors:
            return
        q = self.grants[door_id]
        while q and q[0][0] < ev.ts - self.window:
            q.popleft()
        door = self.site.doors[door_id]
        if isinstance(ev, BadgeEvent):
            person = self.site.people.get(ev.badge)
            if person is not None and door.zone_entered(ev.direction) in person.zones:
                q.append((ev.ts, ev.badge))
            return
        if self.ctx.world.doors_open.get(door_id) != ev.ts and ev.type == "door.opened":
            return  # it was already open
        badges = {b for (_, b) in q}
        if len(badges) < 2:
            how = "forced" if ev.type == "door.forced" else "opened"
            self.raise_(
                door_id,
                f"{door_id} {how} with {len(badges)} authorised badge(s) in "
                f"the last {self.window_s:g} s; two are required",
                clause="EXAM-2.8.16" if door.kind == "hatch" else "EXAM-2.8.13",
            )
