"""Camera recording folders on real temp directories."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.recordings import FolderScanner, RecordingsWatcher
from policies.site import Site, parse_site
from tests.support.collecting_sink import CollectingSink

NOW = datetime(2027, 5, 25, 6, 0, tzinfo=UTC)


def site(extra_policies: str = "") -> Site:
    return parse_site(f"""
site: {{id: rec-test, name: Recording test}}
zones: [{{id: press-hall, kind: sealed_work}}, {{id: belt, kind: buffer}}]
cameras:
  - {{id: cam-press, zone: press-hall, recordings: nvr/cam-press}}
  - {{id: cam-belt, zone: belt, recordings: nvr/cam-belt}}
  - {{id: cam-nothing, zone: belt}}
policies: {{max_recording_gap_s: 60, video_retention_days: 90 {extra_policies}}}
""")


def write_segments(root: Path, start: datetime, end: datetime, seg_s: int, size: int = 16) -> int:
    """Contiguous segments from start to end, as an NVR files them."""
    n, t = 0, start
    while t < end:
        folder = root / f"{t:%Y-%m-%d}"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{t:%Y%m%dT%H%M%SZ}_{seg_s}.mp4", "wb") as f:
            f.truncate(size)  # sparse: the apparent size is what the forecast counts
        n += 1
        t += timedelta(seconds=seg_s)
    return n


def test_hundred_days_inventory_and_only_changed_days_are_reread(tmp_path: Path) -> None:
    root = tmp_path / "cam"
    n = write_segments(root, NOW - timedelta(days=100), NOW, 3600)
    scanner = FolderScanner("cam", root, max_gap_s=60)
    inv = scanner.scan()
    assert inv.segments == n == 2400
    assert inv.oldest == NOW - timedelta(days=100)
    assert inv.newest == NOW
    assert inv.gaps == []
    assert scanner.day_reads == 101  # 100 days from 06:00 touch 101 dates

    scanner.scan()
    assert scanner.day_reads == 102  # only the newest day again

    # Cut two hours out of an old day: only that day (and the newest) are read again.
    old_day = root / "2027-03-01"
    for name in sorted(os.listdir(old_day))[10:12]:
        (old_day / name).unlink()
    inv = scanner.scan()
    assert scanner.day_reads == 104
    assert inv.gaps == [
        (datetime(2027, 3, 1, 10, tzinfo=UTC), datetime(2027, 3, 1, 12, tzinfo=UTC))
    ]

    # Pruning whole days moves `oldest` and drops them from the cache.
    for day in sorted(os.listdir(root))[:10]:
        shutil.rmtree(root / day)
    inv = scanner.scan()
    assert inv.oldest == datetime(2027, 2, 24, tzinfo=UTC)


def test_a_gap_up_to_the_limit_is_not_reported(tmp_path: Path) -> None:
    root = tmp_path / "cam"
    write_segments(root, NOW - timedelta(hours=1), NOW - timedelta(minutes=30), 60)
    write_segments(root, NOW - timedelta(minutes=29), NOW - timedelta(minutes=10), 60)  # 60 s
    write_segments(root, NOW - timedelta(minutes=8), NOW, 60)  # 61+ s: 120 s gap
    inv = FolderScanner("cam", root, max_gap_s=60).scan()
    assert inv.gaps == [(NOW - timedelta(minutes=10), NOW - timedelta(minutes=8))]


def test_missing_folder_gives_an_empty_inventory(tmp_path: Path) -> None:
    inv = FolderScanner("cam", tmp_path / "nope", max_gap_s=60).scan()
    assert inv.segments == 0 and inv.oldest is None


async def test_watcher_emits_inventories_with_gaps_and_rejects_bad_names_once(
    tmp_path: Path,
) -> None:
    press = tmp_path / "nvr" / "cam-press"
    write_segments(press, NOW - timedelta(days=3), NOW - timedelta(hours=2), 600)
    write_segments(press, NOW - timedelta(hours=1), NOW, 600)
    (press / "notes").mkdir()
    (press / "2027-05-24" / "garbage.txt").write_text("x")
    (press / "2027-05-24" / "20270523T000000Z_600.mp4").write_text("x")  # wrong day folder
    (press / "2027-05-24" / "20270524T000000Z_0.mp4").write_text("x")
    (press / "2027-05-24" / ".20270524T235000Z_600.mp4.tmp").write_text("x")  # ignored
    sink = CollectingSink()
    watcher = RecordingsWatcher(site(), sink, tmp_path, now=lambda: NOW)
    events = await watcher.scan_once()
    await watcher.scan_once()

    # cam-belt has a folder in the site file but no footage (not even the folder): an
    # inventory reaching back no time at all, so that video-retention is raised.
    assert [e["device"] for e in events] == ["cam-press", "cam-belt"]
    empty = events[1]
    assert empty["oldest"] == empty["newest"] == empty["ts"] == "2027-05-25T06:00:00+00:00"
    assert (empty["segments"], empty["gaps"], empty["faults"]) == (0, [], ["recordings_unreadable"])
    assert "cam-belt" in empty["error"]
    inv = events[0]
    assert inv["type"] == "recording.inventory"
    assert inv["oldest"] == "2027-05-22T06:00:00+00:00"
    assert inv["newest"] == "2027-05-25T06:00:00+00:00"
    assert inv["gaps"] == [["2027-05-25T04:00:00+00:00", "2027-05-25T05:00:00+00:00"]]
    assert inv["faults"] == ["bad_segment_names"]
    assert inv["stale_s"] == 0
    reasons = sorted(r for _, _, r in sink.rejections)
    assert len(reasons) == 4  # each bad name once, though scanned twice
    assert any("not a day folder" in r for r in reasons)
    assert any("filed under 2027-05-24" in r for r in reasons)
    assert any("duration 0 s" in r for r in reasons)
    assert all(src == "recordings:cam-press" for src, _, _ in sink.rejections)


async def test_forecast_under_retention_is_flagged(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    press = tmp_path / "nvr" / "cam-press"
    # Sparse segments claiming free/10 bytes a day: the disk would hold about 10 days.
    per_segment = free // 10 // 144
    write_segments(press, NOW - timedelta(days=1), NOW, 600, size=per_segment)
    sink = CollectingSink()
    events = await RecordingsWatcher(site(), sink, tmp_path, now=lambda: NOW).scan_once()
    assert "retention_forecast_short" in events[0]["faults"]
    assert 9.0 < events[0]["forecast_days"] < 13.0


async def test_forecast_shares_the_disk_between_cameras(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    per_segment = free // 200 // 144  # each camera alone: ~200 days; together ~100
    for cam in ("cam-press", "cam-belt"):
        write_segments(tmp_path / "nvr" / cam, NOW - timedelta(days=1), NOW, 600, size=per_segment)
    events = await RecordingsWatcher(
        site(), CollectingSink(), tmp_path, now=lambda: NOW
    ).scan_once()
    for e in events:
        assert 95.0 < e["forecast_days"] < 106.0
        assert e["faults"] == []


@pytest.mark.slow
async def test_watcher_runs_on_its_schedule(tmp_path: Path) -> None:
    write_segments(tmp_path / "nvr" / "cam-press", NOW - timedelta(hours=1), NOW, 600)
    sink = CollectingSink()
    async with RecordingsWatcher(site(), sink, tmp_path, interval_s=0.01):
        await sink.wait_for(lambda s: len(s.of_type("recording.inventory")) >= 3)
