"""The dashboard's banner for the daemon's own health, in real Chromium against the real
daemon and real Mosquitto: the store is locked for real by another SQLite connection, the
banner names the store while alerts keep coming, and it goes away when the store is back.
A screenshot of the degraded page goes to test-artifacts/.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import uuid
from pathlib import Path

import pytest
from playwright.async_api import ViewportSize, expect

from daemon.runtime import Daemon
from tests.support.browser import add_users, chromium, chromium_missing, login
from tests.support.daemon import Gateway, now_ts, running_daemon, wait_until, write_site
from tests.support.mosquitto import Mosquitto

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        chromium_missing(), reason="Debian's chromium is missing (scripts/setup installs it)"
    ),
]
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
VIEWPORT: ViewportSize = {"width": 1680, "height": 1050}
# The writer's busy timeout is 1 s, then it reports the store degraded; the page follows on
# its next live-feed tick. Generous, so a loaded CI machine does not fail the test.
WAIT_MS = 15_000


def alert_id(d: Daemon, policy: str, subject: str) -> str | None:
    assert d.pipeline is not None
    for v in d.pipeline.stage.views.values():
        if v.policy == policy and v.subject == subject:
            return v.alert_id
    return None


def stored_events(db: Path, device: str) -> int:
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as c:
        return int(c.execute("SELECT COUNT(*) FROM events WHERE device=?", (device,)).fetchone()[0])


async def test_banner_names_a_locked_store_while_alerts_go_on(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    site_id = f"dashhealth{uuid.uuid4().hex[:6]}"
    path = write_site(tmp_path, site_id)
    data = tmp_path / "data"
    add_users(data)
    db = data / "sealwatch.db"
    async with (
        running_daemon(path, mosquitto_session, data) as d,
        Gateway(mosquitto_session, site_id) as gw,
        chromium() as browser,
    ):
        base = f"http://127.0.0.1:{d.http_port}"
        ctx = await browser.new_context(viewport=VIEWPORT)
        page = await ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await login(page, base, "olga")
        banner = page.locator("#health-banner")
        problems = page.locator("#health-problems")
        await expect(banner).to_be_hidden()  # a healthy daemon shows no banner

        # Another connection takes the database's write lock and keeps it: the daemon's
        # writer gives up after its busy timeout and reports the store degraded.
        locker = sqlite3.connect(db, isolation_level=None, timeout=30, check_same_thread=False)
        locked = False
        try:
            await asyncio.to_thread(locker.execute, "BEGIN EXCLUSIVE")
            locked = True
            await gw.event("fire-exit-north", "door.forced", ts=now_ts())

            await expect(banner).to_be_visible(timeout=WAIT_MS)
            await expect(problems).to_contain_text("store", timeout=WAIT_MS)
            await expect(problems).to_contain_text(re.compile(r"locked"))
            # Alerting goes on meanwhile: the door-forced alert reaches the page.
            forced = await wait_until(
                lambda: alert_id(d, "door-forced", "fire-exit-north"), what="door-forced"
            )
            card = page.locator(f'.alert[data-id="{forced}"]')
            await expect(card).to_be_visible(timeout=WAIT_MS)
            await expect(card).to_have_class(re.compile(r"\bunacknowledged\b"))
            # The daemon's own alert about its store is there too.
            own = await wait_until(
                lambda: alert_id(d, "daemon-health", "store"), what="the daemon-health alert"
            )
            await expect(page.locator(f'.alert[data-id="{own}"]')).to_be_visible(timeout=WAIT_MS)
            # ... and the store is still failing while it is shown: nothing of it was written.
            await expect(banner).to_be_visible()
            assert d.pipeline is not None
            assert "store" in d.pipeline.problems
            await page.screenshot(path=ARTIFACTS / "dashboard-health-banner.png", full_page=True)
        finally:
            if locked:
                await asyncio.to_thread(locker.execute, "COMMIT")
            locker.close()

        # The store is writable again: the banner goes, the held event is written.
        await expect(banner).to_be_hidden(timeout=WAIT_MS)
        await expect(problems).to_have_text("")
        await expect(card).to_be_visible()  # the alert itself is still open
        await wait_until(lambda: stored_events(db, "fire-exit-north") == 1, what="event stored")
        assert errors == []
