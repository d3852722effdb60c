"""The site plan the page draws: zones, doors, devices with names and positions, people, the
entrance and the floor plan image (static for the daemon's lifetime)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from daemon.config import DashboardOptions as Options

log = logging.getLogger("sealwatch.dashboard")


def zone_index(site: Any) -> dict[str, str]:
    """The zone each device belongs to (a door: its inner side)."""
    out: dict[str, str] = dict(site.device_zones())
    for door_id, door in site.doors.items():
        # a door belongs to the side inside: the sealed one, else its `b` side
        a_sealed = site.zones[door.a].sealed
        out[door_id] = door.a if a_sealed and not site.zones[door.b].sealed else door.b
    return out


def _raw_extras(site_path: Path | None) -> dict[str, dict[str, Any]]:
    """Display-only fields the site model does not keep (names, positions), by id."""
    if site_path is None:
        return {}
    try:
        raw = yaml.safe_load(site_path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        log.warning("cannot read %s for names and positions: %s", site_path, exc)
        return {}
    out: dict[str, dict[str, Any]] = {}

    def take(item: Any) -> None:
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            out[item["id"]] = {k: item[k] for k in ("name", "position") if k in item}
            for sub in item.get("inputs") or []:
                take(sub)

    for key in (
        "zones",
        "doors",
        "jammers",
        "cameras",
        "alarm_panels",
        "phone_detectors",
        "checkpoints",
        "consoles",
        "duty_phones",
    ):
        for item in raw.get(key) or []:
            take(item)
    return out


def site_plan(site: Any, site_path: Path | None, options: Options) -> dict[str, Any]:
    """What the page draws: zones, doors, devices, people, the entrance (static)."""
    extras = _raw_extras(site_path)
    positions = dict(options.positions or {})

    def pos(dev_id: str, default: Any = None) -> list[float] | None:
        p = positions.get(dev_id) or extras.get(dev_id, {}).get("position") or default
        return [float(p[0]), float(p[1])] if p else None

    def name(obj_id: str) -> str | None:
        n = extras.get(obj_id, {}).get("name")
        return str(n) if n else None

    entrance = site.entrance
    zones = [
        {
            "id": z.id,
            "kind": z.kind,
            "parent": z.parent,
            "classification": z.classification,
            "sealed": z.sealed,
            "name": name(z.id),
        }
        for z in site.zones.values()
    ]
    doors = [
        {
            "id": d.id,
            "a": d.a,
            "b": d.b,
            "kind": d.kind,
            "two_person": d.two_person,
            "boundary": site.is_boundary(d),
            "name": name(d.id),
            "position": pos(d.id),
            "entrance": (
                "outer"
                if entrance and entrance.outer == d.id
                else "inner"
                if entrance and entrance.inner == d.id
                else None
            ),
        }
        for d in site.doors.values()
    ]
    devices: list[dict[str, Any]] = []
    for jid, j in site.jammers.items():
        devices.append(
            {
                "id": jid,
                "kind": "jammer",
                "zone": j.zone,
                "name": name(jid),
                "position": pos(jid),
                "bands": [{"id": b.id, "min_dbm": b.min_dbm} for b in j.bands],
            }
        )
    for cid, c in site.cameras.items():
        devices.append(
            {
                "id": cid,
                "kind": "camera",
                "zone": c.zone,
                "name": name(cid),
                "position": pos(cid, c.position),
            }
        )
    for pid, p in site.alarm_panels.items():
        devices.append(
            {
                "id": pid,
                "kind": "alarm_panel",
                "zone": p.zone,
                "name": name(pid),
                "position": pos(pid),
            }
        )
        for i in p.inputs:
            devices.append(
                {
                    "id": i.id,
                    "kind": "alarm_input",
                    "zone": i.zone,
                    "input_kind": i.kind,
                    "panel": pid,
                    "name": name(i.id),
                    "position": pos(i.id),
                }
            )
    for kind, group in (
        ("phone_detector", site.phone_detectors),
        ("checkpoint", site.checkpoints),
        ("console", site.consoles),
        ("duty_phone", site.duty_phones),
    ):
        for did, dev in group.items():
            devices.append(
                {"id": did, "kind": kind, "zone": dev.zone, "name": name(did), "position": pos(did)}
            )
    screening = None
    if entrance is not None:
        outer = site.doors[entrance.outer]
        screening = outer.b if site.zones[outer.b].kind == "screening" else outer.a
    return {
        "id": site.id,
        "name": site.name,
        "timezone": site.timezone,
        "zones": zones,
        "doors": doors,
        "devices": devices,
        "entrance": (
            {"outer": entrance.outer, "inner": entrance.inner, "zone": screening}
            if entrance
            else None
        ),
        "people": {b: {"name": p.name, "role": p.role} for b, p in site.people.items()},
        "floor_plan": (
            {
                "url": "/api/dashboard/floor-plan",
                "width": options.floor_plan_size[0],
                "height": options.floor_plan_size[1],
            }
            if options.floor_plan and options.floor_plan_size
            else None
        ),
    }
