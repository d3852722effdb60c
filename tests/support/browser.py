"""Debian's Chromium driven by Playwright (never a downloaded browser), and a daemon with
dashboard users for the browser tests and the dashboard benchmark."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, async_playwright

from daemon.http.auth import UserStore

CHROMIUM = os.environ.get("SEALWATCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
PASSWORD = "correct horse battery"  # test accounts only, created per test data dir
USERS = {
    "olga": ("operator", "O4001"),
    "gus": ("guard", "G3001"),
    "sam": ("supervisor", "S2001"),
    "ada": ("admin", None),
}


def add_users(data_dir: Path) -> None:
    store = UserStore(data_dir / "users.db")
    for name, (role, badge) in USERS.items():
        store.add(name, role, PASSWORD, badge)


def chromium_missing() -> bool:
    return not Path(CHROMIUM).exists()


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    if chromium_missing():
        raise RuntimeError(f"{CHROMIUM} is missing: scripts/setup installs Debian's chromium")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


async def login(page: Page, base: str, user: str, password: str = PASSWORD) -> None:
    await page.goto(base + "/")
    await page.fill("#login-user", user)
    await page.fill("#login-pass", password)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("#login", state="hidden")
    await page.wait_for_selector("#conn:not(.lost)")


def track_requests(page: Page, origin: str) -> list[str]:
    """Every URL the page asks for that is not on the daemon's own origin."""
    outside: list[str] = []

    def seen(request: Any) -> None:
        url = request.url
        if not (
            url.startswith(origin + "/")
            or url == origin
            or url.startswith(origin.replace("http", "ws", 1) + "/")
            or url.startswith("data:")
            or url.startswith("blob:")
        ):
            outside.append(url)

    page.on("request", seen)
    page.on("websocket", lambda ws: seen(type("R", (), {"url": ws.url})()))
    return outside
