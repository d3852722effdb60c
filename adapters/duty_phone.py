"""Duty-phone recorder folders → `call.recorded` events (EXAM-2.8.10).

The recorder leaves `<recordings>/<CALLID>.json` = {"call", "start", "end", "recording":
"<CALLID>.wav" or null, "supervisors": [badges]} (docs/devices.md). Each call is emitted
once: the ids already emitted are kept in a small state file in the data directory, so a
restart does not emit them again. A recording named but missing on disk is reported as
`recording: null` (the call was not recorded as far as anyone can prove). A file that is not
a valid call record is rejected once (again only if it changes).

The event's `ts` is when the call was found, not when it ended: the daemon takes events in
time order, and a call found a few seconds late must not be refused as out of order. The
call's own times are in `start` and `end`.

Whatever is in the folder, a scan ends: a file over `MAX_CALL_BYTES`, not a regular file (a
FIFO would block the read forever, a device never end), not UTF-8 JSON, of the wrong shape or
types, with times outside [2000, 2100), or gone while read, is a rejection (or skipped when
gone) with the reason; file names that are not UTF-8 are written with backslash escapes. A state
file that cannot be written is retried at the next scan (logged on the change).
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from adapters.base import EventSink, PeriodicScan, RateLimitedLog, plausible_time, printable
from policies.site import Site, parse_time

log = logging.getLogger(__name__)

STATE_FILE = "duty_phone_calls.json"
MAX_CALL_BYTES = 64 * 1024  # a call record is a few hundred bytes


class BadCall(ValueError):
    """A call record that cannot become an event."""


@dataclass(frozen=True, slots=True)
class Call:
    call: str
    start: str
    end: str
    recording: str | None
    supervisors: list[str]


def _short(value: Any) -> str:
    """A value for a reason: repr, valid UTF-8, at most about 80 characters."""
    return printable(repr(value), 80)


def _time(d: dict[str, Any], key: str) -> datetime:
    value = d[key]
    if not isinstance(value, str):
        raise BadCall(f"{key} must be an RFC 3339 time, got {type(value).__name__}")
    try:
        t = parse_time(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise BadCall(f"bad time in {key}: {printable(str(exc), 120)}") from exc
    if not plausible_time(t):
        raise BadCall(f"{key} {_short(value)} is outside 2000–2099")
    return t


def parse_call(raw: bytes, stem: str) -> Call:
    """Validate one call record; BadCall says what is wrong, and nothing else is raised."""
    if len(raw) > MAX_CALL_BYTES:
        raise BadCall(f"{len(raw)} bytes (a call record has at most {MAX_CALL_BYTES})")
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadCall(f"not valid JSON: {printable(str(exc), 120)}") from exc
    if not isinstance(d, dict):
        raise BadCall(f"expected an object, got {type(d).__name__}")
    missing = [k for k in ("call", "start", "end", "supervisors") if k not in d]
    if missing:
        raise BadCall(f"missing {', '.join(missing)}")
    if d["call"] != stem:
        raise BadCall(f"call id {_short(d['call'])} does not match the file name {_short(stem)}")
    start, end = _time(d, "start"), _time(d, "end")
    if end < start:
        raise BadCall("end before start")
    sup = d["supervisors"]
    if not isinstance(sup, list) or not all(isinstance(b, str) and b for b in sup):
        raise BadCall("supervisors must be a list of badges")
    rec = d.get("recording")
    if rec is not None and (
        not isinstance(rec, str) or not rec or "/" in rec or "\\" in rec or rec.startswith(".")
    ):
        raise BadCall(f"recording must be a file name in the folder or null, got {_short(rec)}")
    return Call(stem, d["start"], d["end"], rec, list(sup))


def read_capped(path: str, limit: int) -> bytes:
    """Up to `limit` + 1 bytes of a regular file; BadCall if it is no regular file.

    Opened non-blocking and checked after opening, so a FIFO or device put in place of a
    file between listing and reading cannot block the scan.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BadCall("not a regular file")
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0 and (chunk := os.read(fd, min(left, 65536))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class CallLedger:
    """Which calls were emitted and which bad files were rejected, kept on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.emitted: dict[str, set[str]] = {}
        self.rejected: dict[str, str] = {}  # file path -> signature when rejected
        self._dirty = False
        try:
            data = orjson.loads(path.read_bytes())
            if not isinstance(data, dict):
                raise ValueError(f"expected an object, got {type(data).__name__}")
            emitted, rejected = data.get("emitted", {}), data.get("rejected", {})
            if not isinstance(emitted, dict) or not isinstance(rejected, dict):
                raise ValueError("'emitted' and 'rejected' must be objects")
            # Entries of the wrong type are dropped, not trusted: they would break `save`.
            self.emitted = {
                k: {c for c in v if isinstance(c, str)}
                for k, v in emitted.items()
                if isinstance(v, list)
            }
            self.rejected = {k: v for k, v in rejected.items() if isinstance(v, str)}
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
            # A corrupt ledger means calls may be emitted again: a duplicate beats a miss.
            log.warning("duty-phone state %s unreadable (%s); starting afresh", path, exc)

    def seen(self, phone: str, call: str) -> bool:
        return call in self.emitted.get(phone, ())

    def mark(self, phone: str, call: str) -> None:
        self.emitted.setdefault(phone, set()).add(call)
        self._dirty = True

    def reject(self, path: str, signature: str) -> None:
        self.rejected[path] = signature
        self._dirty = True

    def forget_rejected(self, keep: set[str], folder: str) -> None:
        """Drop remembered rejections of files in `folder` that are gone (bounds the file)."""
        prefix = folder.rstrip(os.sep) + os.sep
        for path in [p for p in self.rejected if p.startswith(prefix) and p not in keep]:
            del self.rejected[path]
            self._dirty = True

    def save(self) -> None:
        if not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_bytes(
            orjson.dumps(
                {
                    "emitted": {k: sorted(v) for k, v in self.emitted.items()},
                    "rejected": self.rejected,
                }
            )
        )
        tmp.replace(self.path)  # never half a ledger
        self._dirty = False


class DutyPhoneWatcher(PeriodicScan):
    """Look for new call records every `interval_s`; emit each call once."""

    task_name = "duty-phone-scan"

    def __init__(
        self,
        site: Site,
        sink: EventSink,
        data_dir: str | Path,
        *,
        interval_s: float = 5.0,
        state_path: Path | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sink = sink
        self.interval_s = interval_s
        self.now = now
        self.folders: dict[str, Path] = {}
        for phone in site.duty_phones.values():
            if phone.recordings:
                p = Path(phone.recordings)
                self.folders[phone.id] = p if p.is_absolute() else Path(data_dir) / p
        self.ledger = CallLedger(state_path or Path(data_dir) / STATE_FILE)
        self._quiet = RateLimitedLog(log)
        self.save_error: str | None = None  # why the state file could not be written

    async def scan_once(self) -> list[dict[str, Any]]:
        """Emit every call not emitted before; reject bad records. Returns the events."""
        found = await asyncio.to_thread(self._collect)
        events: list[dict[str, Any]] = []
        for phone, items in found.items():
            source = f"duty_phone:{phone}"
            for item in items:
                if isinstance(item, tuple):
                    path, signature, reason = item
                    self._quiet.warning(
                        f"{phone}:bad", "duty phone %s: %s: %s", phone, path, reason
                    )
                    await self.sink.reject(source, path, f"bad call record: {reason}")
                    self.ledger.reject(path, signature)
                    continue
                event = {
                    "ts": self.now().astimezone(UTC).isoformat(timespec="milliseconds"),
                    "device": phone,
                    "type": "call.recorded",
                    "start": item.start,
                    "end": item.end,
                    "recording": item.recording,
                    "supervisors": item.supervisors,
                    "call": item.call,
                }
                await self.sink.submit(event, source=source)
                self.ledger.mark(phone, item.call)
                events.append(event)
        # Saved after submitting: a crash in between emits a call twice, never zero times.
        try:
            await asyncio.to_thread(self.ledger.save)
        except OSError as exc:
            # Kept in memory and tried again next scan; a restart meanwhile repeats calls.
            self.save_error = f"cannot write {self.ledger.path}: {exc.strerror or exc}"
            self._quiet.on_change(logging.WARNING, "save", self.save_error, "%s", self.save_error)
        else:
            if self.save_error is not None:
                self.save_error = None
                self._quiet.settled("save", "duty-phone state %s written again", self.ledger.path)
        return events

    def _collect(self) -> dict[str, list[Call | tuple[str, str, str]]]:
        out: dict[str, list[Call | tuple[str, str, str]]] = {}
        for phone, folder in self.folders.items():
            calls: list[Call] = []
            bad: list[tuple[str, str, str]] = []
            try:
                with os.scandir(folder) as it:
                    entries = [e for e in it if not e.name.startswith(".")]
            except OSError as exc:
                why = f"cannot read {printable(str(folder))}: {exc.strerror or exc}"
                self._quiet.on_change(
                    logging.WARNING, f"{phone}:folder", why, "duty phone %s: %s", phone, why
                )
                continue
            self._quiet.settled(f"{phone}:folder", "duty phone %s: folder readable again", phone)
            names = {e.name for e in entries}
            paths: set[str] = set()
            for e in entries:
                if not e.name.endswith(".json"):
                    continue
                stem = e.name[:-5]
                path = printable(e.path, 4096)  # a key and a payload: valid UTF-8
                paths.add(path)
                if self.ledger.seen(phone, stem):
                    continue
                try:
                    st = e.stat()
                    signature = f"{st.st_mtime_ns}:{st.st_size}"
                    if self.ledger.rejected.get(path) == signature:
                        continue
                    if not stat.S_ISREG(st.st_mode):
                        raise BadCall("not a regular file")
                    if st.st_size > MAX_CALL_BYTES:
                        raise BadCall(
                            f"{st.st_size} bytes (a call record has at most {MAX_CALL_BYTES})"
                        )
                    call = parse_call(read_capped(e.path, MAX_CALL_BYTES), stem)
                except BadCall as exc:
                    bad.append((path, signature, str(exc)))
                    continue
                except FileNotFoundError:
                    continue  # removed while we looked
                except OSError as exc:  # a symlink loop, permission denied
                    why = f"cannot read: {exc.strerror or exc}"
                    if self.ledger.rejected.get(path) != f"error:{why}":
                        bad.append((path, f"error:{why}", why))
                    continue
                if call.recording is not None and call.recording not in names:
                    log.warning(
                        "duty phone %s: call %s names recording %s, which is not "
                        "on disk: reported as not recorded",
                        phone,
                        stem,
                        call.recording,
                    )
                    call = Call(call.call, call.start, call.end, None, call.supervisors)
                calls.append(call)
            calls.sort(key=lambda c: (parse_time(c.start), c.call))
            self.ledger.forget_rejected(paths, printable(str(folder), 4096))
            out[phone] = [*bad, *calls]
        return out
