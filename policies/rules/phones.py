"""EXAM-2.8.6: "No phones, cameras or wireless devices inside; phones go to shielding lockers."

Also EXAM-2.8.10 (one recorded duty telephone; calls supervised by two officers).
"""

from __future__ import annotations

from policies.core import Rule
from policies.events import CallRecorded, Event

SUPERVISING_ROLES = frozenset({"supervisor", "secrecy_officer"})


class ProhibitedDevice(Rule):
    policy = "prohibited-device"
    clause = "EXAM-2.8.6"
    severity = "critical"
    handles = ("phone.detected",)
    seal_only = True
    latched = True

    def on_event(self, ev: Event) -> None:
        if self.ctx.sealed:
            zone = self.site.phone_detectors[ev.device].zone
            self.raise_(ev.device, f"phone detected by {ev.device} in {zone} during the seal")


class DutyPhone(Rule):
    policy = "duty-phone"
    clause = "EXAM-2.8.10"
    severity = "major"
    handles = ("call.recorded",)
    seal_only = True
    latched = True

    def on_event(self, ev: Event) -> None:
        assert isinstance(ev, CallRecorded)
        if not self.ctx.sealed:
            return
        people = self.site.people
        supervisors = {
            b for b in ev.supervisors if b in people and people[b].role in SUPERVISING_ROLES
        }
        problems = []
        if ev.recording is None:
            problems.append("not recorded")
        if len(supervisors) < 2:
            problems.append(f"supervised by {len(supervisors)} officer(s), two are required")
        if problems:
            self.raise_(ev.device, f"duty-phone call on {ev.device}: {'; '.join(problems)}")
