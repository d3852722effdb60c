"""A whole simulated site against the whole daemon over real protocols, for end-to-end tests.

`e2e_site` writes a copy of the reference site under a new id, with free ports for the Modbus
jammers and the camera HTTP server (so the simulators and the daemon's adapters read the same
file), a seal in progress around now and short tunables. `e2e_rig` runs, in this process, an
alert watcher on the MQTT alerts topic, the SiteSimulator (Modbus servers, MJPEG/snapshot
server, MQTT gateways, recording folders) and the daemon with every device adapter on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from daemon.runtime import Daemon
from policies.site import Site, load_site
from simulators.camera import CameraOptions
from simulators.site_sim import SiteSimulator
from tests.support.daemon import (
    EXAMPLE_SITE,
    ROOT,
    AlertWatcher,
    DaemonProcess,
    running_daemon,
    wait_until,
)
from tests.support.mosquitto import Mosquitto, free_port

SEAL_ID = "e2e-seal"
CAMERA_PORT = 18081  # the reference site's camera HTTP port
# Short enough that timers go off within a test; the heartbeat timeout stays above the camera
# adapter's 10 s status heartbeat (a camera reports only on change and every 10 s).
E2E_POLICIES: dict[str, Any] = {
    "door_held_open_s": 2,
    "heartbeat_timeout_s": 15,
    "jammer_status_timeout_s": 3,
    "patrol_interval_min": 0.1,
    "ack_escalation_s": 3600,
}
E2E_DEVICES: dict[str, Any] = {
    "jammers": True,
    "cameras": True,
    "camera_interval_s": 0.5,
    "recordings": True,
    "recordings_interval_s": 0.5,
    "duty_phone": True,
}
# Both ways of watching a camera are covered: MJPEG stream for some, JPEG snapshots for others.
STREAM_CAMERAS = ("cam-gate", "cam-press")
SIM_HEARTBEAT_S = 2.0  # panels and phone detectors report this often
BACKFILL_DAYS = 92  # footage older than video_retention_days (90): compliant from the start
BACKFILL_SEGMENT_S = 3600  # few files, still contiguous (no gap)


def e2e_site(
    directory: Path,
    site_id: str,
    *,
    policies: Mapping[str, Any] | None = None,
    devices: Mapping[str, Any] | None = None,
) -> Path:
    """The reference site as `site_id`, on free ports, with seal `e2e-seal` in progress."""
    raw = yaml.safe_load(EXAMPLE_SITE.read_text(encoding="utf-8"))
    raw["site"]["id"] = site_id
    for jam in raw["jammers"]:
        jam["modbus"]["port"] = free_port()
    cam_port = free_port()
    for cam in raw["cameras"]:
        cam["url"] = cam["url"].replace(f":{CAMERA_PORT}/", f":{cam_port}/")
        if cam["id"] in STREAM_CAMERAS:
            cam["mode"] = "stream"
    now = datetime.now(UTC).replace(microsecond=0)
    raw["seals"] = [
        {
            "id": SEAL_ID,
            "name": "End-to-end test seal",
            "classification": "top_secret",
            "start": (now - timedelta(hours=1)).isoformat(),
            "end": (now + timedelta(hours=12)).isoformat(),
        }
    ]
    raw["policies"] = {**raw.get("policies", {}), **E2E_POLICIES, **(policies or {})}
    raw["daemon"] = {
        "snapshot_interval_s": 5.0,
        "ingest_hold_max_s": 3.0,
        "devices": {**E2E_DEVICES, **(devices or {})},
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{site_id}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def describe(transitions: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(t["policy"], t["subject"], t["state"]) for t in transitions]


@dataclass
class Rig:
    """The daemon, the simulated site and what the daemon published on its alerts topic."""

    site: Site
    daemon: Daemon
    sim: SiteSimulator
    alerts: AlertWatcher

    def mark(self) -> int:
        """A position in the alert transitions: later waits look only after it."""
        return len(self.alerts.transitions)

    def active(self, policy: str, subject: str) -> bool:
        """Whether the daemon has the alert (policy, subject) active (an earlier one of the
        same subject may still wait, cleared, for an acknowledgement)."""
        assert self.daemon.pipeline is not None
        return any(
            v.policy == policy and v.subject == subject and v.active and not v.closed
            for v in self.daemon.pipeline.stage.views.values()
        )

    def rejections(self, limit: int = 5) -> list[tuple[str, str]]:
        """What the daemon refused lately (origin, reason), for failure messages."""
        assert self.daemon.store is not None
        return [(r["origin"], r["reason"]) for r in self.daemon.store.rejections(limit)]

    async def do(self, **step: Any) -> dict[str, Any]:
        """One simulator action (CONTRACT §7), done once the device has done it."""
        return await self.sim.perform(step)

    async def wait(
        self, since: int, policy: str, state: str, subject: str, timeout_s: float = 30.0
    ) -> dict[str, Any]:
        """The first transition after `since` on the MQTT alerts topic matching the rest."""
        deadline = time.monotonic() + timeout_s
        while True:
            for t in self.alerts.transitions[since:]:
                if (t["policy"], t["subject"], t["state"]) == (policy, subject, state):
                    return t
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no {policy} {subject} {state} on the alerts topic within {timeout_s:g} s; "
                    f"since then: {describe(self.alerts.transitions[since:])}; "
                    f"latest rejections: {self.rejections()}"
                )
            await asyncio.sleep(0.02)

    async def expect(
        self,
        steps: list[dict[str, Any]],
        policy: str,
        subject: str,
        state: str = "raised",
        timeout_s: float = 30.0,
    ) -> dict[str, Any]:
        """Perform `steps` and await the alert transition they must cause.

        Before a `raised` is expected the alert must not be active (else the violation would
        only be folded into it), which is awaited: a previous step's clearing may be in flight.
        """
        if state == "raised":
            await wait_until(
                lambda: not self.active(policy, subject),
                timeout_s,
                f"{policy} {subject} to be inactive before the action",
            )
        since = self.mark()
        for step in steps:
            await self.do(**step)
        return await self.wait(since, policy, state, subject, timeout_s)

    async def ack(
        self, transition: Mapping[str, Any], badge: str = "S2001", timeout_s: float = 15.0
    ) -> dict[str, Any]:
        """Acknowledge an alert from the console (an `alert.ack` action); await its clearing
        (a latched alert clears only so)."""
        return await self.expect(
            [
                {
                    "do": "alert.ack",
                    "console": "console-1",
                    "alert_id": transition["alert_id"],
                    "badge": badge,
                    "comment": "end-to-end test",
                }
            ],
            transition["policy"],
            transition["subject"],
            "cleared",
            timeout_s,
        )

    async def settled(self, timeout_s: float = 60.0) -> None:
        """Every adapter has reached its devices: jammers online, cameras up with a learned
        view, every camera's footage in retention, the engine past its broker backlog."""
        devices = self.daemon.devices
        assert devices is not None and devices.jammers is not None
        assert devices.cameras is not None and devices.recordings is not None
        jammers, cameras = devices.jammers, devices.cameras

        def ready() -> bool:
            return (
                all(p.state == "online" for p in jammers.pollers.values())
                and all(
                    m.stream == "up" and m.tamper is None and m.frames >= 4
                    for m in cameras.monitors.values()
                )
                and not any(self.active("video-retention", c) for c in self.site.cameras)
                and not any(self.active("camera-integrity", c) for c in self.site.cameras)
                and not any(self.active("jammer-uptime", j) for j in self.site.jammers)
            )

        await wait_until(ready, timeout_s, "jammers online, cameras up and learned")


@contextlib.asynccontextmanager
async def e2e_rig(directory: Path, broker: Mosquitto, site_id: str) -> AsyncIterator[Rig]:
    """Watcher, simulators and daemon of one site; the daemon's data dir is the simulators',
    so recording folders line up. Call events are off: the duty-phone adapter reads the
    recorder's folder and is the only source of `call.recorded`."""
    path = e2e_site(directory, site_id)
    site = load_site(path)
    data = directory / "data"
    data.mkdir(parents=True, exist_ok=True)
    async with (
        AlertWatcher(broker, site_id) as alerts,
        SiteSimulator(
            site,
            "127.0.0.1",
            broker.port,
            data,
            camera_options=CameraOptions(day_night="day"),
            heartbeat_s=SIM_HEARTBEAT_S,
            backfill_days=BACKFILL_DAYS,
            backfill_segment_s=BACKFILL_SEGMENT_S,
            call_events=False,
        ) as sim,
        running_daemon(path, broker, data) as daemon,
    ):
        rig = Rig(site, daemon, sim, alerts)
        await rig.settled()
        yield rig


@dataclass
class ScenarioRun:
    """What a scenario played through `python -m simulators` left behind."""

    returncode: int | None
    output: str  # the simulators' log
    transitions: list[dict[str, Any]]  # seen on the alerts topic
    daemon_log: str


async def play_scenario(
    directory: Path,
    broker: Mosquitto,
    site_id: str,
    scenario: Path,
    expected: list[tuple[str, str, str]],
    timeout_s: float = 180.0,
) -> ScenarioRun:
    """Run the daemon (`sealwatch run`) and `python -m simulators --scenario ...
    --exit-after-scenario` as processes of their own, so they can play beside other tests on
    the other core; return once the simulators exit and `expected` (policy, subject, state)
    transitions were seen, or 20 s after that."""
    path = e2e_site(directory, site_id)
    data = directory / "data"
    data.mkdir(parents=True, exist_ok=True)
    async with AlertWatcher(broker, site_id) as alerts:
        daemon = DaemonProcess(path, broker, data).start()
        try:
            await daemon.ready()
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "simulators",
                "--config",
                str(path),
                "--mqtt",
                f"127.0.0.1:{broker.port}",
                "--scenario",
                str(scenario),
                "--exit-after-scenario",
                "--data-dir",
                str(data),
                "--day-night",
                "day",
                "--heartbeat-s",
                str(SIM_HEARTBEAT_S),
                "--backfill-days",
                str(BACKFILL_DAYS),
                "--backfill-segment-s",
                str(BACKFILL_SEGMENT_S),
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            try:
                out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
            finally:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
                    await asyncio.wait_for(proc.wait(), 20)

            def seen_all() -> bool:
                got = set(describe(alerts.transitions))
                return all(e in got for e in expected)

            with contextlib.suppress(AssertionError):
                await wait_until(seen_all, 20, "the expected alerts")
        finally:
            await asyncio.to_thread(daemon.terminate)
        return ScenarioRun(
            proc.returncode,
            out.decode(errors="replace"),
            list(alerts.transitions),
            daemon.log.read_text(errors="replace"),
        )
