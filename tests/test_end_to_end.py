"""End to end over real protocols: every scenario action of CONTRACT §7, performed by the
simulators, read by the daemon's own adapters (Modbus TCP jammers, HTTP MJPEG/JPEG cameras,
recording folders, duty-phone recorder files) or its MQTT ingest (gateways), judged by the
engine, and seen as an alert transition on the daemon's MQTT alerts topic — all against a real
Mosquitto.

One rig for the module (daemon, simulators and alert watcher of one site with a seal in
progress); each test uses its own devices, so the tests do not depend on each other except
that `test_seal_end_and_start` ends the site's seal and therefore runs last in this file.
The reference scenario is played through the simulators' command line against `sealwatch run`
(both as processes) beside the other tests; the last test collects what it raised.

Actions that cannot raise an alert through the real path are said where they would be:
`badge` never produces `zone-authorization` (the simulated controller, like a correct one,
denies a badge it does not authorise, and the policy judges grants), and `recording.prune` /
`recording.gap` raise `video-retention` but nothing the simulator can do brings deleted
footage back to clear it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.support.daemon import ROOT, wait_until
from tests.support.e2e import (
    SEAL_ID,
    SIM_HEARTBEAT_S,
    Rig,
    ScenarioRun,
    describe,
    e2e_rig,
    play_scenario,
)
from tests.support.mosquitto import Mosquitto

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

SCENARIO = ROOT / "deploy" / "examples" / "scenarios" / "seal-incidents.yaml"
CONSOLE = "console-1"


@pytest_asyncio.fixture(scope="module", loop_scope="module", autouse=True)
async def reference_run(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    mosquitto_session: Mosquitto,
) -> AsyncIterator[asyncio.Task[ScenarioRun] | None]:
    """The reference scenario plays for 80 s: started before this module's other tests (when
    its test is selected), it plays beside them in processes of its own, under its own site
    id, and its test only collects the result."""
    if not any(
        item.name == "test_reference_scenario_through_the_simulators_cli"
        for item in request.session.items
    ):
        yield None
        return
    task = asyncio.create_task(
        play_scenario(
            tmp_path_factory.mktemp("e2e-cli"),
            mosquitto_session,
            f"e2e-cli-{os.getpid()}",
            SCENARIO,
            REFERENCE_ALERTS,
        ),
        name="reference-scenario",
    )
    yield task
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig(
    tmp_path_factory: pytest.TempPathFactory, mosquitto_session: Mosquitto
) -> AsyncIterator[Rig]:
    directory = tmp_path_factory.mktemp("e2e")
    async with e2e_rig(directory, mosquitto_session, f"e2e-{os.getpid()}") as r:
        yield r


# -- MQTT gateways: doors, badge readers ------------------------------------------------------


async def test_doors(rig: Rig) -> None:
    # door.open of both entrance doors at once: the airlock is breached; either closing ends it
    t = await rig.expect(
        [{"do": "door.open", "door": "gate-outer"}, {"do": "door.open", "door": "gate-inner"}],
        "entrance-interlock",
        "entrance",
    )
    assert t["severity"] == "critical" and t["clause"] == "EXAM-2.7.3"
    await rig.expect(
        [{"do": "door.close", "door": "gate-inner"}], "entrance-interlock", "entrance", "cleared"
    )
    await rig.do(do="door.close", door="gate-outer")

    # a boundary door other than the entrance opened during the seal
    await rig.expect(
        [{"do": "door.open", "door": "fire-exit-north"}], "single-entrance", "fire-exit-north"
    )
    await rig.expect(
        [{"do": "door.close", "door": "fire-exit-north"}],
        "single-entrance",
        "fire-exit-north",
        "cleared",
    )

    # door.force: the controller reports an opening without a grant
    await rig.expect([{"do": "door.force", "door": "living-link"}], "door-forced", "living-link")
    await rig.expect(
        [{"do": "door.close", "door": "living-link"}], "door-forced", "living-link", "cleared"
    )

    # door.open held past door_held_open_s (2 s here): the timer fires in the live engine
    await rig.expect(
        [{"do": "door.open", "door": "typesetting-door"}], "door-held-open", "typesetting-door"
    )
    await rig.expect(
        [{"do": "door.close", "door": "typesetting-door"}],
        "door-held-open",
        "typesetting-door",
        "cleared",
    )


async def test_badges(rig: Rig) -> None:
    # badge: an unknown badge is denied by the simulated controller; three denials within
    # the burst window raise the (latched) burst alert, which clears on acknowledgement.
    # Three doors, not one door thrice: the simulator stamps events to the millisecond, and
    # two identical events of one instant are one redelivery to the daemon (dropped by digest)
    t = await rig.expect(
        [
            {"do": "badge", "door": door, "badge": "X9999", "direction": "in"}
            for door in ("press-hall-door", "typesetting-door", "monitoring-door")
        ],
        "badge-denied-burst",
        "X9999",
    )
    assert t["severity"] == "major"
    await rig.ack(t)

    # badge granted: one authorised badge at a two-person door, then the door opens
    t = await rig.expect(
        [
            {"do": "badge", "door": "secure-room-door", "badge": "S2001", "direction": "in"},
            {"do": "door.open", "door": "secure-room-door"},
        ],
        "two-person",
        "secure-room-door",
    )
    assert t["clause"].startswith("EXAM-2.8.13")
    await rig.do(do="door.close", door="secure-room-door")
    await rig.ack(t)


@pytest.mark.skip(
    reason="not reachable through the simulators: the simulated badge "
    "controller (like a correct one) grants only badges whose person may enter "
    "the zone and denies the rest, while zone-authorization judges grants; "
    "tests/test_policy_access.py covers it with events"
)
async def test_zone_authorization_from_a_badge() -> None:
    """Kept so the gap shows in every run."""


# -- MQTT gateways: alarm panel and inputs, detectors, patrol, consoles -----------------------


async def test_alarm_panel_and_inputs(rig: Rig) -> None:
    # alarm.trigger on a belt (buffer) input during a seal; alarm.restore clears
    t = await rig.expect(
        [{"do": "alarm.trigger", "input": "belt-north-fence"}], "intrusion", "belt-north-fence"
    )
    assert t["severity"] == "critical"
    await rig.expect(
        [{"do": "alarm.restore", "input": "belt-north-fence"}],
        "intrusion",
        "belt-north-fence",
        "cleared",
    )

    # alarm.fault: the same alert, major
    t = await rig.expect(
        [{"do": "alarm.fault", "input": "press-hall-pir"}], "intrusion", "press-hall-pir"
    )
    assert t["severity"] == "major"
    await rig.expect(
        [{"do": "alarm.restore", "input": "press-hall-pir"}],
        "intrusion",
        "press-hall-pir",
        "cleared",
    )

    # alarm.tamper raises at any time
    await rig.expect([{"do": "alarm.tamper", "input": "secure-safe"}], "intrusion", "secure-safe")
    await rig.expect(
        [{"do": "alarm.restore", "input": "secure-safe"}], "intrusion", "secure-safe", "cleared"
    )

    # panel.disarm during a seal (the panel has belt inputs); panel.arm clears
    await rig.expect(
        [{"do": "panel.disarm", "panel": "panel-main"}], "perimeter-armed", "panel-main"
    )
    await rig.expect(
        [{"do": "panel.arm", "panel": "panel-main"}], "perimeter-armed", "panel-main", "cleared"
    )

    # panel.mains_lost / mains_ok
    t = await rig.expect([{"do": "panel.mains_lost", "panel": "panel-main"}], "power", "panel-main")
    assert t["severity"] == "major"
    await rig.expect(
        [{"do": "panel.mains_ok", "panel": "panel-main"}], "power", "panel-main", "cleared"
    )

    await rig.expect([{"do": "panel.battery_low", "panel": "panel-main"}], "power", "panel-main")
    await rig.expect(
        [{"do": "panel.battery_ok", "panel": "panel-main"}], "power", "panel-main", "cleared"
    )

    # panel.tamper: the panel itself is the subject
    await rig.expect([{"do": "panel.tamper", "panel": "panel-main"}], "intrusion", "panel-main")
    await rig.expect(
        [{"do": "panel.tamper_ok", "panel": "panel-main"}], "intrusion", "panel-main", "cleared"
    )


async def test_phone_detector_patrol_and_operators(rig: Rig) -> None:
    # phone.detect during a seal: latched until acknowledged
    t = await rig.expect(
        [{"do": "phone.detect", "detector": "pd-work", "rssi_dbm": -41}],
        "prohibited-device",
        "pd-work",
    )
    assert t["severity"] == "critical"
    await rig.ack(t)

    # patrol: no guard visit for patrol_interval_min (6 s here) raises; patrol.visit clears
    await wait_until(lambda: rig.active("patrol", "cp-north"), 30, "patrol cp-north raised")
    await rig.expect(
        [{"do": "patrol.visit", "checkpoint": "cp-north", "badge": "G3001"}],
        "patrol",
        "cp-north",
        "cleared",
    )

    # monitoring-staffed: nobody was on duty when the engine started inside the seal
    await wait_until(
        lambda: rig.active("monitoring-staffed", "monitoring-room"),
        15,
        "monitoring-staffed raised at start",
    )
    await rig.expect(
        [{"do": "operator.on", "console": CONSOLE, "badge": "O4001"}],
        "monitoring-staffed",
        "monitoring-room",
        "cleared",
    )
    await rig.expect(
        [{"do": "operator.off", "console": CONSOLE, "badge": "O4001"}],
        "monitoring-staffed",
        "monitoring-room",
    )
    await rig.expect(
        [{"do": "operator.on", "console": CONSOLE, "badge": "O4002"}],
        "monitoring-staffed",
        "monitoring-room",
        "cleared",
    )


# -- Modbus TCP jammers, read by the daemon's jammer adapter ----------------------------------


async def test_jammers_over_modbus(rig: Rig) -> None:
    async def jam_work() -> None:
        # jammer.band_down / band_up: one band's forward power below its floor and back
        t = await rig.expect(
            [{"do": "jammer.band_down", "jammer": "jam-work", "band": "gsm900"}],
            "jammer-uptime",
            "jam-work/gsm900",
        )
        assert t["severity"] == "critical" and t["clause"] == "EXAM-2.7.8"
        await rig.expect(
            [{"do": "jammer.band_up", "jammer": "jam-work", "band": "gsm900"}],
            "jammer-uptime",
            "jam-work/gsm900",
            "cleared",
        )
        # jammer.output_off / output_on: RF output bit cleared (and every band at 0)
        await rig.expect(
            [{"do": "jammer.output_off", "jammer": "jam-work"}], "jammer-uptime", "jam-work"
        )
        await rig.expect(
            [{"do": "jammer.output_on", "jammer": "jam-work"}],
            "jammer-uptime",
            "jam-work",
            "cleared",
        )
        # jammer.fault / clear: a status bit becomes a fault in jammer.status
        await rig.expect(
            [{"do": "jammer.fault", "jammer": "jam-work", "fault": "over_temperature"}],
            "jammer-health",
            "jam-work",
        )
        await rig.expect(
            [{"do": "jammer.clear", "jammer": "jam-work", "fault": "over_temperature"}],
            "jammer-health",
            "jam-work",
            "cleared",
        )
        # device.silence: the TCP connection stays up but nothing answers; the adapter's
        # polls time out and it reports the jammer offline
        await rig.expect(
            [{"do": "device.silence", "device": "jam-work"}], "device-offline", "jam-work"
        )
        await rig.expect(
            [{"do": "device.resume", "device": "jam-work"}], "device-offline", "jam-work", "cleared"
        )

    async def jam_living() -> None:
        # jammer.disconnect: the adapter reports the device offline at once, and no status
        # for jammer_status_timeout_s (3 s here) is an uptime failure; reconnect clears both
        since = rig.mark()
        await rig.do(do="jammer.disconnect", jammer="jam-living")
        await rig.wait(since, "device-offline", "raised", "jam-living")
        await rig.wait(since, "jammer-uptime", "raised", "jam-living")
        since = rig.mark()
        await rig.do(do="jammer.reconnect", jammer="jam-living")
        await rig.wait(since, "device-offline", "cleared", "jam-living")
        await rig.wait(since, "jammer-uptime", "cleared", "jam-living")
        # jammer.garbage: answers that are no status (exceptions, short reads) are rejected,
        # so statuses stop flowing; back to normal clears
        await rig.expect(
            [{"do": "jammer.garbage", "jammer": "jam-living"}], "jammer-uptime", "jam-living"
        )
        await rig.expect(
            [{"do": "jammer.normal", "jammer": "jam-living"}],
            "jammer-uptime",
            "jam-living",
            "cleared",
        )

    async with asyncio.TaskGroup() as tg:
        tg.create_task(jam_work())
        tg.create_task(jam_living())


# -- HTTP cameras, read and analysed by the daemon's camera adapter ---------------------------


async def test_cameras_over_http(rig: Rig) -> None:
    async def tamper(camera: str, action: str, word: str) -> None:
        t = await rig.expect(
            [{"do": f"camera.{action}", "camera": camera}], "camera-integrity", camera
        )
        assert word in t["message"], t
        # sealed-area and screening cameras are critical during a seal
        assert t["severity"] == "critical", t
        await rig.expect(
            [{"do": "camera.restore", "camera": camera}], "camera-integrity", camera, "cleared"
        )

    async def disconnect(camera: str) -> None:
        t = await rig.expect(
            [{"do": "camera.disconnect", "camera": camera}], "camera-integrity", camera
        )
        assert "stream down" in t["message"], t
        assert t["severity"] == "major", t  # a belt camera: outside the sealed area
        await rig.expect(
            [{"do": "camera.reconnect", "camera": camera}], "camera-integrity", camera, "cleared"
        )
        # device.silence of a camera: it stops serving (as disconnect)
        t = await rig.expect(
            [{"do": "device.silence", "device": camera}], "camera-integrity", camera
        )
        assert "stream down" in t["message"], t
        await rig.expect(
            [{"do": "device.resume", "device": camera}], "camera-integrity", camera, "cleared"
        )

    # one tamper per camera, all at once: the debounce (5 s) runs in parallel
    async with asyncio.TaskGroup() as tg:
        tg.create_task(tamper("cam-gate", "cover", "covered"))  # MJPEG stream
        tg.create_task(tamper("cam-press", "freeze", "frozen"))  # MJPEG stream
        tg.create_task(tamper("cam-typesetting", "defocus", "defocused"))  # snapshots
        tg.create_task(tamper("cam-secure", "move", "moved"))  # snapshots
        tg.create_task(disconnect("cam-belt-north"))  # snapshots


# -- files: camera recordings, duty-phone recorder; an MQTT device going silent ---------------


async def test_recordings_duty_phone_and_silence(rig: Rig) -> None:
    async def recordings() -> None:
        # recording.prune: footage younger than the 90-day retention (cannot be cleared by
        # the simulator: deleted footage does not come back)
        t = await rig.expect(
            [{"do": "recording.prune", "camera": "cam-press", "keep_days": 30}],
            "video-retention",
            "cam-press",
        )
        assert "oldest recording" in t["message"], t
        # recording.gap: a hole longer than max_recording_gap_s inside the retention window
        t = await rig.expect(
            [{"do": "recording.gap", "camera": "cam-gate", "start": "-3h", "end": "-2h"}],
            "video-retention",
            "cam-gate",
        )
        assert "gap" in t["message"], t

    async def duty_phone() -> None:
        # call: the simulator writes the recorder's files only; the duty-phone adapter turns
        # them into call.recorded. One supervisor on a recorded call ...
        t = await rig.expect(
            [{"do": "call", "phone": "duty-phone", "supervisors": ["S2001"], "recorded": True}],
            "duty-phone",
            "duty-phone",
        )
        await rig.ack(t)
        # ... and an unrecorded call with two
        t = await rig.expect(
            [
                {
                    "do": "call",
                    "phone": "duty-phone",
                    "supervisors": ["S2001", "S2002"],
                    "recorded": False,
                }
            ],
            "duty-phone",
            "duty-phone",
        )
        await rig.ack(t)

    async def silence() -> None:
        # device.silence of an MQTT device: connected, publishing nothing; heartbeat_timeout_s
        # (15 s here) later it is offline; its next heartbeat clears
        await rig.expect(
            [{"do": "device.silence", "device": "pd-living"}],
            "device-offline",
            "pd-living",
            timeout_s=45,
        )
        await rig.expect(
            [{"do": "device.resume", "device": "pd-living"}],
            "device-offline",
            "pd-living",
            "cleared",
            timeout_s=5 * SIM_HEARTBEAT_S,
        )

    async with asyncio.TaskGroup() as tg:
        tg.create_task(recordings())
        tg.create_task(duty_phone())
        tg.create_task(silence())


# -- consoles: seals (last: it ends the site's seal) ------------------------------------------


async def test_seal_end_and_start(rig: Rig) -> None:
    # nobody on duty: monitoring-staffed is a seal-only alert ...
    await rig.expect(
        [{"do": "operator.off", "console": CONSOLE, "badge": "O4002"}],
        "monitoring-staffed",
        "monitoring-room",
    )
    # ... so seal.end of the last seal in force clears it
    await rig.expect(
        [{"do": "seal.end", "console": CONSOLE, "seal": SEAL_ID, "badge": "S2001"}],
        "monitoring-staffed",
        "monitoring-room",
        "cleared",
    )
    # seal.start of a new seal checks readiness: nobody on duty fails the pre-seal check
    # and raises monitoring-staffed again
    since = rig.mark()
    await rig.do(
        do="seal.start",
        console=CONSOLE,
        badge="S2001",
        seal="e2e-drill",
        name="End-to-end drill",
        classification="secret",
        end="+1h",
    )
    t = await rig.wait(since, "pre-seal", "raised", "e2e-drill")
    assert "on duty" in t["message"] or "operator" in t["message"], t
    await rig.wait(since, "monitoring-staffed", "raised", "monitoring-room")
    await rig.ack(t)
    await rig.expect(
        [{"do": "operator.on", "console": CONSOLE, "badge": "O4001"}],
        "monitoring-staffed",
        "monitoring-room",
        "cleared",
    )


# -- the reference scenario through `python -m simulators` ------------------------------------

REFERENCE_ALERTS = [
    ("entrance-interlock", "entrance", "raised"),
    ("entrance-interlock", "entrance", "cleared"),
    ("jammer-uptime", "jam-work/gsm900", "raised"),
    ("jammer-uptime", "jam-work/gsm900", "cleared"),
    ("camera-integrity", "cam-secure", "raised"),
    ("camera-integrity", "cam-secure", "cleared"),
    ("intrusion", "belt-north-fence", "raised"),
    ("intrusion", "belt-north-fence", "cleared"),
    # disconnected at 55 s: no status for 3 s, and the adapter reports it offline. Not its
    # clearing: after 20 s of refused connections the adapter's capped jittered backoff may
    # wait longer than the 5 s between the reconnect (75 s) and the scenario's end
    ("jammer-uptime", "jam-living", "raised"),
    ("device-offline", "jam-living", "raised"),
    ("prohibited-device", "pd-living", "raised"),
]


async def test_reference_scenario_through_the_simulators_cli(
    reference_run: asyncio.Task[ScenarioRun] | None,
) -> None:
    assert reference_run is not None
    run = await reference_run
    assert run.returncode == 0, run.output[-3000:]
    assert "scenario step at" not in run.output, run.output[-3000:]  # a step failed
    seen = set(describe(run.transitions))
    missing = [e for e in REFERENCE_ALERTS if e not in seen]
    assert not missing, (
        f"missing {missing}; saw {describe(run.transitions)}; daemon log: {run.daemon_log[-2000:]}"
    )
