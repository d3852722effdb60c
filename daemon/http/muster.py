"""The muster (`GET /api/muster`, `sealwatch muster`): who is inside each zone now, against
the site's people and the zones each may enter, and who has not been seen for a while.

Where someone is comes from the engine's world (`location`: the zone entered by their last
granted badge, as the archive's headcount counts it); when they were last seen from the
store (their newest event carrying their `badge`: a badge read, a patrol visit, a duty
change), looked up over the last day (or twice the unseen limit, if longer). A person is
"unseen" when they are inside (any zone but a public one) and nothing of theirs was stored
for `daemon.dashboard.muster_unseen_min` minutes: the ones to look for in an evacuation.
"""

from __future__ import annotations

from typing import Any

from daemon.view import ReadView, format_time
from policies.rules.access import TRANSIT_KINDS

DAY_US = 86_400 * 1_000_000


def muster(view: ReadView, unseen_min: float) -> dict[str, Any]:
    site, now, tz = view.site, view.clock(), view.tz
    limit_us = int(unseen_min * 60 * 1_000_000)
    seen = view.badges_seen_since(now - max(DAY_US, 2 * limit_us))
    inside = view.people_inside()
    where = {b: z for z, badges in inside.items() for b in badges}
    people: list[dict[str, Any]] = []
    for badge in sorted({*site.people, *where}):
        person = site.people.get(badge)
        zone_id = where.get(badge)
        zone = site.zones.get(zone_id) if zone_id is not None else None
        public = zone is None or zone.kind == "public"
        permitted = (
            zone is None
            or zone.kind in TRANSIT_KINDS
            or (person is not None and zone.id in person.zones)
        )
        last = seen.get(badge)
        people.append(
            {
                "badge": badge,
                "name": person.name if person else None,
                "role": person.role if person else None,
                "zones": sorted(person.zones) if person else [],
                "zone": zone_id,
                "permitted": permitted,
                "last_seen": format_time(last, tz) if last is not None else None,
                "last_seen_ms": last // 1000 if last is not None else None,
                "unseen": not public and (last is None or now - last > limit_us),
            }
        )
    zones = []
    for z in site.zones.values():
        badges = inside.get(z.id, [])
        zones.append(
            {
                "zone": z.id,
                "kind": z.kind,
                "count": len(badges),
                "badges": badges,
            }
        )
    return {
        "ts": format_time(now, tz),
        "now_ms": now // 1000,
        "site": site.id,
        "unseen_min": unseen_min,
        "inside": sum(1 for b, z in where.items() if not _public(site, z)),
        "zones": zones,
        "people": people,
        "unseen": [p["badge"] for p in people if p["unseen"]],
    }


def _public(site: Any, zone_id: str) -> bool:
    zone = site.zones.get(zone_id)
    return zone is None or zone.kind == "public"
