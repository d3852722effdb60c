"""The HTTP API: health, Prometheus metrics, alerts, and operator commands.

One aiohttp application; JSON routes live under /api/. Authentication is layered on later by
passing `middlewares` (a middleware may set `request["user"]` to the operator's badge, which
then wins over a badge in the body). Every command becomes an event fed through the same queue
as device events, so it is stored, audited and replayable like them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from aiohttp import web

from daemon import audit
from daemon.archive import seal_archive
from daemon.monitor import Monitor, Outcome
from policies.timefmt import format_ts

MONITOR: web.AppKey[Monitor] = web.AppKey("monitor", Monitor)
STATUS: web.AppKey[dict[str, Any]] = web.AppKey("status", dict)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _bad(message: str, status: int = 400) -> web.Response:
    return _json({"accepted": False, "reason": message}, status)


def _outcome(o: Outcome) -> web.Response:
    return _json(o.to_dict(), 200 if o.accepted else 409)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = orjson.loads(await request.read() or b"{}")
    except orjson.JSONDecodeError as exc:
        raise web.HTTPBadRequest(text=f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return data


def _actor(request: web.Request, body: dict[str, Any]) -> str:
    user = request.get("user")
    badge = user if isinstance(user, str) else body.get("badge")
    if not isinstance(badge, str) or not badge:
        raise web.HTTPBadRequest(text="who is acting? give 'badge'")
    return badge


def _console(monitor: Monitor, body: dict[str, Any]) -> str:
    console = body.get("console")
    if console is None:
        if not monitor.site.consoles:
            raise web.HTTPConflict(text="the site has no console to record operator actions")
        console = next(iter(monitor.site.consoles))
    return str(console)


async def _command(
    request: web.Request, body: dict[str, Any], event: dict[str, Any]
) -> web.Response:
    monitor = request.app[MONITOR]
    actor = _actor(request, body)
    event = {"device": _console(monitor, body), **event}
    event.setdefault("badge", actor)
    return _outcome(await monitor.command(event, origin=body.get("origin", "http"), actor=actor))


# -- routes -------------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    status = request.app[STATUS]
    monitor = request.app[MONITOR]
    problems = list(status.get("problems", []))
    link = status.get("mqtt")
    mqtt_up = bool(link is not None and link.connected.is_set())
    if not mqtt_up:
        problems.append("MQTT broker not connected")
    body = {
        "status": "ok" if not problems else "degraded",
        "problems": problems,
        "mqtt_connected": mqtt_up,
        "engine_lag_s": monitor.engine_lag_s(),
        "queue": monitor.queue.qsize(),
        "unpublished": len(monitor.outbox),
        "open_alerts": len(monitor.views),
        "recovery_s": monitor.recovery_s,
        "db_bytes": monitor.store.size_bytes(),
        "audit_head": monitor.store.audit.head,
    }
    return _json(body, 200)


async def metrics(request: web.Request) -> web.Response:
    return web.Response(
        text=request.app[MONITOR].metrics.render(),
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type": "text/plain; version=0.0.4"},
    )


async def list_alerts(request: web.Request) -> web.Response:
    monitor = request.app[MONITOR]
    tz = monitor.tz
    out = []
    for v in sorted(monitor.views.values(), key=lambda v: v.raised_ts):
        d = v.to_dict()
        d["raised"] = format_ts(v.raised_ts, tz)
        d["last"] = format_ts(v.last_ts, tz)
        if v.shelved_until is not None and v.shelved_until >= 0:
            d["shelved_until"] = format_ts(v.shelved_until, tz)
        out.append(d)
    return _json(out)


async def get_alert(request: web.Request) -> web.Response:
    monitor = request.app[MONITOR]
    alert_id = request.match_info["alert_id"]
    view = monitor.store.alert_view(alert_id)
    if view is None:
        return _bad(f"unknown alert '{alert_id}'", 404)
    return _json(
        {
            **view,
            "transitions": monitor.store.transitions(alert_id=alert_id),
            "actions": monitor.store.actions(alert_id=alert_id),
        }
    )


async def ack(request: web.Request) -> web.Response:
    body = await _body(request)
    event = {"type": "alert.ack", "alert_id": request.match_info["alert_id"]}
    if body.get("comment"):
        event["comment"] = body["comment"]
    return await _command(request, body, event)


async def shelve(request: web.Request) -> web.Response:
    body = await _body(request)
    monitor = request.app[MONITOR]
    until = body.get("until")
    if until is None and isinstance(body.get("for_s"), int | float):
        until = format_ts(monitor.clock() + int(body["for_s"] * 1e6), monitor.tz)
    event = {
        "type": "alert.shelve",
        "alert_id": request.match_info["alert_id"],
        "until": until,
        "reason": body.get("reason"),
    }
    return await _command(request, body, event)


async def unshelve(request: web.Request) -> web.Response:
    body = await _body(request)
    return await _command(
        request, body, {"type": "alert.unshelve", "alert_id": request.match_info["alert_id"]}
    )


async def comment(request: web.Request) -> web.Response:
    body = await _body(request)
    monitor = request.app[MONITOR]
    return _outcome(
        monitor.add_comment(
            request.match_info["alert_id"],
            _actor(request, body),
            str(body.get("text", "")),
            body.get("origin", "http"),
        )
    )


async def seal_start(request: web.Request) -> web.Response:
    body = await _body(request)
    event = {"type": "seal.start", "seal": request.match_info["seal_id"]}
    for key in ("name", "classification", "end"):
        if body.get(key) is not None:
            event[key] = body[key]
    return await _command(request, body, event)


async def seal_end(request: web.Request) -> web.Response:
    body = await _body(request)
    return await _command(
        request, body, {"type": "seal.end", "seal": request.match_info["seal_id"]}
    )


async def list_seals(request: web.Request) -> web.Response:
    monitor = request.app[MONITOR]
    tz = monitor.tz
    return _json(
        [
            {
                **s,
                **{
                    k: format_ts(s[k], tz)
                    for k in ("start", "end", "planned_end")
                    if s[k] is not None
                },
            }
            for s in monitor.store.seals()
        ]
    )


async def get_archive(request: web.Request) -> web.Response:
    monitor = request.app[MONITOR]
    seal_id = request.match_info["seal_id"]
    data = seal_archive(monitor.store, monitor.site, seal_id, monitor.clock())
    return _json(data) if data is not None else _bad(f"no archive for seal '{seal_id}'", 404)


async def approval(request: web.Request) -> web.Response:
    body = await _body(request)
    # `badge` here is the person allowed out; `by` is who granted it.
    by = request.get("user") or body.get("by")
    if not isinstance(by, str) or not by:
        return _bad("who grants the approval? give 'by'")
    event = {
        "type": "approval.granted",
        "badge": body.get("badge"),
        "valid_s": body.get("valid_s"),
        "granted_by": by,
    }
    return await _command(request, {**body, "badge": by}, event)


async def inspection(request: web.Request) -> web.Response:
    body = await _body(request)
    return await _command(request, body, {"type": "inspection.done", "zone": body.get("zone")})


async def review(request: web.Request) -> web.Response:
    body = await _body(request)
    event: dict[str, Any] = {"type": "review.done"}
    for key in ("camera", "zone"):
        if body.get(key) is not None:
            event[key] = body[key]
    return await _command(request, body, event)


async def add_maintenance(request: web.Request) -> web.Response:
    body = await _body(request)
    monitor = request.app[MONITOR]
    return _outcome(
        monitor.add_suppression(
            str(body.get("device", "")),
            str(body.get("start", "")),
            str(body.get("end", "")),
            str(body.get("reason", "")),
            _actor(request, body),
            body.get("origin", "http"),
        )
    )


async def list_maintenance(request: web.Request) -> web.Response:
    monitor = request.app[MONITOR]
    tz = monitor.tz
    return _json(
        [
            {**s, "start": format_ts(s["start"], tz), "end": format_ts(s["end"], tz)}
            for s in monitor.store.suppressions()
        ]
    )


async def audit_verify(request: web.Request) -> web.Response:
    verdict = audit.verify(request.app[MONITOR].store.conn)
    return _json(
        {
            "ok": verdict.ok,
            "records": verdict.records,
            "head": verdict.head,
            "broken_record": verdict.broken_seq,
            "problem": verdict.problem,
        },
        200 if verdict.ok else 409,
    )


def _query_int(request: web.Request, key: str, default: int) -> int:
    try:
        return int(request.query.get(key, default))
    except ValueError:
        raise web.HTTPBadRequest(text=f"'{key}' must be a whole number") from None


async def events(request: web.Request) -> web.Response:
    store = request.app[MONITOR].store
    after = _query_int(request, "after", 0)
    limit = min(_query_int(request, "limit", 10_000), 100_000)
    lines = []
    for i, ev in enumerate(store.events_after(after)):
        if i >= limit:
            break
        lines.append(orjson.dumps(ev.source))
    return web.Response(
        body=b"\n".join(lines) + (b"\n" if lines else b""), content_type="application/x-ndjson"
    )


async def rejections(request: web.Request) -> web.Response:
    limit = min(_query_int(request, "limit", 100), 10_000)
    return _json(request.app[MONITOR].store.rejections(limit))


def build_app(
    monitor: Monitor, *, status: dict[str, Any] | None = None, middlewares: Iterable[Any] = ()
) -> web.Application:
    """The daemon's web application; `middlewares` is where authentication plugs in."""
    app = web.Application(middlewares=list(middlewares), client_max_size=1024 * 1024)
    app[MONITOR] = monitor
    app[STATUS] = status if status is not None else {}
    app.add_routes(
        [
            web.get("/healthz", healthz),
            web.get("/metrics", metrics),
            web.get("/api/alerts", list_alerts),
            web.get("/api/alerts/{alert_id}", get_alert),
            web.post("/api/alerts/{alert_id}/ack", ack),
            web.post("/api/alerts/{alert_id}/shelve", shelve),
            web.post("/api/alerts/{alert_id}/unshelve", unshelve),
            web.post("/api/alerts/{alert_id}/comment", comment),
            web.get("/api/seals", list_seals),
            web.post("/api/seals/{seal_id}/start", seal_start),
            web.post("/api/seals/{seal_id}/end", seal_end),
            web.get("/api/seals/{seal_id}/archive", get_archive),
            web.post("/api/approvals", approval),
            web.post("/api/inspections", inspection),
            web.post("/api/reviews", review),
            web.get("/api/maintenance", list_maintenance),
            web.post("/api/maintenance", add_maintenance),
            web.get("/api/audit/verify", audit_verify),
            web.get("/api/events", events),
            web.get("/api/rejections", rejections),
        ]
    )
    return app
