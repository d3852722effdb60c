"""pre-seal (policies/rules/preseal.py): readiness checked when the engine sees a seal start."""

from __future__ import annotations

from typing import Any

from tests.support.engine import (
    AGENCY_OUT,
    BEFORE_SEAL,
    SEAL_START,
    Run,
    agency_site,
    at,
    ev,
    jammer_ok,
    reference_site,
    run,
)

SITE = reference_site()
PS = "pre-seal"
DAY = 86_400.0


def ready(t: float, base: str = SEAL_START) -> list[dict[str, Any]]:
    """Every device of the reference site reporting healthy, an operator on duty."""
    out = [
        jammer_ok(t, "jam-work", base=base),
        jammer_ok(t, "jam-living", base=base),
        ev(
            t,
            "panel-main",
            "alarm.panel",
            base=base,
            armed=True,
            mains="ok",
            battery="ok",
            tamper=False,
        ),
        ev(t, "pd-work", "device.heartbeat", base=base),
        ev(t, "pd-living", "device.heartbeat", base=base),
        ev(t, "console-1", "operator.duty", base=base, badge="O4001", state="on"),
    ]
    for cam in SITE.cameras:
        out.append(ev(t, cam, "camera.status", base=base, stream="up", tamper=None, fps=12.0))
        out.append(
            ev(
                t,
                cam,
                "recording.inventory",
                base=base,
                oldest=at(t - 100 * DAY, base),
                newest=at(t - 1, base),
                gaps=[],
            )
        )
    return out


def message(r: Run) -> str:
    return r.of(PS)[0].message


def test_a_ready_site_passes_the_pre_seal_check() -> None:
    assert run(SITE, ready(-5), until="2027-05-20T08:00:01+08:00", policy=PS) == []


def test_seal_started_with_nothing_heard_raises_pre_seal_listing_every_device() -> None:
    r = Run(SITE).feed(
        ev(
            0,
            "console-1",
            "seal.start",
            base=BEFORE_SEAL,
            seal="drill",
            name="Drill",
            classification="secret",
        )
    )
    r.advance(1, base=BEFORE_SEAL)
    assert r.triples(PS) == [(PS, "drill", "raised")]
    assert r.of(PS)[0].severity == "critical"
    for dev in ("jam-work", "cam-secure", "panel-main", "pd-living"):
        assert f"{dev} never heard" in message(r)
    assert "monitoring-room: 0 of 1 operators on duty" in message(r)


def test_each_failed_check_is_listed_in_one_alert() -> None:
    events = [
        *ready(-5),
        jammer_ok(-4, "jam-living", base=SEAL_START, nr3500=3.0),
        ev(-4, "cam-gate", "camera.status", base=SEAL_START, stream="up", tamper="covered"),
        ev(-4, "fire-exit-north", "door.opened", base=SEAL_START),
        ev(-4, "panel-main", "alarm.panel", base=SEAL_START, armed=False),
        ev(
            -4,
            "cam-press",
            "recording.inventory",
            base=SEAL_START,
            oldest=at(-4 - 30 * DAY, SEAL_START),
            newest=at(-5, SEAL_START),
            gaps=[],
        ),
    ]
    r = Run(SITE).feed(*events)
    r.advance(1, base=SEAL_START)
    assert r.triples(PS) == [(PS, "gk2027-a", "raised")]
    text = message(r)
    for part in (
        "jammer jam-living band nr3500 below floor",
        "camera cam-gate covered",
        "door fire-exit-north open",
        "perimeter panel panel-main disarmed",
        "camera cam-press out of retention",
    ):
        assert part in text
    assert "5 readiness failure(s)" in text


def test_an_offline_device_fails_the_pre_seal_check() -> None:
    r = Run(SITE).feed(
        *ready(-5), ev(-4, "pd-work", "device.status", base=SEAL_START, state="offline")
    )
    r.advance(1, base=SEAL_START)
    assert "pd-work offline" in message(r)


def test_pre_seal_is_latched_until_acknowledged() -> None:
    off = ev(-4, "jam-work", "jammer.status", base=SEAL_START, output=False, bands={}, faults=[])
    r = Run(SITE).feed(*ready(-5), off)
    r.advance(1, base=SEAL_START)
    r.feed(
        ev(
            2,
            "console-1",
            "alert.ack",
            base=SEAL_START,
            badge="S2001",
            alert_id=r.alert_id(PS, "gk2027-a"),
        )
    )
    assert r.triples(PS) == [
        (PS, "gk2027-a", "raised"),
        (PS, "gk2027-a", "acknowledged"),
        (PS, "gk2027-a", "cleared"),
    ]


def test_a_daemon_started_mid_seal_did_not_see_the_start_and_runs_no_pre_seal_check() -> None:
    assert run(SITE, [ev(0, "console-1", "device.heartbeat")], until=at(60), policy=PS) == []


def test_agency_meeting_opened_by_event_is_checked() -> None:
    site = agency_site()
    r = Run(site).feed(
        ev(0, "desk-1", "operator.duty", base=AGENCY_OUT, badge="A300", state="on"),
        ev(
            1,
            "desk-1",
            "seal.start",
            base=AGENCY_OUT,
            seal="mtg-0311",
            name="Follow-up meeting",
            classification="secret",
        ),
    )
    r.advance(2, base=AGENCY_OUT)
    assert r.triples(PS) == [(PS, "mtg-0311", "raised")]
    assert "jam-meeting never heard" in message(r)
    assert "operators on duty" not in message(r)


def test_a_camera_that_never_sent_an_inventory_fails_the_pre_seal_check() -> None:
    events = [e for e in ready(-5) if not (e["device"] == "cam-press" and "oldest" in e)]
    r = Run(SITE).feed(*events)
    r.advance(1, base=SEAL_START)
    assert r.triples(PS) == [(PS, "gk2027-a", "raised")]
    assert "camera cam-press retention unknown: no inventory received" in message(r)
    assert "1 readiness failure(s)" in message(r)


def test_an_inventory_at_the_seal_start_instant_counts() -> None:
    events = [e for e in ready(-5) if not (e["device"] == "cam-press" and "oldest" in e)]
    late = [e for e in ready(0) if e["device"] == "cam-press" and "oldest" in e]
    assert run(SITE, [*events, *late], until=at(1, SEAL_START), policy=PS) == []


def test_a_camera_without_recordings_is_not_asked_for_an_inventory() -> None:
    import dataclasses

    cams = {c: dataclasses.replace(cam, recordings=None) for c, cam in SITE.cameras.items()}
    site = dataclasses.replace(SITE, cameras=cams)
    events = [e for e in ready(-5) if "oldest" not in e]
    assert run(site, events, until=at(1, SEAL_START), policy=PS) == []
