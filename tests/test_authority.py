"""Authority for every operator action (issue 9, part 2): the table in policies/rules/
authority.py, enforced by the engine (so replay reproduces it), required live, and the HTTP
API and CLI deciding who acts and from where."""

from __future__ import annotations

import asyncio
import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from daemon.replay import replay_lines
from policies.rules.authority import AUTHORITY
from tests.support.browser import PASSWORD, add_users
from tests.support.daemon import (
    AlertWatcher,
    Gateway,
    ahttp,
    now_ts,
    running_daemon,
    write_site,
)
from tests.support.engine import Run, ev, reference_site, unsealed
from tests.support.mosquitto import Mosquitto

ROOT = Path(__file__).resolve().parent.parent
SITE = reference_site()
UA = "unauthorised-action"


def forced(t: float) -> dict[str, Any]:
    return ev(t, "press-hall-door", "door.forced")


def ack(t: float, alert_id: str, badge: str) -> dict[str, Any]:
    return ev(t, "console-1", "alert.ack", alert_id=alert_id, badge=badge)


def _ua(r: Run) -> list[tuple[str, str, str]]:
    return [(t.subject, t.severity, t.state) for t in r.of(UA)]


# -- the engine ---------------------------------------------------------------------------------


def test_an_unknown_badge_may_not_acknowledge_and_the_attempt_is_an_alert() -> None:
    r = Run(SITE).feed(forced(0))
    door = r.alert_id("door-forced", "press-hall-door")
    reason = r.reject(ack(5, door, "NOBODY"))
    assert "'NOBODY'" in reason and "alert.ack" in reason and reason.startswith("unauthorised")
    assert _ua(r) == [("console-1", "major", "raised")]
    t = r.of(UA)[0]
    assert t.clause == "EXAM-2.8.2" and "NOBODY" in t.message
    # the door alert was not acknowledged: an operator still can
    r.feed(ack(6, door, "O4001"))
    assert ("door-forced", "press-hall-door", "acknowledged") in r.triples()
    # latched: only an acknowledgement clears it
    r.feed(ack(7, r.alert_id(UA, "console-1"), "S2001"))
    assert _ua(r)[-1] == ("console-1", "major", "cleared")


def test_a_guard_may_not_acknowledge() -> None:
    r = Run(SITE).feed(forced(0))
    reason = r.reject(ack(5, r.alert_id("door-forced", "press-hall-door"), "G3001"))
    assert "'G3001' is a guard" in reason and "alert.ack needs an operator" in reason
    assert _ua(r) == [("console-1", "major", "raised")]


def test_authority_comes_before_the_alert_exists() -> None:
    r = Run(SITE).feed(forced(0))
    assert "not a known person" in r.reject(ack(5, "no-such-alert", "NOBODY"))
    assert _ua(r) == [("console-1", "major", "raised")]


def test_an_operator_may_not_end_a_seal_and_the_attempt_is_critical() -> None:
    r = Run(SITE).feed(forced(0), forced(1))
    reason = r.reject(ev(5, "console-1", "seal.end", seal="gk2027-a", badge="O4001"))
    assert "'O4001' is an operator" in reason and "seal.end needs a supervisor" in reason
    assert _ua(r) == [("console-1", "critical", "raised")]
    assert "gk2027-a" in r.of(UA)[0].message
    assert {s.id: s.status for s in r.engine.seals()}["gk2027-a"] == "active"
    # a supervisor may
    r.feed(ev(10, "console-1", "seal.end", seal="gk2027-a", badge="S2001"))
    assert {s.id: s.status for s in r.engine.seals()}["gk2027-a"] == "ended"


def test_an_ack_attempt_then_a_seal_end_attempt_escalates() -> None:
    r = Run(SITE).feed(forced(0))
    r.reject(ack(1, r.alert_id("door-forced", "press-hall-door"), "B1001"))
    r.reject(ev(2, "console-1", "seal.end", seal="gk2027-a", badge="NOBODY"))
    assert _ua(r) == [("console-1", "major", "raised"), ("console-1", "critical", "escalated")]


def test_seal_events_without_a_badge_still_replay_but_not_live() -> None:
    site = unsealed(SITE)
    r = Run(site).feed(
        ev(0, "console-1", "seal.start", seal="old", name="Old stream", classification="secret"),
        ev(5, "console-1", "seal.end", seal="old"),
    )
    assert {s.id: s.status for s in r.engine.seals()}["old"] == "ended"
    assert r.of(UA) == []
    # what the live daemon does for a console, the HTTP API or the CLI
    from tests.support.engine import parse

    live = Run(site)
    start = ev(0, "console-1", "seal.start", seal="new", name="N", classification="secret")
    with pytest.raises(Exception, match=r"seal\.start names nobody"):
        live.engine.feed(parse(site, start), actor_required=True)
    assert [(t.policy, t.severity) for t in live.engine.pending_transitions()] == [(UA, "major")]


def test_approvals_inspections_and_reviews() -> None:
    r = Run(SITE)
    assert "'G3001' is a guard" in r.reject(
        ev(0, "console-1", "approval.granted", badge="B1001", valid_s=60, granted_by="G3001")
    )
    r.feed(ev(1, "console-1", "approval.granted", badge="B1001", valid_s=60, granted_by="S2002"))
    r.feed(ev(2, "console-1", "approval.granted", badge="B1001", valid_s=60))  # an old stream
    assert "inspection.done needs a supervisor" in r.reject(
        ev(3, "console-1", "inspection.done", zone="secure-room", badge="O4001")
    )
    r.feed(ev(4, "console-1", "inspection.done", zone="secure-room", badge="S2002"))
    r.feed(ev(5, "console-1", "review.done", camera="cam-gate", badge="O4001"))
    assert "'B1001' is sealed staff" in r.reject(
        ev(6, "console-1", "review.done", camera="cam-gate", badge="B1001")
    )


def test_replay_prints_the_attempt_and_reports_the_line() -> None:
    lines = [orjson.dumps(forced(0))]
    lines.append(orjson.dumps(ev(5, "console-1", "seal.end", seal="gk2027-a", badge="G3002")))
    errors = io.StringIO()
    out = list(replay_lines(SITE, lines, errors=errors))
    assert [(t.policy, t.severity) for t in out if t.policy != "monitoring-staffed"] == [
        ("door-forced", "critical"),
        (UA, "critical"),
    ]
    assert errors.getvalue().startswith("line 2: unauthorised: badge 'G3002' is a guard")


def test_the_docs_table_is_the_code_table() -> None:
    text = (ROOT / "docs" / "policies.md").read_text(encoding="utf-8")
    section = text[text.index("## Who may act") :]
    documented: dict[str, tuple[str, frozenset[str]]] = {}
    for row in re.findall(r"^\| (`[a-z.]+`.*?) \| `(\w+)` \| ([a-z_, ]+) \|$", section, re.M):
        actions, field, roles = row
        for action in re.findall(r"^`([a-z.]+)`|, `([a-z.]+)`", actions):
            name = action[0] or action[1]
            documented[name] = (field, frozenset(r.strip() for r in roles.split(",")))
    assert documented == {k: (a.field, a.roles) for k, a in AUTHORITY.items()}


# -- the live daemon --------------------------------------------------------------------------


async def _door_alert(gw: Gateway, alerts: AlertWatcher, door: str = "fire-exit-north") -> str:
    await gw.event(door, "door.forced", ts=now_ts())
    raised = await alerts.wait_for("door-forced", "raised", door)
    return str(raised["alert_id"])


@pytest.mark.slow
async def test_live_mqtt_and_cli(tmp_path: Path, mosquitto_session: Mosquitto) -> None:
    sid = "t-authority-live"
    path = write_site(tmp_path, sid)
    data = tmp_path / "data"
    async with (
        running_daemon(path, mosquitto_session, data) as d,
        AlertWatcher(mosquitto_session, sid) as alerts,
        Gateway(mosquitto_session, sid) as gw,
    ):
        port = d.http_port
        assert port is not None
        status, body = await ahttp(
            port,
            "POST",
            "/api/seals/s-live/start",
            {"badge": "S2001", "name": "live", "classification": "secret"},
        )
        assert status == 200 and body["accepted"], body
        door = await _door_alert(gw, alerts)
        # MQTT: NOBODY's ack is refused, the door alert stays, the attempt is an alert
        await gw.event("console-1", "alert.ack", alert_id=door, badge="NOBODY", ts=now_ts())
        ua = await alerts.wait_for(UA, "raised", "console-1")
        assert ua["severity"] == "major" and "NOBODY" in ua["message"]
        # MQTT: seal.end without a badge is refused live, and escalates the attempt
        await gw.event("console-1", "seal.end", seal="s-live", ts=now_ts())
        esc = await alerts.wait_for(UA, "escalated", "console-1")
        assert esc["severity"] == "critical"
        _, rejections = await ahttp(port, "GET", "/api/rejections")
        reasons = [r["reason"] for r in rejections]
        assert any("'NOBODY' is not a known person: may not alert.ack" in r for r in reasons)
        assert any("seal.end names nobody" in r for r in reasons)
        _, seals = await ahttp(port, "GET", "/api/seals")
        assert {s["id"]: s["status"] for s in seals}["s-live"] == "active"

        # CLI: the API token acts for the badge it names, which the engine checks
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cli = [sys.executable, "-m", "daemon", "ack", door, "--http", f"127.0.0.1:{port}"]
        cli += ["--data-dir", str(data)]
        p = await asyncio.to_thread(
            subprocess.run, [*cli, "--badge", "NOPE"], capture_output=True, text=True, env=env
        )
        assert p.returncode == 1 and "'NOPE' is not a known person" in p.stderr, p.stderr
        p = await asyncio.to_thread(
            subprocess.run, [*cli, "--badge", "O4002"], capture_output=True, text=True, env=env
        )
        assert p.returncode == 0, p.stderr
        _, detail = await ahttp(port, "GET", f"/api/alerts/{door}")
        assert [(a["actor"], a["origin"]) for a in detail["actions"]] == [("O4002", "cli")]

        # HTTP without a session (no dashboard users yet): the body's origin is ignored
        other = await _door_alert(gw, alerts, "press-hall-door")
        status, body = await ahttp(
            port, "POST", f"/api/alerts/{other}/ack", {"badge": "O4001", "origin": "mqtt"}
        )
        assert status == 200 and body["accepted"], body
        _, detail = await ahttp(port, "GET", f"/api/alerts/{other}")
        assert [(a["actor"], a["origin"]) for a in detail["actions"]] == [("O4001", "http")]
        # a supervisor ends the seal
        status, body = await ahttp(port, "POST", "/api/seals/s-live/end", {"badge": "S2001"})
        assert status == 200 and body["accepted"], body


async def _login(http: aiohttp.ClientSession, base: str, user: str) -> str:
    async with http.post(base + "/auth/login", json={"username": user, "password": PASSWORD}) as r:
        assert r.status == 200, await r.text()
        return str((await r.json())["csrf"])


@pytest.mark.slow
async def test_http_fills_the_badge_from_the_session(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    sid = "t-authority-http"
    path = write_site(tmp_path, sid)
    add_users(tmp_path / "data")  # olga: operator O4001, sam: supervisor S2001, ada: admin
    async with (
        running_daemon(path, mosquitto_session, tmp_path / "data") as d,
        AlertWatcher(mosquitto_session, sid) as alerts,
        Gateway(mosquitto_session, sid) as gw,
    ):
        base = f"http://127.0.0.1:{d.http_port}"
        door = await _door_alert(gw, alerts)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            csrf = {"X-CSRF-Token": await _login(http, base, "ada")}
            async with http.post(f"{base}/api/alerts/{door}/ack", json={}, headers=csrf) as r:
                assert r.status == 403 and "not linked to a badge" in (await r.json())["reason"]
            csrf = {"X-CSRF-Token": await _login(http, base, "olga")}
            url = f"{base}/api/alerts/{door}/ack"
            async with http.post(url, json={"badge": "S2001"}, headers=csrf) as r:
                assert r.status == 403 and "logged-in account" in (await r.json())["reason"]
            async with http.post(url, json={"origin": "cli"}, headers=csrf) as r:
                assert r.status == 200 and (await r.json())["accepted"]
            async with http.get(f"{base}/api/alerts/{door}") as r:
                detail = await r.json()
            assert [(a["actor"], a["origin"]) for a in detail["actions"]] == [("O4001", "http")]
            assert detail["transitions"][-1]["acked_by"] == "O4001"

            csrf = {"X-CSRF-Token": await _login(http, base, "sam")}
            body = {"name": "Session seal", "classification": "secret"}
            async with http.post(f"{base}/api/seals/s-http/start", json=body, headers=csrf) as r:
                assert r.status == 200 and (await r.json())["accepted"]
            async with http.get(f"{base}/api/seals") as r:
                seals = {s["id"]: s for s in await r.json()}
            assert seals["s-http"]["started_by"] == "S2001"
