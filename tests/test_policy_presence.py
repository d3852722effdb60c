"""unbadged-presence (policies/rules/presence.py): a person on a sealed-area camera where the
access records place nobody."""

from __future__ import annotations

from typing import Any

from policies.events import Rejection, parse_event
from policies.rules.presence import UnbadgedPresence
from tests.support.engine import BEFORE_SEAL, Run, ev, reference_site, run

SITE = reference_site()
UP = "unbadged-presence"


def seen(t: float, camera: str = "cam-secure", label: str = "person", **kw: Any) -> dict[str, Any]:
    return ev(t, camera, "camera.object", label=label, score=0.87, **kw)


def granted(t: float, door: str, badge: str, direction: str = "in") -> dict[str, Any]:
    return ev(t, door, "badge.granted", badge=badge, direction=direction)


def test_a_person_in_an_empty_sealed_room_during_a_seal_raises_latched_critical() -> None:
    r = Run(SITE).feed(seen(0), seen(5, zones=["vault"]))
    assert r.triples(UP) == [(UP, "secure-room", "raised")]  # the second sighting is folded
    raised = r.of(UP)[0]
    assert raised.severity == "critical" and raised.clause == "CITY-key-3"
    assert "cam-secure" in raised.message and "secure-room" in raised.message
    r.feed(ev(60, "console-1", "alert.ack", alert_id=r.alert_id(UP, "secure-room"), badge="S2001"))
    assert r.triples(UP)[1:] == [
        (UP, "secure-room", "acknowledged"),
        (UP, "secure-room", "cleared"),
    ]


def test_nobody_is_missing_when_someone_badged_into_the_room() -> None:
    events = [
        granted(0, "secure-room-door", "S2001"),
        granted(1, "secure-room-door", "S2002"),
        seen(10),
    ]
    assert run(SITE, events, policy=UP) == []
    # … until they badge out: then the room is empty again by the records
    events += [
        granted(20, "secure-room-door", "S2001", "out"),
        granted(21, "secure-room-door", "S2002", "out"),
        seen(30),
    ]
    assert run(SITE, events, policy=UP) == [(UP, "secure-room", "raised")]


def test_a_zone_holds_the_rooms_inside_it() -> None:
    """A camera of `work` is satisfied by a badge in press-hall, a room inside `work`."""
    rule = next(r for r in Run(SITE).engine.rules if isinstance(r, UnbadgedPresence))
    assert rule.within["work"] >= {"work", "typesetting", "press-hall", "secure-room"}
    assert rule.within["secure-room"] == {"secure-room"}
    assert "cam-belt-north" not in rule.cameras and "cam-gate" not in rule.cameras


def test_no_alert_outside_a_seal_for_other_labels_or_outside_the_sealed_area() -> None:
    assert run(SITE, [seen(0)], policy=UP) == [(UP, "secure-room", "raised")]
    assert (
        run(
            SITE,
            [ev(0, "cam-secure", "camera.object", label="person", base=BEFORE_SEAL)],
            policy=UP,
        )
        == []
    )
    assert run(SITE, [seen(0, label="car")], policy=UP) == []
    # the belt (isolation belt) and screening are outside the sealed area: guards walk there
    assert run(SITE, [seen(0, "cam-belt-north"), seen(1, "cam-gate")], policy=UP) == []


def test_camera_object_events_are_checked() -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"label": ""}, "field 'label' must be a non-empty string"),
        ({"label": "person", "score": 1.5}, "field 'score' must be a number from 0 to 1"),
        ({"label": "person", "zones": "a"}, "field 'zones' must be a list of strings"),
    ]
    for bad, why in cases:
        got = parse_event(ev(0, "cam-secure", "camera.object", **bad), SITE)
        assert isinstance(got, Rejection) and why in got.reason, got
    got = parse_event(ev(0, "jam-work", "camera.object", label="person"), SITE)
    assert isinstance(got, Rejection) and "not a camera" in got.reason
