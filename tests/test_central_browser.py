"""The centre's page in real Chromium (Debian's, through Playwright), against the real aiohttp
app with its state fed directly (no broker): the sites on the list and the map, the worst alert
coloured, a click drills down to a site's active alerts, nothing fetched from outside, no
script errors, and behind its login (HTTP Basic) once one is configured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from daemon.central.config import parse_central
from daemon.central.state import Centre
from daemon.central.web import build_app
from tests.support.browser import chromium, chromium_missing, track_requests
from tests.support.mosquitto import free_port

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.skipif(chromium_missing(), reason="scripts/setup installs Debian's chromium"),
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CONFIG: dict[str, Any] = {
    "brokers": ["mqtt://127.0.0.1:1883"],
    "http": "127.0.0.1:0",
    "sites": [
        {"id": "works-a", "name": "第一印刷厂", "lon": 116.4, "lat": 39.9},
        {"id": "works-b", "name": "第二印刷厂", "lon": 117.2, "lat": 39.1},
    ],
}


def line(alert_id: str, state: str, severity: str, subject: str) -> bytes:
    return orjson.dumps(
        {
            "ts": "2027-06-07T08:00:00+08:00",
            "alert_id": alert_id,
            "policy": "door-forced",
            "subject": subject,
            "severity": severity,
            "clause": "EXAM-2.7.5",
            "message": "door forced",
            "state": state,
        }
    )


async def serve(access: tuple[str, str] | None = None) -> tuple[web.AppRunner, str, Centre]:
    c = Centre(parse_central(CONFIG))
    for site in ("works-a", "works-b"):
        c.handle(f"sealwatch/{site}/daemon", b"online")
    c.handle("sealwatch/works-b/alerts", line("x1", "raised", "critical", "fire-exit-north"))
    c.handle(
        "sealwatch/works-b/alerts/active/x1",
        line("x1", "raised", "critical", "fire-exit-north"),
    )
    runner = web.AppRunner(build_app(c, None, None, access))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}", c


async def test_the_page_lists_maps_and_drills_down() -> None:
    runner, base, _ = await serve()
    try:
        async with chromium() as browser:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            outside = track_requests(page, base)
            await page.goto(base + "/")
            await page.wait_for_selector("#sites tr.site[data-site='works-b']")
            rows = await page.locator("#sites tr.site").all_inner_texts()
            assert any("第一印刷厂" in r and "online" in r for r in rows), rows
            assert any("第二印刷厂" in r and "critical door-forced" in r for r in rows), rows
            dots = page.locator("#map circle")
            assert await dots.count() == 2
            worst = await page.locator("#map circle[data-site='works-b']").get_attribute("fill")
            assert worst == "var(--critical)"
            box = await page.locator("#map").bounding_box()
            assert box is not None
            for label in await page.locator("#map text").all():
                b = await label.bounding_box()
                assert b is not None and b["x"] >= box["x"] and b["y"] >= box["y"]
                assert b["x"] + b["width"] <= box["x"] + box["width"] + 0.5, "label clipped"
                assert b["y"] + b["height"] <= box["y"] + box["height"] + 0.5, "label clipped"
            await page.locator("#sites tr.site[data-site='works-b']").click()
            await page.wait_for_selector("#detail table")
            detail = await page.locator("#detail").inner_text()
            assert "fire-exit-north" in detail and "critical" in detail
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=ARTIFACTS / "central-page.png", full_page=True)
            assert not errors, errors
            assert outside == [], outside
    finally:
        await runner.cleanup()


async def test_behind_a_login_the_browser_is_asked_and_then_served() -> None:
    runner, base, _ = await serve(("duty", "a long duty password"))
    try:
        async with chromium() as browser:
            anonymous = await browser.new_page()
            response = await anonymous.request.get(base + "/api/overview")
            assert response.status == 401
            assert response.headers["www-authenticate"].startswith("Basic")
            context = await browser.new_context(
                http_credentials={"username": "duty", "password": "a long duty password"}
            )
            page = await context.new_page()
            await page.goto(base + "/")
            await page.wait_for_selector("#sites tr.site[data-site='works-a']")
            await context.close()
    finally:
        await runner.cleanup()
