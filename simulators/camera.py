"""IP cameras: one HTTP server per host:port of the cameras' URLs, MJPEG and JPEG snapshots.

For a camera with `url: http://H:P/cam-x.mjpg` the server at H:P answers

    GET /cam-x.mjpg            multipart/x-mixed-replace; boundary=frame (MJPEG stream)
    GET /cam-x.jpg             one JPEG snapshot (default 1280x720)
    GET /cam-x/snapshot.jpg    the same snapshot

(a URL ending in `.jpg` is a snapshot URL; a camera's `snapshot:` URL is served too).
Each stream frame is rendered and encoded once and shared by every client of that camera;
nothing is rendered while nobody watches. Tamper effects change the picture as the real
thing would; `disconnect` (and device.silence) answers 503 and ends open streams.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from aiohttp import web

from policies.site import Camera

from .scene import Frame, Scene, cover, defocus, encode_jpeg, move

log = logging.getLogger("sealwatch.simulators.camera")

BOUNDARY = "frame"
TAMPER_OF_ACTION = {"cover": "covered", "defocus": "defocused", "move": "moved", "freeze": "frozen"}


@dataclass(frozen=True, slots=True)
class CameraOptions:
    snapshot_size: tuple[int, int] = (1280, 720)
    stream_size: tuple[int, int] = (640, 360)
    fps: float = 10.0
    day_night: str = "clock"  # clock (night 19:00-07:00 site time) | day | night
    jpeg_quality: int = 80


class CameraSim:
    """One camera's picture and state; frames are produced only while a client watches."""

    def __init__(self, camera: Camera, options: CameraOptions, tz: ZoneInfo) -> None:
        self.id = camera.id
        self.camera = camera
        self.options = options
        self.tz = tz
        self.connected = True  # disconnect / reconnect
        self.silent = False  # device.silence
        self.tamper: str | None = None
        self.partial = False
        self.day_night = options.day_night
        self.started = time.monotonic()
        self._scenes = {
            size: Scene(camera.id, *size) for size in {options.snapshot_size, options.stream_size}
        }
        self._frozen: dict[tuple[int, int], bytes] = {}
        self._latest: bytes = b""
        self._seq = 0
        self._new_frame = asyncio.Condition()
        self.watchers = 0
        self._watched = asyncio.Event()
        self.frames_sent = 0

    @property
    def up(self) -> bool:
        return self.connected and not self.silent

    def night(self) -> bool:
        if self.day_night != "clock":
            return self.day_night == "night"
        hour = datetime.now(self.tz).hour
        return hour >= 19 or hour < 7

    def render(self, size: tuple[int, int]) -> bytes:
        """One JPEG at `size` as the camera sees it now (blocking: call in a thread)."""
        if self.tamper == "frozen" and size in self._frozen:
            return self._frozen[size]
        t = time.monotonic() - self.started
        label = datetime.now(self.tz).strftime("%Y-%m-%d %H:%M:%S")
        img: Frame = self._scenes[size].render(t, night=self.night(), label=label)
        if self.tamper == "covered":
            img = cover(img, self.partial)
        elif self.tamper == "defocused":
            img = defocus(img)
        elif self.tamper == "moved":
            img = move(img)
        jpg = encode_jpeg(img, self.options.jpeg_quality)
        if self.tamper == "frozen":
            self._frozen[size] = jpg
        return jpg

    async def snapshot(self) -> bytes:
        return await asyncio.to_thread(self.render, self.options.snapshot_size)

    async def produce(self) -> None:
        """Render stream frames at `fps` while anyone watches; runs for the simulator's life."""
        period = 1.0 / self.options.fps
        while True:
            await self._watched.wait()
            began = time.monotonic()
            if self.up:
                jpg = await asyncio.to_thread(self.render, self.options.stream_size)
                async with self._new_frame:
                    self._latest = jpg
                    self._seq += 1
                    self._new_frame.notify_all()
            await asyncio.sleep(max(0.0, period - (time.monotonic() - began)))

    async def next_frame(self, after: int) -> tuple[int, bytes]:
        """Wait for a frame newer than `after`, or for the camera to go down."""
        async with self._new_frame:
            await self._new_frame.wait_for(lambda: self._seq > after or not self.up)
            return self._seq, self._latest

    async def wake_watchers(self) -> None:
        async with self._new_frame:
            self._new_frame.notify_all()

    def watch(self, delta: int) -> None:
        self.watchers += delta
        if self.watchers > 0:
            self._watched.set()
        else:
            self._watched.clear()

    async def perform(self, action: str, step: Mapping[str, Any]) -> None:
        if action in TAMPER_OF_ACTION:
            self.tamper = TAMPER_OF_ACTION[action]
            self.partial = bool(step.get("partial", False)) if action == "cover" else False
            self._frozen.clear()
            if action == "freeze" and self._latest:
                # The stream keeps repeating exactly the frame it showed last.
                self._frozen[self.options.stream_size] = self._latest
        elif action == "restore":
            self.tamper, self.partial = None, False
            self._frozen.clear()
        elif action in ("disconnect", "reconnect"):
            self.connected = action == "reconnect"
        elif action in ("silence", "resume"):
            self.silent = action == "silence"
        elif action in ("day", "night"):
            self.day_night = action
        else:
            raise ValueError(f"camera has no action '{action}'")
        if not self.up:
            await self.wake_watchers()

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "camera",
            "stream": "up" if self.up else "down",
            "connected": self.connected,
            "silent": self.silent,
            "tamper": self.tamper,
            "partial": self.partial,
            "night": self.night(),
            "watchers": self.watchers,
            "frames_sent": self.frames_sent,
        }


def camera_routes(camera: Camera) -> list[tuple[str, str, str]]:
    """(host:port, path, "stream" | "snapshot") for every URL a camera answers on."""
    routes: list[tuple[str, str, str]] = []
    for url in (camera.url, camera.snapshot):
        if not url:
            continue
        parts = urlsplit(url)
        hostport = f"{parts.hostname or '127.0.0.1'}:{parts.port or 80}"
        path = parts.path or "/"
        if path.endswith((".jpg", ".jpeg")):
            routes.append((hostport, path, "snapshot"))
            continue
        routes.append((hostport, path, "stream"))
        base = path[:-5] if path.endswith(".mjpg") else path.rstrip("/")
        routes.append((hostport, base + ".jpg", "snapshot"))
        routes.append((hostport, f"/{camera.id}/snapshot.jpg", "snapshot"))
    return routes


class CameraServers:
    """Every camera of a site behind one aiohttp server per distinct host:port."""

    def __init__(
        self,
        cameras: Mapping[str, Camera],
        tz: ZoneInfo,
        options: CameraOptions = CameraOptions(),
        port_of: Callable[[int], int] = lambda p: p,
    ) -> None:
        self.cams = {cid: CameraSim(cam, options, tz) for cid, cam in cameras.items()}
        self.port_of = port_of
        self.apps: dict[tuple[str, int], web.Application] = {}
        self.urls: dict[str, str] = {}
        for cid, cam in cameras.items():
            for hostport, path, kind in camera_routes(cam):
                host, _, port_s = hostport.rpartition(":")
                addr = (host, port_of(int(port_s)))
                app = self.apps.get(addr)
                if app is None:
                    app = self.apps[addr] = web.Application()
                handler = self._stream if kind == "stream" else self._snapshot
                app.router.add_get(path, _bind(handler, self.cams[cid]))
                if kind == "stream" and cid not in self.urls:
                    self.urls[cid] = f"http://{addr[0]}:{addr[1]}{path}"
        self._runners: list[web.AppRunner] = []
        self._tg: asyncio.TaskGroup | None = None
        self._closing = False

    async def __aenter__(self) -> CameraServers:
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        self._producers = [
            self._tg.create_task(cam.produce(), name=f"camera-{cid}-frames")
            for cid, cam in self.cams.items()
        ]
        for (host, port), app in self.apps.items():
            runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
            await runner.setup()
            await web.TCPSite(runner, host, port).start()
            self._runners.append(runner)
            log.info("camera server on %s:%d", host, port)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing = True
        for cam in self.cams.values():
            await cam.wake_watchers()
        for runner in self._runners:
            await runner.cleanup()
        for task in self._producers:
            task.cancel()
        assert self._tg is not None
        await self._tg.__aexit__(et, exc, tb)

    async def _snapshot(self, cam: CameraSim, request: web.Request) -> web.StreamResponse:
        if not cam.up:
            return web.Response(status=503, text="camera offline\n")
        body = await cam.snapshot()
        return web.Response(
            body=body, content_type="image/jpeg", headers={"Cache-Control": "no-store"}
        )

    async def _stream(self, cam: CameraSim, request: web.Request) -> web.StreamResponse:
        if not cam.up:
            return web.Response(status=503, text="camera offline\n")
        resp = web.StreamResponse(
            headers={
                "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                "Cache-Control": "no-store",
            }
        )
        await resp.prepare(request)
        cam.watch(+1)
        seq = 0
        try:
            while not self._closing:
                seq, jpg = await cam.next_frame(seq)
                if not cam.up or self._closing:
                    break
                try:
                    await resp.write(
                        f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                        f"Content-Length: {len(jpg)}\r\n\r\n".encode()
                        + jpg
                        + b"\r\n"
                    )
                except ConnectionError:
                    return resp  # the viewer went away
                cam.frames_sent += 1
        finally:
            cam.watch(-1)
        # A camera that drops off the network ends the stream abruptly, not cleanly.
        if request.transport is not None:
            request.transport.close()
        return resp


def _bind(
    handler: Callable[[CameraSim, web.Request], Any], cam: CameraSim
) -> Callable[[web.Request], Any]:
    async def route(request: web.Request) -> web.StreamResponse:
        result: web.StreamResponse = await handler(cam, request)
        return result

    return route
