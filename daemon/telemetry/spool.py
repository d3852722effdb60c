"""The telemetry spool: points waiting for the database, on disk, in order, bounded in bytes.

A SQLite file in the data dir (`telemetry-spool.db`, WAL), one row per chunk of line
protocol (at most `batch_size` points) with its size and a CRC-32. Chunks are appended in
arrival order and written out oldest first; a chunk leaves the spool only once the database
accepted it, so a restart (or a crash) between the two finds it again.

The bound counts the bytes of the points (`spool_max_bytes`); the file is larger by SQLite's
own overhead and reuses freed pages. At the bound the *oldest* chunks go to make room —
counted and logged loudly (a chunk being written at that moment too; should that write succeed
after all, its points are written, not dropped, and the count is corrected). A file that is not a
spool (corrupt, another format) is moved aside with a log line and a fresh spool started; a
chunk whose CRC does not match is dropped, counted and logged. Nothing here raises for bad
contents: only for a disk that cannot be written (`sqlite3.OperationalError`), which the
caller handles.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

from adapters.base import RateLimitedLog
from daemon.damaged import set_aside

log = logging.getLogger("sealwatch.telemetry")
FORMAT = 1  # PRAGMA user_version of a spool file


@dataclass(frozen=True, slots=True)
class Batch:
    """The oldest chunks, to be written as one request."""

    ids: tuple[int, ...]
    lines: list[str]

    @property
    def points(self) -> int:
        return len(self.lines)


class Spool:
    """Thread-safe: the collector appends, the writer peeks and removes."""

    def __init__(self, path: Path, max_bytes: int, warning_pct: float = 80.0) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.warn_bytes = max_bytes * warning_pct / 100
        self.warned = False  # above warning_pct of the bound (logged once on the way up)
        self.bytes = 0
        self.points = 0
        self.dropped_bound = 0  # points dropped at the bound (the oldest)
        self.dropped_corrupt = 0  # points in chunks that failed their checksum
        self.corrupt_files = 0  # files moved aside as not a usable spool
        self._lock = threading.Lock()
        self._inflight: frozenset[int] = frozenset()
        self._dropped_inflight = 0  # points of the batch in flight dropped meanwhile
        self._rlog = RateLimitedLog(log, 10.0)
        self._db = self._open()

    # -- opening, and refusing what is not a spool ------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
            if version == 0 and not tables:
                db.execute(
                    "CREATE TABLE chunks (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                    "points INTEGER NOT NULL, size INTEGER NOT NULL, crc INTEGER NOT NULL, "
                    "body BLOB NOT NULL)"
                )
                db.execute(f"PRAGMA user_version={FORMAT}")
            elif version != FORMAT:
                raise sqlite3.DatabaseError(f"spool format {version}, this release reads {FORMAT}")
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {check}")
            n, size, points = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0), COALESCE(SUM(points), 0) FROM chunks"
            ).fetchone()
        except BaseException:
            db.close()
            raise
        self.bytes, self.points = int(size), int(points)
        if n:
            log.warning(
                "telemetry spool %s holds %d points (%d bytes) from before: writing them first",
                self.path,
                self.points,
                self.bytes,
            )
        return db

    def _open(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except sqlite3.OperationalError:
            raise  # cannot open or write the file (permissions, a full disk): not corruption
        except sqlite3.DatabaseError as exc:
            aside = set_aside(self.path)
            self.corrupt_files += 1
            log.error(
                "telemetry spool %s is not a usable spool (%s): moved aside to %s and started "
                "afresh; the points it held are not sent (the store still has every event)",
                self.path,
                exc,
                aside,
            )
            return self._connect()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- the collector's side ---------------------------------------------------------------

    def append(self, lines: list[str]) -> int:
        """Add one chunk at the end; the number of points dropped to stay within the bound."""
        if not lines:
            return 0
        dropped = 0
        body = "\n".join(lines).encode()
        while len(body) > self.max_bytes and len(lines) > 1:  # one chunk above the whole bound
            half = len(lines) // 2
            dropped += half
            lines = lines[half:]
            body = "\n".join(lines).encode()
        with self._lock:
            if not self.warned and self.bytes + len(body) >= self.warn_bytes:
                self._warn(self.bytes + len(body))  # before anything is dropped
            dropped += self._make_room(len(body))
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "INSERT INTO chunks (points, size, crc, body) VALUES (?, ?, ?, ?)",
                    (len(lines), len(body), zlib.crc32(body), body),
                )
            self.bytes += len(body)
            self.points += len(lines)
        if dropped:
            self.dropped_bound += dropped
            self._rlog.log(
                logging.ERROR,
                "bound",
                "telemetry spool full (%d bytes, daemon.influxdb.spool_max_bytes): dropped the "
                "%d oldest points to make room (%d dropped since start); the database has been "
                "unreachable or too slow for that long",
                self.max_bytes,
                dropped,
                self.dropped_bound,
            )
        return dropped

    def _warn(self, size: int) -> None:
        self.warned = True
        log.warning(
            "telemetry spool at %.0f%% of its bound (%d of %d bytes, %d points): the database "
            "has not kept up; at the bound the oldest points are dropped",
            size * 100 / self.max_bytes,
            size,
            self.max_bytes,
            self.points,
        )

    def _settle(self) -> None:
        if self.warned and self.bytes < self.warn_bytes * 0.9:
            self.warned = False
            log.info("telemetry spool back under the warning share of its bound")

    def _make_room(self, size: int) -> int:
        """Drop the oldest chunks until `size` more bytes fit. A chunk being written at this
        moment may go too: if that write succeeds after all, it is not counted as dropped."""
        need = self.bytes + size - self.max_bytes
        dropped = 0
        while need > 0:
            rows = self._db.execute(
                "SELECT id, points, size FROM chunks ORDER BY id LIMIT 64"
            ).fetchall()
            if not rows:
                break
            gone = []
            for cid, points, csize in rows:
                gone.append((cid, points, csize))
                need -= csize
                if need <= 0:
                    break
            self._delete([g[0] for g in gone])  # counted only once it is gone (a full disk)
            for cid, points, csize in gone:
                dropped += points
                self.bytes -= csize
                self.points -= points
                if cid in self._inflight:
                    self._dropped_inflight += points
        return dropped

    def _delete(self, ids: list[int]) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM chunks WHERE id=?", [(i,) for i in ids])

    # -- the writer's side --------------------------------------------------------------------

    def peek(self, max_points: int) -> Batch | None:
        """The oldest chunks, up to `max_points` (at least one chunk), marked as in flight."""
        with self._lock:
            ids: list[int] = []
            lines: list[str] = []
            bad: list[tuple[int, int, int]] = []
            for cid, points, size, crc, body in self._db.execute(
                "SELECT id, points, size, crc, body FROM chunks ORDER BY id LIMIT 256"
            ):
                if lines and len(lines) + points > max_points:
                    break
                text = bytes(body) if isinstance(body, bytes | memoryview) else None
                if text is None or zlib.crc32(text) != crc or len(text) != size:
                    bad.append((cid, points, size))
                    continue
                chunk = text.decode("utf-8", errors="replace").split("\n")
                ids.append(cid)
                lines += chunk
            if bad:
                self._delete([b[0] for b in bad])
                lost = sum(b[1] for b in bad)
                self.bytes -= sum(b[2] for b in bad)
                self.points -= lost
                self.dropped_corrupt += lost
                log.error(
                    "telemetry spool %s: %d chunk(s) do not match their checksum (the file was "
                    "damaged): %d points dropped",
                    self.path,
                    len(bad),
                    lost,
                )
            if not ids:
                return None
            self._inflight = frozenset(ids)
            self._dropped_inflight = 0
            return Batch(tuple(ids), lines)

    def remove(self, batch: Batch) -> None:
        """`batch` was written: it leaves the spool."""
        with self._lock:
            self._inflight = frozenset()
            self.dropped_bound -= self._dropped_inflight  # written after all
            self._dropped_inflight = 0
            marks = ",".join("?" * len(batch.ids))
            present = self._db.execute(
                f"SELECT id, points, size FROM chunks WHERE id IN ({marks})", batch.ids
            ).fetchall()
            self._delete([r[0] for r in present])
            self.bytes -= sum(r[2] for r in present)
            self.points -= sum(r[1] for r in present)
            self._settle()

    def give_back(self) -> None:
        """The batch was not written: it stays first in line (what of it was dropped at the
        bound meanwhile is gone, and stays counted)."""
        with self._lock:
            self._inflight = frozenset()
            self._dropped_inflight = 0

    @property
    def fill(self) -> float:
        return self.bytes / self.max_bytes
