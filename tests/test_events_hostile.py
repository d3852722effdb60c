"""Hostile events (issue 8): any value in any field is accepted or rejected with a reason.

The strategies here fill every field of every event type (required, optional and unknown
extra ones) with every JSON shape and with extreme values: null, booleans, huge and negative
numbers, NaN and infinities (which a Python caller can pass even though JSON cannot), years 1
and 9999, times without an offset, deep nesting, megabyte strings, empty strings, unicode and
lone surrogates. `parse_event` must answer with an `Event` or a `Rejection` with a reason, and
the engine must take every accepted event (or refuse it with `EventRejected`) and write
transitions that `to_dict` and JSON can carry. tests/test_replay_hostile.py uses the same
strategies for whole lines.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from policies.engine import Engine, EventRejected, Transition
from policies.events import (
    DAEMON_DEVICE,
    EVENT_TYPES,
    HEALTH_COMPONENTS,
    MAX_VALID_S,
    Event,
    Rejection,
    parse_event,
)
from policies.site import Site, SiteError, parse_site
from policies.timefmt import EARLIEST_US, LATEST_US, US, format_ts, parse_ts
from tests.support.engine import (
    AGENCY_IN,
    BEFORE_SEAL,
    EXAMPLES,
    IN_SEAL,
    agency_site,
    reference_site,
)

SITES = (reference_site(), agency_site())
HOSTILE = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PER_TYPE = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PER_FIELD = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SEQUENCES = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- extreme values ----------------------------------------------------------------------------

MEGA = "m" * 1_000_000


def _deep(depth: int, leaf: Any, wrap: Any) -> Any:
    x = leaf
    for _ in range(depth):
        x = wrap(x)
    return x


# deep enough to matter, shallow enough that hypothesis can still print a failing example
DEEP_LIST = _deep(800, 1, lambda x: [x])
DEEP_DICT = _deep(800, None, lambda x: {"k": x})

EXTREMES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2**63,
    -(2**63) - 1,
    10**400,
    -(10**400),
    10**5000,  # str() of this raises ValueError (4300-digit limit)
    1e308,
    -1e308,
    5e-324,
    -0.0,
    math.nan,
    math.inf,
    -math.inf,
    "",
    " ",
    "\x00",
    "\n",
    "\ud800",
    "a\udfffb",
    "null",
    "true",
    "NaN",
    "1e400",
    "é漢字🙂",
    "\u202eevil",
    MEGA,
    [],
    {},
    [None],
    {"": None},
    [1, "two", None],
    DEEP_LIST,
    DEEP_DICT,
]

BAD_TIMES = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00-14:00",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59.999999+14:00",
    "9999-12-31T23:59:59.999999Z",
    "1970-01-01T00:00:00Z",
    "1999-12-31T23:59:59.999999Z",
    "2000-01-01T00:00:00+14:00",  # 1999-12-31T10:00Z
    "2099-12-31T23:59:59-14:00",  # 2100-01-01T13:59:59Z
    "2100-01-01T00:00:00Z",
    "2027-05-25T14:00:00",  # no offset
    "2027-05-25",
    "2027-05-25T14:00:00+24:00",
    "2027-02-30T00:00:00Z",
    "2027-05-25T14:00:00Z" + "0" * 1000,
    "T",
    "Z",
]
EDGE_TIMES = [
    "2000-01-01T00:00:00Z",
    "2000-01-01T00:00:00.000001Z",
    "2000-01-01T13:59:59-14:00",
    "2099-12-31T23:59:59.999999Z",
    "2100-01-01T13:59:59.999999+14:00",  # 2099-12-31T23:59:59.999999Z
    "2027-05-25T14:00:00z",
]

OFFSETS: list[tzinfo] = [
    UTC,
    timezone(timedelta(hours=14)),
    timezone(timedelta(hours=-12)),
    timezone(timedelta(hours=5, minutes=45)),
]


def _any_datetime_text() -> st.SearchStrategy[str]:
    """Any year 1 to 9999, with or without an offset."""
    offsets = st.none() | st.integers(-1439, 1439).map(lambda m: timezone(timedelta(minutes=m)))
    return st.builds(
        lambda dt, tz: dt.replace(tzinfo=tz).isoformat(),
        st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
        offsets,
    )


def _plausible_time_text() -> st.SearchStrategy[str]:
    return st.builds(
        format_ts,
        st.integers(EARLIEST_US, LATEST_US - 1),
        st.sampled_from(OFFSETS),
    ) | st.sampled_from(EDGE_TIMES)


_json_leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.text(st.characters(codec=None, categories=["Cs", "Co", "Cc", "Zs"]), max_size=4)
)
JSON_SHAPES = st.recursive(
    _json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=10,
)

NUMBERS = [10**400, -(10**400), 10**5000, 2**63, 1e308, -1e308, math.nan, math.inf, -math.inf]

#: Any value at all, for any field (the named extremes weighted up).
HOSTILE_VALUE = st.one_of(
    st.sampled_from(EXTREMES),
    st.sampled_from(EXTREMES),
    st.sampled_from(NUMBERS),
    st.sampled_from(NUMBERS),
    st.sampled_from(BAD_TIMES),
    _any_datetime_text(),
    JSON_SHAPES,
)


# -- events of every type, field by field ---------------------------------------------------


def _badges(site: Site) -> st.SearchStrategy[str]:
    return st.sampled_from([*site.people, "X9999", "é漢字🙂", "b" * 256, " "])


def _text(limit: int) -> st.SearchStrategy[str | None]:
    return st.sampled_from([None, "", "why not", "é漢字🙂", "t" * limit])


@dataclasses.dataclass(frozen=True)
class Later:
    """A field whose value is a plausible time `0..max_s` seconds after the event's own."""

    max_s: int
    optional: bool = False


@dataclasses.dataclass(frozen=True)
class AlertId:
    """A field naming one of the alerts raised so far (or none)."""


STEP_AFTER = st.sampled_from([0, 0, 1, 30, 3600]) | st.integers(0, 40 * 86_400)


def _bands(site: Site) -> st.SearchStrategy[dict[str, Any]]:
    ids = sorted({b.id for j in site.jammers.values() for b in j.bands}) or ["gsm900"]
    dbm = st.sampled_from([-300, -300.0, 300, 300.0, 0, 27.0, 33, -0.0, 5e-324, 29.999999])
    normal = st.dictionaries(st.sampled_from([*ids, "unknown-band", ""]), dbm, max_size=7)
    many = st.builds(lambda d: {**{f"b{i}": 30.0 for i in range(3000)}, **d}, normal)
    return normal | many


_GOOD: dict[tuple[str, str], dict[str, Any]] = {}


def good_fields(site: Site, etype: str) -> dict[str, Any]:
    """`_good_fields`, built once per site and type (strategies are reused, not rebuilt)."""
    key = (site.id, etype)
    if key not in _GOOD:
        _GOOD[key] = _good_fields(site, etype)
    return _GOOD[key]


def _good_fields(site: Site, etype: str) -> dict[str, Any]:
    """{field: strategy of valid (often extreme) values}, for every field of the type.

    `Later` and `AlertId` stand for values that depend on the event's time and on the alerts
    so far; `event_objects` fills them in.
    """
    badge = _badges(site)
    alert_id = AlertId()
    seal_ids = [s.id for s in site.seals]
    fields: dict[str, dict[str, Any]] = {
        "door.opened": {},
        "door.closed": {},
        "door.forced": {},
        "badge.granted": {
            "badge": badge,
            "direction": st.sampled_from(["in", "out"]),
            "reason": _text(2000),
        },
        "badge.denied": {
            "badge": badge,
            "direction": st.sampled_from(["in", "out"]),
            "reason": _text(2000),
        },
        "alarm.input": {"state": st.sampled_from(["normal", "alarm", "tamper", "fault"])},
        "alarm.panel": {
            "armed": st.sampled_from([None, True, False]),
            "mains": st.sampled_from([None, "ok", "lost"]),
            "battery": st.sampled_from([None, "ok", "low"]),
            "tamper": st.sampled_from([None, True, False]),
        },
        "jammer.status": {
            "output": st.booleans(),
            "bands": _bands(site),
            "faults": st.sampled_from(
                [None, [], ["fan"], ["over-temperature", "vswr"], ["f" * 256] * 64, ["é漢字🙂"]]
            ),
            "temperature_c": st.sampled_from([None, -273.15, 1000, 1000.0, 40, 0.0, -0.0]),
        },
        "camera.status": {
            "stream": st.sampled_from(["up", "down"]),
            "tamper": st.sampled_from([None, "covered", "defocused", "moved", "frozen"]),
            "fps": st.sampled_from([None, 0, 10_000, 25.0, 5e-324]),
        },
        "camera.object": {
            "label": st.sampled_from(["person", "car", "é漢字🙂", "x" * 256]),
            "zones": st.sampled_from([None, [], ["zone_a"], ["z" * 256] * 64]),
            "score": st.sampled_from([None, 0, 1, 0.5, 5e-324]),
            "object_id": st.sampled_from([None, "1718000000.1-abc"]),
        },
        "recording.inventory": {
            "oldest": st.none() | _plausible_time_text(),
            "newest": st.none() | _plausible_time_text(),
            "gaps": st.lists(
                st.tuples(_plausible_time_text(), _plausible_time_text())
                .map(lambda g: sorted(g, key=parse_ts))
                .filter(lambda g: g[0] != g[1] or True),
                max_size=3,
            )
            | st.builds(
                lambda t: [[t, t]] * 2000 + [["2000-01-01T00:00:00Z", "2099-12-31T23:59:59Z"]],
                _plausible_time_text(),
            ),
        },
        "phone.detected": {
            "band": st.sampled_from([None, "gsm900", "é", "b" * 256]),
            "rssi_dbm": st.sampled_from([None, -300, 300, -61.5]),
        },
        "patrol.checkpoint": {"badge": badge},
        "operator.duty": {"badge": badge, "state": st.sampled_from(["on", "off"])},
        "call.recorded": {
            "start": Later(0),
            "end": Later(3600),
            "recording": st.sampled_from([None, "rec-1", "r" * 256]),
            "supervisors": st.lists(badge, max_size=4),
        },
        "approval.granted": {
            "badge": badge,
            "valid_s": st.sampled_from([5e-324, 1, 300, 600.5, MAX_VALID_S, int(MAX_VALID_S)]),
        },
        "inspection.done": {"zone": st.sampled_from(list(site.zones)), "badge": badge},
        "review.done": {
            "camera": st.sampled_from([None, *site.cameras]),
            "zone": st.sampled_from([None, *site.zones]),
            "badge": badge,
        },
        "alert.ack": {"alert_id": alert_id, "badge": badge, "comment": _text(2000)},
        "alert.shelve": {
            "alert_id": alert_id,
            "badge": badge,
            "until": Later(86_400),
            "reason": st.sampled_from(["maintenance", "r" * 2000, "é漢字🙂"]),
        },
        "alert.unshelve": {"alert_id": alert_id, "badge": badge},
        "seal.start": {
            "seal": st.sampled_from([*seal_ids, "drill", "é漢字🙂", "s" * 256]),
            "name": _text(2000),
            "classification": st.sampled_from([None, "top_secret", "secret", "confidential"]),
            "end": Later(30 * 86_400, optional=True),
        },
        "seal.end": {"seal": st.sampled_from([*seal_ids, "drill", "é漢字🙂"])},
        "precheck.recorded": {
            "badge": badge,
            "items": st.lists(
                st.builds(
                    lambda name: {"item": name, "passed": True, "problems": []},
                    st.sampled_from(["perimeter armed", "é漢字🙂", "i" * 2000]),
                ),
                min_size=1,
                max_size=32,
            ),
            "passed": st.just(True),
            "remediation": _text(2000),
        },
        "device.heartbeat": {},
        "device.status": {"state": st.sampled_from(["online", "offline"])},
        "daemon.health": {
            "component": st.sampled_from(HEALTH_COMPONENTS),
            "state": st.sampled_from(["ok", "degraded", "lost"]),
            "reason": st.sampled_from([None, "", "disk full", "r" * 10_000, "x\ud800y", MEGA]),
        },
    }
    return fields[etype]


def _devices_for(site: Site, etype: str) -> list[str]:
    """The site's devices that may send `etype` (all devices if the site has none)."""
    if etype == "daemon.health":
        return [DAEMON_DEVICE]
    kinds = EVENT_TYPES[etype][0]
    right = sorted(d for d, k in site.device_kind.items() if not kinds or k in kinds)
    return right or sorted(site.device_kind)


def _has_device_for(site: Site, etype: str) -> bool:
    kinds = EVENT_TYPES[etype][0]
    return (
        etype == "daemon.health" or not kinds or any(k in kinds for k in site.device_kind.values())
    )


ALL_TYPES = sorted(EVENT_TYPES)


def good_value(
    draw: Callable[[st.SearchStrategy[Any]], Any], spec: Any, ts: int, alert_ids: list[str]
) -> Any:
    if isinstance(spec, Later):
        if spec.optional and draw(st.integers(0, 9)) == 0:
            return None  # an optional time left out
        after = min(draw(STEP_AFTER), spec.max_s)
        return format_ts(min(ts + after * US, LATEST_US - 1), draw(st.sampled_from(OFFSETS)))
    if isinstance(spec, AlertId):
        return draw(st.sampled_from([*alert_ids[-8:], "no-such-alert"]))
    return draw(spec)


@st.composite
def event_objects(
    draw: st.DrawFn,
    site: Site,
    ts: int | None = None,
    alert_ids: list[str] | None = None,
    etype: str | None = None,
) -> dict[str, Any]:
    """One event object of any type; each field valid, extreme, hostile or missing.

    `ts` (µs) is the event's time when it is written well; `alert_ids` are ids an operator
    action may name.
    """
    if ts is None:
        ts = draw(st.integers(EARLIEST_US, LATEST_US - 1))
    etype = etype or draw(st.sampled_from(ALL_TYPES))
    good = good_fields(site, etype)
    # how hostile: 0 all good, 1 one field bad, 2 every field anything, 3 good + extra fields
    mode = draw(st.sampled_from([0, 0, 1, 1, 2, 3]))
    obj: dict[str, Any] = {}
    if mode == 3:
        obj.update(draw(st.dictionaries(st.text(max_size=8), HOSTILE_VALUE, max_size=3)))
    obj["ts"] = format_ts(ts, draw(st.sampled_from([site.tz, *OFFSETS])))
    obj["device"] = draw(st.sampled_from(_devices_for(site, etype)))
    obj["type"] = etype
    for name, spec in good.items():
        value = good_value(draw, spec, ts, alert_ids or [])
        if value is not None or draw(st.booleans()):
            obj[name] = value  # an optional field: absent or null
    names = ["ts", "device", "type", *good]
    if mode == 1:
        name = draw(st.sampled_from(names))
        if draw(st.integers(0, 5)) == 0:
            obj.pop(name, None)
        else:
            obj[name] = draw(HOSTILE_VALUE)
    elif mode == 2:
        for name in names:
            choice = draw(st.integers(0, 3))
            if choice == 0:
                obj.pop(name, None)
            elif choice == 1:
                obj[name] = draw(HOSTILE_VALUE)
        if draw(st.booleans()):
            obj["device"] = draw(st.sampled_from([*site.device_kind, DAEMON_DEVICE]))
    return obj


# -- checks --------------------------------------------------------------------------------------

TIME_FIELDS = ("ts", "until", "oldest", "newest", "start", "end")


def check_parsed(got: object, site: Site) -> None:
    """An Event whose every value is usable downstream, or a Rejection with a reason."""
    if isinstance(got, Rejection):
        assert type(got.reason) is str and got.reason.strip(), got
        assert len(got.reason) < 1000, got.reason[:200]
        got.reason.encode()  # writable as UTF-8 (stderr, MQTT, the store)
        return
    assert isinstance(got, Event), got
    for f in dataclasses.fields(got):
        if f.name == "source":
            continue
        v = getattr(got, f.name)
        if f.name in TIME_FIELDS and v is not None:
            assert type(v) is int and EARLIEST_US <= v < LATEST_US, (f.name, v)
            format_ts(v, site.tz)
        elif isinstance(v, float):
            assert math.isfinite(v), (f.name, v)
        elif isinstance(v, str):
            v.encode()
    for start, end in getattr(got, "gaps", ()):
        assert EARLIEST_US <= start <= end < LATEST_US
    for dbm in getattr(got, "bands", {}).values():
        assert -300 <= dbm <= 300


def check_transitions(out: list[Transition], site: Site) -> None:
    for t in out:
        d = t.to_dict(site.tz)
        assert list(d) == [
            "ts",
            "alert_id",
            "policy",
            "subject",
            "severity",
            "state",
            "clause",
            "message",
        ]
        orjson.dumps(d)
        orjson.dumps({"acked_by": t.acked_by, "comment": t.comment})


# -- properties ------------------------------------------------------------------------------------


def test_the_strategies_cover_every_event_type() -> None:
    site = SITES[0]
    for etype in EVENT_TYPES:
        good_fields(site, etype)  # a new type must be described here


@pytest.mark.parametrize("etype", ALL_TYPES)
@PER_TYPE
@given(st.data())
def test_any_event_object_is_parsed_or_rejected_with_a_reason(
    etype: str, data: st.DataObject
) -> None:
    site = data.draw(st.sampled_from(SITES))
    obj = data.draw(event_objects(site, etype=etype))
    check_parsed(parse_event(obj, site), site)


FIELD_CASES = [
    (etype, name)
    for etype in ALL_TYPES
    for name in ["ts", "device", "type", *good_fields(SITES[0], etype), "extra"]
]


@pytest.mark.parametrize(("etype", "name"), FIELD_CASES, ids=[f"{t}.{n}" for t, n in FIELD_CASES])
@PER_FIELD
@given(st.data())
def test_one_field_takes_any_value(etype: str, name: str, data: st.DataObject) -> None:
    """A good event but for one field (or what is inside it): accepted or rejected, and an
    accepted one is fed to an engine that has seen a few good events first."""
    site = data.draw(st.sampled_from(SITES))
    assume(_has_device_for(site, etype))
    ts = parse_ts(AGENCY_IN if site is SITES[1] else IN_SEAL)
    engine = Engine(site)
    for etype0 in ("jammer.status", "camera.status", "operator.duty", "door.opened"):
        if _has_device_for(site, etype0):
            engine.feed(_parsed(site, baseline(site, etype0, ts)))
    ts += US
    obj = baseline(site, etype, ts, next((a.id for a in engine.open_alerts()), "a"))
    value = data.draw(HOSTILE_VALUE)
    inner = obj.get(name)
    where = data.draw(st.sampled_from(["whole", "inside"]))
    if where == "inside" and isinstance(inner, dict):
        obj[name] = {**inner, next(iter(inner), "k"): value}
    elif where == "inside" and isinstance(inner, list):
        obj[name] = (
            [*inner, value]
            if not inner or not isinstance(inner[0], list)
            else [[value, inner[0][1]]]
        )
    else:
        obj[name] = value
    got = parse_event(obj, site)
    check_parsed(got, site)
    if isinstance(got, Rejection):
        return
    try:
        out = engine.feed(got)
    except EventRejected as exc:
        assert exc.reason
        out = engine.pending_transitions()
    check_transitions(out, site)
    check_transitions(engine.advance(ts + 86_400 * US), site)


def _parsed(site: Site, obj: dict[str, Any]) -> Event:
    got = parse_event(obj, site)
    assert isinstance(got, Event), got
    return got


@HOSTILE
@given(
    st.sampled_from(SITES),
    st.sampled_from(ALL_TYPES),
    st.dictionaries(
        st.sampled_from(["ts", "device", "type", "badge", "state", "bands", "until"]) | st.text(),
        HOSTILE_VALUE,
        max_size=6,
    ),
    st.one_of(st.none(), HOSTILE_VALUE),
    st.one_of(st.none(), st.sampled_from([0, -1, 10**400, EARLIEST_US, LATEST_US, LATEST_US - 1])),
)
def test_any_dict_with_any_defaults_is_parsed_or_rejected(
    site: Site, etype: str, obj: dict[str, Any], device: Any, now_us: int | None
) -> None:
    obj.setdefault("type", etype)
    check_parsed(parse_event(obj, site, device=device, now_us=now_us), site)


@HOSTILE
@given(st.sampled_from(SITES), HOSTILE_VALUE)
def test_any_value_at_all_is_rejected_unless_an_object(site: Site, obj: Any) -> None:
    got = parse_event(obj, site)
    check_parsed(got, site)
    if not isinstance(obj, dict):
        assert isinstance(got, Rejection)


BASES = {
    reference_site().id: [IN_SEAL, BEFORE_SEAL, "2000-01-01T00:00:00Z", "2099-12-31T23:00:00Z"],
    agency_site().id: [AGENCY_IN, "2000-01-01T00:00:00Z", "2099-12-31T23:00:00Z"],
}
STEPS_S = [0, 0, 0, 1, 10, 31, 600, 3600, 86_400, 40 * 86_400]


@SEQUENCES
@given(st.data())
def test_every_accepted_event_is_fed_without_an_exception(data: st.DataObject) -> None:
    site = data.draw(st.sampled_from(SITES))
    ts = parse_ts(data.draw(st.sampled_from(BASES[site.id])))
    engine = Engine(site)
    alert_ids: list[str] = []
    accepted = 0
    for _ in range(data.draw(st.integers(1, 30))):
        ts = min(ts + data.draw(st.sampled_from(STEPS_S)) * US, LATEST_US - 1)
        obj = data.draw(event_objects(site, ts, alert_ids))
        ev = parse_event(obj, site)
        check_parsed(ev, site)
        if isinstance(ev, Rejection):
            continue
        try:
            out = engine.feed(ev)
            accepted += 1
        except EventRejected as exc:
            assert exc.reason
            out = engine.pending_transitions()
        check_transitions(out, site)
        alert_ids += [t.alert_id for t in out]
    until = data.draw(
        st.sampled_from([ts, ts + 3600 * US, ts + 200 * 86_400 * US, LATEST_US - 1, EARLIEST_US])
    )
    check_transitions(engine.advance(until), site)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(SITES), st.sampled_from(ALL_TYPES), st.data())
def test_well_formed_events_of_every_type_are_mostly_accepted(
    site: Site, etype: str, data: st.DataObject
) -> None:
    """The generator is not a rejection machine: good values must parse (guards the tests)."""
    assume(_has_device_for(site, etype))
    ts = parse_ts(IN_SEAL)
    good = good_fields(site, etype)
    obj = {"ts": format_ts(ts), "device": _devices_for(site, etype)[0], "type": etype}
    obj.update({k: good_value(data.draw, s, ts, []) for k, s in good.items()})
    if etype == "review.done" and obj["camera"] is None and obj["zone"] is None:
        obj["zone"] = next(iter(site.zones))
    if etype == "recording.inventory":
        obj["gaps"] = obj["gaps"][:3]
    got = parse_event(obj, site)
    assert not isinstance(got, Rejection), (got, {k: str(v)[:80] for k, v in obj.items()})


def test_format_ts_works_for_the_whole_plausible_range_in_any_zone() -> None:
    for us in (EARLIEST_US, LATEST_US - 1, LATEST_US + 10 * 365 * 86_400 * US):
        for tz in [*OFFSETS, *(s.tz for s in SITES)]:
            assert parse_ts(format_ts(us, tz)) == us


# -- the grid: every field of every type, each named extreme in turn ----------------------------


def baseline(site: Site, etype: str, ts: int, alert_id: str = "a") -> dict[str, Any]:
    """A well-formed event of `etype` at `ts`, every optional field set."""
    t = format_ts(ts, site.tz)
    later = format_ts(ts + 60 * US, site.tz)
    badge = next(iter(site.people))
    bands = {b.id: 30.0 for j in site.jammers.values() for b in j.bands}
    fields: dict[str, dict[str, Any]] = {
        "badge.granted": {"badge": badge, "direction": "in", "reason": "r"},
        "badge.denied": {"badge": badge, "direction": "out", "reason": "r"},
        "alarm.input": {"state": "alarm"},
        "alarm.panel": {"armed": False, "mains": "lost", "battery": "low", "tamper": True},
        "jammer.status": {"output": False, "bands": bands, "faults": ["fan"], "temperature_c": 80},
        "camera.status": {"stream": "down", "tamper": "covered", "fps": 1},
        "camera.object": {"label": "person", "zones": ["a"], "score": 0.9, "object_id": "o"},
        "recording.inventory": {"oldest": t, "newest": t, "gaps": [[t, t]]},
        "phone.detected": {"band": "gsm900", "rssi_dbm": -50},
        "patrol.checkpoint": {"badge": badge},
        "operator.duty": {"badge": badge, "state": "on"},
        "call.recorded": {"start": t, "end": later, "recording": None, "supervisors": [badge]},
        "approval.granted": {"badge": badge, "valid_s": 60},
        "inspection.done": {"zone": next(iter(site.zones)), "badge": badge},
        "review.done": {"camera": next(iter(site.cameras)), "zone": None, "badge": badge},
        "alert.ack": {"alert_id": alert_id, "badge": badge, "comment": "c"},
        "alert.shelve": {"alert_id": alert_id, "badge": badge, "until": later, "reason": "r"},
        "alert.unshelve": {"alert_id": alert_id, "badge": badge},
        "seal.start": {"seal": "grid", "name": "n", "classification": "secret", "end": later},
        "seal.end": {"seal": "grid"},
        "precheck.recorded": {
            "badge": badge,
            "items": [{"item": "a", "passed": False, "problems": ["p"]}],
            "passed": False,
            "remediation": "r",
        },
        "device.status": {"state": "offline"},
        "daemon.health": {"component": "store", "state": "degraded", "reason": "r"},
    }
    return {"ts": t, "device": _devices_for(site, etype)[0], "type": etype, **fields.get(etype, {})}


GRID_VALUES: list[Any] = [*EXTREMES, *BAD_TIMES, *EDGE_TIMES]
Mutation = Callable[[dict[str, Any]], dict[str, Any]]


def _set(name: str, value: Any) -> Mutation:
    return lambda obj: {**obj, name: value}


def _drop(name: str) -> Mutation:
    return lambda obj: {k: v for k, v in obj.items() if k != name}


def _inside(name: str, value: Any, how: str) -> Mutation:
    def mutate(obj: dict[str, Any]) -> dict[str, Any]:
        inner = obj[name]
        if how == "dict-value":
            return {**obj, name: {**inner, next(iter(inner), "k"): value}}
        if how == "dict-key":
            return {**obj, name: {**inner, value: 1.0}}
        if how == "list-item":
            return {**obj, name: [*inner, value]}
        return {**obj, name: [[value, inner[0][1]], [inner[0][0], value]]}  # pair-item

    return mutate


def mutations(obj: dict[str, Any]) -> list[Mutation]:
    """Each field of `obj` (and an unknown one) left out or set to each grid value, one at a
    time; inside objects and lists too."""
    out: list[Mutation] = []
    for name in [*obj, "extra"]:
        out.append(_drop(name))
        inner = obj.get(name)
        for value in GRID_VALUES:
            out.append(_set(name, value))
            if isinstance(inner, dict):
                out.append(_inside(name, value, "dict-value"))
                if value is None or isinstance(value, int | float):
                    out.append(_inside(name, value, "dict-key"))
            if isinstance(inner, list):
                out.append(_inside(name, value, "list-item"))
                if inner and isinstance(inner[0], list):
                    out.append(_inside(name, value, "pair-item"))
    return out


@pytest.mark.parametrize("site", SITES, ids=lambda s: s.id)
@pytest.mark.parametrize("etype", ALL_TYPES)
def test_every_field_takes_every_extreme_value(site: Site, etype: str) -> None:
    """Deterministic: every named extreme in every field of every type, and the engine fed."""
    base = parse_ts(AGENCY_IN if site is SITES[1] else IN_SEAL)
    engine = Engine(site)
    accepted = 0
    for i, mutate in enumerate(mutations(baseline(site, etype, base))):
        open_alerts = engine.open_alerts()
        alert_id = open_alerts[i % len(open_alerts)].id if open_alerts else "a"
        got = parse_event(mutate(baseline(site, etype, base + i * US, alert_id)), site)
        check_parsed(got, site)
        if isinstance(got, Rejection):
            continue
        accepted += 1
        try:
            out = engine.feed(got)
        except EventRejected as exc:
            assert exc.reason
            out = engine.pending_transitions()
        check_transitions(out, site)
    check_transitions(engine.advance(LATEST_US - 1), site)
    if _has_device_for(site, etype):
        assert accepted, "the baseline itself must be accepted"


# -- hostile numbers in the site file's tunables ---------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("heartbeat_timeout_s", "1e303"),
        ("ack_escalation_s", "1e300"),
        ("door_held_open_s", "31536001"),
        ("patrol_interval_min", "1e20"),
        ("video_retention_days", "1e306"),
        ("jammer_status_timeout_s", ".inf"),
        ("two_person_window_s", ".nan"),
    ],
)
def test_timing_tunables_beyond_a_year_are_refused_with_their_path(key: str, value: str) -> None:
    text = (EXAMPLES / "site.yaml").read_text()
    old = re.search(rf"^  {key}: .*$", text, re.M)
    assert old is not None
    with pytest.raises(SiteError) as err:
        parse_site(text.replace(old.group(0), f"  {key}: {value}"))
    assert [e.split(":")[0] for e in err.value.errors] == [f"policies.{key}"], err.value.errors
