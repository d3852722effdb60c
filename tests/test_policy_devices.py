"""device-offline (policies/rules/devices.py)."""

from __future__ import annotations

from tests.support.engine import (
    AGENCY_IN,
    BEFORE_SEAL,
    Run,
    Triple,
    agency_site,
    ev,
    reference_site,
)

SITE = reference_site()
DO = "device-offline"


def about(r: Run, subject: str) -> list[Triple]:
    return [x for x in r.triples(DO) if x[1] == subject]


def test_device_reporting_offline_raises_and_any_later_event_clears() -> None:
    r = Run(SITE).feed(
        ev(0, "pd-work", "device.status", state="offline"), ev(5, "pd-work", "device.heartbeat")
    )
    assert about(r, "pd-work") == [(DO, "pd-work", "raised"), (DO, "pd-work", "cleared")]
    assert r.of(DO)[0].severity == "major"


def test_a_door_can_report_itself_offline_too() -> None:
    r = Run(SITE).feed(
        ev(0, "gate-outer", "device.status", state="offline"), ev(1, "gate-outer", "door.opened")
    )
    assert about(r, "gate-outer") == [(DO, "gate-outer", "raised"), (DO, "gate-outer", "cleared")]


def test_silent_camera_raises_after_heartbeat_timeout_counted_from_the_first_event() -> None:
    r = Run(SITE).feed(ev(0, "cam-press", "device.heartbeat", base=BEFORE_SEAL))
    r.advance(29.999, base=BEFORE_SEAL)
    assert r.triples(DO) == []  # nothing known from before the first event
    r.advance(30, base=BEFORE_SEAL)
    assert (DO, "cam-press", "raised") in r.triples(DO)
    r.feed(ev(31, "cam-press", "camera.status", stream="up", tamper=None, base=BEFORE_SEAL))
    assert about(r, "cam-press")[-1] == (DO, "cam-press", "cleared")


def test_heartbeat_exactly_at_the_timeout_keeps_a_device_online() -> None:
    r = Run(SITE).feed(*[ev(t, "pd-work", "device.heartbeat") for t in (0, 30, 60)])
    r.advance(89)
    assert about(r, "pd-work") == []


def test_alarm_input_events_keep_their_panel_online() -> None:
    r = Run(SITE).feed(
        *[ev(t, "press-hall-pir", "alarm.input", state="normal") for t in (0, 20, 40)]
    )
    r.advance(59)
    assert about(r, "panel-main") == []
    r.advance(70)
    assert about(r, "panel-main") == [(DO, "panel-main", "raised")]


def test_silent_doors_and_consoles_are_not_watched_for_heartbeats() -> None:
    r = Run(SITE).feed(ev(0, "gate-inner", "door.opened"), ev(0, "console-1", "device.heartbeat"))
    r.advance(3600)
    subjects = {x[1] for x in r.triples(DO)}
    assert subjects == {
        "jam-work",
        "jam-living",
        "cam-gate",
        "cam-typesetting",
        "cam-press",
        "cam-secure",
        "cam-belt-north",
        "panel-main",
        "pd-work",
        "pd-living",
    }


def test_agency_uses_its_own_heartbeat_timeout() -> None:
    r = Run(agency_site()).feed(ev(0, "desk-1", "device.heartbeat", base=AGENCY_IN))
    r.advance(59.9, base=AGENCY_IN)
    assert r.triples(DO) == []
    r.advance(60, base=AGENCY_IN)
    assert sorted(x[1] for x in r.triples(DO)) == [
        "cam-computer",
        "cam-corridor",
        "cam-secure",
        "jam-meeting",
        "panel-wing",
        "pd-meeting",
    ]
