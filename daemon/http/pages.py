"""The dashboard's own routes: the page, login/logout/session, the snapshot and timeline,
camera thumbnails, the floor plan image and the user list (admins).

Query strings and bodies are checked by daemon.http.params: anything malformed is a 4xx
naming the key.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

from aiohttp import web

from daemon.http import WEB
from daemon.http.auth import Session
from daemon.http.detail import AlertDetails
from daemon.http.live import FEED
from daemon.http.load import alarm_load
from daemon.http.muster import muster
from daemon.http.params import (
    ACTOR,
    json_response,
    path_id,
    query_int,
    query_list,
    read_body,
    refuse,
)
from daemon.http.security import COOKIE_PLAIN, COOKIE_SECURE, GATE, SESSION, Gate
from daemon.http.state import SEVERITIES, StateBuilder
from policies.events import EVENT_TYPES

STATE: web.AppKey[StateBuilder] = web.AppKey("state", StateBuilder)
DETAILS: web.AppKey[AlertDetails] = web.AppKey("details", AlertDetails)
MAX_USER_NAME = 64
MAX_PASSWORD = 1024
# Timeline categories: an event type's prefix (door, badge, …) or `alert`.
CATEGORIES = frozenset({t.split(".", 1)[0] for t in EVENT_TYPES} | {"alert"})
TIMELINE_LIMIT = 1000
MAX_MS = 2**53  # what a browser's Number holds exactly


def _whoami(gate: Gate, s: Session) -> dict[str, Any]:
    return {
        "user": s.user.name,
        "role": s.user.role,
        "badge": s.user.badge,
        "csrf": s.csrf,
        "idle_timeout_s": gate.sessions.idle_limit(s),
    }


async def page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(WEB / "index.html", headers={"Cache-Control": "no-store"})


async def service_worker(request: web.Request) -> web.StreamResponse:
    """GET /sw.js: the page's service worker, served from the root so its scope is the whole
    console (it caches the page's own assets, never the API or the live channel)."""
    return web.FileResponse(
        WEB / "sw.js",
        headers={
            "Content-Type": "text/javascript; charset=utf-8",
            "Service-Worker-Allowed": "/",
            "Cache-Control": "no-cache",
        },
    )


async def manifest(request: web.Request) -> web.StreamResponse:
    """GET /manifest.webmanifest: the installable web app's manifest (icons ship in /static)."""
    return web.FileResponse(
        WEB / "manifest.webmanifest",
        headers={"Content-Type": "application/manifest+json", "Cache-Control": "no-cache"},
    )


async def login(request: web.Request) -> web.Response:
    gate = request.app[GATE]
    if not gate.origin_ok(request, required=False):
        return gate.deny(403, "login from another origin refused", "origin")
    body = await read_body(request)
    name, password = body.get("username"), body.get("password")
    for key, value in (("username", name), ("password", password)):
        if not isinstance(value, str):
            refuse(key, "required (a string)")
    assert isinstance(name, str) and isinstance(password, str)
    name = name.strip()
    if not name or len(name) > MAX_USER_NAME:
        refuse("username", f"1 to {MAX_USER_NAME} characters")
    if len(password) > MAX_PASSWORD:
        refuse("password", f"at most {MAX_PASSWORD} characters")
    try:
        name.encode("utf-8")
        password.encode("utf-8")
    except UnicodeEncodeError:
        refuse("body", "not valid UTF-8")
    ip = gate.client_ip(request)
    # Check and count in one synchronous step, before the (threaded) hash: concurrent
    # guesses are throttled exactly as sequential ones.
    wait = gate.limiter.begin(name, ip)
    if wait > 0:
        gate.view.count("sealwatch_logins_total", "throttled")
        if gate.limiter.first_refusal(name, ip, wait):
            gate.audit("login_throttled", user=name, ip=ip, retry_after_s=round(wait, 1))
        seconds = max(1, math.ceil(wait))
        return json_response(
            {"ok": False, "reason": "too many failed logins; wait", "retry_after_s": seconds},
            429,
            headers={"Retry-After": str(seconds)},
        )
    user = await asyncio.to_thread(gate.users.verify, name, password)
    if user is None:
        gate.view.count("sealwatch_logins_total", "failed")
        gate.audit("login_failed", user=name, ip=ip)
        return json_response({"ok": False, "reason": "wrong user name or password"}, 401)
    gate.limiter.succeeded(name, ip)
    old = request.cookies.get(COOKIE_SECURE) or request.cookies.get(COOKIE_PLAIN)
    if old:
        gate.sessions.drop(old)
    session = gate.sessions.create(user, ip)
    gate.view.count("sealwatch_logins_total", "ok")
    gate.audit("login", user=user.name, role=user.role, ip=ip)
    resp = json_response({"ok": True, **_whoami(gate, session)})
    secure = gate.secure(request)
    resp.set_cookie(
        COOKIE_SECURE if secure else COOKIE_PLAIN,
        session.token,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=secure,
    )
    return resp


async def logout(request: web.Request) -> web.Response:
    gate = request.app[GATE]
    session = request.get(SESSION)
    if session is not None:
        gate.sessions.drop(session.token)
        gate.audit("logout", user=session.user.name, ip=gate.client_ip(request))
        request.app[FEED].end_session(session, "logout")
    resp = json_response({"ok": True})
    for name in (COOKIE_SECURE, COOKIE_PLAIN):
        if name in request.cookies:
            resp.del_cookie(
                name, path="/", secure=name == COOKIE_SECURE, httponly=True, samesite="Strict"
            )
    return resp


async def whoami(request: web.Request) -> web.Response:
    gate = request.app[GATE]
    session = gate.session_of(request)
    if session is None:
        # The login screen shows the site's name and its clock in the site's time zone.
        site = gate.view.site
        return json_response(
            {
                "ok": False,
                "users_exist": gate.users_exist(),
                "site": {"name": site.name, "timezone": site.timezone},
            },
            401,
        )
    return json_response({"ok": True, **_whoami(gate, session)})


async def snapshot(request: web.Request) -> web.Response:
    session = request.get(SESSION)
    state = request.app[STATE]
    return json_response(state.snapshot(session.user if session is not None else None))


async def timeline(request: web.Request) -> web.Response:
    state = request.app[STATE]
    site = state.site
    devices = query_list(request, "device", site.device_kind.__contains__, "device")
    zones = query_list(request, "zone", site.zones.__contains__, "zone")
    kinds = query_list(request, "kind", CATEGORIES.__contains__, "kind")
    severities = query_list(request, "severity", SEVERITIES.__contains__, "severity")
    if zones:
        in_zones = {d for d, z in state.zone_of.items() if z in zones}
        devices = (devices & in_zones) if devices else in_zones
    before = query_int(request, "before_ms", -1, 0, MAX_MS)
    limit = query_int(request, "limit", 200, 1, TIMELINE_LIMIT)
    telemetry = request.query.get("telemetry", "0")
    if telemetry not in ("0", "1"):
        refuse("telemetry", "must be 0 or 1")
    return json_response(
        state.timeline(
            kinds=kinds,
            devices=devices,
            severities=severities,
            before_ms=before if before >= 0 else None,
            limit=limit,
            telemetry=telemetry == "1",
        )
    )


async def seal_calendar(request: web.Request) -> web.Response:
    """GET /api/dashboard/seals: upcoming, running and past seals with their status."""
    return json_response(request.app[STATE].seal_calendar())


async def alert_detail(request: web.Request) -> web.Response:
    """GET /api/dashboard/alerts/{alert_id}: the alert's history, the events around it, its
    clause in zh and en, what to do, and whether a camera snapshot is stored."""
    alert_id = path_id(request, "alert_id")
    data = request.app[DETAILS].build(alert_id)  # bounded queries, on the loop like the rest
    if data is None:
        refuse("alert_id", f"unknown alert '{alert_id}'", 404)
    return json_response(data)


async def muster_list(request: web.Request) -> web.Response:
    """GET /api/muster: who is inside each zone now, and who has not been seen for a while."""
    options = request.app[GATE].options
    return json_response(muster(request.app[STATE].view, options.muster_unseen_min))


async def alarm_load_figures(request: web.Request) -> web.Response:
    """GET /api/alarm-load: ISA-18.2 figures now and the grouping of consequential alarms."""
    return json_response(alarm_load(request.app[STATE].view))


async def camera_jpeg(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    cam = request.match_info["camera"]
    if cam not in state.site.cameras:
        refuse("camera", "unknown camera", 404)
    size = request.query.get("size", "small")
    if size not in ("small", "large"):
        refuse("size", "must be small or large")
    width = 960 if size == "large" else 320
    data = state.thumbnails(cam, width) if state.thumbnails is not None else None
    if data is None:
        return web.Response(status=204)
    return web.Response(body=data, content_type="image/jpeg", headers={"Cache-Control": "no-store"})


async def floor_plan(request: web.Request) -> web.StreamResponse:
    options = request.app[GATE].options
    if not options.floor_plan:
        raise web.HTTPNotFound()
    return web.FileResponse(Path(options.floor_plan))


async def list_users(request: web.Request) -> web.Response:
    gate = request.app[GATE]
    return json_response(
        [
            {"name": u.name, "role": u.role, "badge": u.badge, "disabled": u.disabled}
            for u in gate.users.list()
        ]
    )


async def unlock_user(request: web.Request) -> web.Response:
    """An admin lifts an account's login delays (from every address); audited."""
    gate = request.app[GATE]
    name = path_id(request, "name")
    if len(name) > MAX_USER_NAME:
        refuse("name", f"1 to {MAX_USER_NAME} characters")
    await read_body(request)  # no fields; a malformed body is still refused
    if gate.users.get(name) is None:
        refuse("name", f"no user {name!r}", 404)
    cleared = gate.limiter.unlock(name)
    actor = request.get(ACTOR) or "cli"
    gate.audit("login_unlock", user=name, by=actor, ip=gate.client_ip(request), cleared=cleared)
    return json_response({"ok": True, "user": name, "cleared": cleared})
