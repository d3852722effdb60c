"""Fast tests of the simulators' pure parts: actions, scenarios, scenes, registers, folders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from policies.site import Site, load_site
from simulators.actions import StepError, check_step
from simulators.clock import parse_duration, parse_when, rfc3339
from simulators.jammer import JammerState
from simulators.load import generate_stream, synthetic_site
from simulators.recordings import backfill, cut_gap, iter_segments, parse_segment, prune
from simulators.scenario import ScenarioError, parse_scenario
from simulators.scene import Scene, cover, defocus, move


@pytest.fixture(scope="module")
def site(site_path: Path) -> Site:
    return load_site(site_path)


def _sharpness(img: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def test_durations_accept_units_and_numbers() -> None:
    assert parse_duration("5s") == 5.0
    assert parse_duration("2m") == 120.0
    assert parse_duration("1h") == 3600.0
    assert parse_duration(7) == 7.0
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_when_takes_offsets_and_rfc3339() -> None:
    now = datetime(2027, 5, 25, 6, 0, tzinfo=UTC)
    assert parse_when("-2h", now) == now - timedelta(hours=2)
    assert parse_when("2027-05-25T14:00:00+08:00", now) == now
    with pytest.raises(ValueError):
        parse_when("2027-05-25T08:00:00", now)


def test_rfc3339_has_milliseconds_and_offset() -> None:
    assert (
        rfc3339(datetime(2027, 5, 25, 6, 0, 0, 123000, tzinfo=UTC))
        == "2027-05-25T06:00:00.123+00:00"
    )


def test_step_with_unknown_action_names_a_close_one(site: Site) -> None:
    with pytest.raises(StepError, match=r"unknown action 'door\.opne'.*door\.open"):
        check_step(site, {"do": "door.opne", "door": "gate-inner"})


def test_step_missing_field_is_named(site: Site) -> None:
    with pytest.raises(StepError, match="badge needs 'direction'"):
        check_step(site, {"do": "badge", "door": "gate-inner", "badge": "B1001"})


def test_step_device_of_wrong_kind_is_refused(site: Site) -> None:
    with pytest.raises(StepError, match="'cam-gate' is a camera, not a door"):
        check_step(site, {"do": "door.open", "door": "cam-gate"})


def test_step_unknown_band_lists_the_jammers_bands(site: Site) -> None:
    with pytest.raises(StepError, match=r"no band 'gsm901'.*gsm900"):
        check_step(site, {"do": "jammer.band_down", "jammer": "jam-work", "band": "gsm901"})


def test_step_unknown_field_is_refused(site: Site) -> None:
    with pytest.raises(StepError, match="doorr: unknown field"):
        check_step(site, {"do": "door.open", "door": "gate-inner", "doorr": "x"})


def test_reference_scenario_loads(site: Site) -> None:
    text = (
        Path(__file__).parent.parent / "deploy/examples/scenarios/seal-incidents.yaml"
    ).read_text()
    scenario = parse_scenario(text, site)
    assert scenario.steps[0]["do"] == "seal.start"
    assert scenario.steps[0]["name"] == "Sealed-area drill"
    assert scenario.duration_s == 80.0


def test_scenario_reports_every_bad_step(site: Site) -> None:
    text = """
steps:
  - {at: 0s, do: door.open, door: gate-inner}
  - {at: 1s, do: door.explode, door: gate-inner}
  - {at: 2s, do: badge, door: gate-inner, badge: B1001}
  - {at: later, do: door.close, door: gate-inner}
  - {do: door.close, door: gate-inner}
"""
    with pytest.raises(ScenarioError) as err:
        parse_scenario(text, site, "bad.yaml")
    assert [e.split(":")[0] for e in err.value.errors] == [
        "steps[1]",
        "steps[2]",
        "steps[3].at",
        "steps[4]",
    ]


def test_scenario_keeps_file_order_for_equal_times(site: Site) -> None:
    text = """
steps:
  - {at: 5, do: door.close, door: gate-inner}
  - {at: 0s, do: door.open, door: gate-outer}
  - {at: 0s, do: door.open, door: gate-inner}
"""
    steps = parse_scenario(text, site).steps
    assert [(s["at"], s["door"]) for s in steps] == [
        (0.0, "gate-outer"),
        (0.0, "gate-inner"),
        (5.0, "gate-inner"),
    ]


def test_scenario_that_is_not_a_mapping_is_an_error(site: Site) -> None:
    with pytest.raises(ScenarioError, match="list under 'steps'"):
        parse_scenario("- 1\n- 2\n", site)


def test_jammer_registers_follow_the_reference_map(site: Site) -> None:
    state = JammerState(site.jammers["jam-work"])
    regs = state.registers(now=state.started + 70_000)
    assert regs[0] == 1 and regs[1] == 5
    assert regs[2] & 1  # RF output on
    assert 350 <= regs[3] <= 450  # ~40 °C in 0.1 °C
    assert (regs[4] << 16) | regs[5] == 70_000
    for band in site.jammers["jam-work"].bands:
        fwd = regs[10 + band.index] / 10
        refl = regs[30 + band.index] / 10
        assert band.min_dbm + 1 < fwd < band.min_dbm + 6
        assert 10 < fwd - refl < 20


def test_jammer_band_down_and_output_off_change_registers(site: Site) -> None:
    state = JammerState(site.jammers["jam-work"])
    state.bands_down["gsm900"] = 9.5
    assert state.registers()[11] == 95
    state.output = False
    regs = state.registers()
    assert regs[2] & 1 == 0
    assert all(regs[10 + i] == 0 for i in range(5))


def test_jammer_faults_set_status_bits_and_negative_values_are_twos_complement(site: Site) -> None:
    state = JammerState(site.jammers["jam-work"])
    state.faults |= {"vswr", "on_battery"}
    state.bands_down["nr3500"] = -3.0
    regs = state.registers()
    assert regs[2] == 0b1000101
    assert regs[14] == (-30) & 0xFFFF


def test_scenes_differ_between_cameras_and_are_textured() -> None:
    a = Scene("cam-a", 640, 360).render(1.0)
    b = Scene("cam-b", 640, 360).render(1.0)
    assert a.shape == (360, 640, 3)
    assert np.mean(cv2.absdiff(a, b)) > 10
    assert _sharpness(a) > 200


def test_scene_frames_move_and_night_is_grey_and_darker() -> None:
    scene = Scene("cam-a", 640, 360)
    f1, f2 = scene.render(1.0), scene.render(3.0)
    assert not np.array_equal(f1, f2)
    night = scene.render(1.0, night=True)
    b, g, r = cv2.split(night)
    assert np.array_equal(b, g) and np.array_equal(g, r)
    assert night.mean() < f1.mean()


def test_tamper_effects_change_the_picture_measurably() -> None:
    frame = Scene("cam-a", 640, 360).render(1.0)
    covered = cover(frame)
    assert covered.mean() < 20 and covered.std() < 3
    part = cover(frame, partial=True)
    dark = np.mean(cv2.cvtColor(part, cv2.COLOR_BGR2GRAY) < 20)
    assert 0.65 < dark < 0.8
    assert _sharpness(defocus(frame)) < _sharpness(frame) / 50
    assert np.mean(cv2.absdiff(move(frame), frame)) > 20


def test_segment_names_round_trip(tmp_path: Path) -> None:
    start = datetime(2027, 5, 25, 6, 0, tzinfo=UTC)
    n = backfill(tmp_path, start, start + timedelta(minutes=25), 600)
    names = [f.relative_to(tmp_path).as_posix() for f, _s, _d in iter_segments(tmp_path)]
    assert n == 3
    assert names == [
        "2027-05-25/20270525T060000Z_600.mp4",
        "2027-05-25/20270525T061000Z_600.mp4",
        "2027-05-25/20270525T062000Z_300.mp4",
    ]
    assert parse_segment("20270525T062000Z_300.mp4") == (start + timedelta(minutes=20), 300)
    assert parse_segment("notes.txt") is None


def test_prune_and_gap_delete_the_right_segments(tmp_path: Path) -> None:
    end = datetime(2027, 5, 25, 0, 0, tzinfo=UTC)
    backfill(tmp_path, end - timedelta(days=3), end, 3600)
    assert prune(tmp_path, end - timedelta(days=2)) == 24
    assert not (tmp_path / "2027-05-22").exists()
    removed = cut_gap(tmp_path, end - timedelta(hours=5, minutes=30), end - timedelta(hours=3))
    assert removed == 4  # 18:00, 19:00, 20:00, 21:00 overlap 18:30..21:00
    starts = [s for _f, s, _d in iter_segments(tmp_path)]
    assert min(starts) == end - timedelta(days=2)
    assert end - timedelta(hours=4) not in starts


def test_load_stream_is_ordered_and_reports_every_second(site: Site) -> None:
    start = datetime(2027, 5, 25, 6, 0, tzinfo=UTC)
    events = list(generate_stream(site, 130, start))
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)
    jam = [e for e in events if e["device"] == "jam-work"]
    assert len(jam) == 130
    kinds = {e["type"] for e in events}
    assert {
        "jammer.status",
        "camera.status",
        "alarm.panel",
        "device.heartbeat",
        "badge.granted",
        "door.opened",
        "door.closed",
    } <= kinds
    assert all(e["ts"].endswith("+00:00") for e in events)


def test_synthetic_site_has_the_requested_size() -> None:
    site = synthetic_site(400)
    assert 380 <= len(site.device_kind) <= 440
    assert site.jammers and site.cameras and site.alarm_inputs and site.doors
