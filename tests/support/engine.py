"""Small helpers for engine tests: events at times relative to a base, and a recorded run.

Times are seconds from a base instant: `IN_SEAL` lies inside the reference site's seal
`gk2027-a`, `BEFORE_SEAL` well before it; `AGENCY_IN` / `AGENCY_OUT` do the same for the
agency's meeting `mtg-0310`. Every event goes through the real parser (`parse_event`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

from policies.engine import Engine, EventRejected, Transition
from policies.events import Event, Rejection, parse_event
from policies.site import Site, load_site
from policies.timefmt import format_ts, parse_ts, seconds

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples"

IN_SEAL = "2027-05-25T14:00:00+08:00"  # gk2027-a runs 2027-05-20 08:00 .. 2027-06-08 18:00
BEFORE_SEAL = "2027-05-01T10:00:00+08:00"
SEAL_START = "2027-05-20T08:00:00+08:00"
SEAL_END = "2027-06-08T18:00:00+08:00"
AGENCY_IN = "2027-03-10T10:00:00+08:00"  # mtg-0310 runs 09:00 .. 12:00 that day
AGENCY_OUT = "2027-03-11T10:00:00+08:00"

Triple = tuple[str, str, str]

GOOD_BANDS = {"cdma800": 33.0, "gsm900": 33.0, "dcs1800": 30.0, "lte2100": 30.0, "nr3500": 27.0}


@cache
def reference_site() -> Site:
    return load_site(EXAMPLES / "site.yaml")


@cache
def agency_site() -> Site:
    return load_site(EXAMPLES / "agency.yaml")


def unsealed(site: Site) -> Site:
    """A copy of `site` without any seal from the file."""
    return dataclasses.replace(site, seals=())


def tuned(site: Site, **policies: Any) -> Site:
    """A copy of `site` with some `policies:` tunables changed."""
    return dataclasses.replace(site, policies=dataclasses.replace(site.policies, **policies))


def at(t: float, base: str = IN_SEAL) -> str:
    """The RFC 3339 time `t` seconds after `base`, written with the base's offset."""
    offset = datetime.fromisoformat(base).utcoffset()
    assert offset is not None
    return format_ts(parse_ts(base) + seconds(t), timezone(offset))


def us(t: float, base: str = IN_SEAL) -> int:
    """`at(t, base)` as engine microseconds."""
    return parse_ts(base) + seconds(t)


def ev(t: float, device: str, type: str, *, base: str = IN_SEAL, **fields: Any) -> dict[str, Any]:
    """An event dict `t` seconds after `base`."""
    return {"ts": at(t, base), "device": device, "type": type, **fields}


def jammer_ok(
    t: float, jammer: str = "jam-work", *, base: str = IN_SEAL, **bands: float
) -> dict[str, Any]:
    """A healthy status of a reference jammer, with some bands overridden."""
    return ev(
        t,
        jammer,
        "jammer.status",
        base=base,
        output=True,
        bands={**GOOD_BANDS, **bands},
        faults=[],
        temperature_c=40.0,
    )


def parse(site: Site, obj: dict[str, Any]) -> Event:
    e = parse_event(obj, site)
    assert not isinstance(e, Rejection), f"test event rejected: {e.reason}: {obj}"
    return e


class Run:
    """An engine fed event by event, keeping every transition it wrote."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.engine = Engine(site)
        self.out: list[Transition] = []

    def feed(self, *events: dict[str, Any]) -> Run:
        for obj in events:
            self.out += self.engine.feed(parse(self.site, obj))
        return self

    def reject(self, obj: dict[str, Any]) -> str:
        """Feed an event the engine must refuse; return its reason."""
        try:
            self.out += self.engine.feed(parse(self.site, obj))
        except EventRejected as exc:
            self.out += self.engine.pending_transitions()
            return exc.reason
        raise AssertionError(f"engine accepted {obj}")

    def advance(self, t: float, base: str = IN_SEAL) -> Run:
        self.out += self.engine.advance(us(t, base))
        return self

    def triples(self, policy: str | None = None) -> list[Triple]:
        return [
            (x.policy, x.subject, x.state) for x in self.out if policy is None or x.policy == policy
        ]

    def of(self, policy: str) -> list[Transition]:
        return [x for x in self.out if x.policy == policy]

    def alert_id(self, policy: str, subject: str) -> str:
        """The id of the last alert raised for (policy, subject)."""
        ids = [
            x.alert_id
            for x in self.out
            if x.policy == policy and x.subject == subject and x.state == "raised"
        ]
        assert ids, f"no {policy} alert raised for {subject}: {self.triples()}"
        return ids[-1]


def run(
    site: Site,
    events: Iterable[dict[str, Any]],
    until: str | None = None,
    policy: str | None = None,
) -> list[Triple]:
    """Replay `events` (optionally on to `until`) → [(policy, subject, state)]."""
    r = Run(site).feed(*events)
    if until is not None:
        r.out += r.engine.advance(parse_ts(until))
    return r.triples(policy)
