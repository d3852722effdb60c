"""CITY-key-3: "Key departments detect people entering and leaving promptly."

A person that video analytics (a `camera.object` event, e.g. mapped from Frigate) sees in a
zone of the sealed area that the access records say is empty came in without being recorded:
tailgating, a door held for someone, a way in that is not a door.
"""

from __future__ import annotations

from policies.core import Context, Rule
from policies.events import CameraObject, Event

PERSON = "person"


class UnbadgedPresence(Rule):
    """During a seal, a person seen on a sealed-area camera whose zone (with the zones inside
    it) holds no badge by the access records."""

    policy = "unbadged-presence"
    clause = "CITY-key-3"
    severity = "critical"
    handles = ("camera.object",)
    seal_only = True
    latched = True

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        zones = self.site.zones
        # zone → itself and every zone inside it
        self.within: dict[str, frozenset[str]] = {}
        for z in zones:
            inside = set()
            for other in zones:
                at: str | None = other
                while at is not None:
                    if at == z:
                        inside.add(other)
                        break
                    at = zones[at].parent
            self.within[z] = frozenset(inside)
        self.cameras = {c.id: c.zone for c in self.site.cameras.values() if zones[c.zone].sealed}

    def applies(self) -> bool:
        return bool(self.cameras)

    def on_event(self, ev: Event) -> None:
        assert isinstance(ev, CameraObject)
        zone = self.cameras.get(ev.device)
        if zone is None or ev.label != PERSON or not self.ctx.sealed:
            return
        within = self.within[zone]
        if any(z in within for z in self.ctx.world.location.values()):
            return
        self.raise_(
            zone,
            f"a person was seen by {ev.device} in {zone} during the seal, but by the access "
            f"records nobody is in {zone}",
        )
