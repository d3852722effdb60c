"""Logins resist guessing without locking the operators out (issue 9, part 3).

The limiter alone (growing delays, the three keys, unlock) and then the real daemon: 200
concurrent wrong passwords reach at most 5 password checks, the rest are answered 429 with
Retry-After; the operator on duty logs in from another address while a stranger hammers;
an admin unlocks, over the API and with `sealwatch user unlock`, and it is audited.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from daemon.http.auth import LoginLimiter
from tests.support.browser import PASSWORD, add_users
from tests.support.daemon import running_daemon, wait_until, write_site
from tests.support.mosquitto import Mosquitto

ROOT = Path(__file__).resolve().parents[1]


def _limiter(**kw: Any) -> tuple[LoginLimiter, list[float]]:
    clock = [1000.0]
    return LoginLimiter(clock=lambda: clock[0], **kw), clock


def test_delays_grow_and_are_capped() -> None:
    lim, clock = _limiter(per_pair=3, per_ip=1000, per_account=1000, max_delay_s=60)
    waits = []
    for _ in range(12):
        while (wait := lim.begin("olga", "10.0.0.9")) > 0:
            waits.append(wait)
            clock[0] += wait
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_concurrent_attempts_are_counted_before_any_check() -> None:
    lim, _ = _limiter(per_pair=5)
    allowed = [lim.begin("olga", "10.0.0.9") == 0 for _ in range(200)]
    assert allowed.count(True) == 5 and allowed[:5] == [True] * 5
    assert lim.checks == 5


def test_a_stranger_cannot_keep_the_operator_out() -> None:
    lim, clock = _limiter(per_pair=5, per_ip=20, per_account=20, account_max_delay_s=30)
    lim.begin("olga", "console")  # the console logged in before: a remembered address
    lim.succeeded("olga", "console")
    # a botnet: 200 addresses, as fast as the limiter lets them, for an hour
    end = clock[0] + 3600
    worst_for_a_new_address = 0.0
    while clock[0] < end:
        for i in range(200):
            lim.begin("olga", f"10.1.{i}.1")
        assert lim.retry_after("olga", "console") == 0
        worst_for_a_new_address = max(worst_for_a_new_address, lim.retry_after("olga", "10.9.9.9"))
        clock[0] += 5
    assert worst_for_a_new_address <= 30  # the account-wide delay is capped
    assert lim.begin("olga", "console") == 0


def test_the_right_password_clears_its_pair_and_unlock_clears_the_account() -> None:
    lim, _ = _limiter(per_pair=2, per_account=3)
    for ip in ("a", "a", "b"):
        assert lim.begin("olga", ip) == 0
    assert lim.retry_after("olga", "a") > 0 and lim.retry_after("olga", "c") > 0
    assert lim.unlock("OLGA") == 3  # names are compared case-insensitively
    assert lim.retry_after("olga", "a") == 0 and lim.retry_after("olga", "c") == 0
    assert lim.begin("olga", "a") == 0
    lim.succeeded("olga", "a")
    assert lim.retry_after("olga", "a") == 0


def test_memory_stays_bounded_under_a_spray_of_names() -> None:
    lim, clock = _limiter(max_keys=1000)
    for i in range(5000):
        lim.begin(f"user{i}", f"10.{i % 250}.0.1")
        clock[0] += 0.01
    assert len(lim._counts) <= 1001


# -- against the real daemon ------------------------------------------------------------------


@pytest.fixture
async def daemon(tmp_path: Path, mosquitto_session: Mosquitto) -> AsyncIterator[Any]:
    site_path = write_site(tmp_path, "logins", daemon={"auth": {"trust_proxy": True}})
    add_users(tmp_path / "data")
    async with running_daemon(site_path, mosquitto_session, tmp_path / "data") as d:
        yield d


def _url(d: Any) -> str:
    return f"http://127.0.0.1:{d.http_port}"


async def _login(
    http: aiohttp.ClientSession, url: str, user: str, password: str, ip: str
) -> tuple[int, dict[str, Any], str | None]:
    # trust_proxy: the test chooses its source address with X-Forwarded-For
    async with http.post(
        url + "/auth/login",
        json={"username": user, "password": password},
        headers={"X-Forwarded-For": ip},
    ) as r:
        return r.status, await r.json(), r.headers.get("Retry-After")


def _audited(data_dir: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(data_dir / "sealwatch.db")
    try:
        return [
            orjson.loads(b)
            for (b,) in db.execute("SELECT body FROM audit WHERE kind = 'auth' ORDER BY seq")
        ]
    finally:
        db.close()


@pytest.mark.slow
async def test_200_concurrent_wrong_passwords_reach_at_most_5_checks(
    daemon: Any, tmp_path: Path
) -> None:
    gate = daemon.dashboard.gate
    verified = []
    real_verify = gate.users.verify

    def counting_verify(name: str, password: str) -> Any:
        verified.append(name)
        return real_verify(name, password)

    gate.users.verify = counting_verify
    url = _url(daemon)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        answers = await asyncio.gather(
            *(_login(http, url, "olga", f"guess {i:04d}", "203.0.113.7") for i in range(200))
        )
        codes = [status for status, _, _ in answers]
        assert len(verified) <= 5 and codes.count(401) == len(verified)
        assert codes.count(429) == 200 - len(verified)
        assert all(int(ra or 0) >= 1 for status, _, ra in answers if status == 429)
        assert all(body["retry_after_s"] >= 1 for status, body, _ in answers if status == 429)
        # the operator on duty, at the monitoring room's console, is not kept out
        status, _, _ = await _login(http, url, "olga", PASSWORD, "192.0.2.10")
        assert status == 200
        # … nor while the stranger keeps hammering, from many addresses
        for round_ in range(3):
            await asyncio.gather(
                *(_login(http, url, "olga", "wrong", f"198.51.{round_}.{i}") for i in range(60))
            )
            status, _, _ = await _login(http, url, "olga", PASSWORD, "192.0.2.10")
            assert status == 200


@pytest.mark.slow
async def test_an_admin_unlocks_over_the_api_and_the_cli(daemon: Any, tmp_path: Path) -> None:
    url = _url(daemon)
    data_dir = tmp_path / "data"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        for _ in range(5):
            await _login(http, url, "olga", "wrong", "203.0.113.8")
        status, _, retry = await _login(http, url, "olga", PASSWORD, "203.0.113.8")
        assert status == 429 and retry is not None
        # an operator may not unlock; an admin may
        status, who, _ = await _login(http, url, "olga", PASSWORD, "192.0.2.10")
        assert status == 200
        headers = {"X-CSRF-Token": who["csrf"], "X-Forwarded-For": "192.0.2.10"}
        async with http.post(url + "/api/users/olga/unlock", headers=headers) as r:
            assert r.status == 403
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as admin:
        status, who, _ = await _login(admin, url, "ada", PASSWORD, "192.0.2.11")
        assert status == 200, who
        headers = {"X-CSRF-Token": who["csrf"], "X-Forwarded-For": "192.0.2.11"}
        async with admin.post(url + "/api/users/nobody/unlock", headers=headers) as r:
            assert r.status == 404 and (await r.json())["key"] == "name"
        async with admin.post(url + "/api/users/olga/unlock", headers=headers) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["cleared"] >= 1
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        status, _, _ = await _login(http, url, "olga", PASSWORD, "203.0.113.8")
        assert status == 200
        for _ in range(6):
            await _login(http, url, "olga", "wrong", "203.0.113.9")
    cli = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "daemon",
            "user",
            "unlock",
            "olga",
            "--data-dir",
            str(data_dir),
            "--http",
            f"127.0.0.1:{daemon.http_port}",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        status, _, _ = await _login(http, url, "olga", PASSWORD, "203.0.113.9")
        assert status == 200

    def unlocks() -> list[dict[str, Any]] | None:
        found = [r for r in _audited(data_dir) if r["event"] == "login_unlock"]
        return found if len(found) >= 2 else None

    found = await wait_until(unlocks, what="two unlock records")
    throttled = [r for r in _audited(data_dir) if r["event"] == "login_throttled"]
    assert len(throttled) <= 3  # one per (user, address) and delay, not one per attempt
    assert [r["by"] for r in found] == [found[0]["by"], "cli"] and found[0]["user"] == "olga"
