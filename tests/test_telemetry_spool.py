"""The telemetry spool (daemon/telemetry/spool.py) on real SQLite files: order, the bound,
restarts, and damaged files that are refused with a log line instead of a crash."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from pathlib import Path

import pytest

from daemon.telemetry.spool import Spool


def lines(start: int, n: int, width: int = 40) -> list[str]:
    return [f"m,site=s f={i}i {i}".ljust(width, " ") for i in range(start, start + n)]


def drain(spool: Spool, batch: int = 7) -> list[str]:
    out: list[str] = []
    while (b := spool.peek(batch)) is not None:
        out += b.lines
        spool.remove(b)
    return out


def test_chunks_come_out_in_order_and_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = Spool(path, 10_000_000)
    for i in range(0, 100, 5):
        spool.append(lines(i, 5))
    first = spool.peek(12)
    assert first is not None and first.points == 10  # whole chunks, up to the batch size
    spool.give_back()  # a failed write: it stays first in line
    spool.close()
    again = Spool(path, 10_000_000)
    assert again.points == 100
    assert drain(again) == lines(0, 100)
    assert (again.points, again.bytes) == (0, 0)
    again.close()


def test_the_bound_drops_the_oldest_and_counts_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path / "spool.db", 4000, 80)  # 4000 bytes: ~97 lines of 41 bytes
    with caplog.at_level(logging.WARNING, "sealwatch.telemetry"):
        dropped = sum(spool.append(lines(i, 10)) for i in range(0, 200, 10))
    # the warning came first, at 80 %, before anything was dropped
    (first, *_) = [r for r in caplog.records if "telemetry spool" in r.message]
    assert first.levelno == logging.WARNING and "of its bound" in first.message
    assert spool.warned
    assert dropped == spool.dropped_bound > 0
    assert spool.bytes <= 4000
    kept = drain(spool, 1000)
    assert kept == lines(200 - len(kept), len(kept))  # the newest, in order
    assert len(kept) + dropped == 200
    assert "telemetry spool full" in caplog.text and "oldest" in caplog.text
    assert not spool.warned  # drained: back under the warning share
    spool.close()


def test_at_the_bound_the_oldest_go_even_while_being_written(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", 1000)
    spool.append(lines(0, 10))
    spool.append(lines(10, 10))
    inflight = spool.peek(10)
    assert inflight is not None
    spool.append(lines(20, 10))  # over the bound: the oldest (in flight) chunk goes
    assert spool.dropped_bound == 10
    spool.give_back()  # its write failed: it is gone, and counted
    assert drain(spool) == lines(10, 20) and spool.dropped_bound == 10
    spool.append(lines(30, 10))
    spool.append(lines(40, 10))
    inflight = spool.peek(10)
    spool.append(lines(50, 10))
    assert inflight is not None and spool.dropped_bound == 20
    spool.remove(inflight)  # its write succeeded after all: not dropped
    assert spool.dropped_bound == 10
    assert drain(spool) == lines(40, 20)


def test_one_chunk_above_the_whole_bound_keeps_its_newest_points(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", 1000)
    dropped = spool.append(lines(0, 100))
    kept = drain(spool, 1000)
    assert dropped + len(kept) == 100 and kept == lines(100 - len(kept), len(kept))


@pytest.mark.parametrize(
    "damage",
    [
        b"this is not a database at all" * 100,
        b"SQLite format 3\x00" + b"\xff" * 4000,
    ],
)
def test_a_damaged_file_is_moved_aside_with_a_log_and_a_fresh_spool_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: bytes
) -> None:
    path = tmp_path / "spool.db"
    path.write_bytes(damage)
    with caplog.at_level(logging.ERROR, "sealwatch.telemetry"):
        spool = Spool(path, 100_000)
    assert spool.corrupt_files == 1
    assert "not a usable spool" in caplog.text
    aside = list(tmp_path.glob("spool.db.corrupt-*"))
    assert [p.read_bytes() for p in aside if not p.name.endswith(("-wal", "-shm"))] == [damage]
    spool.append(lines(0, 3))
    assert drain(spool) == lines(0, 3)


def test_a_spool_of_another_format_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "spool.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE other (x)")
        db.execute("PRAGMA user_version=7")
        db.commit()
    with caplog.at_level(logging.ERROR, "sealwatch.telemetry"):
        spool = Spool(path, 100_000)
    assert spool.corrupt_files == 1 and "spool format 7" in caplog.text
    spool.close()


def test_a_chunk_that_fails_its_checksum_is_dropped_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "spool.db"
    spool = Spool(path, 100_000)
    for i in range(0, 9, 3):
        spool.append(lines(i, 3))
    spool.close()
    with contextlib.closing(sqlite3.connect(path)) as db:  # a flipped byte in the middle chunk
        (body,) = db.execute("SELECT body FROM chunks WHERE id=2").fetchone()
        db.execute("UPDATE chunks SET body=? WHERE id=2", (b"X" + bytes(body)[1:],))
        db.commit()
    spool = Spool(path, 100_000)
    with caplog.at_level(logging.ERROR, "sealwatch.telemetry"):
        got = drain(spool)
    assert got == lines(0, 3) + lines(6, 3)
    assert spool.dropped_corrupt == 3 and "checksum" in caplog.text
    assert (spool.points, spool.bytes) == (0, 0)
    spool.close()
