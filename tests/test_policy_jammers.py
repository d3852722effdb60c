"""jammer-uptime and jammer-health (policies/rules/jammers.py)."""

from __future__ import annotations

from tests.support.engine import (
    AGENCY_IN,
    AGENCY_OUT,
    BEFORE_SEAL,
    SEAL_END,
    SEAL_START,
    Run,
    agency_site,
    ev,
    jammer_ok,
    reference_site,
    run,
    us,
)

SITE = reference_site()
UP = "jammer-uptime"


def test_band_below_its_floor_raises_band_alert_and_recovery_clears_it() -> None:
    r = Run(SITE).feed(jammer_ok(0), jammer_ok(5, dcs1800=9.5), jammer_ok(8, dcs1800=27.0))
    assert r.triples(UP) == [
        (UP, "jam-work/dcs1800", "raised"),
        (UP, "jam-work/dcs1800", "cleared"),
    ]
    assert r.of(UP)[0].severity == "critical"
    assert r.of(UP)[0].clause == "EXAM-2.7.8"


def test_band_exactly_at_its_floor_is_not_a_violation() -> None:
    assert run(SITE, [jammer_ok(0, dcs1800=27.0, nr3500=24.0)], policy=UP) == []


def test_band_missing_from_a_status_raises_band_alert() -> None:
    bands = {"cdma800": 33.0, "gsm900": 33.0, "dcs1800": 30.0, "lte2100": 30.0}
    got = run(
        SITE, [ev(0, "jam-work", "jammer.status", output=True, bands=bands, faults=[])], policy=UP
    )
    assert got == [(UP, "jam-work/nr3500", "raised")]


def test_output_off_raises_jammer_alert_until_output_is_back() -> None:
    off = ev(1, "jam-living", "jammer.status", output=False, bands={}, faults=[])
    got = run(SITE, [jammer_ok(0, "jam-living"), off, jammer_ok(2, "jam-living")], policy=UP)
    assert (UP, "jam-living", "raised") in got
    assert got[-6:] == [(UP, "jam-living", "cleared")] + [
        (UP, f"jam-living/{b}", "cleared")
        for b in ("cdma800", "gsm900", "dcs1800", "lte2100", "nr3500")
    ]


def test_no_status_for_jammer_status_timeout_raises_at_the_timeout() -> None:
    r = Run(SITE).feed(jammer_ok(0), jammer_ok(0, "jam-living"), jammer_ok(9, "jam-living"))
    r.advance(9.999)
    assert r.triples(UP) == []
    r.advance(10)
    assert r.triples(UP) == [(UP, "jam-work", "raised")]
    r.feed(jammer_ok(12))
    assert r.triples(UP)[-1] == (UP, "jam-work", "cleared")


def test_status_exactly_at_the_jammer_timeout_keeps_it_quiet() -> None:
    r = Run(SITE).feed(
        jammer_ok(0), jammer_ok(0, "jam-living"), jammer_ok(10), jammer_ok(10, "jam-living")
    )
    r.advance(19.9)
    assert r.triples(UP) == []


def test_daemon_started_mid_seal_counts_the_timeout_from_its_first_event() -> None:
    r = Run(SITE).feed(ev(0, "console-1", "operator.duty", badge="O4001", state="on"))
    r.advance(9.9)
    assert r.triples(UP) == []  # the seal began days ago: that time was not watched
    r.advance(10)
    assert sorted(r.triples(UP)) == [(UP, "jam-living", "raised"), (UP, "jam-work", "raised")]


def test_low_band_outside_a_seal_does_not_raise() -> None:
    assert (
        run(
            SITE,
            [jammer_ok(0, base=BEFORE_SEAL, gsm900=1.0)],
            until="2027-05-01T11:00:00+08:00",
            policy=UP,
        )
        == []
    )


def test_low_band_known_when_the_seal_starts_raises_at_the_start() -> None:
    r = Run(SITE).feed(
        jammer_ok(-3, base=SEAL_START, gsm900=1.0), jammer_ok(-3, "jam-living", base=SEAL_START)
    )
    r.advance(0, base=SEAL_START)
    assert r.triples(UP) == [(UP, "jam-work/gsm900", "raised")]
    assert r.out[-1].ts == r.engine.clock


def test_seal_end_clears_active_jammer_alerts() -> None:
    r = Run(SITE).feed(jammer_ok(-3, base=SEAL_END, gsm900=1.0))
    r.advance(60, base=SEAL_END)
    assert (UP, "jam-work/gsm900", "cleared") in r.triples(UP)
    assert [a for a in r.engine.open_alerts() if a.policy == UP and a.active] == []
    assert {x.ts for x in r.of(UP) if x.state == "cleared"} == {us(0, SEAL_END)}


def test_agency_meeting_jammer_must_run_during_the_meeting_only() -> None:
    site = agency_site()
    low = {"gsm900": 28.0, "dcs1800": 20.0, "lte2100": 25.0}
    inside = run(
        site,
        [ev(0, "jam-meeting", "jammer.status", base=AGENCY_IN, output=True, bands=low, faults=[])],
        policy=UP,
    )
    outside = run(
        site,
        [ev(0, "jam-meeting", "jammer.status", base=AGENCY_OUT, output=True, bands=low, faults=[])],
        policy=UP,
    )
    assert inside == [(UP, "jam-meeting/dcs1800", "raised")]
    assert outside == []


# -- jammer-health --------------------------------------------------------------------------


def test_status_with_faults_raises_jammer_health_and_clean_status_clears_it() -> None:
    hot = ev(
        1,
        "jam-work",
        "jammer.status",
        base=BEFORE_SEAL,
        output=True,
        bands={"cdma800": 33.0},
        faults=["over_temperature"],
        temperature_c=80.0,
    )
    r = Run(SITE).feed(jammer_ok(0, base=BEFORE_SEAL), hot, jammer_ok(2, base=BEFORE_SEAL))
    assert r.triples("jammer-health") == [
        ("jammer-health", "jam-work", "raised"),
        ("jammer-health", "jam-work", "cleared"),
    ]
    assert r.of("jammer-health")[0].severity == "major"
    assert "over_temperature" in r.of("jammer-health")[0].message


def test_healthy_hot_jammer_without_faults_is_not_a_health_alert() -> None:
    warm = ev(0, "jam-work", "jammer.status", output=True, bands={}, faults=[], temperature_c=70.0)
    assert run(SITE, [warm], policy="jammer-health") == []
