"""A tiny real HTTP camera server for the camera adapter tests.

Written from the MJPEG format (multipart/x-mixed-replace, one JPEG per part) and not from
simulators/, so the adapter meets an independent implementation. Serves `/<name>.mjpg`
(stream) and `/<name>.jpg` (snapshot) from `tests.support.scenes.Scene`, with a per-camera
effect a test can switch: normal, covered, defocused, moved, frozen, garbage, http500, stall.
`stop()` and `start()` drop and restore the camera on the same port (a disconnect).
"""

from __future__ import annotations

import asyncio
import os
import time

from aiohttp import web

from tests.support.mosquitto import free_port
from tests.support.scenes import Scene

BOUNDARY = "sealwatchframe"


class MjpegServer:
    def __init__(self, fps: float = 15.0, port: int | None = None) -> None:
        self.fps = fps
        self.port = port or free_port()
        self.effects: dict[str, str] = {}
        self.requests = 0
        self._scenes: dict[str, Scene] = {}
        self._frozen: dict[str, bytes] = {}
        self._runner: web.AppRunner | None = None
        self._t0 = time.monotonic()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def frame(self, name: str) -> bytes:
        effect = self.effects.get(name, "normal")
        scene = self._scenes.setdefault(name, Scene(seed=sum(map(ord, name))))
        if effect == "frozen":
            return self._frozen.setdefault(name, scene.jpeg(time.monotonic() - self._t0))
        self._frozen.pop(name, None)
        if effect == "garbage":
            return os.urandom(3000)
        return scene.jpeg(time.monotonic() - self._t0, effect)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{name}.mjpg", self._stream)
        app.router.add_get("/{name}.jpg", self._snapshot)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _snapshot(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        name = request.match_info["name"]
        if self.effects.get(name) == "http500":
            return web.Response(status=500, text="sensor error")
        body = self.frame(name)
        if self.effects.get(name) != "slow":
            return web.Response(body=body, content_type="image/jpeg")
        # A slow camera: the JPEG arrives in two TCP writes with a pause between them.
        resp = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        resp.content_length = len(body)
        await resp.prepare(request)
        await resp.write(body[: len(body) // 2])
        await asyncio.sleep(0.05)
        await resp.write(body[len(body) // 2 :])
        await resp.write_eof()
        return resp

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        name = request.match_info["name"]
        if self.effects.get(name) == "http500":
            return web.Response(status=500, text="sensor error")
        resp = web.StreamResponse(
            headers={"Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}"}
        )
        await resp.prepare(request)
        while True:
            if self.effects.get(name) == "stall":
                await asyncio.sleep(0.05)  # the camera's own pace: nothing to send
                continue
            data = self.frame(name)
            head = (
                f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
            ).encode()
            await resp.write(head + data + b"\r\n")
            await asyncio.sleep(1.0 / self.fps)  # the camera's frame rate
