"""Which recipients a transition goes to, and the deliveries that makes (pure functions).

A route matches a transition when every filter it has matches (severity, policy, the zones of
the alert's subject — a door counts in both its zones, a zone in its parents too —, a seal in
force, the subject, the state). Recipients that share a channel and address get one delivery.
A delivery's id is stable: `ALERT_ID-TRANSITION_ID` for a transition (and for chain steps 0
and 1, which are the `raised` and `escalated` transitions), `ALERT_ID-L<level>` for a later
step; a receiver that sees the same id twice is seeing a retry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from daemon.notify.chain import Step
from daemon.notify.config import Notifications, Route
from policies.site import Site


class Place(Protocol):
    """Where a message says it comes from: a `Site` at a site, a site of CENTRAL.yaml at the
    centre (daemon/central/notify.py)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def timezone(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Delivery:
    delivery_id: str
    alert_id: str
    channel: str
    address: str  # the mail address or phone number; "" for a webhook
    recipients: tuple[str, ...]
    message: dict[str, Any]  # the message model every channel renders (and a webhook posts)


def zone_map(site: Site) -> dict[str, frozenset[str]]:
    """Subject (its first part: a device, door or zone) → the zones it lies in, with parents."""

    def up(zone: str) -> set[str]:
        out = set()
        z: str | None = zone
        while z is not None and z not in out and z in site.zones:
            out.add(z)
            z = site.zones[z].parent
        return out

    out: dict[str, frozenset[str]] = {z: frozenset(up(z)) for z in site.zones}
    for dev_id, zone in site.device_zones().items():
        out[dev_id] = frozenset(up(zone))
    for door_id, door in site.doors.items():
        out[door_id] = frozenset(up(door.a) | up(door.b))
    return out


def zones_of(zones: Mapping[str, frozenset[str]], subject: str) -> frozenset[str]:
    return zones.get(subject.split("/", 1)[0], frozenset())


def matches(
    route: Route,
    line: Mapping[str, Any],
    zones: frozenset[str],
    seals: frozenset[str],
    site_id: str | None = None,
) -> bool:
    """`site_id`: the site a transition came from (at the centre; `sites` filters by it)."""
    if line.get("state") not in route.states:
        return False
    if route.sites is not None and site_id not in route.sites:
        return False
    if route.severity is not None and line.get("severity") not in route.severity:
        return False
    if route.policy is not None and line.get("policy") not in route.policy:
        return False
    if route.subject is not None and line.get("subject") not in route.subject:
        return False
    if route.zone is not None and not route.zone & zones:
        return False
    return route.seal is None or bool(route.seal & seals)


def routed(
    config: Notifications,
    line: Mapping[str, Any],
    zones: frozenset[str],
    seals: frozenset[str],
    site_id: str | None = None,
) -> tuple[str, ...]:
    """The recipients the routes name for this transition, in order, once each."""
    names: dict[str, None] = {}
    for route in config.routes:
        if matches(route, line, zones, seals, site_id):
            names.update(dict.fromkeys(route.notify))
    return tuple(names)


def message(
    site: Place,
    line: Mapping[str, Any],
    zones: Iterable[str],
    seals: Iterable[str],
    delivery_id: str,
    step: Step | None,
) -> dict[str, Any]:
    """What every channel renders: the §3 line (with its transition `id`), where and when."""
    msg: dict[str, Any] = {
        "delivery_id": delivery_id,
        "kind": "transition" if step is None or step.level < 2 else "escalation",
        "site": {"id": site.id, "name": site.name, "timezone": site.timezone},
        "alert": dict(line),
        "zones": sorted(zones),
        "seals": sorted(seals),
    }
    if step is not None:
        msg["escalation"] = {
            "level": step.level,
            "recipients": list(step.recipients),
            "due": step.due,
        }
    return msg


def deliveries(
    config: Notifications,
    site: Place,
    line: Mapping[str, Any],
    delivery_id: str,
    recipients: Iterable[str],
    zones: frozenset[str],
    seals: frozenset[str],
    step: Step | None = None,
) -> list[Delivery]:
    """One delivery per (channel, address) among `recipients`."""
    groups: dict[tuple[str, str], list[str]] = {}
    for name in recipients:
        r = config.recipients[name]
        groups.setdefault((r.channel, r.to), []).append(name)
    msg = message(site, line, zones, seals, delivery_id, step)
    return [
        Delivery(delivery_id, str(line["alert_id"]), ch, to, tuple(names), msg)
        for (ch, to), names in groups.items()
    ]
