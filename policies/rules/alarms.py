"""EXAM-2.7.2: "… a ≥2 m isolation belt; the belt carries a security (intrusion) system."

Also EXAM-2.7.5 (burglar alarms on every work room) and EXAM-2.7.10 (alarm systems kept in
effective working state: power and battery).
"""

from __future__ import annotations

from policies.core import Context, Rule
from policies.events import AlarmInputEvent, AlarmPanelEvent, Event


class Intrusion(Rule):
    """An input in alarm while armed (always for the belt during a seal), or any tamper."""

    policy = "intrusion"
    clause = "EXAM-2.7.5"
    severity = "critical"
    handles = ("alarm.input", "alarm.panel")

    def on_event(self, ev: Event) -> None:
        if isinstance(ev, AlarmPanelEvent):
            if ev.tamper is True:
                self.raise_(ev.device, f"alarm panel {ev.device} reports tamper", fold=False)
            elif ev.tamper is False:
                self.clear(ev.device)
            return
        assert isinstance(ev, AlarmInputEvent)
        inp = self.site.alarm_inputs[ev.device]
        belt = self.site.zones[inp.zone].kind == "buffer"
        clause = "EXAM-2.7.2" if belt else "EXAM-2.7.5"
        where = f"input {inp.id} ({inp.kind}, {inp.zone})"
        state = ev.state
        if state == "normal":
            self.clear(inp.id)
        elif state == "tamper":
            self.raise_(inp.id, f"{where}: tamper", clause=clause)
        elif state == "fault":
            self.raise_(inp.id, f"{where}: fault", severity="major", clause=clause)
        else:
            # A panel never heard from counts as armed: an alarm is not ignored on a guess.
            armed = self.ctx.world.panel_armed.get(inp.panel, True)
            if armed or (belt and self.ctx.sealed):
                self.raise_(inp.id, f"{where}: alarm", clause=clause)


class PerimeterArmed(Rule):
    """During a seal, every panel with isolation-belt inputs is armed."""

    policy = "perimeter-armed"
    clause = "EXAM-2.7.2"
    severity = "critical"
    handles = ("alarm.panel",)
    seal_only = True

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.panels = frozenset(self.site.perimeter_panels())

    def applies(self) -> bool:
        return bool(self.panels)

    def on_event(self, ev: Event) -> None:
        assert isinstance(ev, AlarmPanelEvent)
        if ev.device not in self.panels or ev.armed is None:
            return
        if ev.armed:
            self.clear(ev.device)
        elif self.ctx.sealed:
            self.raise_(
                ev.device, f"perimeter panel {ev.device} is disarmed during the seal", fold=False
            )

    def on_seal_start(self) -> None:
        for panel in self.panels:
            if self.ctx.world.panel_armed.get(panel) is False:
                self.raise_(
                    panel,
                    f"perimeter panel {panel} is disarmed at the start of the seal",
                    fold=False,
                )


class Power(Rule):
    """An alarm panel on lost mains or a low battery."""

    policy = "power"
    clause = "EXAM-2.7.10"
    severity = "major"
    handles = ("alarm.panel",)

    def on_event(self, ev: Event) -> None:
        assert isinstance(ev, AlarmPanelEvent)
        if ev.mains is None and ev.battery is None:
            return
        mains, battery = self.ctx.world.panel_power[ev.device]
        if mains != "lost" and battery != "low":
            self.clear(ev.device)
            return
        problems = " and ".join(
            p
            for p, bad in (("mains lost", mains == "lost"), ("battery low", battery == "low"))
            if bad
        )
        a = self.raise_(ev.device, f"{ev.device}: {problems}", fold=False)
        a.message = f"{ev.device}: {problems}"
