"""CITY-key-7: "Key parts are inspected: monthly for top secret, every 3 months for secret, every 6 for confidential." """

from __future__ import annotations

import calendar

from policies.core import Context, Rule
from policies.events import Event, InspectionDone
from policies.timefmt import from_us, to_us

MONTHS = {"top_secret": 1, "secret": 3, "confidential": 6}


class InspectionDue(Rule):
    policy = "inspection-due"
    clause = "CITY-key-7"
    severity = "minor"
    handles = ("inspection.done",)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.key_parts = {
            z.id: MONTHS[z.classification or "top_secret"]
            for z in self.site.zones.values()
            if z.kind == "key_part"
        }
        self.last: dict[str, int] = {}

    def applies(self) -> bool:
        return bool(self.key_parts)

    def due(self, zone: str) -> int:
        """The last inspection plus the zone's period, in calendar months of the site."""
        dt = from_us(self.last[zone], self.ctx.tz)
        months = dt.month - 1 + self.key_parts[zone]
        year, month = dt.year + months // 12, months % 12 + 1
        day = min(dt.day, calendar.monthrange(year, month)[1])
        return to_us(dt.replace(year=year, month=month, day=day))

    def _arm(self, zone: str, t: int) -> None:
        self.last[zone] = t
        self.ctx.schedule(self.due(zone), self._check, (zone, t))

    def on_start(self) -> None:
        for zone in self.key_parts:
            self._arm(zone, self.ctx.now)

    def on_event(self, ev: Event) -> None:
        assert isinstance(ev, InspectionDone)
        if ev.zone in self.key_parts:
            self._arm(ev.zone, ev.ts)
            self.clear(ev.zone)

    def _check(self, arg: tuple[str, int]) -> None:
        zone, since = arg
        if self.last.get(zone) == since:
            n = self.key_parts[zone]
            self.raise_(zone, f"key part {zone} not inspected for {n} month(s)", fold=False)
