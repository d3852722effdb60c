"""EXAM-2.8.15: "Guards patrol … 24 h; supervisors are on duty inside all day."

Also ARCH-2.8.3 (the monitoring room staffed without interruption).
"""

from __future__ import annotations

from policies.core import Context, Deadlines, Rule
from policies.events import Event, PatrolCheckpoint
from policies.timefmt import seconds

ON_DUTY_ROLES = frozenset({"operator", "supervisor"})


class MonitoringStaffed(Rule):
    """During a seal, each monitoring room has `min_operators_on_duty` operators on duty."""

    policy = "monitoring-staffed"
    clause = "ARCH-2.8.3"
    severity = "critical"
    handles = ("operator.duty",)
    seal_only = True

    def applies(self) -> bool:
        return bool(self.site.monitoring_zones) and self.tunables.min_operators_on_duty > 0

    def on_duty_count(self, zone: str) -> int:
        people = self.site.people
        return sum(
            1
            for b in self.ctx.world.on_duty.get(zone, ())
            if b in people and people[b].role in ON_DUTY_ROLES
        )

    def _check(self, zone: str) -> None:
        need = self.tunables.min_operators_on_duty
        have = self.on_duty_count(zone)
        if have >= need:
            self.clear(zone)
        else:
            a = self.raise_(zone, f"{zone}: {have} of {need} operators on duty", fold=False)
            a.message = f"{zone}: {have} of {need} operators on duty"

    def on_event(self, ev: Event) -> None:
        zone = self.site.consoles[ev.device].zone
        if self.ctx.sealed and zone in self.site.monitoring_zones:
            self._check(zone)

    def on_seal_start(self) -> None:
        for zone in self.site.monitoring_zones:
            self._check(zone)


class Patrol(Rule):
    """During a seal, a guard visits every checkpoint within `patrol_interval_min`."""

    policy = "patrol"
    clause = "EXAM-2.8.15"
    severity = "major"
    handles = ("patrol.checkpoint",)
    seal_only = True

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.interval_min = self.tunables.patrol_interval_min
        self.visits = Deadlines(ctx, seconds(self.interval_min * 60), self._overdue)

    def applies(self) -> bool:
        return bool(self.site.checkpoints)

    def on_event(self, ev: Event) -> None:
        assert isinstance(ev, PatrolCheckpoint)
        person = self.site.people.get(ev.badge)
        if person is None or person.role != "guard" or not self.ctx.sealed:
            return
        self.visits.touch(ev.device, ev.ts)
        self.clear(ev.device)

    def _overdue(self, checkpoint: str) -> None:
        if self.ctx.sealed:
            self.raise_(
                checkpoint, f"no guard at {checkpoint} for {self.interval_min:g} min", fold=False
            )

    def on_seal_start(self) -> None:
        for cp in self.site.checkpoints:
            self.visits.touch(cp, self.ctx.now)

    def on_seal_end(self) -> None:
        self.visits.stop_all()
