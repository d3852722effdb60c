"""Online backup and restore of the store (docs/deploy.md, "Backup, restore, upgrade").

`take(db, out)` copies the store with SQLite's backup API from a read connection of its own
while the daemon goes on writing (WAL: a reader never blocks the writer). The copy is made
inside one read transaction, so it is the store as of one commit, however long it takes; it
goes in steps of `pages` pages with a pause between them, so the copy's reads do not crowd
out the daemon's. The copy is good only once `PRAGMA integrity_check` passes and the ledger
verifies (`audit.verify`); then it is renamed into place. `restore(backup, db)` verifies the
same way before putting a backup in place and keeps the old store aside.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from daemon import audit
from daemon.store import SCHEMA_VERSION, migrate, schema_version

SIDE_FILES = ("-wal", "-shm")


class BackupError(Exception):
    """The backup (or the file to restore) is not good; nothing was put in place."""


@dataclass(frozen=True, slots=True)
class Checked:
    """What a verified store file holds: its ledger head and how much it covers."""

    audit_seq: int
    audit_hash: str
    events: int
    last_event_seq: int
    schema_version: int


def check(path: Path) -> Checked:
    """`PRAGMA integrity_check` and the ledger of the store file at `path`; BackupError if
    either fails. Read-only: the file is not changed. A store of an older schema (a backup
    taken before an upgrade) is checked through a migrated copy, as the daemon would open it."""
    version = _schema_of(path)
    if version < SCHEMA_VERSION:
        with tempfile.TemporaryDirectory(prefix="sealwatch-check-") as tmp:
            copy = Path(tmp) / "store.db"
            shutil.copyfile(path, copy)
            conn = sqlite3.connect(copy, isolation_level=None)
            try:
                migrate(conn)
            except sqlite3.DatabaseError as exc:
                raise BackupError(f"{path}: cannot upgrade from schema {version}: {exc}") from None
            finally:
                conn.close()
            return dataclasses.replace(_check(copy, path), schema_version=version)
    return _check(path, path)


def _schema_of(path: Path) -> int:
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return schema_version(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path}: not a sealwatch store: {exc}") from None


def _check(path: Path, name: Path) -> Checked:
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupError(f"{name}: cannot open: {exc}") from None
    try:
        problems = [str(r[0]) for r in conn.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise BackupError(f"{name}: integrity check failed: {'; '.join(problems[:5])}")
        verdict = audit.verify(conn)
        if not verdict.ok:
            raise BackupError(f"{name}: {verdict.describe()}")
        head = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        events, last = conn.execute("SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM events").fetchone()
        version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return Checked(
            int(head[0]) if head else 0,
            str(head[1]) if head else audit.GENESIS,
            int(events),
            int(last),
            int(version[0]) if version else 1,
        )
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{name}: not a sealwatch store: {exc}") from None
    finally:
        conn.close()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def take(db: Path, out: Path, pages: int = 1024, pause_s: float = 0.005) -> Checked:
    """Copy the live store `db` to `out` and verify the copy; BackupError if it is not good
    (then `out` is untouched)."""
    if not db.exists():
        raise BackupError(f"no store at {db}")
    part = out.with_name(out.name + ".part")
    part.unlink(missing_ok=True)
    src = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    dst = sqlite3.connect(part, isolation_level=None)
    try:
        src.execute("PRAGMA busy_timeout=5000")
        # One read transaction for the whole copy: every step reads the same snapshot, so
        # the daemon's commits meanwhile neither restart the copy nor get into it halfway.
        src.execute("BEGIN")
        src.execute("SELECT COUNT(*) FROM meta").fetchone()
        src.backup(dst, pages=pages, sleep=pause_s)
        src.execute("COMMIT")
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    except sqlite3.Error as exc:
        dst.close()
        part.unlink(missing_ok=True)
        raise BackupError(f"the copy of {db} failed: {exc}") from None
    finally:
        src.close()
    dst.close()
    try:
        checked = check(part)
    except BackupError:
        part.unlink(missing_ok=True)
        raise
    _fsync(part)
    part.replace(out)
    return checked


def restore(backup: Path, db: Path) -> tuple[Checked, Path | None]:
    """Put a verified `backup` in place of the store `db` (the daemon must be stopped: the
    caller holds the data dir's lock). The old store, with its WAL, is renamed aside (its
    new name is returned) — never deleted."""
    checked = check(backup)
    part = db.with_name(db.name + ".restoring")
    with open(backup, "rb") as src, open(part, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    try:
        check(part)  # the copy, too
    except BackupError:
        part.unlink(missing_ok=True)
        raise
    aside: Path | None = None
    if db.exists():
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = db.with_name(f"{db.name}.before-restore-{stamp}")
        db.replace(aside)
        for suffix in SIDE_FILES:
            side = db.with_name(db.name + suffix)
            if side.exists():
                side.replace(aside.with_name(aside.name + suffix))
    else:
        for suffix in SIDE_FILES:
            with contextlib.suppress(FileNotFoundError):
                db.with_name(db.name + suffix).unlink()
    part.replace(db)
    return checked, aside
