"""The simulators on their real protocols: Mosquitto subscribers, pymodbus reads, HTTP MJPEG
decoded by OpenCV, files on disk. Each test runs its own SiteSimulator on free ports and its
own topic prefix on the shared broker."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import cv2
import numpy as np
import orjson
import pytest
from pymodbus.client import AsyncModbusTcpClient

from policies.site import Site, load_site
from simulators.camera import CameraOptions
from simulators.clock import rfc3339
from simulators.control import start_control
from simulators.recordings import iter_segments
from simulators.scenario import parse_scenario, play
from simulators.site_sim import SiteSimulator
from tests.support.mosquitto import Mosquitto, free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def site(site_path: Path) -> Site:
    return load_site(site_path)


class Subscriber:
    """Collects every message under sealwatch/TOPIC/#; conditions are awaited, not slept on."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._changed = asyncio.Condition()

    def events(self, device: str | None = None) -> list[dict[str, Any]]:
        return [
            orjson.loads(p)
            for t, p, _r in self.messages
            if "/events/" in t and (device is None or t.endswith(f"/events/{device}"))
        ]

    def status(self, device: str) -> list[str]:
        return [p.decode() for t, p, _r in self.messages if t.endswith(f"/status/{device}")]

    async def wait(self, cond: Callable[[], Any], within_s: float = 10.0) -> Any:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(cond), within_s)
        return cond()

    async def run(self, client: aiomqtt.Client) -> None:
        async for msg in client.messages:
            async with self._changed:
                self.messages.append((str(msg.topic), bytes(msg.payload), msg.retain))
                self._changed.notify_all()


@asynccontextmanager
async def subscribed(broker: Mosquitto, prefix: str) -> AsyncIterator[Subscriber]:
    sub = Subscriber()
    async with aiomqtt.Client(
        "127.0.0.1", broker.port, identifier=f"test-{uuid.uuid4().hex[:8]}"
    ) as client:
        await client.subscribe(f"sealwatch/{prefix}/#", qos=1)
        task = asyncio.create_task(sub.run(client))
        try:
            yield sub
        finally:
            task.cancel()


def port_map(site: Site) -> dict[int, int]:
    ports = {j.modbus.port for j in site.jammers.values() if j.modbus}
    ports |= {18081}
    return {p: free_port() for p in ports}


@asynccontextmanager
async def simulated(
    site: Site, broker: Mosquitto, tmp_path: Path, **kw: Any
) -> AsyncIterator[tuple[SiteSimulator, Subscriber]]:
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    async with subscribed(broker, prefix) as sub:
        sim = SiteSimulator(
            site,
            "127.0.0.1",
            broker.port,
            tmp_path,
            port_map=port_map(site),
            topic_site=prefix,
            camera_options=kw.pop("camera_options", CameraOptions(day_night="day")),
            **kw,
        )
        async with sim:
            yield sim, sub


# -- MQTT gateways ---------------------------------------------------------------------------


async def test_every_mqtt_device_says_online_and_the_panel_reports(
    site: Site, mosquitto_session: Mosquitto, tmp_path: Path
) -> None:
    async with simulated(site, mosquitto_session, tmp_path) as (sim, sub):
        mqtt_devices = [d for d, k in site.device_kind.items() if k not in ("jammer", "camera")]
        await sub.wait(lambda: all(sub.status(d) == ["online"] for d in mqtt_devices))
        async with subscribed(
            mosquitto_session, sim.gateways.devices["gate-inner"].topic_prefix.split("/")[1]
        ) as late:
            # A subscriber arriving later gets every status from the broker's retained store.
            await late.wait(lambda: all(late.status(d) == ["online"] for d in mqtt_devices))
            assert all(r for t, _p, r in late.messages if "/status/" in t)
        panel = await sub.wait(lambda: sub.events("panel-main"))
        assert panel[0] | {"ts": None} == {
            "ts": None,
            "device": "panel-main",
            "type": "alarm.panel",
            "armed": True,
            "mains": "ok",
            "battery": "ok",
            "tamper": False,
        }
        beats = await sub.wait(lambda: sub.events("pd-work"))
        assert beats[0]["type"] == "device.heartbeat"


async def test_door_and_badge_actions_publish_events(
    site: Site, mosquitto_session: Mosquitto, tmp_path: Path
) -> None:
    async with simulated(site, mosquitto_session, tmp_path) as (sim, sub):
        ts = datetime(2027, 5, 25, 6, 0, 0, 123000, tzinfo=UTC)
        await sim.perform(
            {"do": "badge", "door": "gate-inner", "badge": "B1001", "direction": "in"}, ts
        )
        await sim.perform(
            {"do": "badge", "door": "gate-inner", "badge": "G3001", "direction": "in"}, ts
        )
        await sim.perform(
            {"do": "badge", "door": "gate-inner", "badge": "X0000", "direction": "out"}, ts
        )
        await sim.perform({"do": "door.open", "door": "gate-inner"}, ts)
        await sim.perform({"do": "door.force", "door": "fire-exit-north"}, ts)
        events = await sub.wait(
            lambda: len(sub.events("gate-inner")) == 4 and sub.events("fire-exit-north")
        )
        got = sub.events("gate-inner")
        assert [e["type"] for e in got] == [
            "badge.granted",
            "badge.denied",
            "badge.denied",
            "door.opened",
        ]
        assert got[0] == {
            "ts": "2027-05-25T06:00:00.123+00:00",
            "device": "gate-inner",
            "type": "badge.granted",
            "badge": "B1001",
            "direction": "in",
        }
        assert "zone 'work'" in got[1]["reason"]
        assert got[2]["reason"] == "unknown badge"
        assert events  # the forced door
        assert sub.events("fire-exit-north")[0]["type"] == "door.forced"


async def test_console_panel_and_detector_actions(
    site: Site, mosquitto_session: Mosquitto, tmp_path: Path
) -> None:
    async with simulated(site, mosquitto_session, tmp_path) as (sim, sub):
        ts = datetime(2027, 5, 25, 6, 0, tzinfo=UTC)
        steps: list[dict[str, Any]] = [
            {
                "do": "seal.start",
                "console": "console-1",
                "seal": "drill-1",
                "name": "Drill",
                "classification": "secret",
                "end": "2h",
            },
            {"do": "operator.on", "console": "console-1", "badge": "O4001"},
            {"do": "approval", "console": "console-1", "badge": "B1001", "valid_s": 300},
            {"do": "inspection", "console": "console-1", "zone": "secure-room", "badge": "S2002"},
            {"do": "review", "console": "console-1", "camera": "cam-gate", "badge": "S2001"},
            {"do": "seal.end", "console": "console-1", "seal": "drill-1"},
            {"do": "panel.disarm", "panel": "panel-main"},
            {"do": "panel.mains_lost", "panel": "panel-main"},
            {"do": "alarm.trigger", "input": "belt-north-fence"},
            {"do": "alarm.tamper", "input": "secure-safe"},
            {"do": "phone.detect", "detector": "pd-living", "band": "lte2100"},
            {"do": "patrol.visit", "checkpoint": "cp-north", "badge": "G3001"},
        ]
        for step in steps:
            await sim.perform(step, ts)
        await sub.wait(lambda: sub.events("cp-north"))
        console = sub.events("console-1")
        assert [e["type"] for e in console] == [
            "seal.start",
            "operator.duty",
            "approval.granted",
            "inspection.done",
            "review.done",
            "seal.end",
        ]
        assert console[0]["end"] == rfc3339(ts + timedelta(hours=2))
        assert console[0]["classification"] == "secret"
        assert console[1]["state"] == "on"
        assert console[2]["valid_s"] == 300
        panel = [e for e in sub.events("panel-main") if e["ts"] == rfc3339(ts)]
        assert panel[-1]["armed"] is False and panel[-1]["mains"] == "lost"
        assert sub.events("belt-north-fence")[0]["state"] == "alarm"
        assert sub.events("secure-safe")[0]["state"] == "tamper"
        assert sub.events("pd-living")[-1]["band"] == "lte2100"
        assert sub.events("cp-north")[0]["badge"] == "G3001"


async def test_silenced_device_publishes_nothing_until_resumed(
    site: Site, mosquitto_session: Mosquitto, tmp_path: Path
) -> None:
    async with simulated(site, mosquitto_session, tmp_path) as (sim, sub):
        await sim.perform({"do": "device.silence", "device": "gate-outer"})
        result = await sim.perform({"do": "door.open", "door": "gate-outer"})
        assert result["event"] is None
        await sim.perform({"do": "device.resume", "device": "gate-outer"})
        await sim.perform({"do": "door.close", "door": "gate-outer"})
        await sub.wait(lambda: sub.events("gate-outer"))
        assert [e["type"] for e in sub.events("gate-outer")] == ["door.closed"]


async def test_scenario_steps_share_their_timestamp_and_keep_order(
    site: Site, mosquitto_session: Mosquitto, tmp_path: Path
) -> None:
    scenario = parse_scenario(
        """
steps:
  - {at: 0s, do: door.open, door: gate-outer}
  - {at: 0s, do: door.open, door: gate-inner}
  - {at: 1s, do: door.close, door: gate-outer}
""",
        site,
    )
    async with simulated(site, mosquitto_session, tmp_path) as (sim, sub):
        start = datetime.now(UTC)
        assert await play(sim, scenario, start=start) == 0
        await sub.wait(lambda: len(sub.events("gate-outer")) == 2)
        doors = [
            (t.rsplit("/", 1)[1], orjson.loads(p))
            for t, p, _r in sub.messages
            if "/events/gate-" in t
        ]
        assert [(d, e["type"]) for d, e in doors] == [
            ("gate-outer", "door.opened"),
            ("gate-inner", "door.opened"),
            ("gate-outer", "door.closed"),
        ]
        assert doors[0][1]["ts"] == doors[1][1]["ts"] == rfc3339(start)
        assert doors[2][1]["ts"] == rfc3339(start + timedelta(seconds=1))


async def test_duty_phone_call_writes_records_and_publishes(
    site: Site, mosquitto_session: Mosquitto, tmp_path: Path
) -> None:
    async with simulated(site, mosquitto_session, tmp_path) as (sim, sub):
        ts = datetime(2027, 5, 25, 6, 0, tzinfo=UTC)
        await sim.perform(
            {
                "do": "call",
                "phone": "duty-phone",
                "supervisors": ["S2001", "S2002"],
                "recorded": True,
            },
            ts,
        )
        await sim.perform(
            {"do": "call", "phone": "duty-phone", "supervisors": ["S2001"], "recorded": False}, ts
        )
        calls = await sub.wait(lambda: len(sub.events("duty-phone")) == 2)
        assert calls
        first, second = sub.events("duty-phone")
        assert first["type"] == "call.recorded"
        folder = tmp_path / "var" / "calls"
        record = orjson.loads((folder / f"{first['recording'][:-4]}.json").read_bytes())
        assert record == {
            "call": first["recording"][:-4],
            "start": first["start"],
            "end": rfc3339(ts),
            "recording": first["recording"],
            "supervisors": ["S2001", "S2002"],
        }
        assert (folder / first["recording"]).read_bytes()[:4] == b"RIFF"
        assert second["recording"] is None
        assert len(list(folder.glob("*.json"))) == 2
        assert len(list(folder.glob("*.wav"))) == 1


async def test_last_will_marks_devices_offline_when_the_simulator_dies(
    site_path: Path, mosquitto_session: Mosquitto, tmp_path: Path
) -> None:
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    async with subscribed(mosquitto_session, prefix) as sub:
        proc = _start_cli(site_path, mosquitto_session, tmp_path, prefix)
        try:
            await sub.wait(
                lambda: (
                    sub.status("gate-inner") == ["online"]
                    and sub.status("panel-main") == ["online"]
                ),
                within_s=30,
            )
            proc.kill()  # no clean goodbye: only the broker's last will can say offline
            await sub.wait(
                lambda: (
                    sub.status("gate-inner")[-1:] == ["offline"]
                    and sub.status("panel-main")[-1:] == ["offline"]
                ),
                within_s=30,
            )
        finally:
            proc.kill()
            proc.wait()


async def test_sigterm_shuts_down_cleanly_and_says_offline(
    site_path: Path, mosquitto_session: Mosquitto, tmp_path: Path
) -> None:
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    async with subscribed(mosquitto_session, prefix) as sub:
        proc = _start_cli(site_path, mosquitto_session, tmp_path, prefix)
        try:
            await sub.wait(lambda: sub.status("console-1") == ["online"], within_s=30)
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.wait, 30) == 0
            await sub.wait(lambda: sub.status("console-1")[-1:] == ["offline"])
        finally:
            proc.kill()
            proc.wait()


def _start_cli(
    site_path: Path, broker: Mosquitto, tmp_path: Path, prefix: str
) -> subprocess.Popen[bytes]:
    ports = [f"--port-map={p}={free_port()}" for p in (15020, 15021, 18081)]
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulators",
            "--config",
            str(site_path),
            "--mqtt",
            f"127.0.0.1:{broker.port}",
            "--topic-site",
            prefix,
            "--data-dir",
            str(tmp_path),
            *ports,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "sim.log").open("wb"),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_cli_refuses_a_bad_scenario_before_starting(site_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps:\n  - {at: 1s, do: door.slam, door: gate-inner}\n")
    r = subprocess.run(
        [sys.executable, "-m", "simulators", "--config", str(site_path), "--scenario", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1
    assert "steps[0]: unknown action 'door.slam'" in r.stderr
    assert "Traceback" not in r.stderr


# -- jammers -------------------------------------------------------------------------------------


async def _read(client: AsyncModbusTcpClient, unit: int, address: int, count: int) -> list[int]:
    r = await client.read_input_registers(address, count=count, device_id=unit)
    assert not r.isError(), r
    return list(r.registers)


@asynccontextmanager
async def modbus(
    sim: SiteSimulator, jammer: str
) -> AsyncIterator[tuple[AsyncModbusTcpClient, int]]:
    """A connected Modbus client to the simulated jammer, and its unit id."""
    host, port, unit = sim.jammer_address(jammer)
    client = AsyncModbusTcpClient(host, port=port, timeout=1, retries=0)
    assert await client.connect()
    try:
        yield client, unit
    finally:
        client.close()


async def test_jammer_serves_the_reference_map_and_actions_change_it(
    site: Site, mosquitto_session: Mosquitto, tmp_path: Path
) -> None:
    async with simulated(site, mosquitto_session, tmp_path) as (sim, _sub):
        async with modbus(sim, "jam-work") as (client, unit):
            regs = await _read(client, unit, 0, 35)
            assert regs[0] == 1 and regs[1] == 5 and regs[2] & 1
            assert 30.0 < regs[11] / 10 < 36.0  # gsm900 above its 30 dBm floor
            await sim.perform({"do": "jammer.band_down", "jammer": "jam-work", "band": "gsm900"})
            assert (await _read(client, unit, 11, 1)) == [95]
            await sim.perform({"do": "jammer.band_up", "jammer": "jam-work", "band": "gsm900"})
            assert (await _read(client, unit, 11, 1))[0] > 300
            await sim.perform({"do": "jammer.output_off", "jammer": "jam-work"})
            regs = await _read(client, unit, 0, 15)
            assert regs[2] & 1 == 0 and regs[10:15] == [0] * 5
            await sim.perform({"do": "jammer.fault", "jammer": "jam-work", "fault": "fan"})
            assert (await _read(client, unit, 2, 1))[0] & 0b1000
            hi, lo = await _read(client, unit, 4, 2)
            uptime1 = hi << 16 | lo
            # uptime counts wall seconds: poll until one has passed
            deadline = time.monotonic() + 5
            while True:
                hi, lo = await _read(client, unit, 4, 2)
                if hi << 16 | lo > uptime1:
                    break
                assert time.monotonic() < deadline, "jammer uptime does not count"
                await asyncio.sleep(0.1)


async def test_jammer_garbage_mode_answers_exceptions_and_short_replies(
    site: Site, mosquitto_session: Mosquitto, tmp_path: Path
) -> None:
    async with simulated(site, mosquitto_session, tmp_path) as (sim, _sub):
        async with modbus(sim, "jam-work") as (client, unit):
            await sim.perform({"do": "jammer.garbage", "jammer": "jam-work"})
            replies = [
                await client.read_input_registers(10, count=5, device_id=unit) for _ in range(2)
            ]
            assert sum(r.isError() for r in replies) == 1
            short = next(r for r in replies if not r.isError())
            assert len(short.registers) == 4
            await sim.perform({"do": "jammer.normal", "jammer": "jam-work"})
            assert len(await _read(client, unit, 10, 5)) == 5


async def test_jammer_disconnect_refuses_connections_until_reconnect(
    site: Site, mosquitto_session: Mosquitto, tmp_path: Path
) -> None:
    async with simulated(site, mosquitto_session, tmp_path) as (sim, _sub):
        host, port, _unit = sim.jammer_address("jam-living")
        await sim.perform({"do": "jammer.disconnect", "jammer": "jam-living"})
        with pytest.raises(OSError):
            _r, w = await asyncio.open_connection(host, port)
            w.close()
        await sim.perform({"do": "jammer.reconnect", "jammer": "jam-living"})
        async with modbus(sim, "jam-living") as (client, unit):
            assert (await _read(client, unit, 0, 2)) == [1, 5]
            await sim.perform({"do": "device.silence", "device": "jam-living"})
            r = None
            with pytest.raises(Exception, match="No response"):
                r = await client.read_input_registers(0, count=2, device_id=unit)
            assert r is None


# -- cameras -------------------------------------------------------------------------------------


async def _snapshot(session: aiohttp.ClientSession, url: str) -> np.ndarray:
    async with session.get(url.replace(".mjpg", ".jpg")) as r:
        assert r.status == 200, r.status
        img = cv2.imdecode(np.frombuffer(await r.read(), np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


async def _stream_frames(session: aiohttp.ClientSession, url: str, n: int) -> list[np.ndarray]:
    frames: list[np.ndarray] = []
    async with session.get(url) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "multipart/x-mixed-replace; boundary=frame"
        buf = b""
        async for chunk in r.content.iter_any():
            buf += chunk
            while (a := buf.find(b"\xff\xd8")) >= 0 and (b := buf.find(b"\xff\xd9", a)) >= 0:
                frame = cv2.imdecode(np.frombuffer(buf[a : b + 2], np.uint8), cv2.IMREAD_COLOR)
                assert frame is not None, "the stream sent a JPEG that does not decode"
                frames.append(frame)
                buf = buf[b + 2 :]
            if len(frames) >= n:
                break
    return frames[:n]


def _sharpness(img: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


async def test_camera_serves_snapshots_and_mjpeg_that_opencv_decodes(
    site: Site, mosquitto_session: Mosquitto, tmp_path: Path
) -> None:
    async with (
        simulated(site, mosquitto_session, tmp_path) as (sim, _sub),
        aiohttp.ClientSession() as session,
    ):
        url = sim.camera_url("cam-gate")
        snap = await _snapshot(session, url)
        assert snap.shape == (720, 1280, 3)
        base = url.rsplit("/", 1)[0]
        alt = await _snapshot(session, f"{base}/cam-gate/snapshot.jpg")
        assert alt.shape == snap.shape
        frames = await _stream_frames(session, url, 3)
        assert frames[0].shape == (360, 640, 3)
        assert not np.array_equal(frames[0], frames[2])  # people move, noise changes
        other = await _snapshot(session, sim.camera_url("cam-press"))
        assert np.mean(cv2.absdiff(snap, other)) > 10  # each camera its own room


async def test_camera_tamper_effects_show_in_the_pictures(
    site: Site, mosquitto_session: Mosquitto, tmp_path: Path
) -> None:
    async with (
        simulated(site, mosquitto_session, tmp_path) as (sim, _sub),
        aiohttp.ClientSession() as session,
    ):
        url = sim.camera_url("cam-secure")
        normal = await _snapshot(session, url)

        await sim.perform({"do": "camera.cover", "camera": "cam-secure"})
        covered = await _snapshot(session, url)
        assert covered.mean() < 25 and covered.std() < 5
        await sim.perform({"do": "camera.cover", "camera": "cam-secure", "partial": True})
        part = await _snapshot(session, url)
        assert 0.6 < np.mean(cv2.cvtColor(part, cv2.COLOR_BGR2GRAY) < 25) < 0.85

        await sim.perform({"do": "camera.defocus", "camera": "cam-secure"})
        blurred = (await _stream_frames(session, url, 1))[0]
        sharp = cv2.resize(normal, (640, 360), interpolation=cv2.INTER_AREA)
        assert _sharpness(blurred) < _sharpness(sharp) / 20

        await sim.perform({"do": "camera.move", "camera": "cam-secure"})
        moved = await _snapshot(session, url)
        assert np.mean(cv2.absdiff(moved, normal)) > 20

        await sim.perform({"do": "camera.freeze", "camera": "cam-secure"})
        # the first frame of a new stream may have been encoded before the freeze took effect
        frozen = (await _stream_frames(session, url, 4))[1:]
        assert all(np.array_equal(f, frozen[0]) for f in frozen)

        await sim.perform({"do": "camera.restore", "camera": "cam-secure"})
        restored = await _snapshot(session, url)
        assert np.mean(cv2.absdiff(restored, normal)) < 15


async def test_camera_disconnect_answers_503_and_ends_streams(
    site: Site, mosquitto_session: Mosquitto, tmp_path: Path
) -> None:
    async with (
        simulated(site, mosquitto_session, tmp_path) as (sim, _sub),
        aiohttp.ClientSession() as session,
    ):
        url = sim.camera_url("cam-belt-north")
        async with session.get(url) as stream:
            await stream.content.readuntil(b"\xff\xd9")
            await sim.perform({"do": "camera.disconnect", "camera": "cam-belt-north"})
            with pytest.raises(aiohttp.ClientPayloadError):
                while await stream.content.read(65536):
                    pass
        async with session.get(url) as r:
            assert r.status == 503
        async with session.get(url.replace(".mjpg", ".jpg")) as r:
            assert r.status == 503
        await sim.perform({"do": "camera.reconnect", "camera": "cam-belt-north"})
        assert (await _snapshot(session, url)).shape == (720, 1280, 3)


# -- recordings ----------------------------------------------------------------------------------


async def test_recordings_backfill_live_segments_prune_and_gap(
    site: Site, mosquitto_session: Mosquitto, tmp_path: Path
) -> None:
    async with simulated(
        site, mosquitto_session, tmp_path, segment_s=2, backfill_days=3, backfill_segment_s=3600
    ) as (sim, sub):
        root = tmp_path / "var" / "nvr" / "cam-gate"
        backfilled = list(iter_segments(root))
        assert 72 <= len(backfilled) <= 75  # 72 h, a partial hour, maybe a live one
        deadline = time.monotonic() + 15
        while sim.recordings.written["cam-gate"] < 1:  # a live segment (2 s) gets written
            assert time.monotonic() < deadline, "no live segment written"
            await asyncio.sleep(0.2)
        segs = list(iter_segments(root))
        for (_f1, s1, d1), (_f2, s2, _d2) in itertools.pairwise(segs):
            assert s1 + timedelta(seconds=d1) == s2  # contiguous: no gap, no overlap

        now = datetime.now(UTC)
        r = await sim.perform({"do": "recording.prune", "camera": "cam-gate", "keep_days": 1})
        assert r["removed"] >= 47
        assert min(s for _f, s, _d in iter_segments(root)) >= now - timedelta(days=1, seconds=5)

        r = await sim.perform(
            {"do": "recording.gap", "camera": "cam-gate", "start": "-10h", "end": "-8h"}
        )
        assert r["removed"] >= 2
        left = [s for _f, s, _d in iter_segments(root)]
        assert not any(now - timedelta(hours=10) < s < now - timedelta(hours=8) for s in left)

        await sim.perform({"do": "camera.disconnect", "camera": "cam-gate"})
        written = sim.recordings.written["cam-gate"]
        await sim.perform({"do": "camera.reconnect", "camera": "cam-gate"})
        assert written >= 1
        del sub


# -- control port --------------------------------------------------------------------------------


async def test_control_port_performs_and_refuses_bad_steps(
    site: Site, mosquitto_session: Mosquitto, tmp_path: Path
) -> None:
    async with simulated(site, mosquitto_session, tmp_path) as (sim, sub):
        port = free_port()
        runner = await start_control(sim, "127.0.0.1", port)
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as s:
                async with s.post(
                    f"{base}/actions", json={"do": "door.open", "door": "gate-inner"}
                ) as r:
                    body = await r.json()
                    assert r.status == 200 and body["ok"] is True
                # Performed means acknowledged by the broker: the subscriber gets it.
                await sub.wait(lambda: sub.events("gate-inner"))
                assert sub.events("gate-inner")[0]["ts"] == body["ts"]

                async with s.post(
                    f"{base}/actions",
                    json=[
                        {"do": "door.close", "door": "gate-inner"},
                        {"do": "jammer.band_down", "jammer": "jam-work", "band": "gsm900"},
                    ],
                ) as r:
                    assert r.status == 200
                    assert len((await r.json())["results"]) == 2

                for bad, reason in (
                    ({"do": "door.smash", "door": "gate-inner"}, "unknown action"),
                    ({"do": "door.open"}, "needs 'door'"),
                    ({"do": "door.open", "door": "nowhere"}, "unknown door 'nowhere'"),
                    (
                        [{"do": "door.open", "door": "gate-outer"}, {"do": "x"}],
                        "actions[1]: unknown action",
                    ),
                    ({"at": "5s", "do": "door.open", "door": "gate-inner"}, "drop 'at'"),
                    ("just text", "expected a mapping"),
                ):
                    async with s.post(f"{base}/actions", json=bad) as r:
                        assert r.status == 400, bad
                        assert reason in (await r.json())["error"]
                async with s.post(f"{base}/actions", data=b"{not json") as r:
                    assert r.status == 400
                # Nothing of a refused list was performed.
                assert not sub.events("gate-outer")

                async with s.get(f"{base}/health") as r:
                    assert (await r.json())["performed"] == 3
                async with s.get(f"{base}/devices") as r:
                    devices = await r.json()
                assert devices["jam-work"]["bands_down"] == {"gsm900": 9.5}
                assert devices["gate-inner"]["open"] is False
                assert devices["cam-gate"]["stream"] == "up"
                assert set(devices) == set(site.device_kind)
        finally:
            await runner.cleanup()
