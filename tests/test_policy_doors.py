"""single-entrance, entrance-interlock, door-forced, door-held-open (policies/rules/doors.py)."""

from __future__ import annotations

from tests.support.engine import (
    AGENCY_IN,
    BEFORE_SEAL,
    Run,
    agency_site,
    ev,
    reference_site,
    run,
    tuned,
)

SITE = reference_site()


def opened(t: float, door: str, **kw: str) -> dict[str, object]:
    return ev(t, door, "door.opened", **kw)


def closed(t: float, door: str, **kw: str) -> dict[str, object]:
    return ev(t, door, "door.closed", **kw)


# -- entrance-interlock ---------------------------------------------------------------------


def test_inner_and_outer_open_together_raises_interlock_and_closing_one_clears_it() -> None:
    got = run(
        SITE,
        [
            opened(0, "gate-inner"),
            opened(4, "gate-outer"),
            closed(7, "gate-inner"),
            closed(9, "gate-outer"),
        ],
        policy="entrance-interlock",
    )
    assert got == [
        ("entrance-interlock", "entrance", "raised"),
        ("entrance-interlock", "entrance", "cleared"),
    ]


def test_sequential_airlock_use_does_not_raise_interlock() -> None:
    got = run(
        SITE,
        [
            opened(0, "gate-outer"),
            closed(5, "gate-outer"),
            opened(5, "gate-inner"),
            closed(9, "gate-inner"),
        ],
        policy="entrance-interlock",
    )
    assert got == []


def test_forced_outer_door_while_inner_open_raises_interlock() -> None:
    got = run(
        SITE,
        [opened(0, "gate-inner"), ev(1, "gate-outer", "door.forced")],
        policy="entrance-interlock",
    )
    assert got == [("entrance-interlock", "entrance", "raised")]


def test_both_entrance_doors_open_outside_a_seal_is_no_interlock_violation() -> None:
    got = run(
        SITE,
        [opened(0, "gate-inner", base=BEFORE_SEAL), opened(1, "gate-outer", base=BEFORE_SEAL)],
        policy="entrance-interlock",
    )
    assert got == []


def test_both_entrance_doors_open_when_the_seal_starts_raises_interlock() -> None:
    start = "2027-05-20T08:00:00+08:00"
    got = run(
        SITE,
        [
            opened(-5, "gate-inner", base=start),
            opened(-4, "gate-outer", base=start),
            ev(1, "console-1", "device.heartbeat", base=start),
        ],
        policy="entrance-interlock",
    )
    assert got == [("entrance-interlock", "entrance", "raised")]


def test_agency_without_entrance_has_no_interlock_rule() -> None:
    site = agency_site()
    got = run(
        site,
        [opened(0, "wing-door", base=AGENCY_IN), opened(1, "secure-room-door", base=AGENCY_IN)],
    )
    assert not [x for x in got if x[0] in ("entrance-interlock", "single-entrance")]


# -- single-entrance ------------------------------------------------------------------------


def test_fire_exit_opening_during_the_seal_raises_single_entrance_until_closed() -> None:
    got = run(
        SITE,
        [opened(0, "fire-exit-north"), closed(20, "fire-exit-north")],
        policy="single-entrance",
    )
    assert got == [
        ("single-entrance", "fire-exit-north", "raised"),
        ("single-entrance", "fire-exit-north", "cleared"),
    ]


def test_forced_fire_exit_raises_single_entrance() -> None:
    got = run(SITE, [ev(0, "fire-exit-north", "door.forced")], policy="single-entrance")
    assert got == [("single-entrance", "fire-exit-north", "raised")]


def test_badge_granted_at_fire_exit_without_opening_is_latched() -> None:
    r = Run(SITE).feed(
        ev(0, "fire-exit-north", "badge.granted", badge="B1001", direction="out"),
        closed(5, "fire-exit-north"),
    )
    assert r.triples("single-entrance") == [("single-entrance", "fire-exit-north", "raised")]
    r.feed(
        ev(
            10,
            "console-1",
            "alert.ack",
            badge="S2001",
            alert_id=r.alert_id("single-entrance", "fire-exit-north"),
        )
    )
    assert r.triples("single-entrance")[1:] == [
        ("single-entrance", "fire-exit-north", "acknowledged"),
        ("single-entrance", "fire-exit-north", "cleared"),
    ]


def test_grant_then_opening_of_fire_exit_clears_when_it_closes() -> None:
    got = run(
        SITE,
        [
            ev(0, "fire-exit-north", "badge.granted", badge="B1001", direction="out"),
            opened(1, "fire-exit-north"),
            closed(3, "fire-exit-north"),
        ],
        policy="single-entrance",
    )
    assert got == [
        ("single-entrance", "fire-exit-north", "raised"),
        ("single-entrance", "fire-exit-north", "cleared"),
    ]


def test_entrance_inner_goods_hatch_and_internal_door_are_not_single_entrance_violations() -> None:
    got = run(
        SITE,
        [
            opened(0, "gate-inner"),
            closed(3, "gate-inner"),
            opened(4, "supply-hatch"),
            closed(6, "supply-hatch"),
            opened(7, "living-link"),
            closed(9, "living-link"),
        ],
        policy="single-entrance",
    )
    assert got == []


def test_fire_exit_opening_outside_a_seal_is_allowed() -> None:
    got = run(SITE, [opened(0, "fire-exit-north", base=BEFORE_SEAL)], policy="single-entrance")
    assert got == []


def test_fire_exit_open_at_seal_start_raises_and_seal_end_clears_it() -> None:
    start, end = "2027-05-20T08:00:00+08:00", "2027-06-08T18:00:00+08:00"
    r = Run(SITE).feed(
        opened(-1, "fire-exit-north", base=start),
        ev(1, "console-1", "device.heartbeat", base=start),
    )
    assert r.triples("single-entrance") == [("single-entrance", "fire-exit-north", "raised")]
    r.advance(0, base=end)
    assert r.triples("single-entrance")[-1] == ("single-entrance", "fire-exit-north", "cleared")


# -- door-forced ----------------------------------------------------------------------------


def test_forced_door_raises_critical_and_closing_clears() -> None:
    r = Run(SITE).feed(
        ev(0, "press-hall-door", "door.forced", base=BEFORE_SEAL),
        closed(2, "press-hall-door", base=BEFORE_SEAL),
    )
    assert r.triples("door-forced") == [
        ("door-forced", "press-hall-door", "raised"),
        ("door-forced", "press-hall-door", "cleared"),
    ]
    assert r.of("door-forced")[0].severity == "critical"


def test_door_forced_on_the_agency_secure_room() -> None:
    got = run(
        agency_site(), [ev(0, "archive-door", "door.forced", base=AGENCY_IN)], policy="door-forced"
    )
    assert got == [("door-forced", "archive-door", "raised")]


def test_ordinary_opening_is_not_door_forced() -> None:
    got = run(
        SITE, [opened(0, "press-hall-door"), closed(2, "press-hall-door")], policy="door-forced"
    )
    assert got == []


# -- door-held-open -------------------------------------------------------------------------


def test_door_open_for_door_held_open_s_raises_at_that_time_and_clears_on_close() -> None:
    r = Run(SITE).feed(opened(0, "press-hall-door"))
    r.advance(29.999)
    assert r.triples("door-held-open") == []
    r.advance(30)
    assert r.triples("door-held-open") == [("door-held-open", "press-hall-door", "raised")]
    assert r.of("door-held-open")[0].ts == r.engine.clock
    r.feed(closed(45, "press-hall-door"))
    assert r.triples("door-held-open")[-1] == ("door-held-open", "press-hall-door", "cleared")


def test_door_closed_exactly_door_held_open_s_after_opening_was_not_held_open() -> None:
    got = run(
        SITE,
        [opened(0, "press-hall-door"), closed(30, "press-hall-door"), opened(100, "living-link")],
        policy="door-held-open",
    )
    assert got == []


def test_agency_uses_its_own_door_held_open_s() -> None:
    got = run(
        agency_site(),
        [
            opened(0, "archive-door", base=AGENCY_IN),
            ev(21, "desk-1", "device.heartbeat", base=AGENCY_IN),
        ],
        policy="door-held-open",
    )
    assert got == [("door-held-open", "archive-door", "raised")]


def test_reopening_restarts_the_held_open_timer() -> None:
    site = tuned(SITE, door_held_open_s=10)
    got = run(
        site,
        [
            opened(0, "living-link"),
            closed(8, "living-link"),
            opened(9, "living-link"),
            ev(17, "console-1", "device.heartbeat"),
        ],
        policy="door-held-open",
    )
    assert got == []
