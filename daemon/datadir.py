"""The data dir belongs to one daemon at a time: an exclusive `flock` on DATA_DIR/sealwatch.lock.

    with DataDirLock(settings.data_dir):   # DataDirInUse if another process holds it
        ...                                # the daemon's whole lifetime

The kernel drops the lock with the process (also on `kill -9`), so a stale file never blocks a
start; the file only says which pid holds it. Taking the lock again in the same process (the
`run` command and the runtime both take it) nests instead of deadlocking.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
from pathlib import Path
from types import TracebackType

LOCK_FILE = "sealwatch.lock"

_held: dict[Path, tuple[int, int]] = {}  # lock file -> (fd, depth) held by this process
_held_guard = threading.Lock()


class DataDirInUse(Exception):
    """Another process holds the data dir's lock."""

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        who = f"pid {pid}" if pid else "a process that has not written its pid yet"
        super().__init__(f"data dir {data_dir} is in use by another sealwatch ({who})")
        self.data_dir = data_dir
        self.pid = pid


class DataDirLock:
    """An exclusive lock on `data_dir/name` for the `with` block (created with the dir)."""

    def __init__(self, data_dir: Path, name: str = LOCK_FILE) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / name
        self._key: Path | None = None

    def acquire(self) -> None:
        """Take the lock without waiting; DataDirInUse if taken, OSError if the dir is unusable."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = self.path.resolve()
        with _held_guard:
            if key in _held:
                fd, depth = _held[key]
                _held[key] = (fd, depth + 1)
                self._key = key
                return
            try:
                fd = os.open(key, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                # A read-only file system: an existing lock file still takes a flock.
                if exc.errno != errno.EROFS or not key.exists():
                    raise
                fd = os.open(key, os.O_RDONLY | os.O_CLOEXEC)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise DataDirInUse(self.data_dir, _read_pid(key)) from None
                raise
            # The pid only helps the message of a refused second start: on a full disk the
            # lock (the flock) still holds and the daemon must still start.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
            _held[key] = (fd, 1)
            self._key = key

    def release(self) -> None:
        key, self._key = self._key, None
        if key is None:
            return
        with _held_guard:
            fd, depth = _held[key]
            if depth > 1:
                _held[key] = (fd, depth - 1)
                return
            del _held[key]
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # the pid goes; the file may stay
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def holder(data_dir: Path, name: str = LOCK_FILE) -> int | None:
    """The pid holding `data_dir/name` (0 if it has not written it yet), or None when free."""
    path = Path(data_dir) / name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        with _held_guard:
            if path.resolve() in _held:
                return os.getpid()
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(path) or 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None
