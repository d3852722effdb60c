"""EXAM-2.7.8: "A mobile-phone signal jamming system … works WITHOUT INTERRUPTION for the whole seal."

Also EXAM-2.7.10 (jammer-health): a jammer's own fault bits are the warning before it fails.
"""

from __future__ import annotations

from policies.core import Context, Deadlines, Rule
from policies.events import Event, JammerStatus
from policies.timefmt import seconds


class JammerUptime(Rule):
    """Every band of every jammer at or above its floor, output on, status flowing."""

    policy = "jammer-uptime"
    clause = "EXAM-2.7.8"
    severity = "critical"
    handles = ("jammer.status",)
    seal_only = True

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        timeout = self.tunables.jammer_status_timeout_s
        self.silence = Deadlines(ctx, seconds(timeout), self._silent)
        self.timeout_s = timeout
        # per jammer: (band id, floor, alert subject), built once
        self.floors = {
            j.id: [(b.id, b.min_dbm, f"{j.id}/{b.id}") for b in j.bands]
            for j in self.site.jammers.values()
        }

    def applies(self) -> bool:
        return bool(self.site.jammers)

    def on_event(self, ev: Event) -> None:
        if not self.ctx.sealed:
            return
        assert isinstance(ev, JammerStatus)
        self.silence.touch(ev.device, ev.ts)
        self._judge(ev)

    def _judge(self, ev: JammerStatus) -> None:
        jid = ev.device
        if ev.output:
            if jid in self.mine:
                self.clear(jid)
        else:
            self.raise_(jid, f"jammer {jid}: RF output is off", fold=False)
        bands = ev.bands
        mine = self.mine
        for band_id, floor, subject in self.floors[jid]:
            dbm = bands.get(band_id)
            if dbm is not None and dbm >= floor:
                if subject in mine:
                    self.clear(subject)
            elif dbm is None:
                self.raise_(
                    subject, f"jammer {jid} band {band_id}: missing from the status", fold=False
                )
            else:
                self.raise_(
                    subject,
                    f"jammer {jid} band {band_id}: {dbm:g} dBm is below its floor of {floor:g} dBm",
                    fold=False,
                )

    def _silent(self, jid: str) -> None:
        if self.ctx.sealed:
            self.raise_(jid, f"jammer {jid}: no status for {self.timeout_s:g} s", fold=False)

    def on_seal_start(self) -> None:
        now = self.ctx.now
        for jid in self.site.jammers:
            self.silence.touch(jid, now)
            last = self.ctx.world.jammer.get(jid)
            if last is not None:
                self._judge(last)

    def on_seal_end(self) -> None:
        self.silence.stop_all()


class JammerHealth(Rule):
    """A status listing faults (over-temperature, VSWR, fan, tamper, power) is a warning."""

    policy = "jammer-health"
    clause = "EXAM-2.7.10"
    severity = "major"
    handles = ("jammer.status",)

    def on_event(self, ev: Event) -> None:
        assert isinstance(ev, JammerStatus)
        if ev.faults:
            a = self.raise_(
                ev.device, f"jammer {ev.device} reports faults: {', '.join(ev.faults)}", fold=False
            )
            a.message = f"jammer {ev.device} reports faults: {', '.join(ev.faults)}"
        else:
            self.clear(ev.device)
