"""The event parser (policies/events.py, CONTRACT §2): typed events or a rejection with a reason."""

from __future__ import annotations

from typing import Any

import pytest

from policies.events import (
    BadgeEvent,
    CallRecorded,
    JammerStatus,
    RecordingInventory,
    Rejection,
    SealEvent,
    parse_event,
    parse_line,
)
from policies.timefmt import parse_ts
from tests.support.engine import reference_site

SITE = reference_site()
TS = "2027-05-25T14:00:00+08:00"


def parse(**obj: Any) -> Any:
    return parse_event({"ts": TS, **obj}, SITE)


def reason(**obj: Any) -> str:
    got = parse(**obj)
    assert isinstance(got, Rejection), got
    return got.reason


def test_badge_event_is_typed() -> None:
    e = parse(device="gate-inner", type="badge.granted", badge="B1001", direction="out")
    assert isinstance(e, BadgeEvent)
    assert (e.ts, e.device, e.badge, e.direction) == (parse_ts(TS), "gate-inner", "B1001", "out")


def test_same_instant_written_with_different_offsets_is_the_same_time() -> None:
    a = parse(device="gate-inner", type="door.opened")
    b = parse_event(
        {"ts": "2027-05-25T06:00:00Z", "device": "gate-inner", "type": "door.opened"}, SITE
    )
    assert not isinstance(b, Rejection) and a.ts == b.ts


def test_jammer_status_and_inventory_and_call_fields() -> None:
    j = parse(
        device="jam-work",
        type="jammer.status",
        output=True,
        bands={"gsm900": 31.5},
        faults=["fan"],
        temperature_c=40,
    )
    assert isinstance(j, JammerStatus) and j.bands == {"gsm900": 31.5} and j.faults == ("fan",)
    inv = parse(
        device="cam-gate", type="recording.inventory", oldest=TS, newest=TS, gaps=[[TS, TS]]
    )
    assert isinstance(inv, RecordingInventory) and inv.gaps == ((parse_ts(TS), parse_ts(TS)),)
    call = parse(
        device="duty-phone",
        type="call.recorded",
        start=TS,
        end=TS,
        recording=None,
        supervisors=["S2001"],
    )
    assert isinstance(call, CallRecorded) and call.recording is None


def test_seal_start_of_a_new_seal_carries_name_classification_and_end() -> None:
    e = parse(
        device="console-1",
        type="seal.start",
        seal="x",
        name="X",
        classification="secret",
        end="2027-05-26T14:00:00+08:00",
    )
    assert isinstance(e, SealEvent) and e.end == parse_ts("2027-05-26T14:00:00+08:00")


def test_extra_fields_are_kept_but_ignored() -> None:
    e = parse(device="gate-inner", type="door.opened", gateway="gw-1")
    assert not isinstance(e, Rejection) and e.source["gateway"] == "gw-1"


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (
            {"device": "gate-inner", "type": "door.opend"},
            "unknown event type 'door.opend' (did you mean 'door.opened'?)",
        ),
        (
            {"device": "gate-iner", "type": "door.opened"},
            "unknown device 'gate-iner' (did you mean 'gate-inner'?)",
        ),
        (
            {"device": "cam-gate", "type": "door.opened"},
            "device 'cam-gate' is a camera, not a door (type door.opened)",
        ),
        ({"type": "door.opened"}, "missing field 'device'"),
        ({"device": "gate-inner"}, "missing field 'type'"),
        (
            {"device": "gate-inner", "type": "badge.granted", "direction": "in"},
            "missing field 'badge'",
        ),
        (
            {"device": "gate-inner", "type": "badge.granted", "badge": "B1", "direction": "up"},
            "field 'direction' must be one of in, out, got 'up'",
        ),
        (
            {"device": "belt-south-pir", "type": "alarm.input", "state": "ringing"},
            "field 'state' must be one of normal, alarm, tamper, fault, got 'ringing'",
        ),
        ({"device": "jam-work", "type": "jammer.status", "bands": {}}, "missing field 'output'"),
        (
            {"device": "jam-work", "type": "jammer.status", "output": True, "bands": {"x": "hi"}},
            "band 'x' must be a number of dBm",
        ),
        (
            {"device": "cam-gate", "type": "camera.status", "stream": "up", "tamper": "painted"},
            "field 'tamper' must be null, covered, defocused, moved or frozen, got 'painted'",
        ),
        (
            {"device": "console-1", "type": "approval.granted", "badge": "B1001", "valid_s": 0},
            "field 'valid_s' must be greater than 0",
        ),
        (
            {"device": "console-1", "type": "inspection.done", "zone": "secure-rom", "badge": "S1"},
            "unknown zone 'secure-rom' (did you mean 'secure-room'?)",
        ),
        (
            {"device": "duty-phone", "type": "call.recorded", "start": TS, "end": TS},
            "missing field 'recording' (an id, or null for none)",
        ),
        (
            {
                "device": "console-1",
                "type": "alert.shelve",
                "alert_id": "a",
                "badge": "S",
                "until": "2027-05-25T15:00:00",
                "reason": "r",
            },
            "field 'until' is not an RFC 3339 time with an offset: '2027-05-25T15:00:00'",
        ),
    ],
)
def test_bad_events_are_rejected_with_a_reason(obj: dict[str, Any], expected: str) -> None:
    assert reason(**obj) == expected


def test_a_time_without_offset_is_rejected() -> None:
    got = parse_event(
        {"ts": "2027-05-25T14:00:00", "device": "gate-inner", "type": "door.opened"}, SITE
    )
    assert isinstance(got, Rejection) and "offset" in got.reason


def test_missing_ts_is_rejected_unless_a_receive_time_is_given() -> None:
    obj = {"device": "gate-inner", "type": "door.opened"}
    assert parse_event(obj, SITE) == Rejection("missing field 'ts'")
    got = parse_event(obj, SITE, now_us=parse_ts(TS))
    assert not isinstance(got, Rejection) and got.ts == parse_ts(TS)
    assert got.source["ts"] == TS


def test_device_defaults_to_the_topic_level() -> None:
    got = parse_event({"ts": TS, "type": "device.heartbeat"}, SITE, device="pd-work")
    assert not isinstance(got, Rejection) and got.device == "pd-work"


@pytest.mark.parametrize(
    "line",
    [
        "",
        "not json",
        "[1, 2]",
        "42",
        "null",
        '"text"',
        '{"ts": 5, "device": "gate-inner", "type": "door.opened"}',
    ],
)
def test_lines_that_are_not_event_objects_are_rejected(line: str) -> None:
    assert isinstance(parse_line(line, SITE), Rejection)
