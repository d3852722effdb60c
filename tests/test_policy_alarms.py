"""intrusion, perimeter-armed, power (policies/rules/alarms.py)."""

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
)

SITE = reference_site()
IN = "intrusion"
PA = "perimeter-armed"


def panel(t: float, device: str = "panel-main", **fields: Any) -> dict[str, Any]:
    return ev(t, device, "alarm.panel", **fields)


def inp(t: float, device: str, state: str, **kw: Any) -> dict[str, Any]:
    return ev(t, device, "alarm.input", state=state, **kw)


# -- intrusion ------------------------------------------------------------------------------


def test_input_alarm_while_armed_raises_and_normal_clears() -> None:
    r = Run(SITE).feed(
        panel(0, armed=True), inp(1, "press-hall-pir", "alarm"), inp(9, "press-hall-pir", "normal")
    )
    assert r.triples(IN) == [(IN, "press-hall-pir", "raised"), (IN, "press-hall-pir", "cleared")]
    assert (r.of(IN)[0].severity, r.of(IN)[0].clause) == ("critical", "EXAM-2.7.5")


def test_input_alarm_while_disarmed_is_not_an_intrusion() -> None:
    got = run(SITE, [panel(0, armed=False), inp(1, "press-hall-pir", "alarm")], policy=IN)
    assert got == []


def test_belt_alarm_during_a_seal_raises_even_when_disarmed() -> None:
    r = Run(SITE).feed(panel(0, armed=False), inp(1, "belt-north-fence", "alarm"))
    assert r.triples(IN) == [(IN, "belt-north-fence", "raised")]
    assert r.of(IN)[0].clause == "EXAM-2.7.2"


def test_belt_alarm_while_disarmed_outside_a_seal_does_not_raise() -> None:
    got = run(
        SITE,
        [
            panel(0, base=BEFORE_SEAL, armed=False),
            inp(1, "belt-north-fence", "alarm", base=BEFORE_SEAL),
        ],
        policy=IN,
    )
    assert got == []


def test_tamper_raises_at_any_time_even_disarmed() -> None:
    got = run(
        SITE,
        [
            panel(0, base=BEFORE_SEAL, armed=False),
            inp(1, "secure-safe", "tamper", base=BEFORE_SEAL),
        ],
        policy=IN,
    )
    assert got == [(IN, "secure-safe", "raised")]


def test_fault_is_major_and_a_following_alarm_escalates_it() -> None:
    r = Run(SITE).feed(
        panel(0, armed=True), inp(1, "typesetting-pir", "fault"), inp(2, "typesetting-pir", "alarm")
    )
    assert r.triples(IN) == [
        (IN, "typesetting-pir", "raised"),
        (IN, "typesetting-pir", "escalated"),
    ]
    assert [x.severity for x in r.of(IN)] == ["major", "critical"]
    assert r.of(IN)[0].alert_id == r.of(IN)[1].alert_id


def test_panel_tamper_raises_on_the_panel_and_clears_when_it_clears() -> None:
    got = run(
        agency_site(),
        [
            panel(0, "panel-wing", base=AGENCY_IN, tamper=True),
            panel(5, "panel-wing", base=AGENCY_IN, tamper=False),
        ],
        policy=IN,
    )
    assert got == [(IN, "panel-wing", "raised"), (IN, "panel-wing", "cleared")]


def test_agency_secure_room_alarm_while_armed() -> None:
    got = run(
        agency_site(),
        [
            panel(0, "panel-wing", base=AGENCY_IN, armed=True),
            inp(1, "secure-room-ir", "alarm", base=AGENCY_IN),
        ],
        policy=IN,
    )
    assert got == [(IN, "secure-room-ir", "raised")]


# -- perimeter-armed ------------------------------------------------------------------------


def test_disarming_the_perimeter_panel_during_a_seal_raises_and_arming_clears() -> None:
    r = Run(SITE).feed(panel(0, armed=True), panel(5, armed=False), panel(9, armed=True))
    assert r.triples(PA) == [(PA, "panel-main", "raised"), (PA, "panel-main", "cleared")]
    assert r.of(PA)[0].severity == "critical"


def test_perimeter_disarmed_outside_a_seal_does_not_raise() -> None:
    assert run(SITE, [panel(0, base=BEFORE_SEAL, armed=False)], policy=PA) == []


def test_perimeter_disarmed_when_the_seal_starts_raises_then_seal_end_clears() -> None:
    r = Run(SITE).feed(panel(-60, base=SEAL_START, armed=False))
    r.advance(0, base=SEAL_START)
    assert r.triples(PA) == [(PA, "panel-main", "raised")]
    r.advance(0, base=SEAL_END)
    assert r.triples(PA)[-1] == (PA, "panel-main", "cleared")


def test_panel_report_without_armed_field_leaves_perimeter_alone() -> None:
    assert run(SITE, [panel(0, mains="ok")], policy=PA) == []


def test_agency_has_no_perimeter_panel() -> None:
    got = run(agency_site(), [panel(0, "panel-wing", base=AGENCY_IN, armed=False)], policy=PA)
    assert got == []


# -- power ----------------------------------------------------------------------------------


def test_mains_lost_raises_power_and_mains_ok_clears() -> None:
    r = Run(SITE).feed(
        panel(0, base=BEFORE_SEAL, mains="lost"), panel(3, base=BEFORE_SEAL, mains="ok")
    )
    assert r.triples("power") == [
        ("power", "panel-main", "raised"),
        ("power", "panel-main", "cleared"),
    ]
    assert r.of("power")[0].severity == "major"


def test_battery_low_keeps_power_raised_after_mains_returns() -> None:
    got = run(
        SITE,
        [
            panel(0, mains="lost"),
            panel(1, battery="low"),
            panel(2, mains="ok"),
            panel(3, battery="ok"),
        ],
        policy="power",
    )
    assert got == [("power", "panel-main", "raised"), ("power", "panel-main", "cleared")]


def test_healthy_power_report_does_not_raise() -> None:
    assert run(SITE, [panel(0, mains="ok", battery="ok", armed=True)], policy="power") == []
