"""Duty-phone recorder folders on real temp directories."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.duty_phone import DutyPhoneWatcher
from policies.site import Site, parse_site
from tests.support.collecting_sink import CollectingSink

NOW = datetime(2027, 5, 25, 6, 0, 5, tzinfo=UTC)


def site() -> Site:
    return parse_site("""
site: {id: phone-test, name: Phone test}
zones: [{id: living, kind: sealed_living}]
duty_phones: [{id: duty-phone, zone: living, recordings: calls}]
""")


def write_call(
    folder: Path,
    call_id: str,
    *,
    recorded: bool = True,
    wav: bool = True,
    supervisors: list[str] | None = None,
    start: str = "2027-05-25T05:58:00+00:00",
    end: str = "2027-05-25T06:00:00+00:00",
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if recorded and wav:
        (folder / f"{call_id}.wav").write_bytes(b"RIFF")
    record = {
        "call": call_id,
        "start": start,
        "end": end,
        "recording": f"{call_id}.wav" if recorded else None,
        "supervisors": supervisors if supervisors is not None else ["S2001", "S2002"],
    }
    (folder / f"{call_id}.json").write_text(json.dumps(record))


def watcher(tmp_path: Path, sink: CollectingSink, **kw: object) -> DutyPhoneWatcher:
    return DutyPhoneWatcher(site(), sink, tmp_path, now=lambda: NOW, **kw)  # type: ignore[arg-type]


async def test_each_call_becomes_one_event(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    write_call(calls, "call-2", start="2027-05-25T05:59:00+00:00")
    write_call(calls, "call-1", recorded=False, supervisors=["S2001"])
    sink = CollectingSink()
    w = watcher(tmp_path, sink)
    events = await w.scan_once()
    assert events == [
        {
            "ts": "2027-05-25T06:00:05.000+00:00",
            "device": "duty-phone",
            "type": "call.recorded",
            "start": "2027-05-25T05:58:00+00:00",
            "end": "2027-05-25T06:00:00+00:00",
            "recording": None,
            "supervisors": ["S2001"],
            "call": "call-1",
        },
        {
            "ts": "2027-05-25T06:00:05.000+00:00",
            "device": "duty-phone",
            "type": "call.recorded",
            "start": "2027-05-25T05:59:00+00:00",
            "end": "2027-05-25T06:00:00+00:00",
            "recording": "call-2.wav",
            "supervisors": ["S2001", "S2002"],
            "call": "call-2",
        },
    ]
    assert await w.scan_once() == []
    write_call(calls, "call-3")
    assert [e["call"] for e in await w.scan_once()] == ["call-3"]
    assert sink.rejections == []


async def test_restart_does_not_emit_again(tmp_path: Path) -> None:
    write_call(tmp_path / "calls", "call-1")
    assert len(await watcher(tmp_path, CollectingSink()).scan_once()) == 1
    assert (tmp_path / "duty_phone_calls.json").exists()
    assert await watcher(tmp_path, CollectingSink()).scan_once() == []


async def test_recording_named_but_missing_is_reported_as_none(tmp_path: Path) -> None:
    write_call(tmp_path / "calls", "call-1", wav=False)
    events = await watcher(tmp_path, CollectingSink()).scan_once()
    assert events[0]["recording"] is None


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected an object"),
        ('{"call": "bad", "start": "2027-05-25T05:58:00+00:00"}', "missing end, supervisors"),
        (
            '{"call": "other", "start": "2027-05-25T05:58:00+00:00", '
            '"end": "2027-05-25T06:00:00+00:00", "supervisors": []}',
            "does not match",
        ),
        (
            '{"call": "bad", "start": "2027-05-25T05:58:00", "end": "2027-05-25T06:00:00+00:00", '
            '"supervisors": []}',
            "no offset",
        ),
        (
            '{"call": "bad", "start": "2027-05-25T05:58:00+00:00", '
            '"end": "2027-05-25T06:00:00+00:00", "supervisors": "S1", "recording": null}',
            "list of badges",
        ),
        (
            '{"call": "bad", "start": "2027-05-25T05:58:00+00:00", '
            '"end": "2027-05-25T06:00:00+00:00", "supervisors": [], "recording": "../x.wav"}',
            "file name in the folder",
        ),
    ],
)
async def test_bad_record_is_rejected_once_and_others_go_on(
    tmp_path: Path, content: str, reason: str
) -> None:
    calls = tmp_path / "calls"
    write_call(calls, "call-1")
    (calls / "bad.json").write_text(content)
    sink = CollectingSink()
    w = watcher(tmp_path, sink)
    assert [e["call"] for e in await w.scan_once()] == ["call-1"]
    assert len(sink.rejections) == 1
    source, payload, why = sink.rejections[0]
    assert source == "duty_phone:duty-phone" and payload.endswith("bad.json")
    assert reason in why
    await w.scan_once()
    assert len(sink.rejections) == 1
    # Also across a restart; but a rewritten (fixed or not) file is looked at again.
    await watcher(tmp_path, sink).scan_once()
    assert len(sink.rejections) == 1
    (calls / "bad.json").write_text(content + " ")
    await watcher(tmp_path, sink).scan_once()
    assert len(sink.rejections) == 2


async def test_corrupt_state_file_means_calls_again_not_a_crash(tmp_path: Path) -> None:
    write_call(tmp_path / "calls", "call-1")
    (tmp_path / "duty_phone_calls.json").write_text("{garbage")
    assert len(await watcher(tmp_path, CollectingSink()).scan_once()) == 1


@pytest.mark.slow
async def test_watcher_picks_up_calls_on_its_schedule(tmp_path: Path) -> None:
    sink = CollectingSink()
    async with watcher(tmp_path, sink, interval_s=0.01):
        write_call(tmp_path / "calls", "call-1")
        await sink.wait_for(lambda s: len(s.of_type("call.recorded")) == 1)
