"""The console on every screen, in real Chromium (Debian's, through Playwright) against the
real daemon, real Mosquitto and the site simulator: the guard's phone (390×844), a tablet
(768×1024) and the monitoring room's wall display (1920×1080). No page scrolls sideways, no
door labels of the plan overlap, and the installable web app's service worker registers.
Screenshots go to test-artifacts/console-*.png (gitignored).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Page, ViewportSize, expect

from tests.support.browser import chromium, chromium_missing, login
from tests.support.daemon import Gateway, wait_until
from tests.support.mosquitto import Mosquitto
from tests.test_dashboard_browser import ARTIFACTS, Rig, _page, rig  # noqa: F401 (fixture)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        chromium_missing(), reason="Debian's chromium is missing (scripts/setup installs it)"
    ),
]
SCREENS: dict[str, ViewportSize] = {
    "phone": {"width": 390, "height": 844},
    "tablet": {"width": 768, "height": 1024},
    "wall": {"width": 1920, "height": 1080},
}
TABS = ("overview", "seals", "cameras", "timeline", "devices", "actions")


async def overflow(page: Page) -> dict[str, Any]:
    """The document's width against the window's, and what sticks out if anything does."""
    result: dict[str, Any] = await page.evaluate(
        """() => {
        const w = window.innerWidth, sw = document.scrollingElement.scrollWidth;
        const out = [];
        if (sw > w) for (const e of document.querySelectorAll('body *')) {
            const r = e.getBoundingClientRect();
            if (r.width && r.right > w + 0.5)
                out.push(e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(r.right));
        }
        return {inner: w, scroll: sw, wide: out.slice(0, 8)};
    }"""
    )
    return result


async def label_overlaps(page: Page) -> list[str]:
    """Pairs of door labels on the plan whose boxes overlap (hidden ones left out)."""
    pairs: list[str] = await page.evaluate(
        """() => {
        const ls = [...document.querySelectorAll('#plan text.door-label')]
            .filter((t) => !t.classList.contains('hidden'))
            .map((t) => [t.textContent, t.getBoundingClientRect()]);
        const out = [];
        for (let i = 0; i < ls.length; i++) for (let j = i + 1; j < ls.length; j++) {
            const [na, a] = ls[i], [nb, b] = ls[j];
            const x = a.left < b.right - 0.5 && b.left < a.right - 0.5;
            if (x && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5) out.push(na + ' / ' + nb);
        }
        return out;
    }"""
    )
    return pairs


@pytest.mark.parametrize("screen", list(SCREENS))
async def test_every_screen_fits_without_sideways_scrolling(rig: Rig, screen: str) -> None:  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    async with chromium() as browser:
        ctx = await browser.new_context(viewport=SCREENS[screen])
        page = await _page(ctx)
        await page.goto(rig.base + "/")
        await expect(page.locator("#login")).to_be_visible()
        # the login screen: the site's clock in its own time zone, no connection state
        await expect(page.locator("#login-tz")).to_have_text("Asia/Shanghai")
        await expect(page.locator("#login-clock")).to_have_text(re.compile(r"\d\d:\d\d:\d\d"))
        await expect(page.locator("#conn")).to_be_hidden()
        await expect(page.locator("#login-form button[type=submit]")).to_be_in_viewport()
        await page.screenshot(path=ARTIFACTS / f"console-{screen}-login.png")
        assert (o := await overflow(page))["scroll"] <= o["inner"], o

        await login(page, rig.base, "olga")
        await rig.do(do="operator.on", console="console-1", badge="O4001")
        await rig.do(do="seal.start", console="console-1", seal="gk2027-a", badge="S2001")
        await rig.do(do="door.force", door="fire-exit-north")
        alert_id = await wait_until(lambda: rig.alert_id("door-forced"), what="door-forced")
        card = page.locator(f'.alert[data-id="{alert_id}"]')
        await expect(card).to_be_visible()
        await expect(page.locator("#plan svg")).to_be_visible()
        assert await label_overlaps(page) == []
        if screen == "phone":
            # the alert list comes first on a phone, the plan after it
            alerts_top = await page.locator("section.alerts").evaluate("e => e.offsetTop")
            plan_top = await page.locator("section.plan").evaluate("e => e.offsetTop")
            assert alerts_top < plan_top
            await expect(card.locator("[data-act=ack]")).to_be_visible()
        for tab in TABS:
            await page.click(f"[data-tab={tab}]")
            await expect(page.locator(f"#view-{tab}")).to_be_visible()
            if tab == "seals":
                await expect(page.locator('.calrow.active[data-id="gk2027-a"]')).to_be_visible()
            o = await overflow(page)
            assert o["scroll"] <= o["inner"], (tab, o)
            await page.screenshot(path=ARTIFACTS / f"console-{screen}-{tab}.png", full_page=True)
        await page.click("[data-tab=overview]")
        # the plan zooms: its viewBox narrows, and the reset shows it whole again
        before = await page.locator("#plan svg").get_attribute("viewBox")
        await page.click("[data-act=zoom-in]")
        await expect(page.locator("#plan svg")).not_to_have_attribute("viewBox", before or "")
        await expect(page.locator("#plan")).to_have_class(re.compile(r"\bzoomed\b"))
        await page.screenshot(path=ARTIFACTS / f"console-{screen}-zoomed.png")
        await page.click("[data-act=zoom-reset]")
        await expect(page.locator("#plan svg")).to_have_attribute("viewBox", before or "")
        await page.click("header [data-act=lang]")
        await expect(page.locator("#plan-legend")).to_contain_text("two-person door")
        assert await label_overlaps(page) == []
        assert (o := await overflow(page))["scroll"] <= o["inner"], o
        await page.screenshot(path=ARTIFACTS / f"console-{screen}-overview-en.png", full_page=True)
        assert page.errors == []  # type: ignore[attr-defined]


async def test_installable_offline_app(rig: Rig) -> None:  # noqa: F811
    async with chromium() as browser:
        ctx = await browser.new_context(viewport=SCREENS["phone"])
        page = await _page(ctx)
        resp = await page.request.get(rig.base + "/sw.js")
        assert resp.status == 200
        assert resp.headers["service-worker-allowed"] == "/"
        assert "javascript" in resp.headers["content-type"]
        resp = await page.request.get(rig.base + "/manifest.webmanifest")
        assert resp.status == 200
        manifest = await resp.json()
        assert {i["src"] for i in manifest["icons"]} >= {"/static/icon-192.png"}
        for icon in manifest["icons"]:
            got = await page.request.get(rig.base + icon["src"])
            assert got.status == 200, icon
        await login(page, rig.base, "gus")
        scope = await page.evaluate("async () => (await navigator.serviceWorker.ready).scope")
        assert scope == rig.base + "/"
        # the worker cached the page's shell; the API is never cached
        cached = await page.evaluate(
            """async () => { const c = await caches.open('sealwatch-shell-v1');
            return (await c.keys()).map((r) => new URL(r.url).pathname).sort(); }"""
        )
        assert "/static/app.js" in cached and "/" in cached
        assert not any(p.startswith("/api/") for p in cached)
        assert page.errors == []  # type: ignore[attr-defined]


async def test_guard_banner_informs_and_latched_alert_stays_greyed_after_ack(rig: Rig) -> None:  # noqa: F811
    async with chromium() as browser:
        ctx = await browser.new_context(viewport=SCREENS["tablet"])
        guard = await _page(ctx)
        await login(guard, rig.base, "gus")
        octx = await browser.new_context(viewport=SCREENS["wall"])
        operator = await _page(octx)
        await login(operator, rig.base, "olga")
        await rig.do(do="operator.on", console="console-1", badge="O4001")
        await rig.do(do="seal.start", console="console-1", seal="gk2027-a", badge="S2001")
        await rig.do(do="phone.detect", detector="pd-work")  # critical, latched
        alert_id = await wait_until(
            lambda: rig.alert_id("prohibited-device"), what="prohibited-device"
        )
        await expect(guard.locator("#banner")).to_be_visible()
        await expect(guard.locator("#banner-text")).not_to_contain_text("确认")
        await expect(operator.locator("#banner-text")).to_contain_text("确认")
        card = operator.locator(f'.alert[data-id="{alert_id}"]')
        await card.locator("[data-act=ack]").click()
        await operator.fill("#dlg-ack textarea", "phone found and taken")
        await operator.click("#dlg-ack button[value=ok]")
        # latched: the acknowledgement closes it; it stays on the list, greyed, saying so
        for page in (operator, guard):
            c = page.locator(f'.alert[data-id="{alert_id}"]')
            await expect(c).to_have_class(re.compile(r"\bclosed\b"))
            await expect(c.locator(".state")).to_contain_text("O4001")
        await expect(card.locator("[data-act]")).to_have_count(0)
        detail = await operator.evaluate(
            "async (id) => (await fetch('/api/alerts/' + id)).json()", alert_id
        )
        assert detail["acked"] is True and detail["acked_by"] == "O4001"
        # a fresh page (snapshot) still shows it greyed
        await operator.reload()
        await expect(operator.locator(f'.alert.closed[data-id="{alert_id}"]')).to_be_visible()
        await operator.screenshot(path=ARTIFACTS / "console-wall-closed-alert.png")
        assert operator.errors == [] and guard.errors == []  # type: ignore[attr-defined]


async def test_supervisor_runs_and_records_the_pre_seal_check(rig: Rig) -> None:  # noqa: F811
    async with chromium() as browser:
        ctx = await browser.new_context(viewport=SCREENS["tablet"])
        page = await _page(ctx)
        await login(page, rig.base, "sam")
        await page.click("[data-tab=actions]")
        await expect(page.locator("#precheck-latest")).to_contain_text("无记录")
        await page.click("[data-act=precheck-run]")
        # nobody on duty yet, devices unheard: items fail, each with its evidence
        staffed = page.locator("#precheck-items li", has_text="monitoring room staffed")
        await expect(staffed).to_have_class(re.compile(r"\bfail\b"))
        await expect(staffed.locator(".problem")).to_contain_text("operators on duty")
        await page.fill("#precheck-note", "operator O4001 called in; jammers being installed")
        await page.click("#precheck-record")
        await expect(page.locator("#act-precheck .out")).to_contain_text("已记录")
        latest = page.locator("#precheck-latest")
        await expect(latest).to_contain_text("operator O4001 called in")
        await expect(latest).to_contain_text("未通过")
        await page.screenshot(path=ARTIFACTS / "console-tablet-precheck.png", full_page=True)
        # the record is the store's precheck.recorded event, by the supervisor's badge
        assert rig.daemon.pipeline is not None
        rows = [
            e
            for e in rig.daemon.pipeline.store.events_after(0)
            if e.source.get("type") == "precheck.recorded"
        ]
        assert len(rows) == 1 and rows[0].source["remediation"].startswith("operator O4001")
        assert page.errors == []  # type: ignore[attr-defined]
    # guards and operators never see the panel
    async with chromium() as browser:
        page = await _page(await browser.new_context(viewport=SCREENS["phone"]))
        await login(page, rig.base, "olga")
        await page.click("[data-tab=actions]")
        await expect(page.locator("#act-precheck")).to_be_hidden()


@pytest.mark.parametrize("screen", ["phone", "wall"])
async def test_alert_detail_opens_from_its_card_and_closes_with_esc(rig: Rig, screen: str) -> None:  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    async with chromium() as browser:
        page = await _page(await browser.new_context(viewport=SCREENS[screen]))
        await login(page, rig.base, "olga")
        await rig.do(do="operator.on", console="console-1", badge="O4001")
        await rig.do(do="seal.start", console="console-1", seal="gk2027-a", badge="S2001")
        await rig.do(do="door.force", door="fire-exit-north")
        alert_id = await wait_until(lambda: rig.alert_id("door-forced"), what="door-forced")
        card = page.locator(f'.alert[data-id="{alert_id}"]')
        await card.locator("[data-act=ack]").click()
        await page.fill("#dlg-ack textarea", "guard sent to the north exit")
        await page.click("#dlg-ack button[value=ok]")
        await expect(card.locator("[data-act=ack]")).to_have_count(0)
        # the keyboard opens it too: focus the card, Enter
        await card.focus()
        await page.keyboard.press("Enter")
        sheet = page.locator("#dlg-alert")
        await expect(sheet).to_be_visible()
        history = page.locator("#detail-history tr.h-acknowledged")
        await expect(history).to_contain_text("guard sent to the north exit")
        await expect(page.locator("#detail-history tr.h-raised")).to_have_count(1)
        await expect(page.locator("#detail-todo li").first).to_contain_text("摄像机")
        await expect(page.locator("#detail-clause")).to_contain_text("EXAM-2.7.5")
        await expect(page.locator("#detail-context")).to_contain_text("door.forced")
        await expect(page.locator("#detail-snapshot")).to_contain_text("未保存画面")
        if screen == "phone":  # a full-screen sheet
            box = await sheet.bounding_box()
            assert box is not None and box["width"] >= 389 and box["height"] >= 843, box
        o = await overflow(page)
        assert o["scroll"] <= o["inner"], o
        await page.screenshot(path=ARTIFACTS / f"console-{screen}-alert-detail.png")
        await page.keyboard.press("Escape")
        await expect(sheet).to_be_hidden()
        # a click on the card (not on a button) opens it; the browser's back closes it
        await card.locator(".text").click()
        await expect(sheet).to_be_visible()
        await page.go_back()
        await expect(sheet).to_be_hidden()
        await expect(page.locator("#view-overview")).to_be_visible()
        assert page.errors == []  # type: ignore[attr-defined]


async def test_muster_lists_people_by_zone_and_prints_only_the_muster(rig: Rig) -> None:  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    async with chromium() as browser:
        page = await _page(await browser.new_context(viewport=SCREENS["phone"]))
        await login(page, rig.base, "gus")
        for badge in ("B1001", "G3002"):
            for door in ("gate-outer", "gate-inner"):
                await rig.do(do="badge", door=door, badge=badge, direction="in")
        await wait_until(
            lambda: (
                rig.daemon.pipeline is not None
                and {"B1001", "G3002"} <= set(rig.daemon.pipeline.stage.engine.world.location)
            ),
            what="two people inside",
        )
        await page.click("[data-tab=muster]")
        work = page.locator('.mzone[data-zone="work"]')
        await expect(work.locator("tr[data-badge=B1001]")).to_contain_text("Zhang Wei")
        # the guard's reader refused him at the inner door: he waits in the screening zone
        screening = page.locator('.mzone[data-zone="screening"]')
        await expect(screening.locator("tr[data-badge=G3002]")).to_contain_text("Xu Gang")
        await expect(page.locator("#muster-summary")).to_contain_text("区内 2 人")
        o = await overflow(page)
        assert o["scroll"] <= o["inner"], o
        await page.screenshot(path=ARTIFACTS / "console-phone-muster.png", full_page=True)
        # printed (an evacuation): the muster list and nothing else
        await page.emulate_media(media="print")
        for hidden in ("header", "nav", "#view-overview", "#muster-zones ~ *", "[data-act=print]"):
            for el in await page.locator(hidden).all():
                await expect(el).to_be_hidden()
        await expect(work).to_be_visible()
        await page.set_viewport_size({"width": 1920, "height": 1080})
        await page.screenshot(path=ARTIFACTS / "console-muster-print.png", full_page=True)
        pdf_ok = await page.evaluate("() => typeof window.print === 'function'")
        assert pdf_ok
        assert page.errors == []  # type: ignore[attr-defined]


async def test_flood_banner_groups_band_alarms_under_their_jammer(
    rig: Rig,  # noqa: F811
    mosquitto_session: Mosquitto,
) -> None:
    """Twelve alarms through the real daemon and Mosquitto: two jammers switch their RF
    output off with every band below its floor (2 × (1 + 5) `jammer-uptime`). One operator
    on duty: a flood; each jammer's band alarms fold under it, one click away."""
    ARTIFACTS.mkdir(exist_ok=True)
    assert rig.daemon.pipeline is not None
    site = rig.daemon.pipeline.site
    async with chromium() as browser:
        page = await _page(await browser.new_context(viewport=SCREENS["wall"]))
        await login(page, rig.base, "olga")
        await rig.do(do="operator.on", console="console-1", badge="O4001")
        await rig.do(do="seal.start", console="console-1", seal="gk2027-a", badge="S2001")
        async with Gateway(mosquitto_session, site.id) as gw:
            for jid, jam in site.jammers.items():
                bands = {b.id: b.min_dbm - 10 for b in jam.bands}
                await gw.event(jid, "jammer.status", output=False, bands=bands, faults=[])
        cause = await wait_until(lambda: rig.alert_id("jammer-uptime", "jam-work"), what="cause")
        await wait_until(
            lambda: rig.alert_id("jammer-uptime", "jam-living/nr3500"), what="last band"
        )
        await expect(page.locator("#flood-banner")).to_be_visible(timeout=15_000)
        await expect(page.locator("#flood-banner")).to_contain_text("告警泛滥")
        card = page.locator(f'.alert.cause[data-id="{cause}"]')
        await expect(card.locator(".grp")).to_have_text("+5 条关联告警")
        band = rig.alert_id("jammer-uptime", "jam-work/gsm900")
        member = page.locator(f'.alert[data-id="{band}"]')
        await expect(member).to_be_hidden()
        await page.screenshot(path=ARTIFACTS / "console-wall-flood.png")
        await card.locator(".grp").click()
        await expect(member).to_be_visible()
        await expect(page.locator("#dlg-alert")).to_be_hidden()  # the expander is not the card
        await page.set_viewport_size(SCREENS["phone"])
        o = await overflow(page)
        assert o["scroll"] <= o["inner"], o
        await page.screenshot(path=ARTIFACTS / "console-phone-flood.png")
        load = await page.evaluate("async () => (await fetch('/api/alarm-load')).json()")
        assert load["flood"] is True and load["operators"] == 1 and load["last_10min"] >= 12
        assert {"cause": cause, "members": load["groups"][0]["members"]} in load["groups"]
        assert len(load["groups"]) == 2 and all(len(g["members"]) == 5 for g in load["groups"])
        assert page.errors == []  # type: ignore[attr-defined]
