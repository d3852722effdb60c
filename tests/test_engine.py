"""The alert book and seals (policies/core.py, policies/engine.py), independent of a policy."""

from __future__ import annotations

from typing import Any

from policies.engine import Engine
from tests.support.engine import (
    AGENCY_OUT,
    BEFORE_SEAL,
    SEAL_END,
    SEAL_START,
    Run,
    agency_site,
    at,
    ev,
    jammer_ok,
    parse,
    reference_site,
    run,
    tuned,
    unsealed,
    us,
)

SITE = reference_site()
FORCED = "door-forced"


def forced(t: float, door: str = "press-hall-door", **kw: Any) -> dict[str, Any]:
    return ev(t, door, "door.forced", **kw)


def ack(t: float, alert_id: str, **kw: Any) -> dict[str, Any]:
    return ev(t, "console-1", "alert.ack", alert_id=alert_id, badge="S2001", **kw)


def shelve(t: float, alert_id: str, until: str, **kw: Any) -> dict[str, Any]:
    return ev(
        t,
        "console-1",
        "alert.shelve",
        alert_id=alert_id,
        badge="S2001",
        until=until,
        reason="maintenance",
        **kw,
    )


def unshelve(t: float, alert_id: str, **kw: Any) -> dict[str, Any]:
    return ev(t, "console-1", "alert.unshelve", alert_id=alert_id, badge="S2001", **kw)


# -- fold, latch, clear ---------------------------------------------------------------------


def test_a_repeat_while_active_is_folded_into_one_alert_with_a_count() -> None:
    r = Run(SITE).feed(forced(0), forced(1), forced(2))
    assert r.triples(FORCED) == [(FORCED, "press-hall-door", "raised")]
    (alert,) = [a for a in r.engine.open_alerts() if a.policy == FORCED]
    assert alert.count == 3


def test_the_same_violation_after_clearing_is_a_new_alert_with_a_new_id() -> None:
    r = Run(SITE).feed(forced(0), ev(1, "press-hall-door", "door.closed"), forced(2))
    raised = [x.alert_id for x in r.of(FORCED) if x.state == "raised"]
    assert len(raised) == 2 and raised[0] != raised[1]


def test_alert_ids_are_deterministic_across_runs() -> None:
    events = [forced(0), jammer_ok(1, gsm900=2.0)]
    a = [x.alert_id for x in Run(SITE).feed(*events).out]
    b = [x.alert_id for x in Run(SITE).feed(*events).out]
    assert a == b and len(set(a)) == len(a)


def test_acknowledging_a_non_latched_alert_leaves_it_until_its_condition_ends() -> None:
    r = Run(SITE).feed(forced(0))
    r.feed(ack(1, r.alert_id(FORCED, "press-hall-door")), ev(5, "press-hall-door", "door.closed"))
    assert r.triples(FORCED) == [
        (FORCED, "press-hall-door", "raised"),
        (FORCED, "press-hall-door", "acknowledged"),
        (FORCED, "press-hall-door", "cleared"),
    ]
    assert r.of(FORCED)[1].acked_by == "S2001"


def test_a_cleared_unacknowledged_alert_can_still_be_acknowledged_once() -> None:
    r = Run(SITE).feed(forced(0), ev(5, "press-hall-door", "door.closed"))
    alert_id = r.alert_id(FORCED, "press-hall-door")
    r.feed(ack(6, alert_id))
    assert r.triples(FORCED)[-1] == (FORCED, "press-hall-door", "acknowledged")
    assert "already closed" in r.reject(ack(7, alert_id))


def test_latched_alert_stays_active_after_its_condition_and_clears_on_ack() -> None:
    r = Run(SITE).feed(ev(0, "pd-work", "phone.detected"))
    r.advance(60)
    assert [a.active for a in r.engine.open_alerts() if a.policy == "prohibited-device"] == [True]
    r.feed(ack(61, r.alert_id("prohibited-device", "pd-work")))
    assert r.triples("prohibited-device")[-2:] == [
        ("prohibited-device", "pd-work", "acknowledged"),
        ("prohibited-device", "pd-work", "cleared"),
    ]


# -- escalation -----------------------------------------------------------------------------


def test_unacknowledged_critical_alert_is_escalated_once_after_ack_escalation_s() -> None:
    r = Run(SITE).feed(forced(0))
    r.advance(119.9)
    assert r.triples(FORCED) == [(FORCED, "press-hall-door", "raised")]
    r.advance(120)
    r.advance(1000)
    assert r.triples(FORCED) == [
        (FORCED, "press-hall-door", "raised"),
        (FORCED, "press-hall-door", "escalated"),
    ]
    assert r.of(FORCED)[-1].ts == r.of(FORCED)[0].ts + 120_000_000


def test_acknowledging_stops_escalation() -> None:
    r = Run(SITE).feed(forced(0))
    r.feed(ack(119, r.alert_id(FORCED, "press-hall-door")))
    r.advance(1000)
    assert [x[2] for x in r.triples(FORCED)] == ["raised", "acknowledged"]


def test_major_alerts_are_not_escalated() -> None:
    r = Run(SITE).feed(ev(0, "cam-belt-north", "camera.status", stream="down", tamper=None))
    r.advance(1000)
    assert [x[2] for x in r.triples("camera-integrity")] == ["raised"]


def test_an_alert_that_cleared_before_the_deadline_is_not_escalated() -> None:
    r = Run(SITE).feed(forced(0), ev(10, "press-hall-door", "door.closed"))
    r.advance(1000)
    assert [x[2] for x in r.triples(FORCED)] == ["raised", "cleared"]


def test_agency_escalation_uses_the_default_ack_escalation_s() -> None:
    r = Run(agency_site()).feed(forced(0, "archive-door", base=AGENCY_OUT))
    r.advance(120, base=AGENCY_OUT)
    assert [x[2] for x in r.triples(FORCED)] == ["raised", "escalated"]


# -- shelving -------------------------------------------------------------------------------


def test_a_shelved_alert_is_not_escalated_and_returns_when_the_shelf_expires() -> None:
    r = Run(SITE).feed(forced(0))
    alert_id = r.alert_id(FORCED, "press-hall-door")
    r.feed(shelve(10, alert_id, at(300)))
    r.advance(299)
    assert [x[2] for x in r.triples(FORCED)] == ["raised", "shelved"]
    r.advance(300)
    assert [x[2] for x in r.triples(FORCED)] == ["raised", "shelved", "unshelved"]
    # the escalation that fell due while shelved counts again from the unshelving
    r.advance(419)
    assert r.triples(FORCED)[-1][2] == "unshelved"
    r.advance(420)
    assert r.triples(FORCED)[-1][2] == "escalated"


def test_unshelve_by_an_operator_ends_the_shelf_early() -> None:
    r = Run(SITE).feed(forced(0))
    alert_id = r.alert_id(FORCED, "press-hall-door")
    r.feed(shelve(10, alert_id, at(3600)), unshelve(20, alert_id))
    r.advance(4000)
    states = [x[2] for x in r.triples(FORCED)]
    assert states == ["raised", "shelved", "unshelved", "escalated"]
    assert states.count("unshelved") == 1  # the expired shelf does not unshelve again


def test_a_shelved_alert_still_clears_when_its_condition_ends() -> None:
    r = Run(SITE).feed(forced(0))
    r.feed(
        shelve(10, r.alert_id(FORCED, "press-hall-door"), at(3600)),
        ev(20, "press-hall-door", "door.closed"),
    )
    assert [x[2] for x in r.triples(FORCED)] == ["raised", "shelved", "cleared"]


# -- operator actions the engine refuses ----------------------------------------------------


def test_ack_of_an_unknown_alert_is_rejected() -> None:
    r = Run(SITE).feed(forced(0))
    assert "unknown or already closed alert" in r.reject(ack(1, "0123456789abcdef"))


def test_second_ack_is_rejected() -> None:
    r = Run(SITE).feed(forced(0))
    alert_id = r.alert_id(FORCED, "press-hall-door")
    r.feed(ack(1, alert_id))
    assert "already acknowledged" in r.reject(ack(2, alert_id))


def test_ack_of_a_closed_latched_alert_is_rejected() -> None:
    r = Run(SITE).feed(ev(0, "pd-work", "phone.detected"))
    alert_id = r.alert_id("prohibited-device", "pd-work")
    r.feed(ack(1, alert_id))
    assert "already closed" in r.reject(ack(2, alert_id))


def test_shelving_a_cleared_alert_or_into_the_past_is_rejected() -> None:
    r = Run(SITE).feed(forced(0))
    alert_id = r.alert_id(FORCED, "press-hall-door")
    assert "after the event's time" in r.reject(shelve(1, alert_id, at(1)))
    r.feed(ev(2, "press-hall-door", "door.closed"))
    assert "already cleared" in r.reject(shelve(3, alert_id, at(100)))


def test_unshelving_an_alert_that_is_not_shelved_is_rejected() -> None:
    r = Run(SITE).feed(forced(0))
    assert "not shelved" in r.reject(unshelve(1, r.alert_id(FORCED, "press-hall-door")))


def test_a_rejected_action_changes_nothing() -> None:
    r = Run(SITE).feed(forced(0))
    before = [
        (a.id, a.acked, a.shelved_until) for a in r.engine.open_alerts() if a.policy == FORCED
    ]
    r.reject(ack(1, "nope"))
    assert [
        (a.id, a.acked, a.shelved_until) for a in r.engine.open_alerts() if a.policy == FORCED
    ] == before
    r.feed(ack(1, r.alert_id(FORCED, "press-hall-door")))  # the same instant is still fine


def test_out_of_order_event_is_rejected() -> None:
    r = Run(SITE).feed(forced(10))
    assert "out of order" in r.reject(ev(9, "press-hall-door", "door.closed"))


def test_events_after_advance_must_be_later_than_the_advanced_clock() -> None:
    r = Run(SITE).feed(forced(0))
    r.advance(50)
    assert "out of order" in r.reject(ev(50, "press-hall-door", "door.closed"))
    r.feed(ev(50.001, "press-hall-door", "door.closed"))


# -- seals ----------------------------------------------------------------------------------


def test_seal_events_open_and_close_a_seal_at_run_time() -> None:
    site = unsealed(SITE)
    r = Run(site).feed(
        ev(0, "pd-work", "phone.detected", base=BEFORE_SEAL),
        ev(
            1,
            "console-1",
            "seal.start",
            base=BEFORE_SEAL,
            seal="drill",
            name="Drill",
            classification="confidential",
        ),
        ev(2, "pd-living", "phone.detected", base=BEFORE_SEAL),
        ev(3, "console-1", "seal.end", base=BEFORE_SEAL, seal="drill"),
        ev(4, "pd-work", "phone.detected", base=BEFORE_SEAL),
    )
    assert r.triples("prohibited-device") == [("prohibited-device", "pd-living", "raised")]
    (seal,) = r.engine.seals()
    assert (seal.id, seal.status, seal.source) == ("drill", "ended", "event")


def test_a_seal_with_a_planned_end_ends_by_itself() -> None:
    r = Run(unsealed(SITE)).feed(
        ev(
            0,
            "console-1",
            "seal.start",
            base=BEFORE_SEAL,
            seal="drill",
            name="Drill",
            classification="secret",
            end=at(60, BEFORE_SEAL),
        ),
        ev(60, "pd-work", "phone.detected", base=BEFORE_SEAL),
        ev(61, "pd-work", "phone.detected", base=BEFORE_SEAL),
    )
    # at the planned end itself the seal is still in force (windows include both ends)
    assert r.triples("prohibited-device") == [("prohibited-device", "pd-work", "raised")]
    assert r.engine.seals()[0].status == "ended"


def test_seal_end_clears_seal_only_alerts_but_latched_ones_wait_for_an_operator() -> None:
    r = Run(SITE).feed(
        ev(-10, "pd-work", "phone.detected", base=SEAL_END),
        ev(-10, "fire-exit-north", "door.opened", base=SEAL_END),
        ev(-10, "console-1", "operator.duty", base=SEAL_END, badge="O4001", state="off"),
    )
    r.advance(30, base=SEAL_END)
    ended = {(x.policy, x.subject): x.state for x in r.out if x.state == "cleared"}
    assert ended[("single-entrance", "fire-exit-north")] == "cleared"
    assert ended[("monitoring-staffed", "monitoring-room")] == "cleared"
    assert ("prohibited-device", "pd-work") not in ended
    # a door left open after the seal is still held open: that rule is not seal-only
    assert ("door-held-open", "fire-exit-north", "raised") in r.triples()


def test_seal_start_rejections() -> None:
    r = Run(SITE).feed(ev(0, "console-1", "device.heartbeat"))
    assert "already in force" in r.reject(ev(1, "console-1", "seal.start", seal="gk2027-a"))
    assert "needs 'name'" in r.reject(ev(2, "console-1", "seal.start", seal="new-one"))
    assert "not in force" in r.reject(ev(3, "console-1", "seal.end", seal="new-one"))
    r.feed(ev(4, "console-1", "seal.end", seal="gk2027-a"))
    assert "already ended" in r.reject(ev(5, "console-1", "seal.start", seal="gk2027-a"))


def test_ending_one_of_two_overlapping_seals_keeps_the_seal_rules_in_force() -> None:
    r = Run(SITE).feed(
        ev(0, "console-1", "seal.start", seal="extra", name="Extra", classification="secret"),
        ev(1, "console-1", "seal.end", seal="gk2027-a"),
        ev(2, "pd-work", "phone.detected"),
        ev(3, "console-1", "seal.end", seal="extra"),
        ev(4, "pd-living", "phone.detected"),
    )
    assert r.triples("prohibited-device") == [("prohibited-device", "pd-work", "raised")]


def test_a_site_file_seal_ending_before_the_first_event_is_not_in_force() -> None:
    got = run(
        SITE,
        [ev(0, "pd-work", "phone.detected", base="2027-06-09T10:00:00+08:00")],
        policy="prohibited-device",
    )
    assert got == []


def test_feed_and_advance_before_any_event() -> None:
    engine = Engine(SITE)
    assert engine.clock is None
    assert engine.advance(0) == []
    out = engine.feed(parse(SITE, forced(0)))
    assert [(x.policy, x.state) for x in out] == [(FORCED, "raised")]


def test_timers_fire_between_events_at_their_due_time_in_order() -> None:
    site = tuned(SITE, door_held_open_s=5)
    r = Run(site).feed(
        ev(0, "living-link", "door.opened"),
        ev(2, "press-hall-door", "door.opened"),
        ev(100, "console-1", "device.heartbeat"),
    )
    assert [(x.subject, x.ts) for x in r.of("door-held-open")] == [
        ("living-link", us(5)),
        ("press-hall-door", us(7)),
    ]
    assert [x.ts for x in r.out] == sorted(x.ts for x in r.out)


def test_a_rejected_first_event_does_not_start_the_clock() -> None:
    r = Run(SITE)
    r.reject(ack(3600, "nope"))
    r.feed(forced(0))  # earlier than the rejected line, but nothing was accepted before it
    r.advance(30)
    assert ("device-offline", "cam-gate", "raised") in r.triples()
    assert r.of("device-offline")[0].ts == us(30)


def test_a_site_file_seal_includes_both_its_start_and_its_end_instants() -> None:
    site = SITE
    at_start = run(
        site,
        [
            ev(-1, "pd-living", "phone.detected", base=SEAL_START),
            ev(0, "pd-work", "phone.detected", base=SEAL_START),
        ],
        policy="prohibited-device",
    )
    at_end = run(
        site,
        [
            ev(0, "pd-work", "phone.detected", base=SEAL_END),
            ev(0.001, "pd-living", "phone.detected", base=SEAL_END),
        ],
        policy="prohibited-device",
    )
    assert at_start == at_end == [("prohibited-device", "pd-work", "raised")]


def test_an_engine_started_inside_a_seal_dates_the_seal_from_its_planned_start() -> None:
    engine = Engine(SITE)
    engine.feed(parse(SITE, ev(0, "pd-work", "device.heartbeat")))
    seal = next(s for s in engine.seals() if s.id == "gk2027-a")
    assert seal.status == "active"
    assert seal.start == us(0, SEAL_START)
