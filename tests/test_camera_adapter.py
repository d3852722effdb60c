"""The camera adapter against a real HTTP MJPEG/snapshot server, frames decoded by OpenCV."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from adapters.camera import CameraHub, CameraMonitor, MjpegParser
from adapters.camera_tamper import TamperConfig
from policies.site import Camera
from tests.support.mjpeg_server import MjpegServer
from tests.support.scenes import Scene

# Short debounce so the test does not wait for the production 5 s; the logic is the same.
FAST = TamperConfig(confirm_s=0.5, confirm_samples=3, clear_s=0.2, clear_samples=2)
Event = dict[str, Any]


class CollectingSink:
    """An EventSink that keeps everything and lets a test await an event."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.rejects: list[tuple[str, str, str]] = []
        self._cond = asyncio.Condition()
        self._seen = 0  # events before this index were already waited past

    async def submit(self, event: Event, *, source: str) -> None:
        async with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    async def reject(self, source: str, payload: str, reason: str) -> None:
        async with self._cond:
            self.rejects.append((source, payload, reason))
            self._cond.notify_all()

    async def next(self, pred: Callable[[Event], bool], within_s: float = 20.0) -> Event:
        """The next event (after the last one returned) that matches `pred`."""

        async def scan() -> Event:
            async with self._cond:
                while True:
                    for i in range(self._seen, len(self.events)):
                        if pred(self.events[i]):
                            self._seen = i + 1
                            return self.events[i]
                    self._seen = len(self.events)
                    await self._cond.wait()

        return await asyncio.wait_for(scan(), within_s)


def status_ok(event: Event) -> None:
    """Every status is a well-formed camera.status event."""
    assert event["type"] == "camera.status"
    assert event["stream"] in ("up", "down")
    assert event["tamper"] in (None, "covered", "defocused", "moved", "frozen")
    assert isinstance(event["fps"], float | int)
    assert event["ts"].endswith("+00:00")


@pytest.fixture
async def server() -> AsyncIterator[MjpegServer]:
    srv = MjpegServer(fps=15)
    await srv.start()
    yield srv
    await srv.stop()


def monitor(cam: Camera, sink: CollectingSink, **kw: Any) -> CameraMonitor:
    opts: dict[str, Any] = {
        "interval_s": 0.1,
        "stall_s": 1.0,
        "heartbeat_s": 60.0,
        "backoff_cap_s": 0.3,
        "tamper": FAST,
    }
    opts.update(kw)
    return CameraMonitor(cam, sink, **opts)


@pytest.mark.slow
async def test_stream_reports_up_covered_down_on_garbage_and_disconnect(
    server: MjpegServer,
) -> None:
    sink = CollectingSink()
    cam = Camera("cam-hall", "hall", url=server.url("cam-hall.mjpg"), mode="stream")
    async with monitor(cam, sink) as mon:
        first = await sink.next(lambda e: True)
        status_ok(first)
        assert (first["device"], first["stream"], first["tamper"]) == ("cam-hall", "up", None)

        server.effects["cam-hall"] = "covered"
        covered = await sink.next(lambda e: e["tamper"] is not None)
        assert (covered["stream"], covered["tamper"]) == ("up", "covered")
        assert covered["fps"] > 2  # frames have been flowing at 15 fps for a while
        assert mon.latest_jpeg is not None and mon.latest_jpeg[:2] == b"\xff\xd8"
        # the same frame asked for at two sizes (no await between: no new frame can arrive)
        thumb, small = mon.thumbnail_jpeg(160), mon.thumbnail_jpeg(80)
        assert thumb is not None and small is not None
        for jpeg, width in ((thumb, 160), (small, 80)):
            picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            assert picture is not None and picture.shape[1] == width

        server.effects["cam-hall"] = "garbage"
        down = await sink.next(lambda e: e["stream"] == "down")
        assert down["tamper"] is None
        assert any(src == "camera:cam-hall" and "JPEG" in reason for src, _, reason in sink.rejects)

        server.effects["cam-hall"] = "normal"
        up = await sink.next(lambda e: e["stream"] == "up")
        status_ok(up)
        await sink.next(lambda e: e["stream"] == "up" and e["tamper"] is None)

        await server.stop()
        await sink.next(lambda e: e["stream"] == "down")
        await server.start()
        back = await sink.next(lambda e: e["stream"] == "up")
        assert back["tamper"] is None


@pytest.mark.slow
async def test_stream_stall_is_down_and_recovers(server: MjpegServer) -> None:
    sink = CollectingSink()
    cam = Camera("cam-stall", "hall", url=server.url("cam-stall.mjpg"), mode="stream")
    async with monitor(cam, sink):
        await sink.next(lambda e: e["stream"] == "up")
        server.effects["cam-stall"] = "stall"  # connection open, no frames
        down = await sink.next(lambda e: e["stream"] == "down")
        assert down["fps"] == 0.0 or down["fps"] < 15
        server.effects["cam-stall"] = "normal"
        await sink.next(lambda e: e["stream"] == "up")


@pytest.mark.slow
async def test_snapshot_mode_derives_jpg_url_and_reports_http_errors(server: MjpegServer) -> None:
    sink = CollectingSink()
    # No snapshot URL: the adapter asks for cam-gate.jpg next to cam-gate.mjpg.
    cam = Camera("cam-gate", "screening", url=server.url("cam-gate.mjpg"))
    async with monitor(cam, sink, stall_s=0.5) as mon:
        assert mon.mode == "snapshot" and mon.snapshot_url == server.url("cam-gate.jpg")
        first = await sink.next(lambda e: True)
        assert (first["stream"], first["tamper"]) == ("up", None)

        server.effects["cam-gate"] = "frozen"
        frozen = await sink.next(lambda e: e["tamper"] is not None)
        assert frozen["tamper"] == "frozen"

        server.effects["cam-gate"] = "http500"
        await sink.next(lambda e: e["stream"] == "down")
        assert any("HTTP 500" in reason for _, _, reason in sink.rejects)

        server.effects["cam-gate"] = "normal"
        await sink.next(lambda e: e["stream"] == "up")
        await sink.next(lambda e: e["stream"] == "up" and e["tamper"] is None)


@pytest.mark.slow
async def test_snapshot_arriving_in_several_chunks_is_read_whole(server: MjpegServer) -> None:
    sink = CollectingSink()
    server.effects["cam-slow"] = "slow"
    cam = Camera("cam-slow", "hall", url=server.url("cam-slow.mjpg"))
    async with monitor(cam, sink, stall_s=0.5) as mon:
        first = await sink.next(lambda e: True)
        assert (first["stream"], first["tamper"]) == ("up", None)
        assert mon.rejected == 0 and not sink.rejects


@pytest.mark.slow
async def test_heartbeat_repeats_the_status(server: MjpegServer) -> None:
    sink = CollectingSink()
    cam = Camera("cam-beat", "hall", url=server.url("cam-beat.mjpg"))
    async with monitor(cam, sink, heartbeat_s=0.3):
        first = await sink.next(lambda e: True)
        beat = await sink.next(lambda e: True)
        assert (beat["stream"], beat["tamper"]) == (first["stream"], first["tamper"])


@pytest.mark.slow
async def test_unreachable_camera_is_down_without_crashing() -> None:
    sink = CollectingSink()
    dead = MjpegServer()  # never started: connection refused
    cam = Camera("cam-dead", "hall", url=dead.url("cam-dead.mjpg"), mode="stream")
    async with monitor(cam, sink, stall_s=0.3):
        down = await sink.next(lambda e: True)
        assert down["stream"] == "down" and down["tamper"] is None


@pytest.mark.slow
async def test_hub_watches_every_camera(server: MjpegServer) -> None:
    sink = CollectingSink()
    cams = [Camera(f"cam-{i}", "hall", url=server.url(f"cam-{i}.mjpg")) for i in range(3)]
    cams.append(Camera("cam-none", "hall"))  # nothing to watch: skipped
    async with CameraHub(cams, sink, interval_s=0.2, tamper=FAST) as hub:
        assert set(hub.monitors) == {"cam-0", "cam-1", "cam-2"}
        seen: set[str] = set()
        while seen != {"cam-0", "cam-1", "cam-2"}:
            seen.add((await sink.next(lambda e: e["stream"] == "up"))["device"])
        assert all(hub.thumbnail_jpeg(c) for c in seen)


@pytest.mark.slow
async def test_videocapture_source(tmp_path: Path) -> None:
    """The rtsp:// path uses OpenCV's VideoCapture; a local MJPG file exercises the same code
    (no RTSP server ships with the test environment)."""
    path = tmp_path / "cam.avi"
    scene = Scene(5)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 25, (320, 180))
    assert writer.isOpened()
    for i in range(50):
        writer.write(scene.frame(i / 25))
    writer.release()
    sink = CollectingSink()
    cam = Camera("cam-file", "hall", url=str(path), mode="stream")
    async with monitor(cam, sink) as mon:
        up = await sink.next(lambda e: True)
        assert (up["stream"], up["tamper"]) == ("up", None)
        assert mon.thumbnail_jpeg() is not None


def _mjpeg_bytes(parts: list[bytes], boundary: str, with_length: bool) -> bytes:
    out = b""
    for p in parts:
        head = f"--{boundary}\r\nContent-Type: image/jpeg\r\n"
        if with_length:
            head += f"Content-Length: {len(p)}\r\n"
        out += head.encode() + b"\r\n" + p + b"\r\n"
    return out + f"--{boundary}\r\n".encode()


@pytest.mark.parametrize("with_length", [True, False])
@pytest.mark.parametrize("declared", ["frame", "--frame", '"frame"'])
def test_mjpeg_parser_splits_parts_across_any_chunking(with_length: bool, declared: str) -> None:
    scene = Scene(3, 160, 90)
    parts = [scene.jpeg(i) for i in range(5)]
    data = _mjpeg_bytes(parts, "frame", with_length)
    rng = random.Random(7)
    for _ in range(20):
        parser = MjpegParser(declared)
        got: list[bytes] = []
        i = 0
        while i < len(data):
            n = rng.randint(1, 4000)
            got += parser.feed(data[i : i + n])
            i += n
        assert got == parts
