"""The live channel: a WebSocket per browser, fed from committed alert transitions (at once)
and a tick that pushes changed device states, people, seal figures and new timeline events.

The first message is the whole snapshot; deltas follow. A browser that falls
`CLIENT_QUEUE` messages behind is dropped (it reconnects and starts from a snapshot). What a
browser sends is read only to notice that it closed: garbage frames are ignored, a frame over
`MAX_FRAME` bytes closes that socket, and nothing a client does reaches the other clients or
the feed. A failure while building a delta is logged, never raised into the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from adapters.base import RateLimitedLog
from daemon.http.auth import Session
from daemon.http.params import json_response
from daemon.http.security import GATE, Gate
from daemon.http.state import TELEMETRY, StateBuilder, iso_ms
from daemon.view import AlertView, ReadView

log = logging.getLogger("sealwatch.dashboard")
CLIENT_QUEUE = 2000  # messages a slow browser may fall behind before it is made to reload
MAX_EVENTS_PER_TICK = 5000
MAX_FRAME = 64 * 1024  # what a browser may send in one frame (it sends nothing but pings)

FEED: web.AppKey[Feed] = web.AppKey("feed")


class Client:
    """One browser on the live channel: its session and the messages waiting for it."""

    def __init__(self, ws: web.WebSocketResponse, session: Session | None) -> None:
        self.ws = ws
        self.session = session
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(CLIENT_QUEUE)

    def push(self, text: str | None) -> bool:
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            return False
        return True


class Feed:
    """The connected browsers and what they are sent; `async with` runs the tick."""

    def __init__(self, view: ReadView, state: StateBuilder, gate: Gate, tick_s: float) -> None:
        self.view = view
        self.state = state
        self.gate = gate
        self.tick_s = tick_s
        self.clients: set[Client] = set()
        self._event_seq: int | None = None
        self._device_cache: dict[str, dict[str, Any]] = {}
        self._dirty: set[str] = set()
        self._people: dict[str, list[str]] = {}
        self._seal_key: Any = None
        self._health: dict[str, Any] = {}
        self._seal_dirty = True
        self._last_sweep = 0.0
        self._rlog = RateLimitedLog(log)
        self._task: asyncio.Task[None] | None = None
        view.declare_gauge(
            "sealwatch_dashboard_clients",
            "Browsers on the live channel",
            read=lambda: float(len(self.clients)),
        )

    async def __aenter__(self) -> Feed:
        self.view.subscribe(self.on_transitions)
        self._task = asyncio.create_task(self._run(), name="dashboard-live")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.view.unsubscribe(self.on_transitions)
        for c in list(self.clients):
            c.push(None)
            with contextlib.suppress(Exception):
                await c.ws.close(code=1001, message=b"daemon stopping")
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # -- sending ----------------------------------------------------------------------------------

    def broadcast(self, message: dict[str, Any]) -> None:
        if not self.clients:
            return
        text = orjson.dumps(message).decode()
        for c in list(self.clients):
            if not c.push(text):
                # Too far behind: drop it; the page reconnects and starts from a snapshot.
                self._rlog.warning(
                    "slow-client",
                    "a dashboard client fell %d messages behind; disconnecting it",
                    CLIENT_QUEUE,
                )
                self.clients.discard(c)
                c.queue = asyncio.Queue(1)
                c.push(None)

    def end_session(self, session: Session, reason: str) -> None:
        """Tell the browsers of this session goodbye and close their sockets."""
        for c in list(self.clients):
            if c.session is session:
                c.push(orjson.dumps({"t": "bye", "reason": reason}).decode())
                c.push(None)
                self.clients.discard(c)

    # -- what changed -----------------------------------------------------------------------------

    def on_transitions(self, rows: list[dict[str, Any]]) -> None:
        """View subscriber: alert transitions right after they are committed. Never raises
        (it runs inside the daemon's commit path)."""
        if not self.clients:
            return
        try:
            self._on_transitions(rows)
        except Exception:
            self._rlog.log(logging.ERROR, "transitions", "live alert update failed", exc_info=True)

    def _on_transitions(self, rows: list[dict[str, Any]]) -> None:
        upsert: dict[str, dict[str, Any]] = {}
        removed: list[str] = []
        items = []
        acked_at: dict[str, Any] = {}
        for row in rows:
            aid = str(row.get("alert_id"))
            v = self.view.open_alert(aid)
            if row.get("state") == "acknowledged":
                acked_at[aid] = row.get("ts")
            if v is None and row.get("state") == "cleared" and acked_at.get(aid) == row.get("ts"):
                # closed by its acknowledgement (latched): shown greyed for a while
                stored = self.view.alert_record(aid)
                if stored is not None and stored.get("closed"):
                    upsert[aid] = self.state.alert_json(AlertView.from_dict(stored))
                    removed.append(aid)
            elif v is None:
                upsert.pop(aid, None)
                removed.append(aid)
            else:
                upsert[aid] = self.state.alert_json(v)
            device = str(row.get("subject", "")).split("/", 1)[0]
            self._dirty.add(device)
            if row.get("policy") == "jammer-uptime":
                self._seal_dirty = True
            item = self.state.transition_item(int(row.get("id", 0)), 0, row)
            item["ms"] = iso_ms(str(row.get("ts", "")))
            items.append(item)
        self.broadcast(
            {
                "t": "alerts",
                "upsert": list(upsert.values()),
                "remove": [a for a in removed if a not in upsert],
                "timeline": items,
            }
        )

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                self.tick()
            except Exception:  # the dashboard must never take the daemon down
                self._rlog.log(logging.ERROR, "tick", "dashboard tick failed", exc_info=True)

    def tick(self) -> None:
        """Expire sessions, then push what changed since the last tick."""
        if not self.clients:
            self._event_seq = None
            return
        for c in list(self.clients):
            if c.session is not None and not self.gate.sessions.alive(c.session):
                c.push(orjson.dumps({"t": "bye", "reason": "session"}).decode())
                c.push(None)
                self.clients.discard(c)
        if self._event_seq is None:
            self._event_seq = self.view.last_event_seq()
        message: dict[str, Any] = {"t": "update", "now_ms": self.view.clock() // 1000}
        timeline = self._read_events()
        if timeline:
            message["timeline"] = timeline
        now = time.monotonic()
        if now - self._last_sweep > 10.0:  # silent changes (offline timers) and drift
            self._dirty.update(self.view.site.device_kind)
            self._last_sweep = now
        if self._dirty:
            changed = []
            for st in self.state.device_states(self._dirty):
                if self._device_cache.get(st["id"]) != st:
                    self._device_cache[st["id"]] = st
                    changed.append(st)
            self._dirty.clear()
            if changed:
                message["devices"] = changed
        people = self.view.people_inside()
        if people != self._people:
            self._people = people
            message["people"] = people
        health = self.state.health()
        if health != self._health:
            self._health = health
            message["health"] = health
        key = self.state.seal_signature()
        if key != self._seal_key or self._seal_dirty:
            self._seal_key, self._seal_dirty = key, False
            message["seals"] = self.state.seal_panel()
        if len(message) > 2:
            self.broadcast(message)

    def _read_events(self) -> list[dict[str, Any]]:
        rows = self.view.events_since(self._event_seq or 0, MAX_EVENTS_PER_TICK)
        if not rows:
            return []
        self._event_seq = rows[-1].seq
        if len(rows) == MAX_EVENTS_PER_TICK:  # a flood: catch up with a full sweep
            self._event_seq = self.view.last_event_seq()
            self._dirty.update(self.view.site.device_kind)
        items = []
        for row in rows:
            self._dirty.add(row.device)
            if row.type.startswith("seal."):
                self._seal_dirty = True
            if row.type not in TELEMETRY:
                items.append(self.state.event_item(row))
        return items[-200:]

    def snapshot_for(self, session: Session | None) -> dict[str, Any]:
        # The device cache follows what the newest snapshot showed, so deltas start there.
        if self._event_seq is None:
            self._event_seq = self.view.last_event_seq()
        snap = self.state.snapshot(session.user if session is not None else None)
        for st in snap["devices"]:
            self._device_cache[st["id"]] = st
        self._people = snap["people"]
        self._health = snap["health"]
        return snap


# -- the route ----------------------------------------------------------------------------------


async def live(request: web.Request) -> web.StreamResponse:
    """The live channel: a WebSocket for a logged-in browser of this very origin."""
    gate, feed = request.app[GATE], request.app[FEED]
    if not gate.origin_ok(request, required=True):
        gate.view.count("sealwatch_dashboard_denied_total", "ws_origin")
        feed._rlog.warning(
            "ws-origin",
            "live channel from origin %r refused",
            request.headers.get("Origin", "")[:200],
        )
        return json_response({"accepted": False, "reason": "origin refused"}, 403)
    session = gate.session_of(request)
    if session is None and not gate.local_bootstrap(request):
        gate.view.count("sealwatch_dashboard_denied_total", "ws_session")
        return json_response({"accepted": False, "reason": "log in first"}, 401)
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=MAX_FRAME, compress=False)
    await ws.prepare(request)
    client = Client(ws, session)
    client.push(orjson.dumps(feed.snapshot_for(session)).decode())
    feed.clients.add(client)
    try:
        async with asyncio.TaskGroup() as tg:
            sender = tg.create_task(_send(client), name="dashboard-ws-send")
            async for msg in ws:  # the page sends nothing but pings; read to see the close
                if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE, WSMsgType.CLOSING):
                    break
            sender.cancel()
    except* (TimeoutError, ConnectionError):
        pass  # the browser went away mid-send
    finally:
        feed.clients.discard(client)
        if not ws.closed:
            with contextlib.suppress(Exception):
                await ws.close()
    return ws


async def _send(client: Client) -> None:
    while True:
        text = await client.queue.get()
        if text is None:
            await client.ws.close(code=4001, message=b"session ended")
            return
        await client.ws.send_str(text)
