"""Hostile lines through `replay_lines` (issue 8): a bad line is reported and skipped, never fatal.

Lines are events of every type with hostile fields (the strategies of test_events_hostile),
and raw garbage: random bytes, invalid UTF-8, JSON that is not an object, NaN and 1e400,
nesting deeper than the parser allows, megabyte lines, blank lines. Every non-blank line that
the parser rejects is reported once as `line N: reason`, no report is an internal error (the
last-resort guard must not be what keeps replay alive), and every transition can be written.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policies.events
from daemon.replay import UNTIL, numbered_transitions, replay_lines, run_replay
from policies.engine import Transition
from policies.events import Rejection, parse_line
from policies.site import Site
from policies.timefmt import EARLIEST_US, LATEST_US, US, format_ts, parse_ts
from tests.support.engine import IN_SEAL, reference_site
from tests.test_events_hostile import BASES, SITES, STEPS_S, event_objects

SITE = reference_site()
LINES = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

RAW_LINES: list[bytes] = [
    b"",
    b"   ",
    b"\t\r",
    b"\xff\xfe\xfd",
    b'{"ts": "\xff", "device": "gate-inner", "type": "door.opened"}',
    b'{"ts": "2027-05-25T14:00:00+08:00", "device": "gate-\xc3", "type": "door.opened"}',
    b"\xef\xbb\xbf" + b'{"ts": "2027-05-25T14:00:00+08:00"}',
    b"null",
    b"[]",
    b"42",
    b'"text"',
    b"true",
    b"NaN",
    b"1e400",
    b"-Infinity",
    b'{"a": NaN}',
    b'{"faults": 1e400}',
    b'{"type": "\\ud800"}',
    b"[" * 5000 + b"]" * 5000,
    b'{"a":' * 2000 + b"1" + b"}" * 2000,
    b"{" * 100_000,
    b'{"ts": "' + b"9" * 1_000_000 + b'"}',
    b"\x00",
    b"{}",
    # the lines of issue 8, for both reference sites
    b'{"ts":"9999-12-31T23:59:59-14:00","device":"gate-inner","type":"door.forced"}',
    b'{"ts":"9999-12-31T23:59:59-14:00","device":"wing-door","type":"door.forced"}',
    b'{"ts":"0001-01-01T00:00:00+14:00","device":"gate-inner","type":"door.forced"}',
    b'{"ts":"2027-05-25T14:00:00+08:00","device":"jam-work","type":"jammer.status",'
    b'"output":true,"bands":{},"faults":null}',
    b'{"ts":"2027-03-10T10:00:00+08:00","device":"jam-meeting","type":"jammer.status",'
    b'"output":true,"bands":{},"faults":null}',
    b'{"type": null, "device": null, "ts": null}',
]


def _serialize(obj: Any) -> bytes:
    """JSON text for any object: orjson where it can, else Python's json (NaN, huge ints, lone
    surrogates as escapes), else a description of it."""
    try:
        return orjson.dumps(obj)
    except (TypeError, orjson.JSONEncodeError):
        pass
    try:
        return json.dumps(obj).encode()
    except (ValueError, RecursionError):
        return repr(type(obj)).encode()


@st.composite
def hostile_lines(draw: st.DrawFn) -> tuple[Site, list[bytes | str]]:
    site = draw(st.sampled_from(SITES))
    ts = parse_ts(draw(st.sampled_from(BASES[site.id])))
    lines: list[bytes | str] = []
    for _ in range(draw(st.integers(1, 25))):
        kind = draw(st.sampled_from(["event", "event", "event", "raw", "bytes", "text"]))
        if kind == "event":
            ts = min(ts + draw(st.sampled_from(STEPS_S)) * US, LATEST_US - 1)
            line = _serialize(draw(event_objects(site, ts)))
        elif kind == "raw":
            line = draw(st.sampled_from(RAW_LINES))
        elif kind == "bytes":
            line = draw(st.binary(max_size=40))
        else:
            line = draw(st.text(max_size=40)).encode("utf-8", "surrogatepass")
        line = line.replace(b"\n", b" ")
        if draw(st.booleans()):
            line += draw(st.sampled_from([b"\n", b"\r\n", b" "]))
        as_text = draw(st.integers(0, 4)) == 0
        lines.append(line.decode("utf-8", "surrogateescape") if as_text else line)
    return site, lines


def _blank(line: bytes | str) -> bool:
    return not line.strip()


REPORT = re.compile(r"^line (\d+): (\S.*)$")


@LINES
@given(hostile_lines(), st.sampled_from([None, 0, 3600, 90 * 86_400]))
def test_hostile_lines_are_reported_and_skipped_never_fatal(
    case: tuple[Site, list[bytes | str]], extra_s: int | None
) -> None:
    site, lines = case
    until = None if extra_s is None else min(parse_ts(IN_SEAL) + extra_s * US, LATEST_US - 1)
    errors = io.StringIO()
    out = list(numbered_transitions(site, lines, until=until, errors=errors))
    reported: list[int] = []
    for report in errors.getvalue().splitlines():
        m = REPORT.match(report)
        assert m is not None, report[:200]
        assert "internal error" not in report, report[:300]
        n = int(m.group(1))
        assert 1 <= n <= len(lines) and not _blank(lines[n - 1])
        reported.append(n)
    assert reported == sorted(set(reported)), "each line at most once, in order"
    for n, line in enumerate(lines, start=1):
        parsed = parse_line(line, site)
        if isinstance(parsed, Rejection):
            assert _blank(line) or n in reported, (n, line[:200])
        else:
            assert EARLIEST_US <= parsed.ts < LATEST_US, (n, line[:200])
    for n, t in out:
        assert n == UNTIL or 1 <= n <= len(lines)
        orjson.dumps(t.to_dict(site.tz))


@LINES
@given(hostile_lines())
def test_replay_lines_gives_the_same_transitions_as_numbered(
    case: tuple[Site, list[bytes | str]],
) -> None:
    site, lines = case
    assert list(replay_lines(site, lines)) == [t for _, t in numbered_transitions(site, lines)]


# -- the last-resort guard ------------------------------------------------------------------


def _event(ts: str, device: str, type: str, **fields: Any) -> bytes:
    return orjson.dumps({"ts": ts, "device": device, "type": type, **fields})


T0 = "2027-05-25T14:00:00+08:00"
T1 = "2027-05-25T14:00:01+08:00"
T2 = "2027-05-25T14:00:02+08:00"


def test_an_exception_while_parsing_one_line_is_reported_and_replay_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = policies.events.parse_event

    def flaky(obj: Any, site: Site, **kw: Any) -> Any:
        if isinstance(obj, dict) and obj.get("device") == "gate-outer":
            raise RuntimeError("boom\nsecond line")
        return real(obj, site, **kw)

    monkeypatch.setattr("daemon.replay.parse_event", flaky)
    errors = io.StringIO()
    lines = [
        _event(T0, "gate-inner", "door.forced"),
        _event(T1, "gate-outer", "door.opened"),
        _event(T2, "gate-inner", "door.closed"),
    ]
    out = [(t.policy, t.state) for t in replay_lines(SITE, lines, errors=errors)]
    assert errors.getvalue() == "line 2: internal error: RuntimeError: boom\\nsecond line\n"
    assert ("door-forced", "raised") in out and ("door-forced", "cleared") in out


def test_an_exception_while_feeding_is_reported_and_replay_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from policies.engine import Engine

    real = Engine.feed

    def flaky(self: Engine, ev: Any) -> list[Transition]:
        if ev.device == "gate-outer":
            raise ZeroDivisionError("division by zero")
        return real(self, ev)

    monkeypatch.setattr(Engine, "feed", flaky)
    errors = io.StringIO()
    lines = [
        _event(T0, "gate-inner", "door.forced"),
        _event(T1, "gate-outer", "door.opened"),
        _event(T2, "gate-inner", "door.closed"),
    ]
    out = [(t.policy, t.state) for t in replay_lines(SITE, lines, errors=errors)]
    assert errors.getvalue() == "line 2: internal error: ZeroDivisionError: division by zero\n"
    assert ("door-forced", "cleared") in out


def test_an_exception_while_writing_an_alert_is_reported_and_replay_goes_on(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    real = Transition.to_dict

    def flaky(self: Transition, tz: Any) -> dict[str, Any]:
        if self.state == "raised" and self.policy == "door-forced":
            raise OverflowError("date value out of range")
        return real(self, tz)

    monkeypatch.setattr(Transition, "to_dict", flaky)
    path = tmp_path / "events.jsonl"
    path.write_bytes(
        b"\n".join(
            [_event(T0, "gate-inner", "door.forced"), _event(T2, "gate-inner", "door.closed")]
        )
    )
    assert run_replay(SITE, str(path), until=None, strict=True) == 1
    got = capfdbinary.readouterr()
    assert got.err.decode() == (
        "line 1: internal error: OverflowError: date value out of range (writing an alert)\n"
    )
    forced = [json.loads(x)["state"] for x in got.out.splitlines() if b"door-forced" in x]
    assert forced == ["cleared"]


def test_until_outside_the_plausible_range_is_refused(
    capfdbinary: pytest.CaptureFixture[bytes], tmp_path: Any
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(_event(T0, "gate-inner", "door.opened"))
    for until in (LATEST_US, EARLIEST_US - 1):
        assert run_replay(SITE, str(path), until=until, strict=False) == 2
        err = capfdbinary.readouterr().err.decode()
        assert err.startswith("--until is too ") and "2100-01-01T00:00:00Z" in err
    assert run_replay(SITE, str(path), until=LATEST_US - 1, strict=False) == 0
    out = capfdbinary.readouterr().out.decode().splitlines()
    assert out and json.loads(out[-1])["ts"] <= format_ts(LATEST_US - 1, SITE.tz)
