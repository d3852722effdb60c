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
from collections.abc import Callable

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


def resized_header(jpeg: bytes, width: int, height: int) -> bytes:
    """`jpeg` with its frame header claiming `width`x`height` (the data stays as it was)."""
    i = 2
    while i + 4 <= len(jpeg):
        marker = jpeg[i + 1]
        length = int.from_bytes(jpeg[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xC2:
            return (
                jpeg[: i + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + jpeg[i + 9 :]
            )
        i += 2 + length
    raise ValueError("no frame header")


SNAPSHOT_MODES = (
    "good",
    "not_jpeg",
    "truncated",
    "empty",
    "huge_declared",
    "huge_chunked",
    "text_plain",
    "tiny",
    "giant",
    "http500",
    "http404",
    "hang",
    "hang_body",
)
STREAM_MODES = (
    "good",
    "garbage_parts",
    "broken_boundary",
    "text_plain",
    "no_boundary",
    "huge_part",
    "tiny",
    "hang",
    "http404",
)
HUGE = 50 * 1024 * 1024


class HostileCamera:
    """A camera whose HTTP answers `mode` switches at any time: `/snap.jpg`, `/live.mjpg`.

    Snapshot modes: good, not_jpeg (an HTML error page), truncated, empty, huge_declared
    (Content-Length 50 MiB, then zeros), huge_chunked (50 MiB chunked, no length), text_plain
    (a good JPEG labelled text/plain), tiny (1x1), giant (a header claiming 10000x10000),
    http500, http404, hang (never answers), hang_body (headers, half a JPEG, then nothing).
    Stream modes: good, garbage_parts, broken_boundary (parts under another boundary),
    text_plain, no_boundary (multipart without a boundary parameter), huge_part (a part
    declaring 50 MB), tiny, hang (headers, then nothing), http404.
    `most` is the largest number of body bytes one response got written: proof that a client
    stopped reading.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.mode = "good"
        self.sent = 0  # in the current response
        self.most = 0
        self.requests = 0
        self._scene = Scene(seed=77)
        self._t0 = time.monotonic()
        self._runner: web.AppRunner | None = None
        self._tiny: bytes | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def good(self) -> bytes:
        return self._scene.jpeg(time.monotonic() - self._t0)

    def tiny(self) -> bytes:
        if self._tiny is None:
            import cv2
            import numpy as np

            ok, buf = cv2.imencode(".jpg", np.full((1, 1, 3), 128, np.uint8))
            assert ok
            self._tiny = buf.tobytes()
        return self._tiny

    async def start(self) -> HostileCamera:
        app = web.Application()
        app.router.add_get("/snap.jpg", self._snapshot)
        app.router.add_get("/live.mjpg", self._stream)
        self._runner = web.AppRunner(app, shutdown_timeout=0.2)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> HostileCamera:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _write(self, resp: web.StreamResponse, data: bytes) -> None:
        await resp.write(data)
        self.sent += len(data)
        self.most = max(self.most, self.sent)

    async def _zeros(self, resp: web.StreamResponse, head: bytes, total: int) -> None:
        await self._write(resp, head)
        chunk = bytes(65536)
        left = total - len(head)
        while left > 0:
            await self._write(resp, chunk[:left])
            left -= len(chunk)

    async def _snapshot(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.sent = 0
        mode = self.mode
        if mode in ("http500", "http404"):
            return web.Response(status=int(mode[4:]), text="<html>camera error</html>")
        if mode == "hang":
            await asyncio.sleep(3600)
        bodies: dict[str, Callable[[], bytes]] = {
            "good": self.good,
            "not_jpeg": lambda: b"<html><body>Login required</body></html>",
            "truncated": lambda: self.good()[:1500],
            "empty": lambda: b"",
            "text_plain": self.good,
            "tiny": self.tiny,
            "giant": lambda: resized_header(self.good(), 10000, 10000),
        }
        body = bodies.get(mode)
        if body is not None:
            ctype = {"not_jpeg": "text/html", "text_plain": "text/plain"}.get(mode, "image/jpeg")
            data = body()
            return web.Response(body=data, content_type=ctype)
        resp = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        if mode == "huge_declared":
            resp.content_length = HUGE
        elif mode == "hang_body":
            resp.content_length = len(self.good())
        else:
            resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            if mode == "hang_body":
                await self._write(resp, self.good()[:1000])
                await asyncio.sleep(3600)
            await self._zeros(resp, b"\xff\xd8", HUGE)
        except ConnectionError:
            pass
        return resp

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.sent = 0
        mode = self.mode
        if mode == "http404":
            return web.Response(status=404, text="no such stream")
        ctype = {
            "text_plain": "text/plain",
            "no_boundary": "multipart/x-mixed-replace",
        }.get(mode, f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        resp = web.StreamResponse(headers={"Content-Type": ctype})
        await resp.prepare(request)
        try:
            if mode == "hang":
                await asyncio.sleep(3600)
            if mode == "broken_boundary":
                junk = (b"--otherboundary\r\nContent-Type: image/jpeg\r\n\r\n" + bytes(60000)) * 4
                while self.mode == mode:
                    await self._write(resp, junk)
                return resp
            while self.mode == mode:
                if mode == "huge_part":
                    await self._zeros(
                        resp,
                        f"--{BOUNDARY}\r\nContent-Length: 50000000\r\n\r\n".encode(),
                        HUGE,
                    )
                    continue
                data = {"garbage_parts": lambda: os.urandom(3000), "tiny": self.tiny}.get(
                    mode, self.good
                )()
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n\r\n".encode()
                await self._write(resp, head + data + b"\r\n")
                await asyncio.sleep(1 / 15)
        except ConnectionError:
            pass
        return resp
