"""A seal's archive: who was inside, who came and went, jammer interruptions, incidents.

Built from the store through the read-only view (events and transitions inside the seal's
window), so it is the same whenever it is asked for, and it survives restarts like
everything else in the store.
"""

from __future__ import annotations

from typing import Any

from daemon.view import ReadView, format_time


def seal_archive(view: ReadView, seal_id: str) -> dict[str, Any] | None:
    """The seal's archive, or None if no such seal has started."""
    seal = next((s for s in view.seal_records() if s["id"] == seal_id), None)
    if seal is None or seal["start"] is None:
        return None
    site, tz, now_us = view.site, view.tz, view.clock()
    start, end = seal["start"], seal["end"] if seal["end"] is not None else now_us
    inner = site.entrance.inner if site.entrance else None
    boundary = {d.id for d in site.boundary_doors}
    personnel: dict[str, dict[str, Any]] = {}
    movements = []
    for ev in view.events_between(start, end, ("badge.granted", "operator.duty")):
        badge = str(ev.get("badge"))
        person = site.people.get(badge)
        personnel.setdefault(
            badge,
            {
                "badge": badge,
                "name": person.name if person else None,
                "role": person.role if person else None,
            },
        )
        door = ev.get("device")
        if ev["type"] == "badge.granted" and (door == inner or door in boundary):
            movements.append(
                {
                    "ts": ev["ts"],
                    "badge": badge,
                    "door": door,
                    "direction": ev.get("direction"),
                    "kind": "entry" if ev.get("direction") == "in" else "exit",
                }
            )
    interruptions: dict[str, dict[str, Any]] = {}
    incidents = []
    for tr in view.transitions_between(start, end):
        if tr["state"] == "raised":
            incidents.append(
                {
                    k: tr[k]
                    for k in (
                        "ts",
                        "alert_id",
                        "policy",
                        "subject",
                        "severity",
                        "clause",
                        "message",
                    )
                }
            )
        if tr["policy"] == "jammer-uptime":
            if tr["state"] == "raised":
                interruptions[tr["alert_id"]] = {
                    "subject": tr["subject"],
                    "start": tr["ts"],
                    "start_us": tr["ts_us"],
                    "end": None,
                    "duration_s": None,
                }
            elif tr["state"] == "cleared" and tr["alert_id"] in interruptions:
                it = interruptions[tr["alert_id"]]
                it["end"] = tr["ts"]
                it["duration_s"] = (tr["ts_us"] - it["start_us"]) / 1e6
    for it in interruptions.values():
        it.pop("start_us")
    return {
        "id": seal["id"],
        "name": seal["name"],
        "classification": seal["classification"],
        "start": format_time(start, tz),
        "end": format_time(seal["end"], tz) if seal["end"] is not None else None,
        "planned_end": (
            format_time(seal["planned_end"], tz) if seal["planned_end"] is not None else None
        ),
        "status": seal["status"],
        "started_by": seal["started_by"],
        "ended_by": seal["ended_by"],
        "personnel": sorted(personnel.values(), key=lambda p: p["badge"]),
        "entries_exits": movements,
        "jammer_interruptions": list(interruptions.values()),
        "incidents": incidents,
        "audit_head": view.audit_head(),
        # the ledger's newest head, signed with the site key: keep the archive, and
        # `sealwatch audit verify --anchor` proves later that the store still reaches it
        "audit_anchor": view.signed_head(),
    }
