"""prohibited-device and duty-phone (policies/rules/phones.py)."""

from __future__ import annotations

from typing import Any

from tests.support.engine import (
    AGENCY_IN,
    AGENCY_OUT,
    BEFORE_SEAL,
    SEAL_END,
    Run,
    agency_site,
    at,
    ev,
    reference_site,
    run,
)

SITE = reference_site()
PD = "prohibited-device"
DP = "duty-phone"


def detected(t: float, detector: str = "pd-work", **kw: Any) -> dict[str, Any]:
    return ev(t, detector, "phone.detected", band="lte2100", rssi_dbm=-60.0, **kw)


def call(t: float, recording: str | None, supervisors: list[str], **kw: Any) -> dict[str, Any]:
    base = kw.get("base", "2027-05-25T14:00:00+08:00")
    return ev(
        t,
        "duty-phone",
        "call.recorded",
        start=at(t - 120, base),
        end=at(t, base),
        recording=recording,
        supervisors=supervisors,
        **kw,
    )


# -- prohibited-device ----------------------------------------------------------------------


def test_phone_detected_during_a_seal_raises_latched_critical_cleared_by_ack() -> None:
    r = Run(SITE).feed(detected(0), detected(30))
    assert r.triples(PD) == [(PD, "pd-work", "raised")]  # the second is folded
    assert r.of(PD)[0].severity == "critical"
    r.feed(ev(60, "console-1", "alert.ack", alert_id=r.alert_id(PD, "pd-work"), badge="S2001"))
    assert r.triples(PD)[1:] == [(PD, "pd-work", "acknowledged"), (PD, "pd-work", "cleared")]


def test_phone_detected_outside_a_seal_does_not_raise() -> None:
    assert run(SITE, [detected(0, base=BEFORE_SEAL)], policy=PD) == []
    assert run(agency_site(), [detected(0, "pd-meeting", base=AGENCY_OUT)], policy=PD) == []


def test_phone_detected_in_the_agency_meeting() -> None:
    got = run(agency_site(), [detected(0, "pd-meeting", base=AGENCY_IN)], policy=PD)
    assert got == [(PD, "pd-meeting", "raised")]


def test_latched_detection_survives_the_end_of_the_seal() -> None:
    r = Run(SITE).feed(detected(-60, base=SEAL_END))
    r.advance(3600, base=SEAL_END)
    assert r.triples(PD) == [(PD, "pd-work", "raised"), (PD, "pd-work", "escalated")]
    assert [a.policy for a in r.engine.open_alerts() if a.active and a.policy == PD] == [PD]


# -- duty-phone -----------------------------------------------------------------------------


def test_recorded_call_supervised_by_two_officers_is_fine() -> None:
    assert run(SITE, [call(0, "rec-1", ["S2001", "S2002"])], policy=DP) == []


def test_unrecorded_call_raises_latched_duty_phone() -> None:
    r = Run(SITE).feed(call(0, None, ["S2001", "S2002"]))
    assert r.triples(DP) == [(DP, "duty-phone", "raised")]
    assert (r.of(DP)[0].severity, r.of(DP)[0].clause) == ("major", "EXAM-2.8.10")
    r.feed(ev(10, "console-1", "alert.ack", alert_id=r.alert_id(DP, "duty-phone"), badge="S2001"))
    assert r.triples(DP)[-1] == (DP, "duty-phone", "cleared")


def test_the_same_supervisor_twice_is_one_supervisor() -> None:
    assert run(SITE, [call(0, "rec-1", ["S2001", "S2001"])], policy=DP) == [
        (DP, "duty-phone", "raised")
    ]


def test_an_operator_does_not_count_as_a_call_supervisor() -> None:
    assert run(SITE, [call(0, "rec-1", ["S2001", "O4001"])], policy=DP) == [
        (DP, "duty-phone", "raised")
    ]


def test_bad_call_outside_a_seal_does_not_raise() -> None:
    assert run(SITE, [call(0, None, [], base=BEFORE_SEAL)], policy=DP) == []
