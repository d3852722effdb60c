"""The HTTP side wired together: `build_app` (health, metrics, the JSON API) and
`mount_dashboard` (the page, logins, the live channel, and the auth middlewares in front of
/api/). Both take the read-only view and the actions, never the runtime.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiohttp import http_exceptions, web

from daemon.config import DashboardOptions as Options
from daemon.config import Settings
from daemon.http import WEB
from daemon.http.api import mount_api
from daemon.http.detail import AlertDetails
from daemon.http.live import FEED, Feed, live
from daemon.http.pages import (
    DETAILS,
    STATE,
    alarm_load_figures,
    alert_detail,
    camera_jpeg,
    floor_plan,
    list_users,
    login,
    logout,
    manifest,
    muster_list,
    page,
    seal_calendar,
    service_worker,
    snapshot,
    timeline,
    unlock_user,
    whoami,
)
from daemon.http.params import MAX_BODY_BYTES
from daemon.http.plan import site_plan
from daemon.http.security import GATE, Gate, auth_middleware, security_headers
from daemon.http.state import StateBuilder, Thumbnails
from daemon.view import Actions, ReadView

log = logging.getLogger("sealwatch.dashboard")


class Dashboard:
    """The dashboard's parts: who is asking (`gate`), what is shown (`state`), the live
    channel (`feed`). Set `thumbnails` when a camera adapter runs."""

    def __init__(self, gate: Gate, state: StateBuilder, feed: Feed, options: Options) -> None:
        self.gate = gate
        self.state = state
        self.feed = feed
        self.options = options

    @property
    def thumbnails(self) -> Thumbnails | None:
        return self.state.thumbnails

    @thumbnails.setter
    def thumbnails(self, value: Thumbnails | None) -> None:
        self.state.thumbnails = value


DASHBOARD: web.AppKey[Dashboard] = web.AppKey("dashboard", Dashboard)


class _ClientErrorLog(logging.Filter):
    """aiohttp logs a malformed request (a request line over 8 KiB, bad headers …) with a
    traceback at ERROR, though it answers 400 and the fault is the client's: write one line
    at WARNING instead, at most every 10 s."""

    def __init__(self) -> None:
        super().__init__()
        self._last = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, http_exceptions.HttpProcessingError) or exc.code >= 500:
            return True
        now = time.monotonic()
        if now - self._last < 10.0:
            return False
        self._last = now
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.msg = "malformed HTTP request refused with %d: %s"
        record.args = (exc.code, str(exc.message)[:200])
        record.exc_info = record.exc_text = None
        return True


def _quiet_client_errors() -> None:
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _ClientErrorLog) for f in server_log.filters):
        server_log.addFilter(_ClientErrorLog())


OPENAPI_FILE = Path(__file__).with_name("openapi.yaml")


@functools.cache
def openapi_document() -> bytes:
    """The API's OpenAPI 3 description (daemon/http/openapi.yaml) as JSON."""
    return orjson.dumps(yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8")))


async def openapi(request: web.Request) -> web.Response:
    """GET /api/openapi.json: for any logged-in user or the CLI's token, like the API."""
    return web.Response(body=openapi_document(), content_type="application/json")


def build_app(
    view: ReadView, actions: Actions, *, middlewares: Iterable[Any] = ()
) -> web.Application:
    """The daemon's web application (bodies up to 64 KiB); `middlewares` is where
    authentication plugs in. The view's connection closes with the app."""
    app = web.Application(middlewares=list(middlewares), client_max_size=MAX_BODY_BYTES)

    async def close_view(_app: web.Application) -> None:
        view.close()

    app.on_cleanup.append(close_view)
    _quiet_client_errors()
    mount_api(app, view, actions)
    app.router.add_get("/api/openapi.json", openapi)
    return app


def mount_dashboard(
    app: web.Application,
    view: ReadView,
    actions: Actions,
    settings: Settings,
    *,
    site_path: Path | None = None,
    thumbnails: Thumbnails | None = None,
) -> Dashboard:
    """Add the dashboard's routes and middlewares to the daemon's app (before it starts)."""
    options = settings.dashboard
    gate = Gate(view, actions, options, settings.data_dir)
    state = StateBuilder(view, site_plan(view.site, site_path, options))
    state.thumbnails = thumbnails
    feed = Feed(view, state, gate, options.tick_s)
    dash = Dashboard(gate, state, feed, options)
    app[DASHBOARD] = dash
    app[GATE] = gate
    app[STATE] = state
    app[DETAILS] = AlertDetails(view, state.zone_of, options.procedures)
    app[FEED] = feed
    app.middlewares.insert(0, auth_middleware(gate))
    app.middlewares.insert(0, security_headers)

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        async with feed:
            yield

    app.cleanup_ctx.append(lifetime)
    app.add_routes(
        [
            web.get("/", page),
            web.get("/sw.js", service_worker),
            web.get("/manifest.webmanifest", manifest),
            web.get("/live", live),
            web.post("/auth/login", login),
            web.post("/auth/logout", logout),
            web.get("/auth/session", whoami),
            web.get("/api/dashboard/snapshot", snapshot),
            web.get("/api/dashboard/timeline", timeline),
            web.get("/api/dashboard/seals", seal_calendar),
            web.get("/api/dashboard/alerts/{alert_id}", alert_detail),
            web.get("/api/muster", muster_list),
            web.get("/api/alarm-load", alarm_load_figures),
            web.get("/api/dashboard/cameras/{camera}.jpg", camera_jpeg),
            web.get("/api/dashboard/floor-plan", floor_plan),
            web.get("/api/users", list_users),
            web.post("/api/users/{name}/unlock", unlock_user),
            web.static("/static", WEB, append_version=False),
        ]
    )
    if not gate.users_exist():
        log.warning(
            "no dashboard users yet: the HTTP API answers local clients only. "
            "Create one with: sealwatch user add NAME --role admin --config SITE"
        )
    return dash
