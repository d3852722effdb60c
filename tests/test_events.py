"""The event parser (policies/events.py, CONTRACT §2): typed events or a rejection with a reason."""

from __future__ import annotations

from typing import Any

import pytest

from policies.events import (
    DAEMON_DEVICE,
    BadgeEvent,
    CallRecorded,
    DaemonHealth,
    JammerStatus,
    RecordingInventory,
    Rejection,
    SealEvent,
    parse_event,
    parse_line,
)
from policies.site import SiteError, parse_site
from policies.timefmt import parse_ts
from tests.support.engine import BEFORE_SEAL, EXAMPLES, SEAL_END, Run, ev, reference_site

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


# -- bad values are rejected with a reason, never an exception (issue 8) -------------------


def test_jammer_faults_null_means_no_faults() -> None:
    j = parse(device="jam-work", type="jammer.status", output=True, bands={}, faults=None)
    assert isinstance(j, JammerStatus) and j.faults == ()


@pytest.mark.parametrize("faults", [0, 1.5, True, "fan", {"a": 1}, [1], [None], ["ok", 2]])
def test_jammer_faults_of_another_shape_are_rejected(faults: Any) -> None:
    assert reason(device="jam-work", type="jammer.status", output=True, faults=faults) == (
        "field 'faults' must be a list of strings"
    )


def test_too_many_or_too_long_faults_are_rejected() -> None:
    assert "more than 64" in reason(
        device="jam-work", type="jammer.status", output=True, faults=["fan"] * 65
    )
    assert "longer than 256" in reason(
        device="jam-work", type="jammer.status", output=True, faults=["f" * 257]
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (10**400, "band 'gsm900' must be from -300 to 300 dBm, got a huge integer"),
        (-(10**400), "band 'gsm900' must be from -300 to 300 dBm, got a huge integer"),
        (1e308, "band 'gsm900' must be from -300 to 300 dBm, got 1e+308"),
        (float("nan"), "band 'gsm900' must be a number of dBm"),
        (float("inf"), "band 'gsm900' must be a number of dBm"),
        (True, "band 'gsm900' must be a number of dBm"),
        (None, "band 'gsm900' must be a number of dBm"),
    ],
)
def test_band_values_outside_plausible_dbm_are_rejected(value: Any, expected: str) -> None:
    got = reason(device="jam-work", type="jammer.status", output=True, bands={"gsm900": value})
    assert got == expected


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("temperature_c", 10**400, "field 'temperature_c' must be a number from -273.15 to 1000"),
        ("temperature_c", float("nan"), "field 'temperature_c' must be a finite number"),
        ("temperature_c", "hot", "field 'temperature_c' must be a finite number"),
        ("temperature_c", -300, "field 'temperature_c' must be a number from -273.15 to 1000"),
    ],
)
def test_jammer_temperature_is_a_plausible_number(field: str, value: Any, expected: str) -> None:
    got = reason(device="jam-work", type="jammer.status", output=True, **{field: value})
    assert got.startswith(expected)


def test_extreme_numbers_elsewhere_are_rejected_with_a_reason() -> None:
    assert reason(device="cam-gate", type="camera.status", stream="up", fps=-1).startswith(
        "field 'fps' must be a number from 0 to"
    )
    assert reason(device="pd-work", type="phone.detected", rssi_dbm=10**400).startswith(
        "field 'rssi_dbm' must be a number from -300 to 300"
    )
    assert reason(
        device="console-1", type="approval.granted", badge="B1001", valid_s=1e308
    ).startswith("field 'valid_s' must be at most")
    assert (
        reason(device="console-1", type="approval.granted", badge="B1001", valid_s=-(10**400))
        == "field 'valid_s' must be greater than 0"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ts", "9999-12-31T23:59:59-14:00"),
        ("ts", "0001-01-01T00:00:00+14:00"),
        ("ts", "2100-01-01T00:00:00Z"),
        ("ts", "1999-12-31T23:59:59.999999Z"),
        ("ts", "2000-01-01T00:00:00+00:01"),  # 1999-12-31T23:59Z
    ],
)
def test_times_outside_2000_to_2100_are_rejected_naming_field_and_range(
    field: str, value: str
) -> None:
    got = parse_event({"ts": value, "device": "gate-inner", "type": "door.opened"}, SITE)
    assert isinstance(got, Rejection)
    assert got.reason.startswith(f"field '{field}' is too ")
    assert "2000-01-01T00:00:00Z" in got.reason and "2100-01-01T00:00:00Z" in got.reason


def test_the_edges_of_the_plausible_range_are_accepted() -> None:
    for value in ("2000-01-01T00:00:00Z", "2099-12-31T23:59:59.999999Z"):
        got = parse_event({"ts": value, "device": "gate-inner", "type": "door.opened"}, SITE)
        assert not isinstance(got, Rejection), got


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        (
            {
                "type": "alert.shelve",
                "alert_id": "a",
                "badge": "S",
                "reason": "r",
                "until": "9999-12-31T23:59:59-14:00",
            },
            "until",
        ),
        (
            {"type": "recording.inventory", "device": "cam-gate", "oldest": "0001-01-01T00:00:00Z"},
            "oldest",
        ),
        (
            {"type": "recording.inventory", "device": "cam-gate", "newest": "2100-06-01T00:00:00Z"},
            "newest",
        ),
        (
            {
                "type": "recording.inventory",
                "device": "cam-gate",
                "gaps": [["1970-01-01T00:00:00Z", TS]],
            },
            "gaps",
        ),
        (
            {
                "type": "call.recorded",
                "device": "duty-phone",
                "start": TS,
                "end": "9999-01-01T00:00:00Z",
                "recording": None,
            },
            "end",
        ),
        (
            {"type": "call.recorded", "device": "duty-phone", "start": "1000-01-01T00:00:00Z"},
            "start",
        ),
        (
            {
                "type": "seal.start",
                "seal": "s",
                "name": "n",
                "classification": "secret",
                "end": "2200-01-01T00:00:00Z",
            },
            "end",
        ),
    ],
)
def test_every_time_field_is_range_checked(obj: dict[str, Any], field: str) -> None:
    got = parse_event({"ts": TS, "device": "console-1", **obj}, SITE)
    assert isinstance(got, Rejection)
    assert got.reason.startswith(f"field '{field}' is too "), got.reason


def test_a_receive_time_outside_the_range_is_not_used_for_a_missing_ts() -> None:
    got = parse_event({"device": "gate-inner", "type": "door.opened"}, SITE, now_us=0)
    assert isinstance(got, Rejection) and "too early" in got.reason


def test_a_call_ending_before_it_starts_is_rejected() -> None:
    got = reason(
        device="duty-phone",
        type="call.recorded",
        start="2027-05-25T14:00:00+08:00",
        end="2027-05-25T13:00:00+08:00",
        recording="r",
    )
    assert got == "field 'end' must not be before 'start'"


def test_long_and_unwritable_texts_are_rejected() -> None:
    ok = {"device": "gate-inner", "type": "badge.granted", "direction": "in"}
    assert reason(**ok, badge="b" * 257) == "field 'badge' is longer than 256 characters (257)"
    assert reason(**ok, badge="b\ud800") == (
        "field 'badge' is not valid Unicode text (a lone surrogate)"
    )
    assert not isinstance(parse(**ok, badge="é漢字🙂"), Rejection)
    ack = {"device": "console-1", "type": "alert.ack", "alert_id": "a", "badge": "S"}
    assert "longer than 2000" in reason(**ack, comment="c" * 2001)


def test_reasons_quote_hostile_values_briefly() -> None:
    mega = "x" * 1_000_000
    for obj in (
        {"device": mega, "type": "door.opened"},
        {"device": "gate-inner", "type": mega},
        {"device": "gate-inner", "type": 10**5000},
        {"device": "gate-inner", "type": "badge.granted", "badge": "b", "direction": mega},
        {"device": "console-1", "type": "inspection.done", "zone": mega, "badge": "b"},
        {"device": "gate-inner", "type": "door.opened", "ts": mega},
    ):
        got = parse_event({"ts": TS, **obj}, SITE)
        assert isinstance(got, Rejection)
        assert 0 < len(got.reason) < 300, got.reason[:400]


# -- daemon.health ---------------------------------------------------------------------------


def health(**fields: Any) -> Any:
    return parse_event({"ts": TS, "device": DAEMON_DEVICE, "type": "daemon.health", **fields}, SITE)


def test_daemon_health_comes_from_the_reserved_device() -> None:
    h = health(component="store", state="degraded", reason="database or disk is full")
    assert isinstance(h, DaemonHealth) and DAEMON_DEVICE == "sealwatch"
    assert (h.device, h.component, h.state, h.reason) == (
        "sealwatch",
        "store",
        "degraded",
        "database or disk is full",
    )
    assert health(component="mqtt-session", state="ok").reason is None


def test_daemon_health_fields_are_checked() -> None:
    assert health(state="ok").reason == "missing field 'component'"
    assert health(component="disk", state="ok").reason == (
        "field 'component' must be one of store, mqtt-session, ingest, sink, got 'disk'"
    )
    assert health(component="store", state="dead").reason == (
        "field 'state' must be one of ok, degraded, lost, got 'dead'"
    )
    assert health(component="store", state="ok", reason=5).reason == (
        "field 'reason' must be a string"
    )


def test_daemon_health_reason_is_cut_not_refused() -> None:
    h = health(component="store", state="degraded", reason="r" * 10_000 + "\ud800")
    assert isinstance(h, DaemonHealth) and h.reason is not None
    assert len(h.reason) == 500 and h.reason.endswith("…")
    h = health(component="store", state="degraded", reason="disk \ud800 full")
    assert isinstance(h, DaemonHealth) and h.reason == "disk ? full"


def test_the_reserved_device_sends_only_daemon_health_and_nobody_else_does() -> None:
    got = parse_event({"ts": TS, "device": "sealwatch", "type": "device.heartbeat"}, SITE)
    assert got == Rejection("device 'sealwatch' is the daemon itself: it sends only daemon.health")
    got = parse_event(
        {"ts": TS, "device": "console-1", "type": "daemon.health", "component": "store"}, SITE
    )
    assert got == Rejection("device 'console-1' is a console, not a daemon (type daemon.health)")


def test_a_site_may_not_define_a_device_called_sealwatch() -> None:
    text = (EXAMPLES / "site.yaml").read_text().replace("id: cam-gate,", "id: sealwatch,", 1)
    assert "id: sealwatch," in text
    with pytest.raises(SiteError) as err:
        parse_site(text)
    assert any(
        "id 'sealwatch' is reserved for the daemon's own events (daemon.health)" in e
        for e in err.value.errors
    ), err.value.errors


def test_site_times_outside_2000_to_2100_are_refused() -> None:
    text = (EXAMPLES / "site.yaml").read_text()
    broken = text.replace("2027-06-08T18:00:00+08:00", "9999-12-31T23:59:59-14:00", 1)
    assert broken != text
    with pytest.raises(SiteError) as err:
        parse_site(broken)
    assert any(".end: the time is too late" in e for e in err.value.errors), err.value.errors


# -- the daemon-health policy (policies/rules/daemon.py) --------------------------------------

DH = "daemon-health"


def hev(t: float, component: str, state: str, **fields: Any) -> dict[str, Any]:
    return ev(t, DAEMON_DEVICE, "daemon.health", component=component, state=state, **fields)


def test_degraded_raises_a_critical_alert_that_ok_clears() -> None:
    r = Run(SITE).feed(
        hev(0, "store", "degraded", reason="database or disk is full"),
        hev(5, "store", "degraded", reason="still full"),
        hev(9, "mqtt-session", "ok"),  # another component's ok changes nothing
    )
    assert r.triples(DH) == [(DH, "store", "raised")]
    raised = r.of(DH)[0]
    assert (raised.severity, raised.clause) == ("critical", "EXAM-2.7.10")
    assert raised.message == "sealwatch store degraded (database or disk is full)"
    r.feed(hev(10, "store", "ok"))
    assert r.triples(DH) == [(DH, "store", "raised"), (DH, "store", "cleared")]


def test_daemon_health_is_not_seal_only() -> None:
    r = Run(SITE).feed(hev(0, "sink", "degraded", base=BEFORE_SEAL))
    r.advance(7200, base=BEFORE_SEAL)
    assert (DH, "sink", "raised") in r.triples(DH)
    r = Run(SITE).feed(
        hev(0, "ingest", "degraded", base=SEAL_END),
        ev(60, "console-1", "device.heartbeat", base=SEAL_END),
    )
    assert r.triples(DH) == [(DH, "ingest", "raised")]  # the seal's end clears nothing here


def test_lost_raises_a_latched_major_alert_that_only_an_ack_clears() -> None:
    r = Run(SITE).feed(hev(0, "mqtt-session", "lost"), hev(1, "mqtt-session", "ok"))
    assert r.triples(DH) == [(DH, "mqtt-session", "raised")]
    a = r.of(DH)[0]
    assert a.severity == "major"
    assert "events the broker held for the daemon may be gone" in a.message
    r.advance(3600)
    assert r.triples(DH) == [(DH, "mqtt-session", "raised")]  # major: no escalation either
    aid = r.alert_id(DH, "mqtt-session")
    r.feed(ev(3601, "console-1", "alert.ack", alert_id=aid, badge="S2001"))
    assert r.triples(DH)[1:] == [
        (DH, "mqtt-session", "acknowledged"),
        (DH, "mqtt-session", "cleared"),
    ]
    r.feed(hev(3700, "mqtt-session", "lost"))  # a new loss is a new alert
    assert r.triples(DH)[-1] == (DH, "mqtt-session", "raised")
    assert r.alert_id(DH, "mqtt-session") != aid


def test_a_loss_while_degraded_latches_the_critical_alert() -> None:
    r = Run(SITE).feed(hev(0, "store", "degraded"), hev(1, "store", "lost"), hev(2, "store", "ok"))
    assert r.triples(DH) == [(DH, "store", "raised")]
    alert = r.engine.ctx.active_alert(DH, "store")
    assert alert is not None and alert.latched and alert.severity == "critical"
    assert "lost" in alert.message
    aid = r.alert_id(DH, "store")
    r.feed(ev(3, "console-1", "alert.ack", alert_id=aid, badge="S2001"))
    assert r.triples(DH)[-1] == (DH, "store", "cleared")


def test_a_loss_after_an_acknowledged_degradation_is_a_new_alert_to_acknowledge() -> None:
    r = Run(SITE).feed(hev(0, "store", "degraded"))
    first = r.alert_id(DH, "store")
    r.feed(
        ev(1, "console-1", "alert.ack", alert_id=first, badge="S2001"),
        hev(2, "store", "lost"),
        hev(3, "store", "ok"),
    )
    assert r.triples(DH) == [
        (DH, "store", "raised"),
        (DH, "store", "acknowledged"),
        (DH, "store", "cleared"),
        (DH, "store", "raised"),
    ]
    second = r.alert_id(DH, "store")
    assert second != first and r.engine.ctx.active_alert(DH, "store") is not None


def test_degraded_while_a_loss_awaits_acknowledgement_escalates_it() -> None:
    r = Run(SITE).feed(hev(0, "mqtt-session", "lost"), hev(1, "mqtt-session", "degraded"))
    assert r.triples(DH) == [(DH, "mqtt-session", "raised"), (DH, "mqtt-session", "escalated")]
    assert r.of(DH)[-1].severity == "critical"
    r.feed(hev(2, "mqtt-session", "ok"))
    assert r.engine.ctx.active_alert(DH, "mqtt-session") is not None  # still latched


def test_daemon_health_replays_the_same() -> None:
    events = [
        hev(0, "store", "degraded"),
        hev(1, "mqtt-session", "lost", reason="session present: false"),
        hev(2, "store", "ok"),
    ]
    assert Run(SITE).feed(*events).out == Run(SITE).feed(*events).out
