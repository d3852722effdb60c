"""Recording folders as an NVR and a duty-phone recorder leave them (docs/devices.md,
"Recording folders").

Camera segments: `<recordings>/<YYYY-MM-DD>/<YYYYMMDDTHHMMSSZ>_<duration_s>.mp4` — the
UTC start of the segment and its length in whole seconds. Live segments are cut on wall-clock
multiples of `segment_s` and written when they end, while the camera is up (a disconnected
or silenced camera records nothing: a gap). Backfill fills the `backfill_days` before start
with `backfill_segment_s` segments, only into an empty folder.

Duty phone: `<recordings>/<CALLID>.json` = {"call", "start", "end", "recording",
"supervisors"} and `<CALLID>.wav` when the call was recorded ("recording": null otherwise).

Relative folders resolve against the data directory. Files are tiny placeholders: what is
checked is which time ranges exist, not the video.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import re
import wave
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from policies.site import Site

from .clock import now_utc, rfc3339

log = logging.getLogger("sealwatch.simulators.recordings")

SEGMENT_RE = re.compile(r"^(\d{8}T\d{6}Z)_(\d+)\.mp4$")
PLACEHOLDER = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"


def segment_path(root: Path, start: datetime, duration_s: int) -> Path:
    start = start.astimezone(UTC)
    return root / f"{start:%Y-%m-%d}" / f"{start:%Y%m%dT%H%M%SZ}_{duration_s}.mp4"


def parse_segment(name: str) -> tuple[datetime, int] | None:
    """(UTC start, duration s) of a segment file name, None for anything else."""
    m = SEGMENT_RE.match(name)
    if not m:
        return None
    start = datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return start, int(m.group(2))


def iter_segments(root: Path) -> Iterator[tuple[Path, datetime, int]]:
    if not root.is_dir():
        return
    for day in sorted(root.iterdir()):
        if day.is_dir():
            for f in sorted(day.iterdir()):
                parsed = parse_segment(f.name)
                if parsed:
                    yield f, parsed[0], parsed[1]


def _floor(dt: datetime, step_s: int) -> datetime:
    ts = int(dt.timestamp())
    return datetime.fromtimestamp(ts - ts % step_s, UTC)


def write_segment(root: Path, start: datetime, end: datetime) -> Path | None:
    duration = int((end - start).total_seconds())
    if duration < 1:
        return None
    path = segment_path(root, start, duration)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(PLACEHOLDER)
    return path


def backfill(root: Path, start: datetime, end: datetime, segment_s: int) -> int:
    """Segments covering [start, end); fast enough for 100 days of 1-minute segments."""
    count, cur = 0, _floor(start, segment_s)
    made_dirs: set[str] = set()
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    while cur < end:
        nxt = min(cur + timedelta(seconds=segment_s), end)
        day = f"{cur:%Y-%m-%d}"
        if day not in made_dirs:
            (root / day).mkdir(parents=True, exist_ok=True)
            made_dirs.add(day)
        fd = os.open(
            root / day / f"{cur:%Y%m%dT%H%M%SZ}_{int((nxt - cur).total_seconds())}.mp4",
            flags,
            0o644,
        )
        try:
            os.write(fd, PLACEHOLDER)
        finally:
            os.close(fd)
        count += 1
        cur = nxt
    return count


def prune(root: Path, cutoff: datetime) -> int:
    """Delete segments that start before `cutoff`; drop emptied day folders."""
    removed = 0
    for f, start, _dur in list(iter_segments(root)):
        if start < cutoff:
            f.unlink(missing_ok=True)
            removed += 1
    _drop_empty_days(root)
    return removed


def cut_gap(root: Path, start: datetime, end: datetime) -> int:
    """Delete every segment overlapping [start, end]."""
    removed = 0
    for f, seg_start, dur in list(iter_segments(root)):
        if seg_start <= end and seg_start + timedelta(seconds=dur) >= start:
            f.unlink(missing_ok=True)
            removed += 1
    _drop_empty_days(root)
    return removed


def _drop_empty_days(root: Path) -> None:
    if root.is_dir():
        for day in root.iterdir():
            if day.is_dir():
                with contextlib.suppress(OSError):
                    day.rmdir()  # only succeeds when empty


def _silent_wav(seconds: float = 0.2, rate: int = 8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(rate * seconds))
    return buf.getvalue()


class Recordings:
    """Live camera segments, backfill, and the duty phone's call records."""

    def __init__(
        self,
        site: Site,
        data_dir: Path,
        camera_up: Callable[[str], bool],
        *,
        segment_s: int = 60,
        backfill_days: float = 0.0,
        backfill_segment_s: int = 600,
    ) -> None:
        self.camera_up = camera_up
        self.segment_s = segment_s
        self.backfill_days = backfill_days
        self.backfill_segment_s = backfill_segment_s
        self.camera_roots = {
            cid: _resolve(data_dir, cam.recordings)
            for cid, cam in site.cameras.items()
            if cam.recordings
        }
        self.phone_roots = {
            pid: _resolve(data_dir, ph.recordings)
            for pid, ph in site.duty_phones.items()
            if ph.recordings
        }
        self.written: dict[str, int] = dict.fromkeys(self.camera_roots, 0)
        self.backfilled: dict[str, int] = {}
        self._calls = 0
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Recordings:
        start = now_utc().replace(microsecond=0)
        for root in (*self.camera_roots.values(), *self.phone_roots.values()):
            root.mkdir(parents=True, exist_ok=True)
        if self.backfill_days > 0:
            await asyncio.to_thread(self._backfill_all, start)
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        self._tasks = [
            self._tg.create_task(self._record(cid, start), name=f"nvr-{cid}")
            for cid in self.camera_roots
        ]
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for task in self._tasks:
            task.cancel()
        assert self._tg is not None
        await self._tg.__aexit__(et, exc, tb)

    def _backfill_all(self, end: datetime) -> None:
        begin = end - timedelta(days=self.backfill_days)
        for cid, root in self.camera_roots.items():
            if any(True for _ in iter_segments(root)):
                log.info("recordings of %s exist: no backfill", cid)
                continue
            self.backfilled[cid] = backfill(root, begin, end, self.backfill_segment_s)
            log.info("backfilled %d segments for %s", self.backfilled[cid], cid)

    async def _record(self, camera_id: str, first: datetime) -> None:
        root = self.camera_roots[camera_id]
        seg_start: datetime | None = first if self.camera_up(camera_id) else None
        while True:
            now = now_utc().replace(microsecond=0)
            if seg_start is None:
                if self.camera_up(camera_id):
                    seg_start = now
            elif not self.camera_up(camera_id):
                await self._write(camera_id, root, seg_start, now)
                seg_start = None
            else:
                boundary = _floor(seg_start, self.segment_s) + timedelta(seconds=self.segment_s)
                if now >= boundary:
                    await self._write(camera_id, root, seg_start, boundary)
                    seg_start = boundary
            await asyncio.sleep(1.0 - now_utc().microsecond / 1e6 + 0.01)

    async def _write(self, camera_id: str, root: Path, start: datetime, end: datetime) -> None:
        if await asyncio.to_thread(write_segment, root, start, end) is not None:
            self.written[camera_id] += 1

    # -- actions -------------------------------------------------------------------------------

    def _camera_root(self, camera_id: str) -> Path:
        root = self.camera_roots.get(camera_id)
        if root is None:
            raise ValueError(f"camera '{camera_id}' has no recordings folder in the site file")
        return root

    async def prune(self, camera_id: str, keep_days: float, now: datetime) -> int:
        return await asyncio.to_thread(
            prune, self._camera_root(camera_id), now - timedelta(days=keep_days)
        )

    async def gap(self, camera_id: str, start: datetime, end: datetime) -> int:
        return await asyncio.to_thread(cut_gap, self._camera_root(camera_id), start, end)

    async def record_call(
        self,
        phone_id: str,
        end: datetime,
        supervisors: list[str],
        recorded: bool,
        duration_s: float = 120.0,
    ) -> dict[str, Any]:
        """Write a call's JSON (and WAV); return the record as the JSON holds it."""
        end = end.astimezone(UTC)
        start = end - timedelta(seconds=duration_s)
        self._calls += 1
        call_id = f"call-{start:%Y%m%dT%H%M%S}Z-{self._calls:03d}"
        record = {
            "call": call_id,
            "start": rfc3339(start),
            "end": rfc3339(end),
            "recording": f"{call_id}.wav" if recorded else None,
            "supervisors": list(supervisors),
        }
        root = self.phone_roots.get(phone_id)
        if root is not None:
            await asyncio.to_thread(_write_call, root, call_id, record, recorded)
        return record

    def describe(self, camera_id: str) -> dict[str, Any]:
        root = self.camera_roots.get(camera_id)
        return {
            "recordings": str(root) if root else None,
            "segments_written": self.written.get(camera_id, 0),
            "backfilled": self.backfilled.get(camera_id, 0),
        }


def _write_call(root: Path, call_id: str, record: dict[str, Any], recorded: bool) -> None:
    root.mkdir(parents=True, exist_ok=True)
    if recorded:
        (root / f"{call_id}.wav").write_bytes(_silent_wav())
    # Written aside and renamed, so a reader never sees half a record.
    tmp = root / f".{call_id}.json.tmp"
    tmp.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))
    tmp.replace(root / f"{call_id}.json")


def _resolve(data_dir: Path, folder: str) -> Path:
    p = Path(folder)
    return p if p.is_absolute() else data_dir / p
