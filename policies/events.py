"""Normalized events (CONTRACT §2) as typed values, and the one parser that makes them.

`parse_event` takes a JSON object and returns an `Event` or a `Rejection` with a reason; it
never raises, whatever the input (any JSON value in any field, or any Python value a caller
puts in the dict). What it accepts is bounded so that nothing downstream can fail on it: times
inside the plausible range of `policies.timefmt` (2000 to 2100), finite numbers in physical
ranges, texts of limited length that can be written as UTF-8. Unknown extra fields are kept in
`source` and otherwise ignored, so gateways may add fields freely.

`daemon.health` is the daemon's report on itself; it comes from the reserved device id
`DAEMON_DEVICE` (`sealwatch`), which no site may define and which sends nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import tzinfo
from typing import Any, Final

import orjson

from policies.site import RESERVED_DEVICE_ID, Site, suggest
from policies.timefmt import (
    EARLIEST_US,
    LATEST_US,
    format_ts,
    implausible_reason,
    parse_ts,
)


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str


@dataclass(slots=True)
class Event:
    ts: int
    device: str
    type: str
    source: dict[str, Any] = field(repr=False, compare=False)

    def restamped(self, ts_us: int, tz: tzinfo) -> Event:
        """The same event at another time; the original time is kept as `device_ts`."""
        src = dict(self.source)
        src.setdefault("device_ts", src["ts"])
        src["ts"] = format_ts(ts_us, tz)
        return replace(self, ts=ts_us, source=src)


@dataclass(slots=True)
class DoorEvent(Event):
    pass


@dataclass(slots=True)
class BadgeEvent(Event):
    badge: str = ""
    direction: str = "in"
    reason: str | None = None


@dataclass(slots=True)
class AlarmInputEvent(Event):
    state: str = "normal"


@dataclass(slots=True)
class AlarmPanelEvent(Event):
    armed: bool | None = None
    mains: str | None = None
    battery: str | None = None
    tamper: bool | None = None


@dataclass(slots=True)
class JammerStatus(Event):
    output: bool = True
    bands: dict[str, float] = field(default_factory=dict)
    faults: tuple[str, ...] = ()
    temperature_c: float | None = None


@dataclass(slots=True)
class CameraStatus(Event):
    stream: str = "up"
    tamper: str | None = None
    fps: float | None = None


@dataclass(slots=True)
class CameraObject(Event):
    """camera.object: a video analytics system (e.g. Frigate) saw an object on this camera."""

    label: str = ""  # person, car …
    zones: tuple[str, ...] = ()  # the analytics system's own zone names, as it sent them
    score: float | None = None  # 0 … 1
    object_id: str | None = None  # the analytics system's id of the tracked object


@dataclass(slots=True)
class RecordingInventory(Event):
    oldest: int | None = None
    newest: int | None = None
    gaps: tuple[tuple[int, int], ...] = ()


@dataclass(slots=True)
class PhoneDetected(Event):
    band: str | None = None
    rssi_dbm: float | None = None


@dataclass(slots=True)
class PatrolCheckpoint(Event):
    badge: str = ""


@dataclass(slots=True)
class OperatorDuty(Event):
    badge: str = ""
    state: str = "on"


@dataclass(slots=True)
class CallRecorded(Event):
    start: int = 0
    end: int = 0
    recording: str | None = None
    supervisors: tuple[str, ...] = ()


@dataclass(slots=True)
class ApprovalGranted(Event):
    badge: str = ""  # who may leave
    valid_s: float = 0.0
    granted_by: str | None = None  # who approves (policies/rules/authority.py)


@dataclass(slots=True)
class InspectionDone(Event):
    zone: str = ""
    badge: str = ""


@dataclass(slots=True)
class ReviewDone(Event):
    camera: str | None = None
    zone: str | None = None
    badge: str = ""


@dataclass(slots=True)
class AlertAck(Event):
    alert_id: str = ""
    badge: str = ""
    comment: str | None = None


@dataclass(slots=True)
class AlertShelve(Event):
    alert_id: str = ""
    badge: str = ""
    until: int = 0
    reason: str = ""


@dataclass(slots=True)
class AlertUnshelve(Event):
    alert_id: str = ""
    badge: str = ""


@dataclass(slots=True)
class SealEvent(Event):
    seal: str = ""
    name: str | None = None
    classification: str | None = None
    end: int | None = None
    badge: str | None = None  # who starts or ends it (absent in older streams)


@dataclass(frozen=True, slots=True)
class PrecheckItem:
    """One readiness item of a pre-seal record: passed when it lists no problems."""

    item: str
    passed: bool
    problems: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()  # what was seen (readings, who is on duty, …)


@dataclass(slots=True)
class PrecheckRecorded(Event):
    """precheck.recorded: the written pre-seal inspection record (EXAM-2.8.14)."""

    badge: str = ""  # the inspector
    items: tuple[PrecheckItem, ...] = ()
    remediation: str | None = None
    passed: bool = False


@dataclass(slots=True)
class DeviceEvent(Event):
    """device.heartbeat and device.status."""

    state: str | None = None


@dataclass(slots=True)
class DaemonHealth(Event):
    """daemon.health: the daemon's own report on one of its components (device `sealwatch`)."""

    component: str = ""
    state: str = "ok"
    reason: str | None = None


# ---------------------------------------------------------------------------------------
# Parsing
#
# Every check below says what is wrong in words; nothing here may raise on any input (any JSON
# value in any field, or any Python value a caller puts into the dict). Values that the rules
# would turn into text or arithmetic are bounded here, so that nothing downstream can overflow.

DAEMON_DEVICE: Final = RESERVED_DEVICE_ID  # the daemon's own events come from this device id
HEALTH_COMPONENTS: Final = ("store", "mqtt-session", "ingest", "sink")
HEALTH_STATES: Final = ("ok", "degraded", "lost")

MAX_ID_LEN: Final = 256  # badges, alert and seal ids, bands, recordings, faults
MAX_TEXT_LEN: Final = 2000  # free text: reasons, comments, seal names
MAX_HEALTH_REASON_LEN: Final = 500  # daemon.health `reason` is cut to this length
MAX_FAULTS: Final = 64
DBM_MIN, DBM_MAX = -300.0, 300.0  # band power and RSSI
TEMP_MIN, TEMP_MAX = -273.15, 1000.0  # temperature_c
FPS_MAX: Final = 10_000.0
MAX_VALID_S: Final = 30 * 86_400.0  # an exit approval is valid for at most 30 days
MAX_PRECHECK_ITEMS: Final = 32  # items of one pre-seal record
MAX_OBJECT_ZONES: Final = 64  # zones of one camera.object
MAX_PRECHECK_PROBLEMS: Final = 1000  # problems of one item (one per device at most)
MAX_PRECHECK_EVIDENCE: Final = 1000  # evidence texts of one item


class _Bad(Exception):
    pass


def _show(v: Any) -> str:
    """A short, safe description of any value for a rejection reason (never raises)."""
    if isinstance(v, str):
        if len(v) > 60:
            return repr(v[:60]) + f"… ({len(v)} characters)"
        return repr(v)
    if v is None or isinstance(v, bool | float):
        return repr(v)
    if isinstance(v, int):
        return repr(v) if -(10**15) < v < 10**15 else "a huge integer"
    if isinstance(v, list | tuple):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return f"a {type(v).__name__}"


def _a(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def _near(name: str, known: Iterable[str]) -> str:
    """`suggest`, for a name short enough to be a typo."""
    return suggest(name, known) if len(name) <= 100 else ""


def _text_ok(v: str, key: str, limit: int) -> str:
    """A string of at most `limit` characters that can be written as UTF-8."""
    if len(v) > limit:
        raise _Bad(f"field '{key}' is longer than {limit} characters ({len(v)})")
    if not v.isascii():
        try:
            v.encode()
        except UnicodeEncodeError:
            raise _Bad(f"field '{key}' is not valid Unicode text (a lone surrogate)") from None
    return v


def _str(obj: Mapping[str, Any], key: str, limit: int = MAX_ID_LEN) -> str:
    v = obj.get(key)
    if type(v) is not str or not v:
        raise _Bad(
            f"field '{key}' must be a non-empty string" if key in obj else f"missing field '{key}'"
        )
    return _text_ok(v, key, limit)


def _opt_str(obj: Mapping[str, Any], key: str, limit: int = MAX_ID_LEN) -> str | None:
    v = obj.get(key)
    if v is None:
        return None
    if type(v) is not str:
        raise _Bad(f"field '{key}' must be a string")
    return _text_ok(v, key, limit)


def _enum(obj: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> str:
    v = obj.get(key)
    if type(v) is not str or v not in choices:
        if key not in obj:
            raise _Bad(f"missing field '{key}'")
        raise _Bad(f"field '{key}' must be one of {', '.join(choices)}, got {_show(v)}")
    return v


def _bool(obj: Mapping[str, Any], key: str, required: bool = True) -> bool | None:
    v = obj.get(key)
    if v is None and not required:
        return None
    if not isinstance(v, bool):
        raise _Bad(
            f"field '{key}' must be true or false" if key in obj else f"missing field '{key}'"
        )
    return v


def _num(
    obj: Mapping[str, Any],
    key: str,
    required: bool = True,
    lo: float = -1e9,
    hi: float = 1e9,
) -> float | None:
    """A number from `lo` to `hi` (finite bounds) as a float.

    Ints of any size compare exactly with the bounds, so none reaches float() too large.
    """
    v: Any = obj.get(key)
    if v is None and not required:
        return None
    t = type(v)
    if (t is float or t is int) and lo <= v <= hi:
        return float(v)
    if key not in obj:
        raise _Bad(f"missing field '{key}'")
    if t is not int and not (t is float and v - v == 0.0):
        raise _Bad(f"field '{key}' must be a finite number")
    raise _Bad(f"field '{key}' must be a number from {lo:g} to {hi:g}, got {_show(v)}")


_ts_cache: dict[str, int] = {}  # only plausible times are cached


def _time(value: Any, key: str) -> int:
    if type(value) is not str:
        raise _Bad(f"field '{key}' must be an RFC 3339 time string")
    us = _ts_cache.get(value)
    if us is None:
        try:
            us = parse_ts(value)
        except ValueError:
            raise _Bad(
                f"field '{key}' is not an RFC 3339 time with an offset: {_show(value)}"
            ) from None
        if not EARLIEST_US <= us < LATEST_US:
            raise _Bad(str(implausible_reason(us, f"field '{key}'", value)))
        if len(_ts_cache) > 4096:
            _ts_cache.clear()
        _ts_cache[value] = us
    return us


def _time_field(obj: Mapping[str, Any], key: str, required: bool = True) -> int | None:
    if obj.get(key) is None:
        if required:
            raise _Bad(f"missing field '{key}'")
        return None
    return _time(obj[key], key)


def _badges(obj: Mapping[str, Any], key: str) -> tuple[str, ...]:
    v = obj.get(key, [])
    if type(v) is not list or not all(type(x) is str for x in v):
        raise _Bad(f"field '{key}' must be a list of badges")
    for x in v:
        _text_ok(x, key, MAX_ID_LEN)
    return tuple(v)


_Base = tuple[int, str, str, dict[str, Any]]
_Build = Callable[[_Base, Mapping[str, Any], Site], Event]


def _door(b: _Base, o: Mapping[str, Any], s: Site) -> Event:
    return DoorEvent(*b)


def _badge(b: _Base, o: Mapping[str, Any], s: Site) -> Event:
    return BadgeEvent(
        *b,
        badge=_str(o, "badge"),
        direction=_enum(o, "direction", ("in", "out")),
        reason=_opt_str(o, "reason", MAX_TEXT_LEN),
    )


def _alarm_input(b: _Base, o: Mapping[str, Any], s: Site) -> Event:
    return AlarmInputEvent(*b, _enum(o, "state", ("normal", "alarm", "tamper", "fault")))


def _alarm_panel(b: _Base, o: Mapping[str, Any], s: Site) -> Event:
    mains: Any = o.get("mains")
    battery: Any = o.get("battery")
    armed: Any = o.get("armed")
    tamper: Any = o.get("tamper")
    # the checks spelled out: a panel reports every few seconds
    if mains is not None and mains != "ok" and mains != "lost":
        _enum(o, "mains", ("ok", "lost"))
    if battery is not None and battery != "ok" and battery != "low":
        _enum(o, "battery", ("ok", "low"))
    if armed is not None and armed is not True and armed is not False:
        _bool(o, "armed")
    if tamper is not None and tamper is not True and tamper is not False:
        _bool(o, "tamper")
    return AlarmPanelEvent(*b, armed, mains, battery, tamper)


def _jammer(b: _Base, o: Mapping[str, Any], s: Site) -> Event:
    bands = o.get("bands", {})
    if type(bands) is not dict:
        raise _Bad("field 'bands' must be an object {band: dBm}")
    for k, v in bands.items():
        t = type(v)  # spelled out: five bands in every status. The range excludes NaN and inf.
        if not ((t is float or t is int) and DBM_MIN <= v <= DBM_MAX) or type(k) is not str:
            raise _Bad(_bad_band(k, v))
    faults: Any = o.get("faults")
    if faults:  # absent, null and [] all say "no faults"
        if type(faults) is not list or not all(type(x) is str for x in faults):
            raise _Bad("field 'faults' must be a list of strings")
        if len(faults) > MAX_FAULTS:
            raise _Bad(f"field 'faults' lists more than {MAX_FAULTS} faults ({len(faults)})")
        for x in faults:
            _text_ok(x, "faults", MAX_ID_LEN)
        faults = tuple(faults)
    elif faults is None or faults == []:
        faults = ()
    else:
        raise _Bad("field 'faults' must be a list of strings")
    output: Any = o.get("output")
    if output is not True and output is not False:
        _bool(o, "output")
    temperature = o.get("temperature_c")
    if temperature is not None:
        temperature = _num(o, "temperature_c", False, TEMP_MIN, TEMP_MAX)
    # positional arguments: this is the hottest constructor (keywords cost ~0.3 µs more)
    return JammerStatus(*b, output, bands, faults, temperature)


def _bad_band(k: Any, v: Any) -> str:
    if type(k) is not str:
        return f"band ids must be strings, got {_show(k)}"
    t = type(v)
    if t is int or (t is float and v - v == 0.0):
        return f"band {_show(k)} must be from {DBM_MIN:g} to {DBM_MAX:g} dBm, got {_show(v)}"
    return f"band {_show(k)} must be a number of dBm"


def _camera(b: _Base, o: Mapping[str, Any], s: Site) -> Event:
    tamper = o.get("tamper")
    if tamper is not None and (
        type(tamper) is not str or tamper not in ("covered", "defocused", "moved", "frozen")
    ):
        raise _Bad(
            f"field 'tamper' must be null, covered, defocused, moved or frozen, got {_show(tamper)}"
        )
    stream: Any = o.get("stream")
    if stream != "up" and stream != "down":
        _enum(o, "stream", ("up", "down"))
    return CameraStatus(*b, stream, tamper, _num(o, "fps", False, 0.0, FPS_MAX))


def _camera_object(b: _Base, o: Mapping[str, Any], s: Site) -> Event:
    zones: Any = o.get("zones")
    if zones is None:
        zones = ()
    else:
        if type(zones) is not list or not all(type(z) is str for z in zones):
            raise _Bad("field 'zones' must be a list of strings")
        if len(zones) > MAX_OBJECT_ZONES:
            raise _Bad(f"field 'zones' lists more than {MAX_OBJECT_ZONES} zones ({len(zones)})")
        for z in zones:
            _text_ok(z, "zones", MAX_ID_LEN)
        zones = tuple(zones)
    return CameraObject(
        *b,
        label=_str(o, "label"),
        zones=zones,
        score=_num(o, "score", False, 0.0, 1.0),
        object_id=_opt_str(o, "object_id"),
    )


def _inventory(b: _Base, o: Mapping[str, Any], s: Site) -> Event:
    gaps_raw = o.get("gaps", [])
    if type(gaps_raw) is not list:
        raise _Bad("field 'gaps' must be a list of [start, end]")
    gaps: list[tuple[int, int]] = []
    for g in gaps_raw:
        if type(g) is not list or len(g) != 2:
            raise _Bad("each gap must be [start, end]")
        start, end = _time(g[0], "gaps"), _time(g[1], "gaps")
        if end < start:
            raise _Bad("a gap must not end before it starts")
        gaps.append((start, end))
    return RecordingInventory(
        *b,
        oldest=_time_field(o, "oldest", False),
        newest=_time_field(o, "newest", False),
        gaps=tuple(gaps),
    )


def _phone(b: _Base, o: Mapping[str, Any], s: Site) -> Event:
    return PhoneDetected(
        *b, band=_opt_str(o, "band"), rssi_dbm=_num(o, "rssi_dbm", False, DBM_MIN, DBM_MAX)
    )


def _patrol(b: _Base, o: Mapping[str, Any], s: Site) -> Event:
    return PatrolCheckpoint(*b, badge=_str(o, "badge"))


def _duty(b: _Base, o: Mapping[str, Any], s: Site) -> Event:
    return OperatorDuty(*b, badge=_str(o, "badge"), state=_enum(o, "state", ("on", "off")))


def _call(b: _Base, o: Mapping[str, Any], s: Site) -> Event:
    start = _time_field(o, "start")
    end = _time_field(o, "end")
    assert start is not None and end is not None
    if end < start:
        raise _Bad("field 'end' must not be before 'start'")
    if "recording" not in o:
        raise _Bad("missing field 'recording' (an id, or null for none)")
    return CallRecorded(
        *b,
        start=start,
        end=end,
        recording=_opt_str(o, "recording"),
        supervisors=_badges(o, "supervisors"),
    )


def _approval(b: _Base, o: Mapping[str, Any], s: Site) -> Event:
    v: Any = o.get("valid_s")
    t = type(v)
    if not ((t is float or t is int) and 0 < v <= MAX_VALID_S):
        if "valid_s" not in o or v is None:
            raise _Bad("missing field 'valid_s'")
        if t is not int and not (t is float and v - v == 0.0):
            raise _Bad("field 'valid_s' must be a finite number")
        if v <= 0:
            raise _Bad("field 'valid_s' must be greater than 0")
        raise _Bad(f"field 'valid_s' must be at most {MAX_VALID_S:g} s (30 days)")
    valid = float(v)
    return ApprovalGranted(
        *b, badge=_str(o, "badge"), valid_s=valid, granted_by=_opt_str(o, "granted_by")
    )


def _inspection(b: _Base, o: Mapping[str, Any], s: Site) -> Event:
    zone = _str(o, "zone")
    if zone not in s.zones:
        raise _Bad(f"unknown zone {_show(zone)}{_near(zone, s.zones)}")
    return InspectionDone(*b, zone=zone, badge=_str(o, "badge"))


def _review(b: _Base, o: Mapping[str, Any], s: Site) -> Event:
    camera, zone = _opt_str(o, "camera"), _opt_str(o, "zone")
    if camera is None and zone is None:
        raise _Bad("missing field 'camera' (or 'zone')")
    if camera is not None and camera not in s.cameras:
        raise _Bad(f"unknown camera {_show(camera)}{_near(camera, s.cameras)}")
    if zone is not None and zone not in s.zones:
        raise _Bad(f"unknown zone {_show(zone)}{_near(zone, s.zones)}")
    return ReviewDone(*b, camera=camera, zone=zone, badge=_str(o, "badge"))


def _ack(b: _Base, o: Mapping[str, Any], s: Site) -> Event:
    return AlertAck(
        *b,
        alert_id=_str(o, "alert_id"),
        badge=_str(o, "badge"),
        comment=_opt_str(o, "comment", MAX_TEXT_LEN),
    )


def _shelve(b: _Base, o: Mapping[str, Any], s: Site) -> Event:
    until = _time_field(o, "until")
    assert until is not None
    return AlertShelve(
        *b,
        alert_id=_str(o, "alert_id"),
        badge=_str(o, "badge"),
        until=until,
        reason=_str(o, "reason", MAX_TEXT_LEN),
    )


def _unshelve(b: _Base, o: Mapping[str, Any], s: Site) -> Event:
    return AlertUnshelve(*b, alert_id=_str(o, "alert_id"), badge=_str(o, "badge"))


def _seal(b: _Base, o: Mapping[str, Any], s: Site) -> Event:
    classification = None
    if o.get("classification") is not None:
        classification = _enum(o, "classification", ("top_secret", "secret", "confidential"))
    return SealEvent(
        *b,
        seal=_str(o, "seal"),
        name=_opt_str(o, "name", MAX_TEXT_LEN),
        classification=classification,
        end=_time_field(o, "end", False),
        badge=_opt_str(o, "badge"),
    )


def _precheck(b: _Base, o: Mapping[str, Any], s: Site) -> Event:
    raw: Any = o.get("items")
    if type(raw) is not list or not raw:
        if "items" not in o:
            raise _Bad("missing field 'items'")
        raise _Bad("field 'items' must be a non-empty list of {item, passed, problems}")
    if len(raw) > MAX_PRECHECK_ITEMS:
        raise _Bad(f"field 'items' lists more than {MAX_PRECHECK_ITEMS} items ({len(raw)})")
    items: list[PrecheckItem] = []
    for x in raw:
        if type(x) is not dict:
            raise _Bad("each item must be an object {item, passed, problems}")
        problems: Any = x.get("problems", [])
        if type(problems) is not list or not all(type(p) is str and p for p in problems):
            raise _Bad("field 'problems' of an item must be a list of non-empty strings")
        if len(problems) > MAX_PRECHECK_PROBLEMS:
            raise _Bad(
                f"an item lists more than {MAX_PRECHECK_PROBLEMS} problems ({len(problems)})"
            )
        for p in problems:
            _text_ok(p, "problems", MAX_TEXT_LEN)
        evidence: Any = x.get("evidence", [])
        if type(evidence) is not list or not all(type(e) is str and e for e in evidence):
            raise _Bad("field 'evidence' of an item must be a list of non-empty strings")
        if len(evidence) > MAX_PRECHECK_EVIDENCE:
            raise _Bad(
                f"an item lists more than {MAX_PRECHECK_EVIDENCE} pieces of evidence "
                f"({len(evidence)})"
            )
        for e in evidence:
            _text_ok(e, "evidence", MAX_TEXT_LEN)
        name = _str(x, "item", MAX_TEXT_LEN)
        passed = _bool(x, "passed")
        if passed is not (not problems):
            raise _Bad(f"item {_show(name)}: 'passed' must be true exactly when it has no problems")
        items.append(PrecheckItem(name, passed, tuple(problems), tuple(evidence)))
    passed_all = _bool(o, "passed")
    if passed_all is not all(i.passed for i in items):
        raise _Bad("field 'passed' must be true exactly when every item passed")
    return PrecheckRecorded(
        *b,
        badge=_str(o, "badge"),
        items=tuple(items),
        remediation=_opt_str(o, "remediation", MAX_TEXT_LEN),
        passed=passed_all,
    )


def _heartbeat(b: _Base, o: Mapping[str, Any], s: Site) -> Event:
    return DeviceEvent(*b)


def _status(b: _Base, o: Mapping[str, Any], s: Site) -> Event:
    return DeviceEvent(*b, state=_enum(o, "state", ("online", "offline")))


def _health(b: _Base, o: Mapping[str, Any], s: Site) -> Event:
    reason: Any = o.get("reason")
    if reason is not None:
        if type(reason) is not str:
            raise _Bad("field 'reason' must be a string")
        # the daemon's own words: cut and made writable rather than refused
        if len(reason) > MAX_HEALTH_REASON_LEN:
            reason = reason[: MAX_HEALTH_REASON_LEN - 1] + "…"
        if not reason.isascii():
            reason = reason.encode("utf-8", "replace").decode("utf-8")
    return DaemonHealth(
        *b,
        component=_enum(o, "component", HEALTH_COMPONENTS),
        state=_enum(o, "state", HEALTH_STATES),
        reason=reason or None,
    )


_ANY = ()  # any known device
# type -> (device kinds it may come from, builder)
EVENT_TYPES: dict[str, tuple[tuple[str, ...], _Build]] = {
    "door.opened": (("door",), _door),
    "door.closed": (("door",), _door),
    "door.forced": (("door",), _door),
    "badge.granted": (("door",), _badge),
    "badge.denied": (("door",), _badge),
    "alarm.input": (("alarm_input",), _alarm_input),
    "alarm.panel": (("alarm_panel",), _alarm_panel),
    "jammer.status": (("jammer",), _jammer),
    "camera.status": (("camera",), _camera),
    "camera.object": (("camera",), _camera_object),
    "recording.inventory": (("camera",), _inventory),
    "phone.detected": (("phone_detector",), _phone),
    "patrol.checkpoint": (("checkpoint",), _patrol),
    "operator.duty": (("console",), _duty),
    "call.recorded": (("duty_phone",), _call),
    "approval.granted": (("console",), _approval),
    "inspection.done": (("console",), _inspection),
    "review.done": (("console",), _review),
    "alert.ack": (("console",), _ack),
    "alert.shelve": (("console",), _shelve),
    "alert.unshelve": (("console",), _unshelve),
    "seal.start": (("console",), _seal),
    "seal.end": (("console",), _seal),
    "precheck.recorded": (("console",), _precheck),
    "device.heartbeat": (_ANY, _heartbeat),
    "device.status": (_ANY, _status),
    "daemon.health": (("daemon",), _health),  # from DAEMON_DEVICE only
}


def parse_event(
    obj: Any, site: Site, *, device: str | None = None, now_us: int | None = None
) -> Event | Rejection:
    """A JSON object → an Event, or a Rejection saying why not.

    `device` and `now_us` are defaults for a missing `device` / `ts` (CONTRACT §5: the topic's
    last level and the receive time).
    """
    if type(obj) is not dict and not isinstance(obj, dict):
        return Rejection(f"expected a JSON object, got {type(obj).__name__}")
    etype: Any = obj.get("type")
    spec = EVENT_TYPES.get(etype) if type(etype) is str else None
    if spec is None:
        if "type" not in obj:
            return Rejection("missing field 'type'")
        near = _near(etype, EVENT_TYPES) if type(etype) is str else ""
        return Rejection(f"unknown event type {_show(etype)}{near}")
    kinds, build = spec
    dev: Any = obj.get("device", device)
    kind = site.device_kind.get(dev) if type(dev) is str else None
    if kind is None:
        if dev is None:
            return Rejection("missing field 'device'")
        if type(dev) is not str or not dev:
            return Rejection("field 'device' must be a non-empty string")
        if dev != DAEMON_DEVICE:
            return Rejection(f"unknown device {_show(dev)}{_near(dev, site.device_kind)}")
        if etype != "daemon.health":
            return Rejection(
                f"device '{DAEMON_DEVICE}' is the daemon itself: it sends only daemon.health"
            )
        kind = "daemon"
    if kinds and kind not in kinds:
        return Rejection(
            f"device '{dev}' is {_a(kind)}, not {_a(' or '.join(kinds))} (type {etype})"
        )
    src = obj
    raw_ts = obj.get("ts")
    ts = _ts_cache.get(raw_ts) if type(raw_ts) is str else None
    try:
        if ts is None:
            if raw_ts is None:
                if now_us is None:
                    return Rejection("missing field 'ts'")
                why = implausible_reason(now_us, "the receive time (for a missing 'ts')")
                if why is not None:
                    return Rejection(why)
                src = {**obj, "ts": format_ts(now_us, site.tz)}
                ts = now_us
            else:
                ts = _time(raw_ts, "ts")
        if "device" not in obj:
            src = {**src, "device": dev}
        return build((ts, dev, etype, src), obj, site)
    except _Bad as exc:
        return Rejection(str(exc))


def parse_line(line: str | bytes, site: Site) -> Event | Rejection:
    """One line of JSON text → an Event or a Rejection."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return Rejection(f"not valid JSON: {exc}")
    return parse_event(obj, site)
