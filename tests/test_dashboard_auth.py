"""Dashboard security: users, sessions, CSRF, roles, rate limit, the live channel's checks.

Pure parts are tested directly; HTTP behaviour against the real daemon (real Mosquitto,
real SQLite, real aiohttp server) with aiohttp as the client.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from daemon.http.auth import AuthError, LoginLimiter, Sessions, User, UserStore
from daemon.http.security import COOKIE_PLAIN, required_role
from daemon.http.state import union_length
from tests.support.browser import PASSWORD, add_users
from tests.support.daemon import Gateway, now_ts, running_daemon, write_site
from tests.support.mosquitto import Mosquitto

ROOT = Path(__file__).resolve().parent.parent


# -- pure parts -------------------------------------------------------------------------------


def test_passwords_are_argon2_hashes_and_weak_ones_are_refused(tmp_path: Path) -> None:
    store = UserStore(tmp_path / "users.db")
    store.add("olga", "operator", PASSWORD, "O4001")
    raw = (tmp_path / "users.db").read_bytes()
    assert PASSWORD.encode() not in raw and b"$argon2id$" in raw
    stored = store.get("olga")
    assert stored is not None
    assert store.verify("olga", PASSWORD) == User(
        "olga", "operator", "O4001", False, stored.changed
    )
    assert store.verify("olga", "wrong password!") is None
    assert store.verify("nobody", PASSWORD) is None

    with pytest.raises(AuthError, match="too short"):
        store.add("short", "guard", "abc")
    with pytest.raises(AuthError, match="unknown role"):
        store.add("x", "root", PASSWORD)
    with pytest.raises(AuthError, match="already exists"):
        store.add("olga", "guard", PASSWORD)
    store.set_disabled("olga", True)
    assert store.verify("olga", PASSWORD) is None


def test_sessions_expire_when_idle_and_guards_get_the_longer_limit() -> None:
    clock = [0.0]
    sessions = Sessions(
        idle_timeout_s=60, guard_idle_timeout_s=600, max_age_s=3600, clock=lambda: clock[0]
    )
    op = sessions.create(User("olga", "operator", None), "127.0.0.1")
    guard = sessions.create(User("gus", "guard", None), "127.0.0.1")
    clock[0] = 50
    assert sessions.get(op.token) is op  # touched: idle time starts again
    clock[0] = 109
    assert sessions.get(op.token) is op
    clock[0] = 170
    assert sessions.get(op.token) is None
    assert sessions.get(guard.token) is guard
    clock[0] = 3601
    assert sessions.get(guard.token) is None  # the absolute lifetime


def test_abandoned_sessions_are_dropped_when_the_next_login_comes() -> None:
    clock = [0.0]
    sessions = Sessions(
        idle_timeout_s=60, guard_idle_timeout_s=600, max_age_s=3600, clock=lambda: clock[0]
    )
    for _ in range(3):  # browsers that never come back
        sessions.create(User("olga", "operator", None), "127.0.0.1")
    guard = sessions.create(User("gus", "guard", None), "127.0.0.1")
    clock[0] = 61
    sessions.create(User("olga", "operator", None), "127.0.0.1")
    assert len(sessions) == 2 and sessions.get(guard.token) is guard


def test_login_limiter_counts_checks_per_pair_per_address_and_per_account() -> None:
    clock = [0.0]
    lim = LoginLimiter(per_pair=3, per_ip=5, per_account=4, window_s=60, clock=lambda: clock[0])
    for _ in range(3):
        assert lim.begin("olga", "10.0.0.1") == 0
    assert lim.begin("olga", "10.0.0.1") > 0  # this pair waits
    assert lim.begin("olga", "10.0.0.9") == 0  # the account only loosely: 4 free
    assert lim.begin("olga", "10.0.0.8") > 0  # … then a delay, from any new address
    assert lim.begin("gus", "10.0.0.1") == 0
    assert lim.begin("a", "10.0.0.1") == 0
    assert lim.begin("b", "10.0.0.1") > 0  # the address: 5 checks across names
    clock[0] = 200  # quiet for longer than the window after the delays
    assert lim.begin("olga", "10.0.0.1") == 0


def test_roles_needed_for_each_command() -> None:
    assert required_role("GET", "/api/alerts") == "guard"
    assert required_role("POST", "/api/alerts/abc/ack") == "operator"
    assert required_role("POST", "/api/approvals") == "operator"
    assert required_role("POST", "/api/seals/s1/start") == "supervisor"
    assert required_role("POST", "/api/maintenance") == "supervisor"
    assert required_role("GET", "/api/users") == "admin"
    assert required_role("POST", "/api/something-new") == "supervisor"


def test_downtime_is_the_union_of_band_and_jammer_outages() -> None:
    # band down 10..20, whole jammer off 15..30, band down again from 50 (still down)
    total, down_now = union_length([(10, 20), (15, 30), (50, None)], 0, 100)
    assert (total, down_now) == (20 + 50, True)
    assert union_length([(-5, 5)], 0, 100) == (5, False)  # clipped to the seal


def test_user_command_adds_lists_and_changes_passwords(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "daemon", "user", *args, "--data-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )

    added = run("add", "olga", "--role", "operator", "--badge", "O4001", "--password-file", str(pw))
    assert added.returncode == 0, added.stderr
    no_password = run("add", "gus", "--role", "guard")
    assert no_password.returncode == 1 and "--password-file" in no_password.stderr
    listed = run("list")
    assert "olga\toperator\tO4001" in listed.stdout and "gus" not in listed.stdout
    pw.write_text("another long passphrase\n")
    assert run("passwd", "olga", "--password-file", str(pw)).returncode == 0
    assert UserStore(tmp_path / "users.db").verify("olga", "another long passphrase")


# -- over HTTP, against the real daemon ----------------------------------------------------------


@pytest.fixture
async def daemon_url(tmp_path: Path, mosquitto_session: Mosquitto) -> AsyncIterator[str]:
    site_path = write_site(tmp_path, "dashauth")
    add_users(tmp_path / "data")
    async with running_daemon(site_path, mosquitto_session, tmp_path / "data") as d:
        yield f"http://127.0.0.1:{d.http_port}"


async def _login(
    http: aiohttp.ClientSession, base: str, user: str, password: str = PASSWORD
) -> tuple[int, dict[str, object]]:
    async with http.post(base + "/auth/login", json={"username": user, "password": password}) as r:
        return r.status, await r.json()


@pytest.mark.slow
async def test_api_needs_a_session_and_the_csrf_token(daemon_url: str) -> None:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(daemon_url + "/api/alerts") as r:
            assert r.status == 401
        status, who = await _login(http, daemon_url, "olga")
        assert status == 200 and who["role"] == "operator"
        cookie = next(c for c in jar if c.key == COOKIE_PLAIN)
        assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
        async with http.get(daemon_url + "/api/alerts") as r:
            assert r.status == 200
        body = {"comment": "x"}
        async with http.post(daemon_url + "/api/alerts/nope/ack", json=body) as r:
            assert r.status == 403 and "CSRF" in (await r.json())["reason"]
        async with http.post(
            daemon_url + "/api/alerts/nope/ack", json=body, headers={"X-CSRF-Token": "guess"}
        ) as r:
            assert r.status == 403
        # with the token the command reaches the daemon (which refuses the unknown alert)
        async with http.post(
            daemon_url + "/api/alerts/nope/ack",
            json=body,
            headers={"X-CSRF-Token": str(who["csrf"])},
        ) as r:
            assert r.status == 409 and "unknown" in (await r.json())["reason"]
        async with http.post(
            daemon_url + "/auth/logout", headers={"X-CSRF-Token": str(who["csrf"])}
        ) as r:
            assert r.status == 200
        async with http.get(daemon_url + "/api/alerts") as r:
            assert r.status == 401


@pytest.mark.slow
async def test_a_guard_may_look_but_not_acknowledge(
    daemon_url: str, mosquitto_session: Mosquitto
) -> None:
    async with Gateway(mosquitto_session, "dashauth") as gw:
        await gw.event("gate-outer", "door.forced", ts=now_ts())
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        _, who = await _login(http, daemon_url, "gus")

        async def forced() -> str | None:
            async with http.get(daemon_url + "/api/alerts") as r:
                alerts = await r.json()
            return next((a["alert_id"] for a in alerts if a["policy"] == "door-forced"), None)

        # the event travels over MQTT; poll the API until the alert is there
        alert_id = await wait_until_async(forced, lambda a: a is not None)
        async with http.post(
            f"{daemon_url}/api/alerts/{alert_id}/ack",
            json={},
            headers={"X-CSRF-Token": str(who["csrf"])},
        ) as r:
            assert r.status == 403 and "guard" in (await r.json())["reason"]
        async with http.post(
            f"{daemon_url}/api/seals/s1/start", json={}, headers={"X-CSRF-Token": str(who["csrf"])}
        ) as r:
            assert r.status == 403
        assert await forced() == alert_id  # still unacknowledged


@pytest.mark.slow
async def test_live_channel_checks_origin_and_session(daemon_url: str) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        await _login(http, daemon_url, "gus")
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(daemon_url + "/live", headers={"Origin": "http://evil.example"})
        assert refused.value.status == 403
        async with http.ws_connect(daemon_url + "/live", headers={"Origin": daemon_url}) as ws:
            first = orjson.loads((await ws.receive()).data)
            assert first["t"] == "snapshot" and first["user"]["role"] == "guard"
    async with aiohttp.ClientSession() as anonymous:
        with pytest.raises(aiohttp.WSServerHandshakeError) as no_session:
            await anonymous.ws_connect(daemon_url + "/live", headers={"Origin": daemon_url})
        assert no_session.value.status == 401


@pytest.mark.slow
async def test_logins_are_rate_limited_and_audited(tmp_path: Path, daemon_url: str) -> None:
    async with aiohttp.ClientSession() as http:
        codes = [(await _login(http, daemon_url, "olga", "not the password"))[0] for _ in range(6)]
        assert codes[:5] == [401] * 5 and codes[5] == 429
        status, _ = await _login(http, daemon_url, "olga")
        assert status == 429  # even the right password waits out the window
        status, _ = await _login(http, daemon_url, "sam")
        assert status == 200
    import sqlite3

    from tests.support.daemon import wait_until

    db = sqlite3.connect(tmp_path / "data" / "sealwatch.db")

    def audited() -> list[str]:
        return [
            orjson.loads(b)["event"]
            for (b,) in db.execute("SELECT body FROM audit WHERE kind = 'auth' ORDER BY seq")
        ]

    # the records are written by the store's writer thread, right after each answer
    def seven() -> list[str] | None:
        e = audited()
        return e if len(e) >= 7 else None

    events = await wait_until(seven, what="7 audit records")
    # one throttled record per (user, address) and delay, however many attempts it refused
    assert events.count("login_failed") == 5 and events.count("login_throttled") == 1
    assert events[-1] == "login"
    from daemon.audit import verify

    assert verify(db).ok


@pytest.mark.slow
async def test_cli_token_commands_the_daemon_without_a_session(
    tmp_path: Path, daemon_url: str
) -> None:
    token = (tmp_path / "data" / "api.token").read_text().strip()
    async with aiohttp.ClientSession() as http:
        async with http.get(
            daemon_url + "/api/alerts", headers={"Authorization": f"Bearer {token}"}
        ) as r:
            assert r.status == 200
        async with http.get(
            daemon_url + "/api/alerts", headers={"Authorization": "Bearer wrong"}
        ) as r:
            assert r.status == 401


@pytest.mark.slow
async def test_a_malformed_query_number_is_a_bad_request(tmp_path: Path, daemon_url: str) -> None:
    token = (tmp_path / "data" / "api.token").read_text().strip()
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=auth) as http:
        for path in ("/api/events?after=x", "/api/events?limit=1e3", "/api/rejections?limit="):
            async with http.get(daemon_url + path) as r:
                assert r.status == 400, path
        async with http.get(daemon_url + "/api/rejections?limit=5") as r:
            assert r.status == 200


@pytest.mark.slow
async def test_without_users_the_api_answers_loopback_names_only(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    site_path = write_site(tmp_path, "dashboot")
    async with running_daemon(site_path, mosquitto_session, tmp_path / "data") as d:
        base = f"http://127.0.0.1:{d.http_port}"
        # A foreign name resolving to 127.0.0.1 (DNS rebinding): same origin with itself.
        rebound = f"rebind.example:{d.http_port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/api/alerts") as r:
                assert r.status == 200
            async with http.get(
                base + "/api/alerts", headers={"Host": f"localhost:{d.http_port}"}
            ) as r:
                assert r.status == 200
            async with http.post(
                base + "/api/alerts/nope/ack",
                json={"badge": "O4001"},
                headers={"Host": rebound, "Origin": f"http://{rebound}"},
            ) as r:
                assert r.status == 401
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(
                    base + "/live", headers={"Host": rebound, "Origin": f"http://{rebound}"}
                )
            assert refused.value.status == 401


@pytest.mark.slow
async def test_snapshot_has_plan_explanations_and_seal_figures(
    daemon_url: str, mosquitto_session: Mosquitto
) -> None:
    async with Gateway(mosquitto_session, "dashauth") as gw:
        await gw.event(
            "console-1",
            "seal.start",
            seal="s1",
            badge="S2001",
            name="Paper A",
            classification="top_secret",
            ts=now_ts(),
        )
        await gw.event(
            "jam-work",
            "jammer.status",
            output=True,
            faults=[],
            bands={
                "cdma800": 10.0,
                "gsm900": 33.0,
                "dcs1800": 30.0,
                "lte2100": 30.0,
                "nr3500": 27.0,
            },
            ts=now_ts(),
        )
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        await _login(http, daemon_url, "gus")

        async def snap() -> dict[str, Any]:
            async with http.get(daemon_url + "/api/dashboard/snapshot") as r:
                return dict(await r.json())

        s = await wait_until_async(
            snap, lambda s: any(a["policy"] == "jammer-uptime" for a in s["alerts"])
        )
    assert s["site"]["entrance"] == {
        "outer": "gate-outer",
        "inner": "gate-inner",
        "zone": "screening",
    }
    uptime = next(a for a in s["alerts"] if a["policy"] == "jammer-uptime")
    assert uptime["subject"] == "jam-work/cdma800"
    assert "屏蔽器" in uptime["explain"]["zh-CN"] and "Jammer" in uptime["explain"]["en"]
    seal = s["seals"][0]
    assert seal["id"] == "s1" and seal["status"] == "active" and seal["interruptions"] == 1
    band = next(b for b in seal["bands"] if b["band"] == "cdma800" and b["jammer"] == "jam-work")
    assert band["down_now"] is True


async def wait_until_async(fetch, pred, timeout_s: float = 15.0):  # type: ignore[no-untyped-def]
    box: list[object] = []

    async def once() -> bool:
        box[:] = [await fetch()]
        return bool(pred(box[0]))

    import asyncio
    import time

    deadline = time.monotonic() + timeout_s
    while not await once():
        assert time.monotonic() < deadline, f"condition not met; last: {box[0]!r:.500}"
        await asyncio.sleep(0.05)
    return box[0]
