"""EXAM-2.7.3: "During the seal the sealed area has exactly ONE entrance … two doors, inner and outer."

Also EXAM-2.7.5 (a forced door) and CITY-key-3 (a door held open defeats monitoring of who
enters and leaves).
"""

from __future__ import annotations

from policies.core import Context, Rule
from policies.events import Event
from policies.timefmt import seconds


class SingleEntrance(Rule):
    """During a seal no boundary door but `entrance.inner` opens, is forced or grants a badge."""

    policy = "single-entrance"
    clause = "EXAM-2.7.3"
    severity = "critical"
    handles = ("door.opened", "door.forced", "door.closed", "badge.granted")
    seal_only = True

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        entrance = self.site.entrance
        self.watched = frozenset(
            d.id
            for d in self.site.boundary_doors
            if entrance is not None and d.id != entrance.inner and d.kind != "hatch"
        )

    def applies(self) -> bool:
        return self.site.entrance is not None

    def on_event(self, ev: Event) -> None:
        door = ev.device
        if door not in self.watched:
            return
        if ev.type == "door.closed":
            self.clear(door)
            return
        if not self.ctx.sealed:
            return
        if ev.type == "badge.granted":
            self.raise_(
                door,
                f"badge granted at {door}, which is not the seal's entrance",
                latched=door not in self.ctx.world.doors_open,
            )
        else:
            verb = "forced" if ev.type == "door.forced" else "opened"
            a = self.raise_(
                door, f"{door} {verb} during the seal: it is not the entrance", latched=False
            )
            a.latched = False  # once it has opened, closing it ends the violation

    def on_seal_start(self) -> None:
        for door in self.watched:
            if door in self.ctx.world.doors_open:
                self.raise_(door, f"{door} is open at the start of the seal", latched=False)


class EntranceInterlock(Rule):
    """During a seal the two entrance doors are never open at the same time."""

    policy = "entrance-interlock"
    clause = "EXAM-2.7.3"
    severity = "critical"
    handles = ("door.opened", "door.forced", "door.closed")
    seal_only = True

    def applies(self) -> bool:
        return self.site.entrance is not None

    def on_event(self, ev: Event) -> None:
        entrance = self.site.entrance
        assert entrance is not None
        if ev.device != entrance.outer and ev.device != entrance.inner:
            return
        if ev.type == "door.closed":
            self.clear("entrance")
        elif self.ctx.sealed:
            self._check()

    def _check(self) -> None:
        entrance = self.site.entrance
        assert entrance is not None
        open_ = self.ctx.world.doors_open
        if entrance.outer in open_ and entrance.inner in open_:
            self.raise_(
                "entrance",
                f"both entrance doors open at once ({entrance.outer} and {entrance.inner})",
            )

    def on_seal_start(self) -> None:
        self._check()


class DoorForced(Rule):
    """A door opened without a grant, as reported by its controller."""

    policy = "door-forced"
    clause = "EXAM-2.7.5"
    severity = "critical"
    handles = ("door.forced", "door.closed")

    def on_event(self, ev: Event) -> None:
        if ev.type == "door.forced":
            self.raise_(ev.device, f"{ev.device} forced open")
        else:
            self.clear(ev.device)


class DoorHeldOpen(Rule):
    """A door left open for `door_held_open_s`."""

    policy = "door-held-open"
    clause = "CITY-key-3"
    severity = "major"
    handles = ("door.opened", "door.forced", "door.closed")

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.limit_s = self.tunables.door_held_open_s
        self.limit = seconds(self.limit_s)

    def on_event(self, ev: Event) -> None:
        if ev.type == "door.closed":
            self.clear(ev.device)
        elif self.ctx.world.doors_open.get(ev.device) == ev.ts:  # it opened just now
            self.ctx.schedule(ev.ts + self.limit, self._due, (ev.device, ev.ts))

    def _due(self, arg: tuple[str, int]) -> None:
        door, opened = arg
        if self.ctx.world.doors_open.get(door) == opened:
            self.raise_(door, f"{door} held open for {self.limit_s:g} s")
