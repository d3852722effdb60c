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
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from adapters.base import EventSink, PeriodicScan, RateLimitedLog
from policies.site import Site, parse_time

log = logging.getLogger(__name__)

STATE_FILE = "duty_phone_calls.json"


class BadCall(ValueError):
    """A call record that cannot become an event."""


@dataclass(frozen=True, slots=True)
class Call:
    call: str
    start: str
    end: str
    recording: str | None
    supervisors: list[str]


def parse_call(raw: bytes, stem: str) -> Call:
    """Validate one call record; BadCall says what is wrong."""
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadCall(f"not valid JSON: {exc}") from exc
    if not isinstance(d, dict):
        raise BadCall(f"expected an object, got {type(d).__name__}")
    missing = [k for k in ("call", "start", "end", "supervisors") if k not in d]
    if missing:
        raise BadCall(f"missing {', '.join(missing)}")
    if d["call"] != stem:
        raise BadCall(f"call id {d['call']!r} does not match the file name {stem!r}")
    try:
        start, end = parse_time(d["start"]), parse_time(d["end"])
    except (ValueError, TypeError) as exc:
        raise BadCall(f"bad time: {exc}") from exc
    if end < start:
        raise BadCall("end before start")
    sup = d["supervisors"]
    if not isinstance(sup, list) or not all(isinstance(b, str) and b for b in sup):
        raise BadCall("supervisors must be a list of badges")
    rec = d.get("recording")
    if rec is not None and (
        not isinstance(rec, str) or not rec or "/" in rec or "\\" in rec or rec.startswith(".")
    ):
        raise BadCall(f"recording must be a file name in the folder or null, got {rec!r}")
    return Call(stem, d["start"], d["end"], rec, list(sup))


class CallLedger:
    """Which calls were emitted and which bad files were rejected, kept on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.emitted: dict[str, set[str]] = {}
        self.rejected: dict[str, str] = {}  # file path -> signature when rejected
        self._dirty = False
        try:
            data = orjson.loads(path.read_bytes())
            self.emitted = {k: set(v) for k, v in data.get("emitted", {}).items()}
            self.rejected = dict(data.get("rejected", {}))
        except FileNotFoundError:
            pass
        except (OSError, orjson.JSONDecodeError, AttributeError, TypeError) as exc:
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
        await asyncio.to_thread(self.ledger.save)
        return events

    def _collect(self) -> dict[str, list[Call | tuple[str, str, str]]]:
        out: dict[str, list[Call | tuple[str, str, str]]] = {}
        for phone, folder in self.folders.items():
            calls: list[Call] = []
            bad: list[tuple[str, str, str]] = []
            try:
                entries = list(os.scandir(folder))
            except OSError:
                self._quiet.warning(f"{phone}:folder", "duty phone %s: no folder %s", phone, folder)
                continue
            names = {e.name for e in entries}
            for e in entries:
                if e.name.startswith(".") or not e.name.endswith(".json"):
                    continue
                stem = e.name[:-5]
                if self.ledger.seen(phone, stem):
                    continue
                try:
                    st = e.stat()
                    signature = f"{st.st_mtime_ns}:{st.st_size}"
                    if self.ledger.rejected.get(e.path) == signature:
                        continue
                    raw = Path(e.path).read_bytes()
                except OSError:
                    continue  # removed while we looked
                try:
                    call = parse_call(raw, stem)
                except BadCall as exc:
                    bad.append((e.path, signature, str(exc)))
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
            out[phone] = [*bad, *calls]
        return out
