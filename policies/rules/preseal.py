"""EXAM-2.8.14: "Before the seal: full inspection that … every protective device works reliably."

Run when the engine sees a seal start: every readiness check at once, one latched alert that
lists each failure.

`precheck.recorded` is the written record of the same checks (inspector, items, remediation);
the engine keeps the last one and marks each seal that comes into force with it (`SealState.
precheck`: passed, failed, or none when there was no record).
"""

from __future__ import annotations

from typing import Any

from policies.core import Rule
from policies.rules.staffing import ON_DUTY_ROLES


class PreSeal(Rule):
    policy = "pre-seal"
    clause = "EXAM-2.8.14"
    severity = "critical"
    latched = True

    def failures(self) -> list[str]:
        return [problem for _item, problems in self.checklist() for problem in problems]

    def checklist(self) -> list[tuple[str, list[str]]]:
        """Each readiness item with its problems (none: it passes), in the alert's order."""
        site, ctx, w = self.site, self.ctx, self.ctx.world
        devices: list[str] = []
        offline = ctx.active_alerts("device-offline")
        devices += [f"{d} offline" for d in sorted(offline)]
        for group in (site.jammers, site.cameras, site.alarm_panels, site.phone_detectors):
            devices += [f"{d} never heard" for d in group if d not in w.last_seen]
        doors = {d.id for d in site.boundary_doors}
        if site.entrance is not None:
            doors |= {site.entrance.outer, site.entrance.inner}
        open_doors = [f"door {d} open" for d in sorted(doors) if d in w.doors_open]
        jammers: list[str] = []
        for jid, jammer in site.jammers.items():
            status = w.jammer.get(jid)
            if status is None:
                continue
            if not status.output:
                jammers.append(f"jammer {jid} output off")
            jammers += [
                f"jammer {jid} band {b.id} below floor"
                for b in jammer.bands
                if status.bands.get(b.id, float("-inf")) < b.min_dbm
            ]
        cameras = [
            f"camera {cid} {'down' if cam.stream == 'down' else cam.tamper}"
            for cid, cam in w.camera.items()
            if cam.stream == "down" or cam.tamper is not None
        ]
        perimeter = [
            f"perimeter panel {p} disarmed"
            for p in site.perimeter_panels()
            if w.panel_armed.get(p) is False
        ]
        staffed: list[str] = []
        need = self.tunables.min_operators_on_duty
        for zone in site.monitoring_zones:
            have = sum(
                1
                for b in w.on_duty.get(zone, ())
                if b in site.people and site.people[b].role in ON_DUTY_ROLES
            )
            if have < need:
                staffed.append(f"{zone}: {have} of {need} operators on duty")
        retention = [
            f"camera {c} out of retention"
            for c in sorted(ctx.active_alerts("video-retention"))
            if c in w.inventory  # else it is listed below, as unknown
        ]
        retention += [
            f"camera {c} retention unknown: no inventory received"
            for c in sorted(site.cameras)
            if site.cameras[c].recordings and c not in w.inventory
        ]
        return [
            ("every device reporting", devices),
            ("boundary and entrance doors closed", open_doors),
            ("every jammer band above its floor, output on", jammers),
            ("cameras streaming without tamper", cameras),
            ("perimeter armed", perimeter),
            ("monitoring room staffed", staffed),
            ("video retention compliant", retention),
        ]

    def record(self) -> dict[str, Any]:
        """The `items` and `passed` fields of a `precheck.recorded` event, from the live state."""
        items = [
            {"item": item, "passed": not problems, "problems": problems}
            for item, problems in self.checklist()
        ]
        return {"items": items, "passed": all(i["passed"] for i in items)}

    def check(self, seal_id: str) -> None:
        problems = self.failures()
        if problems:
            self.raise_(
                seal_id,
                f"seal {seal_id} started with {len(problems)} readiness "
                f"failure(s): " + "; ".join(problems),
            )
