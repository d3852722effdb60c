"""camera-integrity and video-retention (policies/rules/cameras.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

from tests.support.engine import (
    AGENCY_IN,
    BEFORE_SEAL,
    SEAL_END,
    SEAL_START,
    Run,
    agency_site,
    at,
    ev,
    reference_site,
    run,
)

SITE = reference_site()
CI = "camera-integrity"
VR = "video-retention"
DAY = 86_400.0


def cam(
    t: float, device: str, stream: str = "up", tamper: str | None = None, **kw: Any
) -> dict[str, Any]:
    return ev(t, device, "camera.status", stream=stream, tamper=tamper, fps=12.5, **kw)


def inventory(
    t: float, device: str, oldest_s: float | None, gaps: list[tuple[float, float]], **kw: Any
) -> dict[str, Any]:
    """An inventory at `t`; `oldest_s` and the gaps are seconds relative to the base too."""
    base = kw.get("base", "2027-05-25T14:00:00+08:00")
    return ev(
        t,
        device,
        "recording.inventory",
        oldest=None if oldest_s is None else at(oldest_s, base),
        newest=at(t - 5, base),
        gaps=[[at(a, base), at(b, base)] for a, b in gaps],
        **kw,
    )


# -- camera-integrity -----------------------------------------------------------------------


def test_stream_down_in_a_sealed_zone_during_a_seal_is_critical_and_up_clears() -> None:
    r = Run(SITE).feed(cam(0, "cam-press", "down"), cam(10, "cam-press"))
    assert r.triples(CI) == [(CI, "cam-press", "raised"), (CI, "cam-press", "cleared")]
    assert r.of(CI)[0].severity == "critical"


def test_screening_camera_tamper_during_a_seal_is_critical() -> None:
    r = Run(SITE).feed(cam(0, "cam-gate", tamper="covered"))
    assert r.triples(CI) == [(CI, "cam-gate", "raised")]
    assert r.of(CI)[0].severity == "critical"


def test_belt_camera_problem_during_a_seal_stays_major() -> None:
    r = Run(SITE).feed(cam(0, "cam-belt-north", tamper="moved"))
    assert [x.severity for x in r.of(CI)] == ["major"]


def test_camera_problem_outside_a_seal_is_major() -> None:
    r = Run(SITE).feed(cam(0, "cam-secure", "down", base=BEFORE_SEAL))
    assert [x.severity for x in r.of(CI)] == ["major"]


def test_camera_problem_persisting_into_a_seal_is_escalated_to_critical() -> None:
    r = Run(SITE).feed(cam(-30, "cam-secure", tamper="defocused", base=SEAL_START))
    r.advance(0, base=SEAL_START)
    assert r.triples(CI) == [(CI, "cam-secure", "raised"), (CI, "cam-secure", "escalated")]
    assert r.of(CI)[-1].severity == "critical"


def test_stream_up_still_tampered_does_not_clear() -> None:
    got = run(
        SITE,
        [cam(0, "cam-press", "down", tamper="frozen"), cam(5, "cam-press", tamper="frozen")],
        policy=CI,
    )
    assert got == [(CI, "cam-press", "raised")]


def test_healthy_camera_status_does_not_raise() -> None:
    assert run(agency_site(), [cam(0, "cam-secure", base=AGENCY_IN)], policy=CI) == []


# -- video-retention ------------------------------------------------------------------------


def test_inventory_reaching_back_only_89_days_raises_and_a_compliant_one_clears() -> None:
    r = Run(SITE).feed(
        inventory(0, "cam-press", -89 * DAY, []), inventory(60, "cam-press", -120 * DAY, [])
    )
    # (the other cameras, silent past heartbeat_timeout_s, raise it too: see below)
    got = [t for t in r.triples(VR) if t[1] == "cam-press"]
    assert got == [(VR, "cam-press", "raised"), (VR, "cam-press", "cleared")]
    assert (r.of(VR)[0].severity, r.of(VR)[0].clause) == ("major", "EXAM-2.7.9")


def test_oldest_exactly_retention_days_back_is_compliant() -> None:
    assert run(SITE, [inventory(0, "cam-press", -90 * DAY, [])], policy=VR) == []


def test_oldest_one_second_short_of_retention_days_raises() -> None:
    got = run(SITE, [inventory(0, "cam-press", -90 * DAY + 1, [])], policy=VR)
    assert got == [(VR, "cam-press", "raised")]


def test_gap_longer_than_max_recording_gap_inside_the_window_raises() -> None:
    got = run(SITE, [inventory(0, "cam-gate", -100 * DAY, [(-3 * DAY, -3 * DAY + 61)])], policy=VR)
    assert got == [(VR, "cam-gate", "raised")]


def test_gap_of_exactly_max_recording_gap_is_tolerated() -> None:
    got = run(SITE, [inventory(0, "cam-gate", -100 * DAY, [(-3 * DAY, -3 * DAY + 60)])], policy=VR)
    assert got == []


def test_gap_before_the_retention_window_does_not_count() -> None:
    got = run(SITE, [inventory(0, "cam-gate", -200 * DAY, [(-150 * DAY, -140 * DAY)])], policy=VR)
    assert got == []


def test_gap_straddling_the_window_start_counts_only_its_part_inside() -> None:
    # 10 minutes of gap, of which 30 s lie inside the 90-day window.
    got = run(
        SITE, [inventory(0, "cam-gate", -200 * DAY, [(-90 * DAY - 570, -90 * DAY + 30)])], policy=VR
    )
    assert got == []


def test_no_recordings_at_all_raises() -> None:
    assert run(SITE, [inventory(0, "cam-gate", None, [])], policy=VR) == [
        (VR, "cam-gate", "raised")
    ]


def test_a_camera_installed_recently_is_counted_from_its_installation() -> None:
    installed = SITE.cameras["cam-press"]
    from datetime import datetime

    new = dataclasses.replace(installed, installed=datetime.fromisoformat(at(-10 * DAY)))
    site = dataclasses.replace(SITE, cameras={**SITE.cameras, "cam-press": new})
    ok = run(site, [inventory(0, "cam-press", -10 * DAY, [])], policy=VR)
    short = run(site, [inventory(0, "cam-press", -9 * DAY, [])], policy=VR)
    assert ok == []
    assert short == [(VR, "cam-press", "raised")]


# -- video-retention: a camera that never sends an inventory -----------------------------------

HB = SITE.policies.heartbeat_timeout_s
RECORDED = sorted(c for c, cam in SITE.cameras.items() if cam.recordings)


def test_reference_cameras_all_have_a_recordings_folder() -> None:
    assert RECORDED == sorted(SITE.cameras) and len(RECORDED) >= 2


def test_a_camera_that_sends_no_inventory_raises_after_heartbeat_timeout_in_a_seal() -> None:
    others = [inventory(0, c, -100 * DAY, []) for c in RECORDED if c != "cam-press"]
    r = Run(SITE).feed(*others).advance(HB - 1)
    assert r.triples(VR) == []
    r.advance(HB)
    assert r.triples(VR) == [(VR, "cam-press", "raised")]
    a = r.of(VR)[0]
    assert (a.severity, a.clause, a.ts) == ("major", "EXAM-2.7.9", r.engine.ctx.now)
    assert "no recording inventory received" in a.message and "retention unknown" in a.message
    # A compliant inventory clears it; a non-compliant one keeps it, with its own reason.
    r.feed(inventory(HB + 10, "cam-press", -10 * DAY, []))
    assert r.triples(VR) == [(VR, "cam-press", "raised")]
    (open_,) = [a for a in r.engine.open_alerts() if a.policy == VR]
    assert "newer than" in open_.message  # the alert now says why
    r.feed(inventory(HB + 20, "cam-press", -100 * DAY, []))
    assert r.triples(VR)[-1] == (VR, "cam-press", "cleared")


def test_an_inventory_exactly_at_the_timeout_is_in_time() -> None:
    got = run(
        SITE,
        [
            *[inventory(0, c, -100 * DAY, []) for c in RECORDED if c != "cam-press"],
            inventory(HB, "cam-press", -100 * DAY, []),
        ],
        until=at(HB + 60),
        policy=VR,
    )
    assert got == []


def test_no_inventory_is_counted_from_the_seal_start_not_before() -> None:
    # Silent before the seal: nothing; the timeout counts from the seal's start.
    start = [ev(0, "cam-gate", "camera.status", base=BEFORE_SEAL, stream="up", fps=12.0)]
    assert run(SITE, start, until=at(-1, SEAL_START), policy=VR) == []
    r = Run(SITE).feed(*start).advance(HB - 1, base=SEAL_START)
    assert r.triples(VR) == []
    r.advance(HB, base=SEAL_START)
    assert sorted(r.triples(VR)) == [(VR, c, "raised") for c in RECORDED]


def test_an_inventory_before_the_seal_counts_and_a_seal_end_stops_the_timer() -> None:
    before = [inventory(0, c, -100 * DAY, [], base=BEFORE_SEAL) for c in RECORDED]
    assert run(SITE, before, until=at(HB + 60, SEAL_START), policy=VR) == []
    # A seal that ends before the timeout is due: nothing is raised, then or later.
    quiet = [ev(-HB / 2, "cam-gate", "camera.status", base=SEAL_END, stream="up", fps=12.0)]
    assert run(SITE, quiet, until=at(HB + 60, SEAL_END), policy=VR) == []


def test_a_camera_without_a_recordings_folder_is_not_asked_for_an_inventory() -> None:
    site = dataclasses.replace(
        SITE,
        cameras={c: dataclasses.replace(cam, recordings=None) for c, cam in SITE.cameras.items()},
    )
    assert run(site, [cam(0, "cam-press")], until=at(HB + 60), policy=VR) == []
