"""A damaged SQLite file of the data dir (the telemetry spool, the notification outbox) is
moved aside — with its `-wal` and `-shm` — as `NAME.corrupt-TIME`, for inspection, so that a
fresh one can start in its place. The caller logs it."""

from __future__ import annotations

import time
from pathlib import Path

SUFFIX = ".corrupt-"


def set_aside(path: Path) -> Path:
    """Move `path` (and its -wal/-shm) aside; where it went."""
    aside = path.with_name(f"{path.name}{SUFFIX}{time.strftime('%Y%m%dT%H%M%S')}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            src.replace(Path(f"{aside}{suffix}"))
    return aside


def set_aside_since(path: Path, since: float) -> list[Path]:
    """The files `path` was set aside as (not their -wal/-shm) at `since` (epoch s) or later,
    by the time in their name."""
    out = []
    for p in path.parent.glob(f"{path.name}{SUFFIX}*"):
        stamp = p.name[len(path.name) + len(SUFFIX) :]
        try:
            when = time.mktime(time.strptime(stamp, "%Y%m%dT%H%M%S"))
        except ValueError:
            continue  # a -wal/-shm, or not ours
        if when >= since:
            out.append(p)
    return sorted(out)
