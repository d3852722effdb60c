"""The centre's configuration file, its state under hostile input, and its HTTP API (a real
aiohttp server on a free port; no broker: messages are handed to the state directly)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from daemon.central.app import cmd_central
from daemon.central.config import CentralConfigError, parse_central
from daemon.central.state import Centre
from daemon.central.web import build_app
from tests.support.daemon import ahttp
from tests.support.mosquitto import free_port

GOOD: dict[str, Any] = {
    "brokers": ["mqtt://127.0.0.1:1883", "mqtts://central-2:8883"],
    "http": "127.0.0.1:0",
    "sites": [
        {"id": "a", "name": "Works A", "lon": 116.4, "lat": 39.9},
        {"id": "b", "name": "Works B", "lon": 117.2, "lat": 39.1},
    ],
}
NOTIFY: dict[str, Any] = {
    "channels": {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/h", "secret_env": "HOME"}},
    "recipients": {"ops": {"channel": "hook"}, "boss": {"channel": "hook"}},
    "routes": [{"sites": ["b"], "severity": "critical", "notify": "ops"}],
}


def test_config_reads_every_key() -> None:
    c = parse_central(GOOD)
    assert [b.label for b in c.brokers] == ["mqtt://127.0.0.1:1883", "mqtts://central-2:8883"]
    assert [s.id for s in c.sites] == ["a", "b"] and c.client_id == "sealwatch-central"
    assert c.notifications is None and c.data_dir is None and c.timezone == "Asia/Shanghai"


def test_config_reads_notifications(tmp_path: Path) -> None:
    esc = {
        "operators": ["ops"],
        "supervisors": ["boss"],
        "levels": [{"after_s": 60, "notify": "boss"}],
    }
    c = parse_central(
        {
            **GOOD,
            "data_dir": "data",
            "timezone": "UTC",
            "notifications": {**NOTIFY, "escalation": esc},
        },
        base=tmp_path,
    )
    assert c.data_dir == tmp_path / "data" and c.timezone == "UTC"
    n = c.notifications
    assert n is not None and n.routes[0].sites == frozenset({"b"})
    assert n.escalation is not None and n.escalation.supervisors == ("boss",)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"brokers": []}, "brokers: a list"),
        ({"brokers": ["tcp://x:1"]}, "brokers[0]: 'tcp://x:1' is not mqtt://"),
        ({"brokers": ["mqtt://u:p@x:1"]}, "brokers[0]: no logins in the URL"),
        ({"http": "nowhere"}, "http: 'nowhere' is not host:port"),
        ({"offline_after_s": 0}, "offline_after_s: a number of seconds"),
        ({"sites": [{"id": "a b", "lon": 0, "lat": 0}]}, "sites[0].id: letters"),
        ({"sites": [{"id": "a", "lon": 200, "lat": 0}]}, "sites[0].lon: degrees"),
        ({"sites": [{"id": "a", "lon": 1, "lat": 1, "x": 2}]}, "sites[0].x: unknown key"),
        ({"sitez": []}, "sitez: unknown key"),
        ({"notifications": NOTIFY}, "data_dir: needed with notifications"),
        ({"data_dir": "d"}, "data_dir: only the notification outbox"),
        ({"timezone": "Mars/Base"}, "timezone: unknown time zone"),
        (
            {
                "data_dir": "d",
                "notifications": {**NOTIFY, "routes": [{"sites": "c", "notify": "ops"}]},
            },
            "notifications.routes[0].sites: no site 'c'",
        ),
        (
            {
                "data_dir": "d",
                "notifications": {**NOTIFY, "routes": [{"zone": "w", "notify": "ops"}]},
            },
            "notifications.routes[0].zone: no zones at the centre",
        ),
        (
            {
                "data_dir": "d",
                "notifications": {
                    **NOTIFY,
                    "recipients": {"ops": {"channel": "hook", "badge": "S1"}},
                },
            },
            "notifications.recipients.ops.badge: no badges at the centre",
        ),
        (
            {"data_dir": "d", "notifications": {**NOTIFY, "escalation": {"operators": ["ops"]}}},
            "notifications.escalation.supervisors: missing",
        ),
        ({"mqtt": {"password_file": "/no/such"}}, "mqtt.password_file:"),
    ],
)
def test_config_mistakes_name_their_path(change: dict[str, Any], error: str) -> None:
    with pytest.raises(CentralConfigError) as exc:
        parse_central({**GOOD, **change})
    assert any(e.startswith(error) for e in exc.value.errors), exc.value.errors


def test_cli_refuses_a_bad_file_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "central.yaml"
    path.write_text("brokers: []\nsites: []\n")

    class Args:
        config = str(path)
        log_level = "info"

    assert cmd_central(Args()) == 1  # type: ignore[arg-type]
    assert "brokers: a list" in capsys.readouterr().err


def _line(alert_id: str, state: str, ts: str, severity: str = "critical") -> bytes:
    return orjson.dumps(
        {
            "alert_id": alert_id,
            "state": state,
            "ts": ts,
            "policy": "door-forced",
            "subject": "d1",
            "severity": severity,
        }
    )


def test_state_dedupes_and_survives_hostile_input() -> None:
    now = [1000.0]
    c = Centre(parse_central(GOOD), clock=lambda: now[0])
    c.handle("sealwatch/a/alerts", _line("x1", "raised", "t1"))
    c.handle("sealwatch/a/alerts", _line("x1", "raised", "t1"))  # redelivered
    c.handle("sealwatch/a/alerts", _line("x1", "cleared", "t2"))
    site = c.sites["a"]
    assert site.transitions == 2 and site.duplicates == 1
    for topic, payload in [
        ("sealwatch/zz/alerts", _line("y", "raised", "t")),
        ("other/a/alerts", b"{}"),
        ("sealwatch/a/alerts", b"\xff\xfe"),
        ("sealwatch/a/alerts", b"[1, 2]"),
        ("sealwatch/a/alerts", b'{"state": "raised"}'),
        ("sealwatch/a/summary", b"null"),
        ("sealwatch/a/daemon", b"maybe"),
        ("sealwatch/a/bridge", b"2"),
        ("sealwatch/a/unknown", b"{}"),
        ("sealwatch", b""),
    ]:
        c.handle(topic, payload)
    assert sum(c.rejected.values()) == 10 and len(c.rejections) == 10
    assert site.transitions == 2


def test_availability_follows_the_daemon_the_bridge_and_silence() -> None:
    now = [1000.0]
    c = Centre(parse_central({**GOOD, "offline_after_s": 60}), clock=lambda: now[0])

    def row() -> dict[str, Any]:
        return c.site_row(c.sites["a"])

    assert row()["availability"] == "unknown"
    c.handle("sealwatch/a/daemon", b"online")
    assert row()["availability"] == "online"
    c.handle("sealwatch/a/bridge", b"0")
    assert row()["availability"] == "link-down"
    c.handle("sealwatch/a/bridge", b"1")
    c.handle("sealwatch/a/daemon", b"offline")
    assert row()["availability"] == "offline"
    c.handle("sealwatch/a/daemon", b"online")
    now[0] += 61
    assert row()["availability"] == "silent"


def test_summary_and_active_topics_make_the_drill_down() -> None:
    c = Centre(parse_central(GOOD))
    summary = {
        "site": "a",
        "seals": [{"id": "s1", "bands": [{"uptime_pct": 99.5}]}],
        "active": {"critical": 1, "major": 1, "minor": 0},
        "alerts": [
            {"alert_id": "m", "severity": "major", "policy": "p", "subject": "s"},
            {"alert_id": "c", "severity": "critical", "policy": "p", "subject": "s"},
        ],
        "alerts_truncated": 0,
    }
    c.handle("sealwatch/a/summary", orjson.dumps(summary))
    row = c.site_row(c.sites["a"])
    assert row["worst"]["alert_id"] == "c" and row["alerts"] == {
        "minor": 0,
        "major": 1,
        "critical": 1,
    }
    assert row["seals"][0]["id"] == "s1"
    c.handle("sealwatch/a/alerts/active/c", b"")  # closed
    c.handle("sealwatch/a/alerts/active/n", _line("n", "raised", "t", "minor"))
    assert sorted(c.sites["a"].active) == ["m", "n"]
    assert c.site_row(c.sites["a"])["worst"]["alert_id"] == "m"


async def test_http_api_and_page() -> None:
    from aiohttp import web

    c = Centre(parse_central(GOOD))
    c.handle("sealwatch/b/alerts", _line("x", "raised", "t1"))
    c.handle("sealwatch/b/alerts/active/x", _line("x", "raised", "t1"))
    runner = web.AppRunner(build_app(c, None))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        status, body = await ahttp(port, "GET", "/api/overview")
        assert status == 200 and [s["id"] for s in body["sites"]] == ["a", "b"]
        status, body = await ahttp(port, "GET", "/api/sites/b")
        assert status == 200 and body["active_alerts"][0]["alert_id"] == "x"
        status, body = await ahttp(port, "GET", "/api/sites/b/transitions?limit=1")
        assert status == 200 and body["count"] == 1
        for bad in ("0", "x", "99999999", "-1"):
            status, _ = await ahttp(port, "GET", f"/api/sites/b/transitions?limit={bad}")
            assert status == 400
        status, _ = await ahttp(port, "GET", "/api/sites/nope")
        assert status == 404
        status, body = await ahttp(port, "GET", "/healthz")
        assert status == 200 and body["status"] == "degraded" and body["broker"] is None
        for path, kind in (("/", "<svg"), ("/page.js", "fetch("), ("/style.css", "--critical")):
            status, text = await ahttp(port, "GET", path)
            assert status == 200 and kind in text
            assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    finally:
        await runner.cleanup()


def test_the_centre_off_loopback_needs_a_login(tmp_path: Path) -> None:
    with pytest.raises(CentralConfigError) as exc:
        parse_central({**GOOD, "http": "0.0.0.0:8090"})
    assert exc.value.errors[0].startswith("http: 0.0.0.0 is reachable from other machines")
    short = tmp_path / "short"
    short.write_text("too short\n")
    with pytest.raises(CentralConfigError) as exc:
        parse_central({**GOOD, "access": {"username": "duty", "password_file": str(short)}})
    assert "access.password: at least 12 characters" in exc.value.errors
    with pytest.raises(CentralConfigError) as exc:
        parse_central({**GOOD, "access": {"username": "duty", "password": "in the file"}})
    assert any(e.startswith("access.password: unknown") for e in exc.value.errors), exc.value
    good = tmp_path / "pw"
    good.write_text("a long duty password\n")
    cfg = parse_central(
        {**GOOD, "http": "0.0.0.0:8090", "access": {"username": "duty", "password_file": str(good)}}
    )
    assert cfg.access == ("duty", "a long duty password")
    assert "a long duty password" not in repr(cfg)


async def test_with_a_login_every_route_but_healthz_asks_for_it() -> None:
    import base64
    import urllib.request

    from aiohttp import web

    c = Centre(parse_central(GOOD))
    runner = web.AppRunner(build_app(c, None, None, ("duty", "a long duty password")))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()

    def get(path: str, login: str | None) -> int:
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
        if login is not None:
            req.add_header("Authorization", "Basic " + base64.b64encode(login.encode()).decode())
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return int(r.status)
        except urllib.error.HTTPError as e:
            assert e.headers["WWW-Authenticate"].startswith('Basic realm="sealwatch central"')
            return int(e.code)

    import asyncio

    try:
        for path in ("/", "/api/overview", "/api/sites/a", "/metrics", "/page.js"):
            assert await asyncio.to_thread(get, path, None) == 401
            assert await asyncio.to_thread(get, path, "duty:wrong password!!") == 401
            assert await asyncio.to_thread(get, path, "duty:a long duty password") == 200
        assert await asyncio.to_thread(get, "/healthz", None) == 200
    finally:
        await runner.cleanup()
