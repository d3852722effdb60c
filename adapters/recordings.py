"""Camera recording folders: `recording.inventory` events and a disk forecast (EXAM-2.7.9).

Layout (docs/devices.md, "Recording folders"):
`<recordings>/<YYYY-MM-DD>/<YYYYMMDDTHHMMSSZ>_<duration_s>.<ext>`, UTC start and length in
seconds; relative folders resolve against the data directory. Hidden files (a recorder's
temporary files) are ignored; any other name that does not fit is reported once as a
rejection.

Scanning is incremental: a day folder is re-read only when its directory mtime changes
(segments added, pruned or cut out), plus the newest day always (a growing segment changes
its size, not the directory); 100 days cost one listdir and a stat per day.

The forecast: footage the disk will hold = (free space + bytes the cameras on that file
system retain) / their combined write rate (bytes per recorded day over the last 24 h). Under
`video_retention_days` it is logged and flagged in the inventory (`forecast_days` and
`faults: ["retention_forecast_short"]`).

No folder is ever silent: a camera whose folder is missing, unreadable or holds no footage
gets an inventory with `oldest` = `newest` = the scan time (no footage reaches back at all),
`segments: 0` and a fault (`no_recordings` or `recordings_unreadable`) with the `error`, so
`video-retention` is raised. A scan is bounded: names that do not parse, times outside
[2000, 2100), non-UTF-8 names, symlink loops and unreadable day folders are rejections (at
most `MAX_REJECTIONS_PER_SCAN` a scan, the rest counted in one summary), at most
`MAX_BAD_KEPT` bad names are remembered per folder, and at most `MAX_GAPS` gaps (the newest)
are sent.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from adapters.base import EventSink, PeriodicScan, RateLimitedLog, plausible_time, printable
from policies.site import Camera, Site

log = logging.getLogger(__name__)

DAY_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", re.ASCII)
SEGMENT_RE = re.compile(
    r"^(([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z)_([0-9]{1,9})"
    r"\.[A-Za-z0-9]{1,16}$",
    re.ASCII,
)
RATE_WINDOW = timedelta(hours=24)
MAX_REJECTIONS_PER_SCAN = 50  # per camera; the rest of a scan's new bad names: one summary
MAX_BAD_KEPT = 100  # bad names remembered per folder (the rest only counted)
MAX_GAPS = 1000  # gaps sent per inventory, the newest; `gaps_total` counts them all
DiskUsage = Callable[[Path], Any]  # shutil.disk_usage: an object with .free


def rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds")


class Segment(NamedTuple):
    start: datetime
    end: datetime
    size: int


@dataclass(slots=True)
class _Day:
    mtime_ns: int
    segments: list[Segment]
    bad: list[tuple[str, str]]  # (path, reason), at most MAX_BAD_KEPT
    bad_count: int = 0  # all of them


def parse_segment_name(name: str, day: str) -> tuple[datetime, int] | str:
    """(start, duration s) of a segment file in folder `day`, or why the name is bad.

    Total: any text (including the lone surrogates of a non-UTF-8 name) gives one or the other.
    """
    m = SEGMENT_RE.match(name)
    if not m:
        return "not a segment name (<YYYYMMDDTHHMMSSZ>_<duration_s>.<ext>)"
    try:  # datetime() on the digits: several times faster than strptime
        y, mo, d, h, mi, sec = map(int, m.group(2, 3, 4, 5, 6, 7))
        start = datetime(y, mo, d, h, mi, sec, tzinfo=UTC)
    except ValueError:
        return f"impossible start time {m.group(1)}"
    if not plausible_time(start):
        return f"start time {m.group(1)} outside 2000–2099"
    duration = int(m.group(8))
    if not 0 < duration <= 86400:
        return f"duration {duration} s out of range"
    if f"{start:%Y-%m-%d}" != day:
        return f"segment starting {start:%Y-%m-%d} filed under {printable(day, 64)}"
    return start, duration


def day_problem(name: str) -> str | None:
    """Why `name` is no day folder (YYYY-MM-DD in 2000–2099), or None."""
    if not DAY_RE.match(name):
        return "not a day folder (YYYY-MM-DD)"
    try:
        day = date.fromisoformat(name)
    except ValueError:
        return "not a day folder (YYYY-MM-DD): no such date"
    if not 2000 <= day.year < 2100:
        return "day folder outside 2000–2099"
    return None


@dataclass(slots=True)
class Inventory:
    """What one scan of one camera's folder found."""

    camera: str
    segments: int = 0
    oldest: datetime | None = None
    newest: datetime | None = None
    gaps: list[tuple[datetime, datetime]] = field(default_factory=list)
    retained_bytes: int = 0
    recent_bytes: int = 0  # written in the rate window
    recent_seconds: float = 0.0  # footage covered by those bytes
    device_id: int | None = None  # st_dev of the folder: cameras on one disk share it
    new_bad: list[tuple[str, str]] = field(default_factory=list)  # to reject, capped
    new_bad_more: int = 0  # new bad names beyond the cap: one summary rejection
    bad_total: int = 0
    gaps_total: int = 0
    error: str | None = None  # why the folder could not be read at all

    @property
    def bytes_per_day(self) -> float:
        return self.recent_bytes / self.recent_seconds * 86400 if self.recent_seconds else 0.0


class FolderScanner:
    """Incremental scanner of one camera's recordings folder."""

    def __init__(self, camera: str, root: Path, max_gap_s: float) -> None:
        self.camera = camera
        self.root = root
        self.max_gap_s = max_gap_s
        self._days: dict[str, _Day] = {}
        self._reported_bad: set[str] = set()
        self.day_reads = 0  # how many day folders were (re)read: the incremental cost

    def scan(self) -> Inventory:
        inv = Inventory(self.camera)
        days: dict[str, str] = {}  # name -> path
        root_bad: list[tuple[str, str]] = []
        root_bad_count = 0
        try:
            st = self.root.stat()
            with os.scandir(self.root) as it:
                for e in it:
                    if e.name.startswith("."):
                        continue
                    problem = day_problem(e.name)
                    if problem is None and not _is_dir(e):
                        problem = "not a day folder (YYYY-MM-DD): not a readable directory"
                    if problem is None:
                        days[e.name] = e.path
                        continue
                    root_bad_count += 1
                    if len(root_bad) < MAX_BAD_KEPT:
                        root_bad.append((e.path, problem))
        except OSError as exc:
            self._days.clear()
            self._reported_bad.clear()
            inv.error = f"cannot read {printable(str(self.root))}: {exc.strerror or exc}"
            return inv
        inv.device_id = st.st_dev
        for gone in set(self._days) - set(days):
            del self._days[gone]
        newest_day = max(days) if days else None
        still_bad: set[str] = set()
        self._bad(inv, root_bad, root_bad_count, still_bad)
        for name in sorted(days):
            try:
                mtime = os.stat(days[name]).st_mtime_ns
            except OSError:
                continue  # pruned while we looked
            cached = self._days.get(name)
            if cached is None or cached.mtime_ns != mtime or name == newest_day:
                cached = self._read_day(days[name], name, mtime)
                self._days[name] = cached
            self._bad(inv, cached.bad, cached.bad_count, still_bad)
        # Forget names no longer there (bounded by what is on disk, and by MAX_BAD_KEPT).
        self._reported_bad &= still_bad
        self._summarize(inv)
        return inv

    def _read_day(self, folder: str, day: str, mtime: int) -> _Day:
        self.day_reads += 1
        result = _Day(mtime, [], [])

        def bad(path: str, reason: str) -> None:
            result.bad_count += 1
            if len(result.bad) < MAX_BAD_KEPT:
                result.bad.append((path, reason))

        try:
            with os.scandir(folder) as it:
                for e in it:
                    if e.name.startswith("."):
                        continue
                    parsed = parse_segment_name(e.name, day)
                    if isinstance(parsed, str):
                        bad(e.path, parsed)
                        continue
                    try:
                        size = e.stat().st_size
                    except FileNotFoundError:
                        continue  # pruned while we looked
                    except OSError as exc:  # a symlink loop, a dangling link
                        bad(e.path, f"cannot stat: {exc.strerror or exc}")
                        continue
                    start, duration = parsed
                    result.segments.append(
                        Segment(start, start + timedelta(seconds=duration), size)
                    )
        except FileNotFoundError:
            pass  # the day was pruned while we looked
        except OSError as exc:
            bad(folder, f"cannot read day folder: {exc.strerror or exc}")
        result.segments.sort()
        return result

    def _bad(
        self, inv: Inventory, kept: list[tuple[str, str]], count: int, still_bad: set[str]
    ) -> None:
        inv.bad_total += count
        for path, reason in kept:
            still_bad.add(path)
            if path in self._reported_bad:
                continue
            self._reported_bad.add(path)
            if len(inv.new_bad) < MAX_REJECTIONS_PER_SCAN:
                inv.new_bad.append((printable(path), reason))
            else:
                inv.new_bad_more += 1

    def _summarize(self, inv: Inventory) -> None:
        covered_to: datetime | None = None
        all_segments = [s for d in sorted(self._days) for s in self._days[d].segments]
        if not all_segments:
            return
        inv.segments = len(all_segments)
        inv.oldest = all_segments[0].start
        newest = max(s.end for s in all_segments)
        inv.newest = newest
        window_start = newest - RATE_WINDOW
        max_gap = timedelta(seconds=self.max_gap_s)
        for s in all_segments:
            if covered_to is not None and s.start - covered_to > max_gap:
                inv.gaps_total += 1
                inv.gaps.append((covered_to, s.start))
                if len(inv.gaps) > 2 * MAX_GAPS:
                    del inv.gaps[:-MAX_GAPS]  # keep the newest; amortised O(1)
            covered_to = s.end if covered_to is None else max(covered_to, s.end)
            inv.retained_bytes += s.size
            if s.start >= window_start:
                inv.recent_bytes += s.size
                inv.recent_seconds += (s.end - s.start).total_seconds()
        del inv.gaps[:-MAX_GAPS]


def _is_dir(e: os.DirEntry[str]) -> bool:
    try:
        return e.is_dir()
    except OSError:
        return False


def forecast_days(
    inventories: Iterable[Inventory], disk_usage: DiskUsage, roots: dict[str, Path]
) -> dict[str, float | None]:
    """Days of footage each camera's disk holds at the current rate (None: unknown)."""
    groups: dict[int, list[Inventory]] = {}
    for inv in inventories:
        if inv.device_id is not None:
            groups.setdefault(inv.device_id, []).append(inv)
    out: dict[str, float | None] = {}
    for members in groups.values():
        rate = sum(m.bytes_per_day for m in members)
        try:
            free = int(disk_usage(roots[members[0].camera]).free)
        except OSError:
            free = -1
        days = None
        if rate > 0 and free >= 0:
            days = (free + sum(m.retained_bytes for m in members)) / rate
        for m in members:
            out[m.camera] = days
    return out


class RecordingsWatcher(PeriodicScan):
    """Scan every camera's recordings folder each `interval_s`; emit inventories."""

    task_name = "recordings-scan"

    def __init__(
        self,
        site: Site,
        sink: EventSink,
        data_dir: str | Path,
        *,
        interval_s: float = 60.0,
        disk_usage: DiskUsage = shutil.disk_usage,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.site = site
        self.sink = sink
        self.interval_s = interval_s
        self.disk_usage = disk_usage
        self.now = now
        self.retention_days = site.policies.video_retention_days
        self.roots: dict[str, Path] = {}
        for cam in site.cameras.values():
            if cam.recordings:
                self.roots[cam.id] = resolve(data_dir, cam)
        self.scanners = {
            cid: FolderScanner(cid, root, site.policies.max_recording_gap_s)
            for cid, root in self.roots.items()
        }
        self.scans = 0
        self._short: dict[str, bool] = {}
        self._quiet = RateLimitedLog(log)

    async def scan_once(self) -> list[dict[str, Any]]:
        """Scan all folders (in a thread: file system calls block) and emit the events."""
        inventories = await asyncio.to_thread(self._scan_all)
        forecasts = await asyncio.to_thread(forecast_days, inventories, self.disk_usage, self.roots)
        ts = rfc3339(self.now())
        events: list[dict[str, Any]] = []
        for inv in inventories:
            source = f"recordings:{inv.camera}"
            for path, reason in inv.new_bad:
                self._quiet.warning(
                    f"{inv.camera}:bad", "recordings of %s: %s: %s", inv.camera, path, reason
                )
                await self.sink.reject(source, path, f"bad recording file name: {reason}")
            if inv.new_bad_more:
                await self.sink.reject(
                    source,
                    str(self.roots[inv.camera]),
                    f"bad recording file names: {inv.new_bad_more} more in this scan, "
                    f"not listed one by one ({inv.bad_total} in the folder)",
                )
            event = self._inventory_event(inv, forecasts.get(inv.camera), ts)
            events.append(event)
            await self.sink.submit(event, source=source)
        self.scans += 1
        return events

    def _scan_all(self) -> list[Inventory]:
        return [s.scan() for s in self.scanners.values()]

    def _empty_inventory(self, inv: Inventory, ts: str) -> dict[str, Any]:
        """No footage (or no folder): an inventory that reaches back no time at all.

        The event format wants `oldest` and `newest`; with both at the scan time the engine sees
        footage starting now, which is out of retention: `video-retention` is raised."""
        cam = inv.camera
        fault = "recordings_unreadable" if inv.error else "no_recordings"
        why = inv.error or f"no recordings in {printable(str(self.roots[cam]))}"
        self._quiet.on_change(logging.WARNING, f"{cam}:empty", why, "camera %s: %s", cam, why)
        return {
            "ts": ts,
            "device": cam,
            "type": "recording.inventory",
            "oldest": ts,
            "newest": ts,
            "gaps": [],
            "forecast_days": None,
            "faults": [fault, *(["bad_segment_names"] if inv.bad_total else [])],
            "segments": 0,
            "bad_names": inv.bad_total,
            "retained_bytes": 0,
            "bytes_per_day": 0,
            "stale_s": None,
            "error": why,
        }

    def _inventory_event(self, inv: Inventory, forecast: float | None, ts: str) -> dict[str, Any]:
        cam = inv.camera
        if inv.oldest is None or inv.newest is None:
            return self._empty_inventory(inv, ts)
        self._quiet.settled(
            f"{cam}:empty", "camera %s: recordings found in %s", cam, self.roots[cam]
        )
        faults: list[str] = []
        short = forecast is not None and forecast < self.retention_days
        if short:
            faults.append("retention_forecast_short")
        if short != self._short.get(cam, False):
            if short:
                log.warning(
                    "camera %s: the disk holds only %.1f days of footage at the "
                    "current rate (retention %g days)",
                    cam,
                    forecast,
                    self.retention_days,
                )
            else:
                log.info("camera %s: disk forecast back above retention", cam)
        self._short[cam] = short
        if inv.bad_total:
            faults.append("bad_segment_names")
        stale_s = max(0.0, (self.now() - inv.newest).total_seconds())
        event: dict[str, Any] = {
            "ts": ts,
            "device": cam,
            "type": "recording.inventory",
            "oldest": rfc3339(inv.oldest),
            "newest": rfc3339(inv.newest),
            "gaps": [[rfc3339(a), rfc3339(b)] for a, b in inv.gaps],
            "gaps_total": inv.gaps_total,
            "forecast_days": None if forecast is None else round(forecast, 1),
            "faults": faults,
            "segments": inv.segments,
            "bad_names": inv.bad_total,
            "retained_bytes": inv.retained_bytes,
            "bytes_per_day": round(inv.bytes_per_day),
            "stale_s": round(stale_s),  # since the newest footage ended
        }
        return event


def resolve(data_dir: str | Path, camera: Camera) -> Path:
    """A camera's recordings folder; relative paths resolve against the data directory."""
    assert camera.recordings is not None
    p = Path(camera.recordings)
    return p if p.is_absolute() else Path(data_dir) / p
