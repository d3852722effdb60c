"""precheck.recorded: the written pre-seal record, and the seal it marks (issue 10 item 4)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from policies.events import PrecheckRecorded, Rejection, parse_event
from tests.support.daemon import Gateway, ahttp, now_ts, running_daemon, wait_until, write_site
from tests.support.engine import BEFORE_SEAL, SEAL_START, Run, ev, reference_site
from tests.support.mosquitto import Mosquitto
from tests.test_policy_preseal import ready

ROOT = Path(__file__).resolve().parent.parent

SITE = reference_site()


def record(t: float, base: str = SEAL_START, **over: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "badge": "S2001",
        "items": [
            {"item": "boundary and entrance doors closed", "passed": True, "problems": []},
            {"item": "perimeter armed", "passed": True, "problems": []},
        ],
        "passed": True,
        **over,
    }
    return ev(t, "console-1", "precheck.recorded", base=base, **fields)


FAILED = [{"item": "boundary and entrance doors closed", "passed": False, "problems": ["x"]}]


def seal_state(r: Run, seal: str) -> str:
    return next(s.precheck for s in r.engine.seals() if s.id == seal)


def test_a_record_parses_with_every_field() -> None:
    e = parse_event(record(0, remediation="door closed by guard"), SITE)
    assert isinstance(e, PrecheckRecorded)
    assert e.badge == "S2001" and e.passed and e.remediation == "door closed by guard"
    assert [i.item for i in e.items][1] == "perimeter armed"


def test_bad_records_are_rejected_with_a_reason() -> None:
    bad: list[dict[str, Any]] = [
        {"items": []},
        {"items": "x"},
        {"items": [{"item": "a", "passed": True, "problems": ["p"]}]},  # passed with problems
        {"items": [{"item": "a", "passed": False, "problems": []}], "passed": False},
        {"items": FAILED},  # passed true though an item failed
        {"items": [{"item": "", "passed": True}]},
        {"items": [{"item": "a", "passed": "yes"}]},
        {"items": [{"item": "a", "passed": False, "problems": [1]}], "passed": False},
        {"items": [{"item": "a", "passed": True}] * 33},
        {"remediation": "x" * 2001},
        {"remediation": 5},
        {"badge": ""},
        {"passed": None},
    ]
    for over in bad:
        assert isinstance(parse_event(record(0, **over), SITE), Rejection), over


def test_a_record_from_a_device_that_is_not_a_console_is_rejected() -> None:
    obj = record(0)
    obj["device"] = "jam-work"
    assert isinstance(parse_event(obj, SITE), Rejection)


def test_only_supervisors_and_secrecy_officers_may_record() -> None:
    r = Run(SITE).feed(*ready(-5))
    try:
        r.feed(record(-3, badge="O4001"))
    except Exception as exc:
        assert "precheck.recorded needs" in str(exc)
    else:
        raise AssertionError("an operator recorded a precheck")
    assert r.engine.precheck is None


def test_a_seal_started_after_a_failed_record_is_marked_failed() -> None:
    r = Run(SITE).feed(*ready(-5), record(-3, items=FAILED, passed=False))
    r.advance(1, base=SEAL_START)  # gk2027-a starts on its schedule
    assert seal_state(r, "gk2027-a") == "failed"


def test_a_seal_started_after_a_passed_record_is_marked_passed() -> None:
    r = Run(SITE).feed(*ready(-5), record(-3, items=FAILED, passed=False), record(-2))
    r.advance(1, base=SEAL_START)
    assert seal_state(r, "gk2027-a") == "passed"


def test_a_seal_started_with_no_record_is_marked_none() -> None:
    r = Run(SITE).feed(*ready(-5))
    r.advance(1, base=SEAL_START)
    assert seal_state(r, "gk2027-a") == "none"


def test_a_seal_start_event_takes_the_last_record() -> None:
    r = Run(SITE).feed(
        record(-10, base=BEFORE_SEAL, items=FAILED, passed=False),
        ev(
            0,
            "console-1",
            "seal.start",
            base=BEFORE_SEAL,
            seal="drill",
            name="Drill",
            classification="secret",
            badge="S2001",
        ),
    )
    assert seal_state(r, "drill") == "failed"


# -- the live daemon: sealwatch precheck --record, then a seal -----------------------------------


@pytest.mark.slow
async def test_live_record_of_a_failed_precheck_marks_the_seal(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    sid = "t-precheck-record"
    path = write_site(tmp_path, sid)
    data = tmp_path / "data"
    async with (
        running_daemon(path, mosquitto_session, data) as d,
        Gateway(mosquitto_session, sid) as gw,
    ):
        port = d.http_port
        assert port is not None
        await gw.event("fire-exit-north", "door.opened", ts=now_ts())
        await wait_until(
            lambda: "fire-exit-north" in d.pipeline.stage.engine.world.doors_open,  # type: ignore[union-attr]
            what="the door open",
        )
        # items in the body are the client's word: ignored, the server runs the checks
        status, body = await ahttp(
            port,
            "POST",
            "/api/precheck",
            {"badge": "O4001", "items": [], "passed": True},
        )
        assert status == 409 and "precheck.recorded needs" in body["reason"], body
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cli = [sys.executable, "-m", "daemon", "precheck", "--http", f"127.0.0.1:{port}"]
        cli += ["--data-dir", str(data), "--badge", "S2001", "--record"]
        cli += ["--remediation", "door to be closed by the guard"]
        p = await asyncio.to_thread(subprocess.run, cli, capture_output=True, text=True, env=env)
        assert p.returncode == 1, p.stderr  # not ready, but recorded
        assert "door fire-exit-north open" in p.stdout and "recorded as event" in p.stdout
        _, text = await ahttp(port, "GET", "/api/events")
        events = [orjson.loads(line) for line in str(text).splitlines()]
        rec = [e for e in events if e.get("type") == "precheck.recorded"]
        assert len(rec) == 1 and rec[0]["badge"] == "S2001" and rec[0]["passed"] is False
        assert rec[0]["remediation"] == "door to be closed by the guard"
        doors = next(i for i in rec[0]["items"] if i["item"].startswith("boundary"))
        assert doors["problems"] == ["door fire-exit-north open"]

        status, body = await ahttp(
            port,
            "POST",
            "/api/seals/s-pre/start",
            {"badge": "S2001", "name": "after a failed check", "classification": "secret"},
        )
        assert status == 200 and body["accepted"], body
        _, seals = await ahttp(port, "GET", "/api/seals")
        assert {s["id"]: s["precheck"] for s in seals}["s-pre"] == "failed"
