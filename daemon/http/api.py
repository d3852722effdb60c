"""The HTTP API: health, Prometheus metrics, alerts, seals, events and operator commands.

JSON routes live under /api/. Handlers read through a `ReadView` and act through `Actions`;
they never hold the runtime. Every command becomes an event fed through the same path as
device events, so it is stored, audited and replayable like them. Authentication is layered
on by middlewares (daemon.http.security). Who acts and from where is the server's to say
(docs/policies.md, "Who may act"): a logged-in user acts as the badge linked to the account
(none: 403; a different `badge` in the body: 403), with origin `http`; the API token (the
local CLI) acts for the badge it names, with origin `cli`. An `origin` in the body is ignored.

Input is checked before anything is fed (daemon.http.params): a wrong type, an over-long
string, a time outside [2000, 2100), a bad number or a body over 64 KiB is a 4xx that names
the key. Null counts as absent for optional fields.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from daemon.archive import seal_archive
from daemon.http.params import (
    MAX_INT,
    check_time_us,
    json_response,
    opt_id,
    opt_number,
    opt_str,
    opt_time,
    path_id,
    query_int,
    read_body,
    refusal,
    refuse,
    req_id,
    req_str,
)
from daemon.http.security import SESSION
from daemon.view import Actions, Outcome, ReadView, format_time

VIEW: web.AppKey[ReadView] = web.AppKey("view", ReadView)
ACTIONS: web.AppKey[Actions] = web.AppKey("actions", Actions)

EVENTS_LIMIT = 100_000
REJECTIONS_LIMIT = 10_000
MAX_SHELVE_S = 100 * 365 * 86_400.0  # then `until` must still be before 2100
MAX_APPROVAL_S = 86_400.0


def _outcome(o: Outcome) -> web.Response:
    return json_response(o.to_dict(), 200 if o.accepted else 409)


def _origin(request: web.Request) -> str:
    """Where a command comes from, as the server knows it (never from the body): `cli` for
    the API token (the auth middleware checked it), else `http`."""
    if request.get(SESSION) is None and request.headers.get("Authorization", "").startswith(
        "Bearer "
    ):
        return "cli"
    return "http"


def _actor(request: web.Request, body: dict[str, Any], key: str = "badge") -> str:
    """The badge of whoever acts: the logged-in account's, or (API token) the one named."""
    session = request.get(SESSION)
    given = opt_id(body, key)
    if session is not None:
        badge: str | None = session.user.badge
        if not badge:
            refuse(
                key,
                f"account {session.user.name!r} is not linked to a badge, so it cannot act "
                "(an admin links one: sealwatch users … --badge)",
                403,
            )
        if given is not None and given != badge:
            refuse(key, f"{key!r} is not the badge of the logged-in account ({badge!r})", 403)
        return badge
    if given is None:
        refuse(key, f"who is acting? give {key!r} (a badge)")
    return given


def _console(view: ReadView, body: dict[str, Any]) -> str:
    console = opt_id(body, "console")
    if console is None:
        if not view.site.consoles:
            refuse("console", "the site has no console to record operator actions", 409)
        console = next(iter(view.site.consoles))
    return console


async def _command(
    request: web.Request, body: dict[str, Any], event: dict[str, Any], actor: str | None = None
) -> web.Response:
    view, actions = request.app[VIEW], request.app[ACTIONS]
    actor = actor or _actor(request, body)
    event = {"device": _console(view, body), **event}
    event.setdefault("badge", actor)
    origin = _origin(request)
    try:
        outcome = await actions.command(event, origin=origin, actor=actor)
    except TimeoutError:
        return refusal("the engine did not answer in time; try again", 503)
    return _outcome(outcome)


# -- health and metrics -------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    return json_response(request.app[VIEW].health().to_dict())


async def metrics(request: web.Request) -> web.Response:
    return web.Response(
        text=request.app[VIEW].render_metrics(),
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type": "text/plain; version=0.0.4"},
    )


# -- alerts -------------------------------------------------------------------------------------


async def list_alerts(request: web.Request) -> web.Response:
    view = request.app[VIEW]
    tz = view.tz
    out = []
    for v in sorted(view.open_alerts(), key=lambda v: v.raised_ts):
        d = v.to_dict()
        d["raised"] = format_time(v.raised_ts, tz)
        d["last"] = format_time(v.last_ts, tz)
        if v.shelved_until is not None and v.shelved_until >= 0:
            d["shelved_until"] = format_time(v.shelved_until, tz)
        out.append(d)
    return json_response(out)


async def get_alert(request: web.Request) -> web.Response:
    view = request.app[VIEW]
    alert_id = path_id(request, "alert_id")
    record = view.alert_record(alert_id)
    if record is None:
        refuse("alert_id", f"unknown alert '{alert_id}'", 404)
    return json_response(
        {**record, "transitions": view.transitions(alert_id), "actions": view.actions(alert_id)}
    )


async def ack(request: web.Request) -> web.Response:
    alert_id = path_id(request, "alert_id")
    body = await read_body(request)
    event: dict[str, Any] = {"type": "alert.ack", "alert_id": alert_id}
    comment = opt_str(body, "comment")
    if comment:
        event["comment"] = comment
    return await _command(request, body, event)


async def shelve(request: web.Request) -> web.Response:
    alert_id = path_id(request, "alert_id")
    body = await read_body(request)
    view = request.app[VIEW]
    until = opt_time(body, "until")
    for_s = opt_number(body, "for_s", 0, MAX_SHELVE_S)
    if until is None:
        if for_s is None:
            refuse("until", "give 'until' (RFC 3339) or 'for_s' (seconds)")
        end = view.clock() + int(for_s * 1e6)
        until = format_time(check_time_us("for_s", end), view.tz)
    event = {
        "type": "alert.shelve",
        "alert_id": alert_id,
        "until": until,
        "reason": req_str(body, "reason"),
    }
    return await _command(request, body, event)


async def unshelve(request: web.Request) -> web.Response:
    alert_id = path_id(request, "alert_id")
    body = await read_body(request)
    return await _command(request, body, {"type": "alert.unshelve", "alert_id": alert_id})


async def comment(request: web.Request) -> web.Response:
    alert_id = path_id(request, "alert_id")
    body = await read_body(request)
    text = req_str(body, "text")
    return _outcome(
        await request.app[ACTIONS].add_comment(
            alert_id, _actor(request, body), text, _origin(request)
        )
    )


# -- seals ------------------------------------------------------------------------------------


async def seal_start(request: web.Request) -> web.Response:
    seal_id = path_id(request, "seal_id")
    body = await read_body(request)
    event: dict[str, Any] = {"type": "seal.start", "seal": seal_id}
    name = opt_str(body, "name", 200)
    classification = opt_id(body, "classification")
    end = opt_time(body, "end")
    for key, value in (("name", name), ("classification", classification), ("end", end)):
        if value is not None:
            event[key] = value
    return await _command(request, body, event)


async def seal_end(request: web.Request) -> web.Response:
    seal_id = path_id(request, "seal_id")
    body = await read_body(request)
    return await _command(request, body, {"type": "seal.end", "seal": seal_id})


async def list_seals(request: web.Request) -> web.Response:
    view = request.app[VIEW]
    tz = view.tz
    return json_response(
        [
            {
                **s,
                **{
                    k: format_time(s[k], tz)
                    for k in ("start", "end", "planned_end")
                    if s[k] is not None
                },
            }
            for s in view.seal_records()
        ]
    )


async def get_archive(request: web.Request) -> web.Response:
    seal_id = path_id(request, "seal_id")
    data = seal_archive(request.app[VIEW], seal_id)
    if data is None:
        refuse("seal_id", f"no archive for seal '{seal_id}'", 404)
    return json_response(data)


async def precheck(request: web.Request) -> web.Response:
    """GET /api/precheck[?badge=B]: the readiness checks now, read only (supervisor)."""
    view = request.app[VIEW]
    session = request.get(SESSION)
    badge = request.query.get("badge") or None
    if session is not None:
        if badge is not None and badge != session.user.badge:
            refuse("badge", "'badge' is not the badge of the logged-in account", 403)
        badge = session.user.badge
    if badge is not None and badge not in view.site.people:
        refuse("badge", f"badge {badge[:80]!r} is not a known person")
    return json_response(view.precheck(badge))


async def latest_precheck(request: web.Request) -> web.Response:
    """GET /api/precheck/latest: the last written pre-seal record (a `precheck.recorded`
    event in the store): when, by whom, each item with its result, the remediation note."""
    view = request.app[VIEW]
    row = view.latest_event("precheck.recorded")
    if row is None:
        return json_response({"recorded": False})
    src = row.source
    return json_response(
        {
            "recorded": True,
            "seq": row.seq,
            "ts": format_time(row.ts, view.tz),
            "inspector": row.actor or src.get("badge"),
            "passed": bool(src.get("passed")),
            "items": src.get("items") if isinstance(src.get("items"), list) else [],
            "remediation": src.get("remediation"),
        }
    )


async def record_precheck(request: web.Request) -> web.Response:
    """POST /api/precheck {badge, remediation?, console?}: the readiness checks now, recorded
    as a `precheck.recorded` event by the inspector (supervisor or secrecy officer). The items
    are the server's, from the live engine: any in the body are ignored."""
    view = request.app[VIEW]
    body = await read_body(request)
    actor = _actor(request, body)
    remediation = opt_str(body, "remediation", 2000)
    checks = view.precheck(actor)
    event: dict[str, Any] = {
        "type": "precheck.recorded",
        "items": checks["items"],
        "passed": checks["passed"],
    }
    if remediation:
        event["remediation"] = remediation
    return await _command(request, body, event, actor)


# -- other operator actions ---------------------------------------------------------------------


async def approval(request: web.Request) -> web.Response:
    body = await read_body(request)
    # `badge` here is the person allowed out; `by` is who granted it.
    by = _actor(request, body, "by")
    valid_s = opt_number(body, "valid_s", 0, MAX_APPROVAL_S)
    if valid_s is None:
        refuse("valid_s", "required (seconds the approval is valid)")
    event = {
        "type": "approval.granted",
        "badge": req_id(body, "badge"),
        "valid_s": valid_s,
        "granted_by": by,
    }
    return await _command(request, body, event, actor=by)


async def inspection(request: web.Request) -> web.Response:
    body = await read_body(request)
    event = {"type": "inspection.done", "zone": req_id(body, "zone")}
    return await _command(request, body, event)


async def review(request: web.Request) -> web.Response:
    body = await read_body(request)
    event: dict[str, Any] = {"type": "review.done"}
    for key in ("camera", "zone"):
        value = opt_id(body, key)
        if value is not None:
            event[key] = value
    return await _command(request, body, event)


async def add_maintenance(request: web.Request) -> web.Response:
    body = await read_body(request)
    device = req_id(body, "device")
    start = opt_time(body, "start")
    end = opt_time(body, "end")
    if start is None:
        refuse("start", "required (RFC 3339 with an offset)")
    if end is None:
        refuse("end", "required (RFC 3339 with an offset)")
    reason = req_str(body, "reason")
    return _outcome(
        await request.app[ACTIONS].add_suppression(
            device, start, end, reason, _actor(request, body), _origin(request)
        )
    )


async def list_maintenance(request: web.Request) -> web.Response:
    view = request.app[VIEW]
    tz = view.tz
    return json_response(
        [
            {**s, "start": format_time(s["start"], tz), "end": format_time(s["end"], tz)}
            for s in view.suppressions()
        ]
    )


# -- the record ---------------------------------------------------------------------------------


async def audit_verify(request: web.Request) -> web.Response:
    verdict = await asyncio.to_thread(request.app[VIEW].audit_verify)
    return json_response(
        {
            "ok": verdict.ok,
            "records": verdict.records,
            "head": verdict.head,
            "broken_record": verdict.broken_seq,
            "broken_table": verdict.table,
            "broken_row": verdict.row,
            "rows": verdict.rows,
            "problem": verdict.problem,
        },
        200 if verdict.ok else 409,
    )


async def events(request: web.Request) -> web.Response:
    after = query_int(request, "after", 0, 0, MAX_INT)
    limit = query_int(request, "limit", 10_000, 1, EVENTS_LIMIT)
    lines = [orjson.dumps(ev) for ev in request.app[VIEW].events_after(after, limit)]
    return web.Response(
        body=b"\n".join(lines) + (b"\n" if lines else b""), content_type="application/x-ndjson"
    )


async def rejections(request: web.Request) -> web.Response:
    limit = query_int(request, "limit", 100, 1, REJECTIONS_LIMIT)
    return json_response(request.app[VIEW].rejections(limit))


def mount_api(app: web.Application, view: ReadView, actions: Actions) -> None:
    """Add /healthz, /metrics and the /api/ routes to `app`."""
    app[VIEW] = view
    app[ACTIONS] = actions
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
            web.get("/api/precheck", precheck),
            web.post("/api/precheck", record_precheck),
            web.get("/api/precheck/latest", latest_precheck),
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
