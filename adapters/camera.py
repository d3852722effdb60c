"""Cameras: health and tamper status as `camera.status` events (CONTRACT §2, EXAM-2.7.10).

`CameraMonitor` watches one camera, either by sampling its JPEG snapshot URL (cheap: the
default) or by reading its MJPEG stream over HTTP (or an rtsp:// / file source through
OpenCV's VideoCapture in a thread). Frames are decoded with OpenCV at reduced scale and handed
to `camera_tamper.TamperDetector`. The monitor emits a status on every change and as a
heartbeat, reconnects with capped jittered backoff, turns bad bytes into rejections, and keeps
the latest JPEG for the dashboard's live thumbnails. `CameraHub` runs one monitor per camera.

Whatever a camera sends is bounded before it is decoded: a snapshot body is read up to
`MAX_FRAME_BYTES` (a larger declared Content-Length is refused unread), an MJPEG stream gives
up after `MAX_FRAME_BYTES` without a complete part, and a JPEG's size is read from its frame
header (`jpeg_size`) and judged (`camera_tamper.size_problem`) before OpenCV allocates
anything. Bytes that are no usable picture are a rejection and, if nothing good follows for
`stall_s`, a stream `down` with the reason; nothing a camera sends ends the monitor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import aiohttp
import cv2
import numpy as np

from adapters.base import EventSink, RateLimitedLog, backoff_delay, printable
from adapters.camera_tamper import BadFrame, TamperConfig, TamperDetector, size_problem
from policies.site import Camera, Site

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 8 * 1024 * 1024  # no camera sends a bigger JPEG; more is garbage
ANALYSIS_DECODE_WIDTH = 320  # decode at reduced scale down to about this width


def snapshot_url(camera: Camera) -> str | None:
    """The snapshot URL: `snapshot`, else the stream URL with `.mjpg` replaced by `.jpg`."""
    if camera.snapshot:
        return camera.snapshot
    if (
        camera.url
        and camera.url.startswith(("http://", "https://"))
        and camera.url.endswith(".mjpg")
    ):
        return camera.url[: -len(".mjpg")] + ".jpg"
    return None


def looks_like_jpeg(data: bytes) -> bool:
    """Start-of-image marker at the front, end-of-image near the end (padding allowed)."""
    return data[:2] == b"\xff\xd8" and b"\xff\xd9" in data[-16:]


_REDUCED = {
    1: cv2.IMREAD_GRAYSCALE,
    2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
    4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
    8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
}


def reduction_for(width: int, target: int = ANALYSIS_DECODE_WIDTH) -> int:
    """The largest JPEG decode reduction (1, 2, 4, 8) that keeps at least `target` pixels."""
    for factor in (8, 4, 2):
        if width // factor >= target:
            return factor
    return 1


# Start-of-frame markers (baseline, progressive, lossless, arithmetic); not C4/C8/CC.
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header, or None when there is none to be found.

    Walks the marker segments from SOI to the first SOF without decoding anything, so a
    header that claims 65535x65535 is known before OpenCV would allocate for it.
    """
    if data[:2] != b"\xff\xd8":
        return None
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # stand-alone markers
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            return None
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if length < 2:
            return None
        if marker in _SOF:
            if length < 7 or i + 9 > n:
                return None
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return width, height
        i += 2 + length
    return None


def frame_problem(data: bytes) -> str | None:
    """Why `data` is no JPEG frame the analysis could use, or None; decodes nothing."""
    if not data:
        return "empty frame"
    if len(data) > MAX_FRAME_BYTES:
        return f"frame of {len(data)} bytes (at most {MAX_FRAME_BYTES})"
    if not looks_like_jpeg(data):
        return "not a JPEG frame"
    size = jpeg_size(data)
    if size is None:
        return "JPEG without a readable frame header"
    return size_problem(*size)


def decode_gray(data: bytes, reduction: int = 1) -> np.ndarray | None:
    """Decode a JPEG to grey, at 1/`reduction` scale (done inside the decoder: cheap).

    None for anything that is not a JPEG the analysis could use (see `frame_problem`), or
    that OpenCV cannot decode.
    """
    if frame_problem(data) is not None:
        return None
    try:
        img = cv2.imdecode(
            np.frombuffer(data, np.uint8), _REDUCED.get(reduction, cv2.IMREAD_GRAYSCALE)
        )
    except cv2.error:
        return None
    return img if img is not None and img.size else None


def thumbnail(frame: np.ndarray, width: int = 320, quality: int = 70) -> bytes:
    """A small JPEG of a frame for the dashboard."""
    h, w = frame.shape[:2]
    if w > width:
        frame = cv2.resize(
            frame, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA
        )
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return buf.tobytes() if ok else b""


async def _read_limited(content: aiohttp.StreamReader, limit: int) -> bytes:
    """The whole body, or its first `limit` bytes (`read(n)` returns only one chunk)."""
    parts: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await content.read(limit - size)
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


class MjpegError(Exception):
    """The stream is not MJPEG we can follow (no boundary, oversized part)."""


class MjpegParser:
    """Splits a multipart/x-mixed-replace byte stream into JPEG parts.

    Lenient as cameras are: the boundary is matched with or without its leading `--`, parts
    may or may not carry Content-Length, and line ends may be CRLF or LF.
    """

    def __init__(self, boundary: str) -> None:
        b = boundary.strip().strip('"')
        self.boundary = (b[2:] if b.startswith("--") else b).encode("latin-1")
        if not self.boundary:
            raise MjpegError("empty multipart boundary")
        self._buf = bytearray()
        self._length: int | None = None  # Content-Length of the part being read
        self._in_body = False
        self._scanned = 0  # body bytes already searched for the next boundary
        self._since_part = 0  # bytes fed since the last complete part

    def feed(self, data: bytes) -> list[bytes]:
        """The parts completed by `data`; MjpegError once the stream cannot be MJPEG."""
        self._buf += data
        self._since_part += len(data)
        parts: list[bytes] = []
        while True:
            if not self._in_body:
                if not self._read_headers():
                    break
            part = self._read_body()
            if part is None:
                break
            parts.append(part)
            self._since_part = len(self._buf)
        if self._since_part > MAX_FRAME_BYTES + 65536:
            raise MjpegError(f"no complete part within {self._since_part} bytes")
        return parts

    def _read_headers(self) -> bool:
        i = self._buf.find(self.boundary)
        if i < 0:
            # Keep a tail in case the boundary is split across reads.
            keep = len(self.boundary) + 2
            if len(self._buf) > keep:
                del self._buf[: len(self._buf) - keep]
            return False
        m = re.search(rb"\r?\n\r?\n", self._buf[i:])
        if m is None:
            if len(self._buf) - i > 8192:
                raise MjpegError("part headers longer than 8 KiB")
            return False
        headers = bytes(self._buf[i + len(self.boundary) : i + m.start()])
        del self._buf[: i + m.end()]
        cl = re.search(rb"(?im)^content-length:[ \t]*([0-9]{1,12})[ \t]*\r?$", headers)
        self._length = int(cl.group(1)) if cl else None
        if self._length is not None and self._length > MAX_FRAME_BYTES:
            raise MjpegError(f"part of {self._length} bytes")
        self._in_body = True
        return True

    def _read_body(self) -> bytes | None:
        if self._length is not None:
            if len(self._buf) < self._length:
                return None
            part = bytes(self._buf[: self._length])
            del self._buf[: self._length]
        else:
            marker = b"--" + self.boundary
            i = self._buf.find(marker, max(0, self._scanned - len(marker)))
            if i < 0:
                self._scanned = len(self._buf)
                return None
            part = bytes(self._buf[:i]).rstrip(b"\r\n")
            del self._buf[:i]
        self._in_body = False
        self._scanned = 0
        return part


def _boundary(content_type: str) -> str | None:
    m = re.search(r'boundary="?([^";]+)"?', content_type, re.I)
    return m.group(1) if m else None


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


class CameraMonitor:
    """Watches one camera and reports `camera.status` events to `sink`.

    `interval_s` is the snapshot period (snapshot mode) or the analysis period (stream mode:
    every frame counts for fps and stall, one every `interval_s` is decoded and analysed).
    `clock` gives wall-clock seconds for event times and tamper debouncing.
    """

    def __init__(
        self,
        camera: Camera,
        sink: EventSink,
        *,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        heartbeat_s: float = 10.0,
        stall_s: float = 5.0,
        request_timeout_s: float = 5.0,
        backoff_cap_s: float = 30.0,
        mode: str | None = None,
        tamper: TamperConfig | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.camera = camera
        self.sink = sink
        self.interval_s = interval_s
        self.clock = clock
        self.heartbeat_s = heartbeat_s
        self.request_timeout_s = request_timeout_s
        self.backoff_cap_s = backoff_cap_s
        self.detector = TamperDetector(tamper)
        self.source = f"camera:{camera.id}"
        mode = mode or camera.mode
        self.snapshot_url = snapshot_url(camera) if mode == "snapshot" else None
        self.stream_url = camera.url
        if mode == "snapshot" and self.snapshot_url is None:
            mode = "stream"  # e.g. an rtsp:// camera without a snapshot URL
        self.mode = mode
        # A snapshot camera is only late after a few missed periods.
        self.stall_s = max(stall_s, 2.5 * interval_s) if mode == "snapshot" else stall_s
        self.stream: str | None = None  # "up" / "down", None until known
        self.tamper: str | None = None
        self.latest_jpeg: bytes | None = None  # as the camera sent it
        self.frames = 0
        self.rejected = 0
        self.errors = 0  # exceptions the loops' last-resort guards caught (bugs): logged
        self.reason = ""  # why the stream is down
        self._session = session
        self._own_session = session is None
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._frame_times: deque[float] = deque(maxlen=64)
        self._last_good = 0.0  # loop time of the last good frame
        self._last_analysis = -1e18
        self._last_emit = -1e18
        self._latest_frame: np.ndarray | None = None  # VideoCapture sources: no JPEG
        self._thumb: tuple[tuple[int, int], bytes] | None = None  # ((frame, width), jpeg)
        self._rejects = RateLimitedLog(log, 30.0)
        self._reject_last: dict[str, tuple[float, int]] = {}

    # -- lifecycle --

    async def __aenter__(self) -> Self:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        self._last_good = asyncio.get_running_loop().time()
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        reader = self._snapshots() if self.mode == "snapshot" else self._stream()
        self._tasks = [
            self._tg.create_task(reader, name=f"{self.source}:reader"),
            self._tg.create_task(self._watchdog(), name=f"{self.source}:watchdog"),
        ]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._tg is not None
        for task in self._tasks:  # leaving the context stops everything we own
            task.cancel()
        try:
            await self._tg.__aexit__(exc_type, exc, tb)
        finally:
            if self._own_session and self._session is not None:
                await self._session.close()

    # -- what the dashboard and tests read --

    @property
    def fps(self) -> float:
        """Frames per second over the last few seconds (0 when stalled)."""
        ts = self._frame_times
        if not ts:
            return 0.0
        now = asyncio.get_running_loop().time()
        recent = [t for t in ts if now - t <= 5.0]
        if len(recent) < 2:
            return round(len(recent) / 5.0, 2)
        return round((len(recent) - 1) / max(recent[-1] - recent[0], 1e-3), 2)

    def status(self) -> dict[str, Any]:
        """The current `camera.status` event."""
        return {
            "ts": _rfc3339(self.clock()),
            "device": self.camera.id,
            "type": "camera.status",
            "stream": self.stream or "down",
            "tamper": self.tamper if self.stream == "up" else None,
            "fps": self.fps,
            **({"reason": printable(self.reason, 200)} if self.stream == "down" else {}),
            **self._sharpness(),
        }

    def _sharpness(self) -> dict[str, float]:
        """The last analysed frame's sharpness as a share of the learned view's (an optional
        field of camera.status, for telemetry: below `defocus_ratio` reads as defocused)."""
        m = self.detector.last
        if self.stream != "up" or m is None:
            return {}
        return {"sharpness": round(m.sharpness_ratio, 3)}

    def thumbnail_jpeg(self, width: int = 320) -> bytes | None:
        """A small JPEG of the latest frame, made on demand and cached per frame and width."""
        key = (self.frames, width)
        if self._thumb is not None and self._thumb[0] == key:
            return self._thumb[1]
        frame = self._latest_frame
        if frame is None and self.latest_jpeg is not None:
            data = np.frombuffer(self.latest_jpeg, np.uint8)
            frame = cv2.imdecode(data, cv2.IMREAD_REDUCED_COLOR_2)
        if frame is None:
            return None
        self._thumb = (key, thumbnail(frame, width))
        return self._thumb[1]

    def relearn(self) -> None:
        """Forget the learned view (after the camera was deliberately re-aimed)."""
        self.detector.relearn()

    # -- state changes --

    async def _set(self, stream: str, tamper: str | None, reason: str = "") -> None:
        if stream == "down":
            self.reason = reason
        if (stream, tamper) == (self.stream, self.tamper):
            return
        was = (self.stream, self.tamper)
        self.stream, self.tamper = stream, tamper
        if stream != was[0]:
            if stream == "down":
                log.warning("camera %s stream down: %s", self.camera.id, reason)
            else:
                log.info("camera %s stream up", self.camera.id)
        if tamper != was[1] and stream == "up":
            if tamper:
                log.warning("camera %s tamper: %s", self.camera.id, tamper)
            else:
                log.info("camera %s view healthy again", self.camera.id)
        await self._emit()

    async def _emit(self) -> None:
        self._last_emit = asyncio.get_running_loop().time()
        await self.sink.submit(self.status(), source=self.source)

    async def _reject(self, data: bytes | str, reason: str) -> None:
        """Record bad device data: counted always, stored at most once a second per reason."""
        self.rejected += 1
        self._rejects.warning(reason, "camera %s: %s", self.camera.id, reason)
        now = asyncio.get_running_loop().time()
        last, skipped = self._reject_last.get(reason, (-1e18, 0))
        if now - last < 1.0:
            self._reject_last[reason] = (last, skipped + 1)
            return
        self._reject_last[reason] = (now, 0)
        if isinstance(data, bytes):
            data = f"{len(data)} bytes: {data[:48]!r}"
        more = f" (and {skipped} more)" if skipped else ""
        await self.sink.reject(self.source, printable(data), printable(reason + more))

    async def _garbage(self, data: bytes | str, reason: str) -> None:
        """The camera sent something that is no usable frame."""
        await self._reject(data, reason)
        await self._failure(f"camera sends garbage: {reason}")

    def _internal_error(self, where: str) -> None:
        """A last-resort guard caught an exception: count it, log it with its traceback."""
        self.errors += 1
        self._rejects.exception(f"error:{where}", "camera %s: %s failed", self.camera.id, where)

    async def _failure(self, reason: str) -> None:
        """A failed read: the stream goes down once no good frame arrived for stall_s."""
        self.reason = reason
        if asyncio.get_running_loop().time() - self._last_good >= self.stall_s:
            await self._set("down", None, reason)

    # -- frames --

    async def _on_jpeg(self, data: bytes, content_type: str = "") -> None:
        """One JPEG from the camera: check it, count it, keep it, analyse it when due."""
        loop = asyncio.get_running_loop()
        problem = frame_problem(data)
        if problem is not None:
            if content_type and not content_type.lower().startswith("image/"):
                problem += f" (Content-Type {content_type!r})"
            await self._garbage(data, problem)
            return
        now = loop.time()
        self.latest_jpeg, self._latest_frame = data, None
        if now - self._last_analysis < self.interval_s * 0.95:
            self._count_frame(now)
            return
        self._last_analysis = now
        size = jpeg_size(data)
        reduction = reduction_for(size[0]) if size else 1
        gray = await asyncio.to_thread(decode_gray, data, reduction)
        if gray is None:
            await self._garbage(data, "JPEG does not decode")
            return
        await self._analysed(gray, now)

    def _count_frame(self, now: float) -> None:
        self.frames += 1
        self._frame_times.append(now)
        self._last_good = now

    async def _analysed(self, frame: np.ndarray, now: float) -> None:
        try:
            tamper = await asyncio.to_thread(self.detector.update, frame, self.clock())
        except BadFrame as exc:
            await self._garbage(f"frame of shape {frame.shape}", str(exc))
            return
        self._count_frame(now)
        await self._set("up", tamper)

    async def _watchdog(self) -> None:
        """Stall detection and the periodic heartbeat."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            try:
                if self.stream != "down" and now - self._last_good >= self.stall_s:
                    reason = self.reason or f"no frame for {self.stall_s:g} s"
                    await self._set("down", None, reason)
                elif self.stream is not None and now - self._last_emit >= self.heartbeat_s:
                    await self._emit()
            except Exception:
                self._internal_error("watchdog")
                self._last_emit = now  # try again at the next heartbeat, not at once
            due = self._last_emit + self.heartbeat_s if self.stream else now + self.stall_s
            if self.stream != "down":
                due = min(due, self._last_good + self.stall_s)
            await asyncio.sleep(max(0.02, due - loop.time()))

    # -- snapshot mode --

    async def _snapshots(self) -> None:
        assert self._session is not None and self.snapshot_url is not None
        timeout = aiohttp.ClientTimeout(total=self.request_timeout_s)
        attempt = 0
        while True:
            started = asyncio.get_running_loop().time()
            try:
                ok = await self._one_snapshot(timeout)
            except Exception:
                self._internal_error("snapshot")
                ok = False
            if ok:
                attempt = 0
                delay = self.interval_s - (asyncio.get_running_loop().time() - started)
            else:
                attempt += 1
                delay = max(self.interval_s, backoff_delay(attempt, self.backoff_cap_s))
            await asyncio.sleep(max(0.0, delay))

    async def _one_snapshot(self, limits: aiohttp.ClientTimeout) -> bool:
        assert self._session is not None and self.snapshot_url is not None
        try:
            async with self._session.get(self.snapshot_url, timeout=limits) as resp:
                if resp.status != 200:
                    body = await resp.content.read(256)
                    await self._reject(body, f"snapshot HTTP {resp.status}")
                    await self._failure(f"snapshot HTTP {resp.status}")
                    return False
                ctype = resp.headers.get("Content-Type", "")
                declared = resp.content_length
                if declared is not None and declared > MAX_FRAME_BYTES:
                    # Not read: dropping the connection is cheaper than draining it.
                    await self._garbage(
                        f"Content-Length: {declared}",
                        f"snapshot of {declared} bytes (at most {MAX_FRAME_BYTES})",
                    )
                    return False
                data = await _read_limited(resp.content, MAX_FRAME_BYTES + 1)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            await self._failure(f"snapshot unreachable: {exc.__class__.__name__} {exc}".strip())
            return False
        before = self.rejected
        self._last_analysis = -1e18  # every snapshot is analysed
        await self._on_jpeg(data, ctype)
        return self.rejected == before

    # -- stream mode --

    async def _stream(self) -> None:
        url = self.stream_url
        if not url:
            await self._set("down", None, "camera has no url")
            return
        attempt = 0
        while True:
            frames_before = self.frames
            try:
                await self._one_stream(url)
            except Exception:
                self._internal_error("stream")
            attempt = 1 if self.frames > frames_before else attempt + 1
            await asyncio.sleep(backoff_delay(attempt, self.backoff_cap_s))

    async def _one_stream(self, url: str) -> None:
        """Follow the stream until it ends or fails; report why it did."""
        try:
            if url.startswith(("http://", "https://")):
                await self._read_mjpeg(url)
            else:
                await self._read_capture(url)
            reason = "stream ended"
        except MjpegError as exc:
            reason = f"not a usable MJPEG stream: {exc}"
            await self._reject(str(exc), reason)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            reason = f"stream unreachable: {exc.__class__.__name__} {exc}".strip()
        await self._failure(reason)

    async def _read_mjpeg(self, url: str) -> None:
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.request_timeout_s, sock_read=self.stall_s
        )
        async with self._session.get(url, timeout=timeout) as resp:
            if resp.status != 200:
                body = await resp.content.read(256)
                await self._reject(body, f"stream HTTP {resp.status}")
                raise aiohttp.ClientResponseError(
                    resp.request_info, (), status=resp.status, message=f"HTTP {resp.status}"
                )
            ctype = resp.headers.get("Content-Type", "")
            boundary = _boundary(ctype)
            if not ctype.lower().startswith("multipart/") or boundary is None:
                raise MjpegError(f"Content-Type {ctype!r} is not multipart with a boundary")
            parser = MjpegParser(boundary)
            async for chunk in resp.content.iter_any():
                for part in parser.feed(chunk):
                    await self._on_jpeg(part)

    async def _read_capture(self, url: str) -> None:
        """rtsp:// (or a file) through OpenCV's VideoCapture, read in a thread."""
        loop = asyncio.get_running_loop()
        frames: asyncio.Queue[np.ndarray | None] = asyncio.Queue(maxsize=2)
        stop = threading.Event()

        def put(item: np.ndarray | None) -> None:
            if frames.full() and item is not None:
                return  # analysis is behind: drop, the next frame is as good
            frames.put_nowait(item)

        def capture() -> None:
            cap = cv2.VideoCapture(url)
            try:
                # A file plays at its own rate, not as fast as the disk reads it.
                pace = 0.0 if "://" in url else 1.0 / (cap.get(cv2.CAP_PROP_FPS) or 25.0)
                while cap.isOpened() and not stop.is_set():
                    ok, frame = cap.read()
                    if not ok:
                        break
                    loop.call_soon_threadsafe(put, frame)
                    if pace:
                        stop.wait(pace)
            finally:
                cap.release()
                with contextlib.suppress(RuntimeError):  # loop already closed
                    loop.call_soon_threadsafe(frames.put_nowait, None)

        reader = threading.Thread(target=capture, name=f"{self.source}:capture", daemon=True)
        reader.start()
        try:
            while (frame := await frames.get()) is not None:
                now = loop.time()
                self._latest_frame, self.latest_jpeg = frame, None
                if now - self._last_analysis < self.interval_s * 0.95:
                    self._count_frame(now)
                    continue
                self._last_analysis = now
                await self._analysed(frame, now)
        finally:
            stop.set()


class CameraHub:
    """One `CameraMonitor` per camera of a site, sharing one HTTP session."""

    def __init__(self, cameras: Site | Iterable[Camera], sink: EventSink, **options: Any) -> None:
        cams = cameras.cameras.values() if isinstance(cameras, Site) else cameras
        self.cameras = [c for c in cams if c.url or c.snapshot]
        for c in cams:
            if not (c.url or c.snapshot):
                log.info("camera %s has no url or snapshot: not monitored", c.id)
        self.sink = sink
        self.options = options
        self.monitors: dict[str, CameraMonitor] = {}
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Self:
        await self._stack.__aenter__()
        try:
            session = await self._stack.enter_async_context(aiohttp.ClientSession())
            for cam in self.cameras:
                monitor = CameraMonitor(cam, self.sink, session=session, **self.options)
                self.monitors[cam.id] = await self._stack.enter_async_context(monitor)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.__aexit__(exc_type, exc, tb)

    def statuses(self) -> Mapping[str, dict[str, Any]]:
        return {cid: m.status() for cid, m in self.monitors.items()}

    def thumbnail_jpeg(self, camera_id: str, width: int = 320) -> bytes | None:
        m = self.monitors.get(camera_id)
        return m.thumbnail_jpeg(width) if m else None


__all__ = [
    "CameraHub",
    "CameraMonitor",
    "MjpegError",
    "MjpegParser",
    "decode_gray",
    "snapshot_url",
    "thumbnail",
]
