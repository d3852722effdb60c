"""The dashboard in real Chromium (Debian's, driven by Playwright) against the real daemon,
real Mosquitto and the site simulator (MQTT gateways, MJPEG cameras read by the camera
adapter). Screenshots of the main views go to test-artifacts/.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, expect

from adapters.camera import CameraHub
from daemon.http.app import DASHBOARD
from daemon.runtime import Daemon
from policies.site import load_site
from simulators.site_sim import SiteSimulator
from tests.support.browser import add_users, chromium, chromium_missing, login, track_requests
from tests.support.daemon import running_daemon, wait_until, write_site
from tests.support.mosquitto import Mosquitto, free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        chromium_missing(), reason="Debian's chromium is missing (scripts/setup installs it)"
    ),
]
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
VIEWPORT: ViewportSize = {"width": 1680, "height": 1050}


@dataclass
class Rig:
    daemon: Daemon
    sim: SiteSimulator
    base: str

    def alert_id(self, policy: str, subject: str | None = None) -> str | None:
        assert self.daemon.pipeline is not None
        for v in self.daemon.pipeline.stage.views.values():
            if v.policy == policy and (subject is None or v.subject == subject):
                return v.alert_id
        return None

    async def do(self, **step: Any) -> None:
        await self.sim.perform(step)


@pytest.fixture
async def rig(
    tmp_path: Path, mosquitto_session: Mosquitto, request: pytest.FixtureRequest
) -> AsyncIterator[Rig]:
    site_id = "dash" + re.sub(r"[^a-z0-9]", "", request.node.name.lower())[-20:]
    path = write_site(tmp_path, site_id, seals=True)
    # cameras and jammers on free ports, so parallel runs never collide
    raw = yaml.safe_load(path.read_text())
    cam_port = free_port()
    for cam in raw["cameras"]:
        cam["url"] = cam["url"].replace(":18081/", f":{cam_port}/")
        cam["mode"] = "stream"  # MJPEG: thumbnails for the page come from the live stream
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    site = load_site(path)
    ports = {j.modbus.port: free_port() for j in site.jammers.values() if j.modbus}
    add_users(tmp_path / "data")
    async with (
        running_daemon(path, mosquitto_session, tmp_path / "data") as d,
        SiteSimulator(
            site,
            "127.0.0.1",
            mosquitto_session.port,
            tmp_path / "sim",
            port_map=ports,
            heartbeat_s=3600,
        ) as sim,
    ):
        assert d.pipeline is not None
        async with CameraHub(site, d.pipeline, interval_s=0.5) as hub:
            d.app[DASHBOARD].thumbnails = hub.thumbnail_jpeg
            yield Rig(d, sim, f"http://127.0.0.1:{d.http_port}")


async def _page(ctx: BrowserContext) -> Page:
    page = await ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "console",
        lambda m: errors.append(m.text) if m.type == "error" and "401" not in m.text else None,
    )
    page.errors = errors  # type: ignore[attr-defined]
    return page


async def _offline_context(browser: Browser, base: str) -> BrowserContext:
    """A browser context that cannot reach anything but the daemon (no outside network)."""
    ctx = await browser.new_context(viewport=VIEWPORT)

    async def only_daemon(route: Any) -> None:
        if route.request.url.startswith(base + "/"):
            await route.continue_()
        else:
            await route.abort("internetdisconnected")

    await ctx.route("**/*", only_daemon)
    return ctx


async def test_operator_sees_acknowledges_and_clears_an_airlock_breach(rig: Rig) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    async with chromium() as browser:
        ctx = await _offline_context(browser, rig.base)
        page = await _page(ctx)
        outside = track_requests(page, rig.base)
        await page.goto(rig.base + "/")
        await expect(page.locator("#login")).to_be_visible()
        await page.screenshot(path=ARTIFACTS / "dashboard-login.png")
        await login(page, rig.base, "olga")

        await rig.do(do="operator.on", console="console-1", badge="O4001")
        await rig.do(do="seal.start", console="console-1", seal="gk2027-a", badge="S2001")
        await rig.do(do="badge", door="gate-outer", badge="B1001", direction="in")
        await rig.do(do="door.open", door="gate-outer")
        await rig.do(do="door.open", door="gate-inner")  # both airlock doors open: breach
        alert_id = await wait_until(
            lambda: rig.alert_id("entrance-interlock"), what="the entrance-interlock alert"
        )
        card = page.locator(f'.alert[data-id="{alert_id}"]')
        await expect(card).to_be_visible()
        await expect(card).to_have_class(re.compile(r"\bcritical\b.*\bunacknowledged\b"))
        await expect(card.locator(".text")).to_contain_text("入口气闸")
        await expect(page.locator("#banner")).to_be_visible()
        await expect(page.locator('#plan .door.open[data-id="gate-inner"]')).to_have_count(1)
        await expect(page.locator("#seal-chip")).to_have_class(re.compile(r"\bactive\b"))
        await expect(page.locator(".cam img:not(.hidden)").first).to_be_visible()
        await page.screenshot(path=ARTIFACTS / "dashboard-overview-operator.png", full_page=True)

        await card.locator("[data-act=ack]").click()
        await page.fill("#dlg-ack textarea", "guard at the gate, outer door closing")
        await page.screenshot(path=ARTIFACTS / "dashboard-ack-dialog.png")
        await page.click("#dlg-ack button[value=ok]")
        await expect(card).to_have_class(re.compile(r"\backnowledged\b"))
        await expect(card.locator(".state")).to_contain_text("O4001")
        await expect(card.locator("[data-act=ack]")).to_have_count(0)

        await rig.do(do="door.close", door="gate-outer")
        await expect(card).to_have_count(0)  # cleared after acknowledgement: closed
        await expect(page.locator('#plan .door.closed[data-id="gate-outer"]')).to_have_count(1)

        for tab in ("timeline", "devices", "cameras", "actions"):
            await page.click(f"[data-tab={tab}]")
            await expect(page.locator(f"#view-{tab}")).to_be_visible()
            await page.screenshot(path=ARTIFACTS / f"dashboard-{tab}.png", full_page=True)
        await page.click("[data-tab=timeline]")
        await page.select_option("#f-kind", "alert")
        await expect(page.locator("#timeline li", has_text="入口气闸").first).to_be_visible()
        await page.click("[data-tab=overview]")
        await page.click("header [data-act=lang]")
        await expect(page.locator("#tabs [data-tab=overview]")).to_contain_text("Overview")
        await page.screenshot(path=ARTIFACTS / "dashboard-overview-en.png", full_page=True)

        assert outside == [], f"the page asked for outside resources: {outside}"
        assert page.errors == []  # type: ignore[attr-defined]
    assert rig.daemon.pipeline is not None
    acks = rig.daemon.pipeline.store.actions(alert_id=alert_id)
    assert [(a["kind"], a["actor"], a["body"].get("comment")) for a in acks] == [
        ("alert.ack", "O4001", "guard at the gate, outer door closing")
    ]


async def test_guard_sees_alerts_but_cannot_acknowledge(rig: Rig) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    async with chromium() as browser:
        ctx = await _offline_context(browser, rig.base)
        page = await _page(ctx)
        await login(page, rig.base, "gus")
        await rig.do(do="door.force", door="fire-exit-north")
        alert_id = await wait_until(lambda: rig.alert_id("door-forced"), what="door-forced")
        card = page.locator(f'.alert[data-id="{alert_id}"]')
        await expect(card).to_be_visible()
        await expect(page.locator("#who")).to_contain_text("警卫")
        await expect(page.locator(".alert [data-act]")).to_have_count(0)  # no buttons at all
        await expect(page.locator("#act-approval")).to_be_hidden()
        await page.screenshot(path=ARTIFACTS / "dashboard-overview-guard.png", full_page=True)
        # the API refuses even a well-formed request carrying the guard's own CSRF token
        status = await page.evaluate(
            """async (id) => {
            const s = await (await fetch('/auth/session')).json();
            const r = await fetch('/api/alerts/' + id + '/ack', {method: 'POST',
                headers: {'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf},
                body: JSON.stringify({comment: 'not allowed'})});
            return r.status; }""",
            alert_id,
        )
        assert status == 403
        await expect(card).to_have_class(re.compile(r"\bunacknowledged\b"))


async def test_request_without_csrf_token_is_refused(rig: Rig) -> None:
    async with chromium() as browser:
        ctx = await _offline_context(browser, rig.base)
        page = await _page(ctx)
        await login(page, rig.base, "olga")
        await rig.do(do="door.force", door="fire-exit-north")
        alert_id = await wait_until(lambda: rig.alert_id("door-forced"), what="door-forced")
        card = page.locator(f'.alert[data-id="{alert_id}"]')
        await expect(card).to_be_visible()
        statuses = await page.evaluate(
            """async (id) => {
            const post = (headers) => fetch('/api/alerts/' + id + '/ack', {method: 'POST',
                headers: Object.assign({'Content-Type': 'application/json'}, headers),
                body: '{}'}).then((r) => r.status);
            const s = await (await fetch('/auth/session')).json();
            return [await post({}), await post({'X-CSRF-Token': 'forged'}),
                    await post({'X-CSRF-Token': s.csrf})]; }""",
            alert_id,
        )
        assert statuses == [403, 403, 200]  # only the session's own token is accepted
        await expect(card).to_have_class(re.compile(r"\backnowledged\b"))


async def test_live_channel_from_another_origin_is_refused(rig: Rig) -> None:
    # Another site on this host (same "site" for SameSite: the cookie goes along), whose
    # page tries to open the daemon's live channel: only the Origin check stops it.
    evil = web.Application()

    async def hello(_request: web.Request) -> web.Response:
        return web.Response(text="<p>hi</p>", content_type="text/html")

    evil.router.add_get("/", hello)
    runner = web.AppRunner(evil)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    probe = """(url) => new Promise((resolve) => {
        const ws = new WebSocket(url);
        ws.onmessage = (m) => { resolve('message:' + JSON.parse(m.data).t); ws.close(); };
        ws.onclose = (e) => resolve('closed:' + e.code);
    })"""
    try:
        async with chromium() as browser:
            ctx = await browser.new_context(viewport=VIEWPORT)
            page = await _page(ctx)
            await login(page, rig.base, "olga")
            ws_url = rig.base.replace("http", "ws", 1) + "/live"
            assert await page.evaluate(probe, ws_url) == "message:snapshot"
            other = await ctx.new_page()
            await other.goto(f"http://127.0.0.1:{port}/")
            assert await other.evaluate(probe, ws_url) == "closed:1006"
    finally:
        await runner.cleanup()
    assert rig.daemon.pipeline is not None
    assert rig.daemon.pipeline.metrics.get("sealwatch_dashboard_denied_total", "ws_origin") >= 1
