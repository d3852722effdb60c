"""monitoring-staffed and patrol (policies/rules/staffing.py)."""

from __future__ import annotations

from typing import Any

from tests.support.engine import (
    AGENCY_IN,
    BEFORE_SEAL,
    SEAL_END,
    SEAL_START,
    Run,
    agency_site,
    ev,
    reference_site,
    run,
    tuned,
)

SITE = reference_site()
MS = "monitoring-staffed"
PT = "patrol"


def duty(t: float, badge: str, state: str, device: str = "console-1", **kw: Any) -> dict[str, Any]:
    return ev(t, device, "operator.duty", badge=badge, state=state, **kw)


def visit(t: float, checkpoint: str, badge: str, **kw: Any) -> dict[str, Any]:
    return ev(t, checkpoint, "patrol.checkpoint", badge=badge, **kw)


# -- monitoring-staffed ---------------------------------------------------------------------


def test_last_operator_going_off_duty_during_a_seal_raises_and_coming_back_clears() -> None:
    r = Run(SITE).feed(duty(0, "O4001", "on"), duty(60, "O4001", "off"), duty(90, "O4002", "on"))
    assert r.triples(MS) == [(MS, "monitoring-room", "raised"), (MS, "monitoring-room", "cleared")]
    assert (r.of(MS)[0].severity, r.of(MS)[0].clause) == ("critical", "ARCH-2.8.3")


def test_hand_over_at_the_same_instant_leaves_the_room_staffed_when_on_comes_first() -> None:
    got = run(
        SITE, [duty(0, "O4001", "on"), duty(60, "O4002", "on"), duty(60, "O4001", "off")], policy=MS
    )
    assert got == []


def test_a_guard_on_duty_does_not_staff_the_monitoring_room() -> None:
    got = run(SITE, [duty(0, "G3001", "on")], policy=MS)
    assert got == [(MS, "monitoring-room", "raised")]


def test_a_supervisor_staffs_the_monitoring_room() -> None:
    assert run(SITE, [duty(0, "S2001", "on")], policy=MS) == []


def test_nobody_on_duty_outside_a_seal_is_fine() -> None:
    assert (
        run(
            SITE,
            [duty(0, "O4001", "off", base=BEFORE_SEAL)],
            until="2027-05-02T10:00:00+08:00",
            policy=MS,
        )
        == []
    )


def test_nobody_on_duty_when_the_seal_starts_raises_at_the_start_and_seal_end_clears() -> None:
    r = Run(SITE).feed(duty(-60, "O4001", "off", base=SEAL_START))
    r.advance(0, base=SEAL_START)
    assert r.triples(MS) == [(MS, "monitoring-room", "raised")]
    r.advance(0, base=SEAL_END)
    assert r.triples(MS)[-1] == (MS, "monitoring-room", "cleared")


def test_operator_coming_on_duty_at_the_seal_start_instant_counts() -> None:
    got = run(
        SITE,
        [duty(0, "O4001", "on", base=SEAL_START)],
        until="2027-05-20T09:00:00+08:00",
        policy=MS,
    )
    assert got == []


def test_min_operators_on_duty_two_needs_two() -> None:
    site = tuned(SITE, min_operators_on_duty=2)
    got = run(site, [duty(0, "O4001", "on"), duty(1, "O4002", "on")], policy=MS)
    assert got == [(MS, "monitoring-room", "raised"), (MS, "monitoring-room", "cleared")]


def test_agency_security_office_staffed_during_the_meeting() -> None:
    site = agency_site()
    staffed = run(site, [duty(0, "A300", "on", "desk-1", base=AGENCY_IN)], policy=MS)
    empty = run(site, [duty(0, "A400", "on", "desk-1", base=AGENCY_IN)], policy=MS)
    assert staffed == []
    assert empty == [(MS, "security-office", "raised")]


# -- patrol ---------------------------------------------------------------------------------


def test_checkpoint_not_visited_for_the_interval_raises_and_a_guard_visit_clears() -> None:
    r = Run(SITE).feed(
        visit(0, "cp-north", "G3001"),
        visit(0, "cp-south", "G3002"),
        visit(3000, "cp-south", "G3002"),
    )
    r.advance(3599.9)
    assert r.triples(PT) == []
    r.advance(3600)
    assert r.triples(PT) == [(PT, "cp-north", "raised")]
    assert r.of(PT)[0].severity == "major"
    r.feed(visit(3700, "cp-north", "G3003"))
    assert r.triples(PT)[-1] == (PT, "cp-north", "cleared")


def test_a_visit_by_a_non_guard_does_not_count_as_patrol() -> None:
    r = Run(SITE).feed(visit(0, "cp-north", "G3001"), visit(3000, "cp-north", "S2001"))
    r.advance(3600)
    assert (PT, "cp-north", "raised") in r.triples(PT)


def test_visit_exactly_at_the_interval_is_in_time() -> None:
    r = Run(SITE).feed(visit(0, "cp-north", "G3001"), visit(3600, "cp-north", "G3001"))
    r.advance(7199)
    assert [x for x in r.triples(PT) if x[1] == "cp-north"] == []


def test_no_patrol_is_due_outside_a_seal() -> None:
    r = Run(SITE).feed(visit(0, "cp-north", "G3001", base=BEFORE_SEAL))
    r.advance(5 * 3600, base=BEFORE_SEAL)
    assert r.triples(PT) == []


def test_daemon_started_mid_seal_counts_patrol_from_its_first_event() -> None:
    r = Run(SITE).feed(duty(0, "O4001", "on"))
    r.advance(3599)
    assert r.triples(PT) == []
    r.advance(3600)
    assert sorted(r.triples(PT)) == [(PT, "cp-north", "raised"), (PT, "cp-south", "raised")]


def test_patrol_counts_from_the_seal_start_not_from_earlier_visits() -> None:
    r = Run(SITE).feed(
        visit(-3000, "cp-north", "G3001", base=SEAL_START),
        visit(-3000, "cp-south", "G3001", base=SEAL_START),
    )
    r.advance(3599, base=SEAL_START)
    assert r.triples(PT) == []
    r.advance(3600, base=SEAL_START)
    assert len(r.triples(PT)) == 2
