"""EXAM-2.8.14: "Before the seal: full inspection that … every protective device works reliably."

Run when the engine sees a seal start: every readiness check at once, one latched alert that
lists each failure.

`precheck.recorded` is the written record of the same checks (inspector, items, remediation);
the engine keeps the last one and marks each seal that comes into force with it (`SealState.
precheck`: passed, failed, or none when there was no record).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from policies.core import Rule
from policies.events import MAX_PRECHECK_EVIDENCE
from policies.rules.staffing import ON_DUTY_ROLES
from policies.timefmt import format_ts


@dataclass(frozen=True, slots=True)
class Check:
    """One readiness item: what is wrong (empty: it passes) and what was seen."""

    item: str
    problems: list[str]
    evidence: list[str]


class PreSeal(Rule):
    policy = "pre-seal"
    clause = "EXAM-2.8.14"
    severity = "critical"
    latched = True

    def failures(self) -> list[str]:
        return [problem for c in self.checklist() for problem in c.problems]

    def checklist(self) -> list[Check]:
        """Each readiness item with its problems and evidence, in the alert's order."""
        site, ctx, w = self.site, self.ctx, self.ctx.world
        devices: list[str] = []
        offline = ctx.active_alerts("device-offline")
        devices += [f"{d} offline" for d in sorted(offline)]
        watched = [
            d
            for group in (site.jammers, site.cameras, site.alarm_panels, site.phone_detectors)
            for d in group
        ]
        devices += [f"{d} never heard" for d in watched if d not in w.last_seen]
        heard = sorted(d for d in watched if d in w.last_seen and d not in offline)
        devices_seen = [f"{len(heard)} of {len(watched)} devices reporting"] + [
            f"{d} last heard {_t(w.last_seen[d], site.tz)}" for d in heard
        ]
        doors = {d.id for d in site.boundary_doors}
        if site.entrance is not None:
            doors |= {site.entrance.outer, site.entrance.inner}
        open_doors = [f"door {d} open" for d in sorted(doors) if d in w.doors_open]
        closed = [f"door {d} closed" for d in sorted(doors) if d not in w.doors_open]
        jammers: list[str] = []
        readings: list[str] = []
        for jid, jammer in site.jammers.items():
            status = w.jammer.get(jid)
            if status is None:
                continue  # listed under devices: never heard
            if not status.output:
                jammers.append(f"jammer {jid} output off")
            readings.append(f"jammer {jid} output {'on' if status.output else 'off'}")
            for b in jammer.bands:
                level = status.bands.get(b.id, float("-inf"))
                if level < b.min_dbm:
                    jammers.append(f"jammer {jid} band {b.id} below floor")
                readings.append(f"{jid}/{b.id} {level:.1f} dBm (floor {b.min_dbm:.1f})")
        cameras = [
            f"camera {cid} {'down' if cam.stream == 'down' else cam.tamper}"
            for cid, cam in w.camera.items()
            if cam.stream == "down" or cam.tamper is not None
        ]
        streams = [
            f"camera {cid} no status received"
            if cam is None
            else f"camera {cid} {cam.stream}"
            + (f", {cam.fps:g} fps" if cam.fps is not None else "")
            + (f", tamper {cam.tamper}" if cam.tamper else ", no tamper")
            for cid, cam in sorted((c, w.camera.get(c)) for c in site.cameras)
        ]
        panels = site.perimeter_panels()
        perimeter = [
            f"perimeter panel {p} disarmed" for p in panels if w.panel_armed.get(p) is False
        ]
        armed = [
            f"perimeter panel {p} "
            + {True: "armed", False: "disarmed", None: "not reported"}[w.panel_armed.get(p)]
            for p in panels
        ]
        staffed: list[str] = []
        on_duty: list[str] = []
        need = self.tunables.min_operators_on_duty
        for zone in site.monitoring_zones:
            present = sorted(
                b
                for b in w.on_duty.get(zone, ())
                if b in site.people and site.people[b].role in ON_DUTY_ROLES
            )
            if len(present) < need:
                staffed.append(f"{zone}: {len(present)} of {need} operators on duty")
            on_duty.append(f"{zone}: {', '.join(present) or 'nobody'} on duty (need {need})")
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
        inventories = [
            f"camera {c} no inventory"
            if inv is None
            else f"camera {c} footage {_t(inv.oldest, site.tz)} .. {_t(inv.newest, site.tz)}, "
            f"{len(inv.gaps)} gap(s)"
            for c, inv in sorted((c, w.inventory.get(c)) for c in site.cameras)
        ]
        return [
            Check("every device reporting", devices, devices_seen),
            Check("boundary and entrance doors closed", open_doors, closed),
            Check("every jammer band above its floor, output on", jammers, readings),
            Check("cameras streaming without tamper", cameras, streams),
            Check("perimeter armed", perimeter, armed or ["no perimeter panel in the site file"]),
            Check("monitoring room staffed", staffed, on_duty),
            Check("video retention compliant", retention, inventories),
        ]

    def condition(self) -> list[Check]:
        """What the written record checks beyond the engine's check at the seal's start (whose
        alert text replays must keep): jammers answering without faults, alarm panels and
        inputs sound."""
        site, ctx, w = self.site, self.ctx, self.ctx.world
        silent = ctx.active_alerts("jammer-uptime")
        jam_problems: list[str] = []
        jam_seen: list[str] = []
        for jid in site.jammers:
            status = w.jammer.get(jid)
            if jid in silent and (status is None or status.output):
                jam_problems.append(f"jammer {jid} not answering with its status")
            if status is None:
                continue
            jam_problems += [f"jammer {jid} fault {f}" for f in status.faults]
            temp = "" if status.temperature_c is None else f", {status.temperature_c:g} °C"
            jam_seen.append(f"jammer {jid} faults: {', '.join(status.faults) or 'none'}{temp}")
        tampered = ctx.active_alerts("intrusion")
        panel_problems: list[str] = []
        panel_seen: list[str] = []
        for pid in sorted(site.alarm_panels):
            mains, battery = w.panel_power.get(pid, (None, None))
            if mains == "lost":
                panel_problems.append(f"alarm panel {pid} mains lost")
            if battery == "low":
                panel_problems.append(f"alarm panel {pid} battery low")
            if pid in tampered:
                panel_problems.append(f"alarm panel {pid} tamper")
            panel_seen.append(
                f"alarm panel {pid} mains {mains or 'not reported'}, "
                f"battery {battery or 'not reported'}"
            )
        for iid in sorted(site.alarm_inputs):
            state = w.inputs.get(iid)
            if state in ("tamper", "fault"):  # in alarm: people at work, disarmed
                panel_problems.append(f"alarm input {iid} {state}")
            panel_seen.append(f"alarm input {iid} {state or 'not reported'}")
        return [
            Check("jammers answering, without faults", jam_problems, jam_seen or ["no jammer"]),
            Check(
                "alarm panels and inputs sound",
                panel_problems,
                panel_seen or ["no alarm panel in the site file"],
            ),
        ]

    def record(self) -> dict[str, Any]:
        """The `items` and `passed` fields of a `precheck.recorded` event, from the live state:
        the engine's checks and the condition of the devices."""
        items = [
            {
                "item": c.item,
                "passed": not c.problems,
                "problems": c.problems,
                "evidence": c.evidence[:MAX_PRECHECK_EVIDENCE],
            }
            for c in self.checklist() + self.condition()
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


def _t(us: int | None, tz: tzinfo) -> str:
    return "unknown" if us is None else format_ts(us, tz)
