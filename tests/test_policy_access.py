"""zone-authorization, badge-denied-burst, escorted-exit, two-person (policies/rules/access.py)."""

from __future__ import annotations

from typing import Any

from tests.support.engine import (
    AGENCY_IN,
    BEFORE_SEAL,
    Run,
    agency_site,
    ev,
    reference_site,
    run,
)

SITE = reference_site()


def grant(t: float, door: str, badge: str, direction: str = "in", **kw: Any) -> dict[str, Any]:
    return ev(t, door, "badge.granted", badge=badge, direction=direction, **kw)


def deny(t: float, door: str, badge: str, **kw: Any) -> dict[str, Any]:
    return ev(t, door, "badge.denied", badge=badge, direction="in", reason="not allowed", **kw)


# -- zone-authorization ---------------------------------------------------------------------

ZA = "zone-authorization"


def test_staff_granted_into_a_zone_not_theirs_raises_major_latched() -> None:
    r = Run(SITE).feed(
        grant(0, "secure-room-door", "B1001"), grant(60, "secure-room-door", "B1001", "out")
    )
    assert r.triples(ZA) == [(ZA, "B1001", "raised")]
    assert r.of(ZA)[0].severity == "major"
    r.feed(ev(70, "console-1", "alert.ack", alert_id=r.alert_id(ZA, "B1001"), badge="S2001"))
    assert r.triples(ZA)[1:] == [(ZA, "B1001", "acknowledged"), (ZA, "B1001", "cleared")]


def test_guard_entering_the_sealed_area_is_critical() -> None:
    r = Run(SITE).feed(grant(0, "gate-outer", "G3001"), grant(5, "gate-inner", "G3001"))
    assert r.triples(ZA) == [(ZA, "G3001", "raised")]
    assert (r.of(ZA)[0].severity, r.of(ZA)[0].clause) == ("critical", "EXAM-2.8.15")


def test_unknown_badge_granted_into_a_zone_is_critical() -> None:
    r = Run(SITE).feed(grant(0, "press-hall-door", "X9999", base=BEFORE_SEAL))
    assert r.triples(ZA) == [(ZA, "X9999", "raised")]
    assert r.of(ZA)[0].severity == "critical"


def test_staff_moving_within_their_zones_is_authorised() -> None:
    got = run(
        SITE,
        [
            grant(0, "living-link", "B1002"),
            grant(30, "press-hall-door", "B1002"),
            grant(60, "press-hall-door", "B1002", "out"),
        ],
        policy=ZA,
    )
    assert got == []


def test_public_and_screening_transit_never_raise_zone_authorization() -> None:
    # B1001's zones do not include screening; a maintenance man's do not include street.
    got = run(SITE, [grant(0, "gate-outer", "B1001")], policy=ZA)
    agency = run(agency_site(), [grant(0, "wing-door", "A500", "out", base=AGENCY_IN)], policy=ZA)
    assert got == agency == []


def test_out_grant_at_entrance_inner_is_judged_by_escorted_exit_not_zone_authorization() -> None:
    # A supervisor leaving into screening (not among their zones) is transit anyway; an
    # operator's out grant at gate-inner is left to escorted-exit.
    got = run(SITE, [grant(0, "gate-inner", "O4001", "out")], policy=ZA)
    assert got == []


def test_agency_staff_into_the_secure_room_raises_zone_authorization() -> None:
    got = run(agency_site(), [grant(0, "secure-room-door", "A200", base=AGENCY_IN)], policy=ZA)
    assert got == [(ZA, "A200", "raised")]


def test_second_violation_while_latched_is_folded() -> None:
    r = Run(SITE).feed(
        grant(0, "secure-room-door", "B1001"),
        grant(9, "typesetting-door", "B1002"),
        grant(10, "secure-room-door", "B1001"),
    )
    assert r.triples(ZA) == [(ZA, "B1001", "raised"), (ZA, "B1002", "raised")]


# -- badge-denied-burst ---------------------------------------------------------------------

BD = "badge-denied-burst"


def test_three_denials_within_the_window_raise_a_latched_burst() -> None:
    r = Run(SITE).feed(
        deny(0, "secure-room-door", "B1003"),
        deny(30, "secure-room-door", "B1003"),
        deny(60, "typesetting-door", "B1003"),
    )
    assert r.triples(BD) == [(BD, "B1003", "raised")]
    r.feed(ev(61, "console-1", "alert.ack", alert_id=r.alert_id(BD, "B1003"), badge="S2001"))
    assert r.triples(BD)[-1] == (BD, "B1003", "cleared")


def test_denials_spread_beyond_the_window_do_not_raise() -> None:
    got = run(
        SITE,
        [
            deny(0, "secure-room-door", "B1003"),
            deny(30, "secure-room-door", "B1003"),
            deny(60.001, "secure-room-door", "B1003"),
        ],
        policy=BD,
    )
    assert got == []


def test_denials_of_different_badges_are_not_a_burst() -> None:
    got = run(
        SITE,
        [
            deny(0, "secure-room-door", "B1001"),
            deny(1, "secure-room-door", "B1002"),
            deny(2, "secure-room-door", "B1003"),
            deny(3, "secure-room-door", "B1001"),
        ],
        policy=BD,
    )
    assert got == []


# -- escorted-exit --------------------------------------------------------------------------

EX = "escorted-exit"


def approval(t: float, badge: str, valid_s: float = 600) -> dict[str, Any]:
    return ev(t, "console-1", "approval.granted", badge=badge, valid_s=valid_s)


def test_sealed_staff_leaving_without_approval_raises_at_once() -> None:
    r = Run(SITE).feed(grant(0, "gate-inner", "B1001", "out"))
    assert r.triples(EX) == [(EX, "B1001", "raised")]
    assert r.of(EX)[0].severity == "critical"


def test_approved_exit_with_two_guards_at_the_outer_door_is_fine() -> None:
    got = run(
        SITE,
        [
            approval(0, "B1001"),
            grant(100, "gate-outer", "G3001"),
            grant(105, "gate-inner", "B1001", "out"),
            grant(115, "gate-outer", "G3002"),
        ],
        until="2027-05-25T14:05:00+08:00",
        policy=EX,
    )
    assert got == []


def test_approved_exit_with_one_guard_raises_when_the_window_ends() -> None:
    r = Run(SITE).feed(
        approval(0, "B1001"),
        grant(100, "gate-outer", "G3001"),
        grant(101, "gate-outer", "G3001"),
        grant(105, "gate-inner", "B1001", "out"),
    )
    r.advance(119.999)
    assert r.triples(EX) == []
    r.advance(120)
    assert r.triples(EX) == [(EX, "B1001", "raised")]


def test_guard_granted_exactly_at_the_window_end_counts() -> None:
    got = run(
        SITE,
        [
            approval(0, "B1001"),
            grant(90, "gate-outer", "G3001"),
            grant(105, "gate-inner", "B1001", "out"),
            grant(120, "gate-outer", "G3002"),
        ],
        until="2027-05-25T14:05:00+08:00",
        policy=EX,
    )
    assert got == []


def test_expired_approval_is_no_approval() -> None:
    got = run(
        SITE, [approval(0, "B1001", valid_s=60), grant(61, "gate-inner", "B1001", "out")], policy=EX
    )
    assert got == [(EX, "B1001", "raised")]


def test_non_staff_leaving_and_exits_outside_a_seal_do_not_raise_escorted_exit() -> None:
    inside = run(
        SITE,
        [grant(0, "gate-inner", "S2001", "out"), grant(1, "gate-inner", "O4001", "out")],
        policy=EX,
    )
    outside = run(SITE, [grant(0, "gate-inner", "B1001", "out", base=BEFORE_SEAL)], policy=EX)
    assert inside == outside == []


def test_entering_through_the_inner_door_is_not_an_exit() -> None:
    assert run(SITE, [grant(0, "gate-inner", "B1001", "in")], policy=EX) == []


# -- two-person -----------------------------------------------------------------------------

TP = "two-person"


def test_two_authorised_badges_then_opening_is_fine() -> None:
    got = run(
        SITE,
        [
            grant(0, "secure-room-door", "S2001"),
            grant(3, "secure-room-door", "S2002"),
            ev(15, "secure-room-door", "door.opened"),
        ],
        policy=TP,
    )
    assert got == []


def test_one_badge_then_opening_raises_latched_two_person() -> None:
    r = Run(SITE).feed(
        grant(0, "secure-room-door", "S2001"),
        ev(2, "secure-room-door", "door.opened"),
        ev(5, "secure-room-door", "door.closed"),
    )
    assert r.triples(TP) == [(TP, "secure-room-door", "raised")]
    assert (r.of(TP)[0].severity, r.of(TP)[0].clause) == ("critical", "EXAM-2.8.13")


def test_the_same_badge_twice_is_one_person_not_two() -> None:
    got = run(
        SITE,
        [
            grant(0, "secure-room-door", "S2001"),
            grant(1, "secure-room-door", "S2001"),
            ev(2, "secure-room-door", "door.opened"),
        ],
        policy=TP,
    )
    assert got == [(TP, "secure-room-door", "raised")]


def test_a_badge_not_authorised_for_the_side_entered_does_not_count() -> None:
    got = run(
        SITE,
        [
            grant(0, "secure-room-door", "S2001"),
            grant(1, "secure-room-door", "B1001"),
            ev(2, "secure-room-door", "door.opened"),
        ],
        policy=TP,
    )
    assert got == [(TP, "secure-room-door", "raised")]


def test_badges_older_than_the_window_do_not_count() -> None:
    got = run(
        SITE,
        [
            grant(0, "secure-room-door", "S2001"),
            grant(1, "secure-room-door", "S2002"),
            ev(16.001, "secure-room-door", "door.opened"),
        ],
        policy=TP,
    )
    assert got == [(TP, "secure-room-door", "raised")]


def test_forced_two_person_door_raises_two_person() -> None:
    got = run(SITE, [ev(0, "secure-room-door", "door.forced")], policy=TP)
    assert got == [(TP, "secure-room-door", "raised")]


def test_supply_hatch_is_under_the_two_person_rule_of_handovers() -> None:
    r = Run(SITE).feed(
        grant(0, "supply-hatch", "G3001", "out"), ev(1, "supply-hatch", "door.opened")
    )
    assert r.triples(TP) == [(TP, "supply-hatch", "raised")]
    assert r.of(TP)[0].clause == "EXAM-2.8.16"


def test_ordinary_door_needs_no_second_person() -> None:
    assert run(SITE, [ev(0, "press-hall-door", "door.opened")], policy=TP) == []


def test_agency_safe_room_two_person_rule() -> None:
    site = agency_site()
    ok = run(
        site,
        [
            grant(0, "secure-room-door", "A100", base=AGENCY_IN),
            grant(1, "secure-room-door", "A101", base=AGENCY_IN),
            ev(2, "secure-room-door", "door.opened", base=AGENCY_IN),
        ],
        policy=TP,
    )
    bad = run(
        site,
        [
            grant(0, "secure-room-door", "A100", base=AGENCY_IN),
            ev(2, "secure-room-door", "door.opened", base=AGENCY_IN),
        ],
        policy=TP,
    )
    assert ok == []
    assert bad == [(TP, "secure-room-door", "raised")]
