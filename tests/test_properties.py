"""Properties of the engine over generated event streams of the reference site (hypothesis)."""

from __future__ import annotations

import io
import json
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.replay import replay_lines
from policies.engine import Engine, EventRejected, Transition
from policies.events import Rejection, parse_event, parse_line
from policies.timefmt import format_ts, parse_ts, seconds
from tests.support.engine import BEFORE_SEAL, IN_SEAL, reference_site, unsealed

SITE = reference_site()
UNSEALED = unsealed(SITE)
SEAL_ONLY = frozenset(
    {
        "jammer-uptime",
        "single-entrance",
        "entrance-interlock",
        "escorted-exit",
        "perimeter-armed",
        "monitoring-staffed",
        "prohibited-device",
        "patrol",
        "duty-phone",
    }
)
BADGES = [*SITE.people, "X9999"]
PROPS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

Fields = dict[str, Any]


def _bands(jammer: str) -> st.SearchStrategy[dict[str, float]]:
    ids = [b.id for b in SITE.jammers[jammer].bands]
    return st.dictionaries(st.sampled_from(ids), st.sampled_from([5.0, 26.0, 27.0, 30.0, 33.0]))


def _payload() -> st.SearchStrategy[Fields]:
    """One event's fields (without ts) for a device and type the site knows."""
    s = SITE
    doors, inputs, cams = list(s.doors), list(s.alarm_inputs), list(s.cameras)
    return st.one_of(
        st.builds(
            lambda d, t: {"device": d, "type": t},
            st.sampled_from(doors),
            st.sampled_from(["door.opened", "door.closed", "door.forced"]),
        ),
        st.builds(
            lambda d, t, b, dr: {"device": d, "type": t, "badge": b, "direction": dr},
            st.sampled_from(doors),
            st.sampled_from(["badge.granted", "badge.denied"]),
            st.sampled_from(BADGES),
            st.sampled_from(["in", "out"]),
        ),
        st.builds(
            lambda d, x: {"device": d, "type": "alarm.input", "state": x},
            st.sampled_from(inputs),
            st.sampled_from(["normal", "alarm", "tamper", "fault"]),
        ),
        st.builds(
            lambda a, m, b, t: {
                "device": "panel-main",
                "type": "alarm.panel",
                "armed": a,
                "mains": m,
                "battery": b,
                "tamper": t,
            },
            st.booleans(),
            st.sampled_from(["ok", "lost"]),
            st.sampled_from(["ok", "low"]),
            st.booleans(),
        ),
        st.sampled_from(list(s.jammers)).flatmap(
            lambda j: st.builds(
                lambda o, bands, f: {
                    "device": j,
                    "type": "jammer.status",
                    "output": o,
                    "bands": bands,
                    "faults": f,
                },
                st.booleans(),
                _bands(j),
                st.sampled_from([[], ["fan"]]),
            )
        ),
        st.builds(
            lambda c, up, t: {"device": c, "type": "camera.status", "stream": up, "tamper": t},
            st.sampled_from(cams),
            st.sampled_from(["up", "down"]),
            st.sampled_from([None, None, "covered", "frozen"]),
        ),
        st.builds(
            lambda c, old: {"device": c, "type": "recording.inventory", "oldest": old, "gaps": []},
            st.sampled_from(cams),
            st.sampled_from(["2027-01-01T00:00:00+08:00", "2027-05-20T00:00:00+08:00"]),
        ),
        st.builds(
            lambda d: {"device": d, "type": "phone.detected"},
            st.sampled_from(list(s.phone_detectors)),
        ),
        st.builds(
            lambda c, b: {"device": c, "type": "patrol.checkpoint", "badge": b},
            st.sampled_from(list(s.checkpoints)),
            st.sampled_from(BADGES),
        ),
        st.builds(
            lambda b, x: {"device": "console-1", "type": "operator.duty", "badge": b, "state": x},
            st.sampled_from(BADGES),
            st.sampled_from(["on", "off"]),
        ),
        st.builds(
            lambda r, sup: {
                "device": "duty-phone",
                "type": "call.recorded",
                "recording": r,
                "supervisors": sup,
            },
            st.sampled_from([None, "rec-1"]),
            st.lists(st.sampled_from(BADGES), max_size=3),
        ),
        st.builds(
            lambda b, v: {
                "device": "console-1",
                "type": "approval.granted",
                "badge": b,
                "valid_s": v,
            },
            st.sampled_from(BADGES),
            st.sampled_from([30, 600]),
        ),
        st.builds(
            lambda d: {"device": d, "type": "device.heartbeat"},
            st.sampled_from(list(s.device_kind)),
        ),
        st.builds(
            lambda d, x: {"device": d, "type": "device.status", "state": x},
            st.sampled_from(list(s.device_kind)),
            st.sampled_from(["online", "offline"]),
        ),
    )


def _seal_events() -> st.SearchStrategy[Fields]:
    return st.builds(
        lambda t, seal: {
            "device": "console-1",
            "type": t,
            "seal": seal,
            "name": "Drill",
            "classification": "secret",
        },
        st.sampled_from(["seal.start", "seal.end"]),
        st.sampled_from(["gk2027-a", "drill"]),
    )


PAYLOAD = _payload()
WITH_SEALS = st.one_of(PAYLOAD, _seal_events())
STEPS = st.sampled_from([0, 0, 0, 0.5, 1, 5, 15, 30, 61, 600, 4000])


def streams(
    base: str = IN_SEAL, seals: bool = True, max_size: int = 40
) -> st.SearchStrategy[list[Fields]]:
    """Events with non-decreasing times (many at the same instant) from `base` on."""
    return st.lists(
        st.tuples(STEPS, WITH_SEALS if seals else PAYLOAD), min_size=1, max_size=max_size
    ).map(lambda steps: _stamp(base, steps))


def _stamp(base: str, steps: list[tuple[float, Fields]]) -> list[Fields]:
    t = parse_ts(base)
    out = []
    for step, fields in steps:
        t += seconds(step)
        ts = format_ts(t, SITE.tz)
        obj = {"ts": ts, **fields}
        if obj["type"] == "call.recorded":
            obj.update(start=ts, end=ts)
        out.append(obj)
    return out


def replay(site: Any, events: list[Fields], until: int | None = None) -> list[Transition]:
    engine = Engine(site)
    out: list[Transition] = []
    for obj in events:
        ev = parse_event(obj, site)
        assert not isinstance(ev, Rejection), ev
        try:
            out += engine.feed(ev)
        except EventRejected:
            out += engine.pending_transitions()
    if until is not None:
        out += engine.advance(until)
    return out


@PROPS
@given(streams())
def test_the_same_stream_replayed_twice_gives_identical_output(events: list[Fields]) -> None:
    assert replay(SITE, events) == replay(SITE, events)


@PROPS
@given(streams(), st.data())
def test_advancing_between_events_changes_nothing(
    events: list[Fields], data: st.DataObject
) -> None:
    engine = Engine(SITE)
    stepped: list[Transition] = []
    times = [parse_ts(e["ts"]) for e in events]
    for i, obj in enumerate(events):
        ev = parse_event(obj, SITE)
        assert not isinstance(ev, Rejection)
        try:
            stepped += engine.feed(ev)
        except EventRejected:
            stepped += engine.pending_transitions()
        if i + 1 < len(times) and times[i + 1] > times[i]:
            t = data.draw(st.integers(min_value=times[i], max_value=times[i + 1] - 1))
            stepped += engine.advance(t)
    assert stepped == replay(SITE, events)


@PROPS
@given(streams(), st.sampled_from([0, 60, 3600, 86_400]))
def test_every_cleared_follows_a_raised_of_the_same_alert(
    events: list[Fields], extra_s: int
) -> None:
    out = replay(SITE, events, until=parse_ts(events[-1]["ts"]) + seconds(extra_s))
    raised: set[str] = set()
    cleared: set[str] = set()
    for x in out:
        if x.state == "raised":
            assert x.alert_id not in raised, "an alert id is raised once"
            raised.add(x.alert_id)
        else:
            assert x.alert_id in raised, f"{x.state} before raised: {x}"
            assert x.alert_id not in cleared or x.state == "acknowledged", x
            if x.state == "cleared":
                cleared.add(x.alert_id)
    assert [x.ts for x in out] == sorted(x.ts for x in out)


@PROPS
@given(streams(base=BEFORE_SEAL, seals=False))
def test_no_seal_only_policy_raises_outside_a_seal(events: list[Fields]) -> None:
    out = replay(UNSEALED, events, until=parse_ts(events[-1]["ts"]) + seconds(7200))
    assert [x for x in out if x.policy in SEAL_ONLY] == []


def _corrupt(obj: Fields, how: str) -> Fields:
    bad = dict(obj)
    if how == "type":
        bad["type"] = "door.exploded"
    elif how == "device":
        bad["device"] = "no-such-device"
    elif how == "naive":
        bad["ts"] = bad["ts"][:19]
    elif how == "wrong-kind":
        bad["device"] = (
            "cam-gate"
            if not bad["type"].startswith(("camera.", "recording.", "device."))
            else "pd-x"
        )
    elif how == "no-ts":
        del bad["ts"]
    return bad


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def garbage_lines(draw: st.DrawFn) -> list[str]:
    lines = []
    for obj in draw(streams(max_size=10)):
        choice = draw(
            st.sampled_from(["text", "json", "type", "device", "naive", "wrong-kind", "no-ts"])
        )
        if choice == "text":
            line = draw(st.text(min_size=1, max_size=40).filter(lambda s: s.strip() != ""))
        elif choice == "json":
            line = json.dumps(draw(_json))  # json: integers beyond 64 bits too
        else:
            line = orjson.dumps(_corrupt(obj, choice)).decode()
        lines.append(line.replace("\n", " ").replace("\r", " "))
    return lines


@PROPS
@given(garbage_lines())
def test_garbage_lines_are_rejected_never_raise_and_never_alert(lines: list[str]) -> None:
    for line in lines:
        assert isinstance(parse_line(line, SITE), Rejection), line
    errors = io.StringIO()
    out = list(
        replay_lines(
            SITE,
            [line.encode() for line in lines],
            errors=errors,
            until=parse_ts(IN_SEAL) + seconds(3600),
        )
    )
    assert out == []
    reported = [e for e in errors.getvalue().splitlines() if e]
    nonblank = [i for i, line in enumerate(lines, start=1) if line.strip()]
    assert [int(e.split(":")[0].removeprefix("line ")) for e in reported] == nonblank
