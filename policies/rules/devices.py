"""EXAM-2.7.10: "Access control, video and burglar-alarm systems are … always in effective working state."

A device that says it is offline, or a jammer, camera, panel or phone detector that falls
silent for `heartbeat_timeout_s`, is offline until it is heard again.
"""

from __future__ import annotations

from policies.core import Context, Deadlines, Rule
from policies.events import DeviceEvent, Event
from policies.timefmt import seconds


class DeviceOffline(Rule):
    policy = "device-offline"
    clause = "EXAM-2.7.10"
    severity = "major"
    # Not dispatched like the others: every event is activity, so the engine calls
    # `on_event` only when there is something to do (see Engine.feed).

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        site = self.site
        self.watched = frozenset(
            [*site.jammers, *site.cameras, *site.alarm_panels, *site.phone_detectors]
        )
        # an alarm input is heard through its panel (the world records both)
        self.via = {i.id: i.panel for i in site.alarm_inputs.values()}
        self.timeout_s = self.tunables.heartbeat_timeout_s
        self.silence = Deadlines(
            ctx, seconds(self.timeout_s), self._silent, last=ctx.world.last_seen
        )

    def on_start(self) -> None:
        for dev in sorted(self.watched):
            self.silence.arm(dev, self.ctx.now)

    def on_event(self, ev: Event) -> None:
        dev = ev.device
        if isinstance(ev, DeviceEvent) and ev.state == "offline":
            self.raise_(dev, f"{dev} reports offline", fold=False)
            return
        heard = self.via.get(dev, dev)
        if heard in self.silence.expired:
            self.silence.arm(heard, ev.ts)
        if self.mine:
            self.clear(dev)
            if heard != dev:
                self.clear(heard)

    def _silent(self, dev: str) -> None:
        self.raise_(dev, f"{dev} silent for {self.timeout_s:g} s", fold=False)
