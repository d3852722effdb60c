"""The centre's HTTP side: a JSON API and one plain page (sites on a list and on an inline SVG
map, the worst alert of each, seals with jammer uptime, availability, a site's active alerts).
No outside network: the page, its script and the dashboard's style sheet ship with sealwatch.

    GET /                              the page
    GET /api/overview                  every site (availability, worst alert, seals, counts)
    GET /api/sites/SITE                one site and its active alerts (the drill-down)
    GET /api/sites/SITE/transitions    the transitions seen, oldest first (?limit=, ≤ 20,000)
    GET /healthz                       the cluster node followed, messages, rejections,
                                       problems (notifications failing), notification counts
    GET /metrics                       Prometheus text: messages, transitions, notifications

With `access` configured every route but /healthz asks for that login (HTTP Basic: the
browser's own prompt, Prometheus's `basic_auth`); without it the centre listens on loopback
only (daemon/central/config.py refuses anything else).
"""

from __future__ import annotations

import base64
import hmac
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from daemon.central.link import ClusterLink
from daemon.central.notify import CentralNotifications
from daemon.central.state import RECENT_MAX, SEVERITY_RANK, Centre, SiteState

HERE = Path(__file__).resolve().parent
STYLE = HERE.parent / "web" / "style.css"  # the site dashboard's colours and fonts


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _login(access: tuple[str, str] | None) -> Any:
    """Every route but /healthz behind HTTP Basic `access` (compared in constant time)."""
    want = None
    if access is not None:
        want = base64.b64encode(f"{access[0]}:{access[1]}".encode()).decode()

    @web.middleware
    async def login(request: web.Request, handler: Any) -> web.StreamResponse:
        if want is None or request.path == "/healthz":
            response: web.StreamResponse = await handler(request)
            return response
        given = request.headers.get("Authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() == "basic" and hmac.compare_digest(token.strip(), want):
            response = await handler(request)
            return response
        return web.Response(
            status=401,
            text="log in",
            headers={"WWW-Authenticate": 'Basic realm="sealwatch central", charset="UTF-8"'},
        )

    return login


def build_app(
    centre: Centre,
    link: ClusterLink | None,
    notify: CentralNotifications | None = None,
    access: tuple[str, str] | None = None,
) -> web.Application:
    app = web.Application(client_max_size=1024, middlewares=[_login(access)])

    async def page(_r: web.Request) -> web.Response:
        return web.Response(
            body=(HERE / "page.html").read_bytes(),
            content_type="text/html",
            charset="utf-8",
            headers={
                "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'"
            },
        )

    async def script(_r: web.Request) -> web.Response:
        return web.Response(body=(HERE / "page.js").read_bytes(), content_type="text/javascript")

    async def style(_r: web.Request) -> web.Response:
        return web.Response(body=STYLE.read_bytes(), content_type="text/css")

    async def overview(_r: web.Request) -> web.Response:
        return _json(centre.overview())

    def site_of(request: web.Request) -> SiteState | None:
        return centre.sites.get(request.match_info["site"])

    missing = {"error": "no such site in the centre's sites list"}

    async def one_site(request: web.Request) -> web.Response:
        site = site_of(request)
        if site is None:
            return _json(missing, 404)
        alerts = sorted(
            site.active.values(),
            key=lambda a: (SEVERITY_RANK.get(str(a.get("severity")), -1), str(a.get("ts", ""))),
            reverse=True,
        )
        return _json({**centre.site_row(site), "active_alerts": alerts})

    async def transitions(request: web.Request) -> web.Response:
        site = site_of(request)
        if site is None:
            return _json(missing, 404)
        raw = request.query.get("limit", str(RECENT_MAX))
        if not raw.isdigit() or not 1 <= int(raw) <= RECENT_MAX:
            return _json({"error": f"limit: a whole number from 1 to {RECENT_MAX}"}, 400)
        items = list(site.recent)[-int(raw) :]
        return _json({"site": site.ref.id, "count": site.transitions, "transitions": items})

    async def healthz(_r: web.Request) -> web.Response:
        node = link.connected.label if link is not None and link.connected else None
        problems = [f"{k}: {v}" for k, v in sorted(centre.problems.items())]
        return _json(
            {
                "status": "ok" if node and not problems else "degraded",
                "broker": node,
                "connections": link.connections if link is not None else 0,
                "messages": centre.messages,
                "rejected": dict(centre.rejected),
                "problems": problems,
                "notifications": notify.status() if notify is not None else None,
            }
        )

    async def metrics(_r: web.Request) -> web.Response:
        return web.Response(
            text=centre.metrics.render(), content_type="text/plain", charset="utf-8"
        )

    app.router.add_get("/", page)
    app.router.add_get("/page.js", script)
    app.router.add_get("/style.css", style)
    app.router.add_get("/api/overview", overview)
    app.router.add_get("/api/sites/{site}", one_site)
    app.router.add_get("/api/sites/{site}/transitions", transitions)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app
