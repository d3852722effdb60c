"""The live dashboard: the page, login and sessions, the live channel, snapshot and timeline.

Mounted on the daemon's aiohttp application by `mount_dashboard`. The page is static
(daemon/web/); everything it shows comes from `GET /api/dashboard/snapshot` or the first
message of the WebSocket `/live`, then from deltas on that socket: alert transitions at once
(a Monitor listener), device state, occupancy, seal figures and timeline entries batched per
tick. Operator actions go through the daemon's own /api/ commands; this module only decides
who may call them (roles, CSRF, sessions).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiohttp import WSMsgType, web

from adapters.base import RateLimitedLog
from daemon.auth import (
    RANK,
    USERS_FILE,
    LoginLimiter,
    Session,
    Sessions,
    User,
    UserStore,
    csrf_ok,
)
from daemon.config import DashboardOptions, Settings
from daemon.lifecycle import AlertView
from daemon.monitor import Monitor
from policies.timefmt import format_ts

log = logging.getLogger("sealwatch.dashboard")
WEB = Path(__file__).resolve().parent / "web"
COOKIE_SECURE = "__Host-sealwatch"  # browsers accept __Host- only with Secure (TLS)
COOKIE_PLAIN = "sealwatch_session"  # documented fallback for plain http://127.0.0.1
CSRF_HEADER = "X-CSRF-Token"
API_TOKEN_FILE = "api.token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_PATHS = frozenset(
    {"/", "/healthz", "/metrics", "/auth/login", "/auth/session", "/favicon.ico"}
)
# Device telemetry that would drown the timeline; shown only when asked for.
TELEMETRY = frozenset({"device.heartbeat", "jammer.status", "camera.status", "recording.inventory"})
SEVERITY_RANK = {"minor": 0, "major": 1, "critical": 2}
CLIENT_QUEUE = 2000  # messages a slow browser may fall behind before it is made to reload
MAX_EVENTS_PER_TICK = 5000

DASHBOARD: web.AppKey[Dashboard] = web.AppKey("dashboard")
SESSION: web.RequestKey[Session] = web.RequestKey("session", Session)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def required_role(method: str, path: str) -> str:
    """The least role that may make this request (guards only look)."""
    if path.startswith("/api/users"):
        return "admin"
    if method in SAFE_METHODS or path.startswith("/auth/"):
        return "guard"
    if path.startswith(("/api/seals/", "/api/maintenance")):
        return "supervisor"
    if path.startswith(("/api/alerts/", "/api/approvals", "/api/inspections", "/api/reviews")):
        return "operator"
    return "supervisor"  # a command added later is closed until someone decides otherwise


# The `daemon.dashboard` and `daemon.auth` sections, checked by daemon/config.py.
Options = DashboardOptions


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


class Dashboard:
    """State shared by the dashboard's routes; `async with` runs its live task."""

    def __init__(
        self,
        monitor: Monitor,
        settings: Settings,
        *,
        site_path: Path | None = None,
        thumbnails: Callable[[str, int], bytes | None] | None = None,
    ) -> None:
        self.monitor = monitor
        self.site = monitor.site
        self.settings = settings
        self.options = settings.dashboard
        o = self.options
        self.users = UserStore(settings.data_dir / USERS_FILE)
        self.sessions = Sessions(o.idle_timeout_s, o.guard_idle_timeout_s, o.max_session_s)
        self.limiter = LoginLimiter(o.login_per_user, o.login_per_ip, o.login_window_s)
        self.thumbnails = thumbnails  # set by whoever runs the camera adapter
        self.text = orjson.loads((WEB / "i18n.json").read_bytes())
        self.plan = site_plan(self.site, site_path, o)
        self.clients: set[Client] = set()
        self.api_token = _api_token(settings.data_dir / API_TOKEN_FILE)
        self._zone_of = _zone_index(self.site)
        self._user_cache: dict[str, tuple[float, User | None]] = {}
        self._users_exist: tuple[float, bool] = (0.0, False)
        self._event_seq: int | None = None
        self._device_cache: dict[str, dict[str, Any]] = {}
        self._dirty: set[str] = set()
        self._people: dict[str, list[str]] = {}
        self._seal_key: Any = None
        self._seal_dirty = True
        self._last_sweep = 0.0
        self._rlog = RateLimitedLog(log)
        self._tg: asyncio.TaskGroup | None = None
        self._task: asyncio.Task[None] | None = None
        monitor.metrics.counter(
            "sealwatch_logins_total", "Dashboard logins, by result", ("result",)
        )
        monitor.metrics.counter(
            "sealwatch_dashboard_denied_total",
            "Dashboard/API requests refused, by reason",
            ("reason",),
        )
        monitor.metrics.gauge(
            "sealwatch_dashboard_clients",
            "Browsers on the live channel",
            read=lambda: float(len(self.clients)),
        )
        monitor.listeners.append(self.on_transitions)

    async def __aenter__(self) -> Dashboard:
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        self._task = self._tg.create_task(self._run(), name="dashboard-live")
        return self

    async def __aexit__(self, *exc: object) -> None:
        for c in list(self.clients):
            c.push(None)
            with contextlib.suppress(Exception):
                await c.ws.close(code=1001, message=b"daemon stopping")
        if self._task is not None:
            self._task.cancel()
        if self._tg is not None:
            await self._tg.__aexit__(None, None, None)
        with contextlib.suppress(ValueError):
            self.monitor.listeners.remove(self.on_transitions)

    # -- who is asking ------------------------------------------------------------------------

    def users_exist(self) -> bool:
        checked, exist = self._users_exist
        if time.monotonic() - checked > 2.0:
            exist = bool(self.users.list())
            self._users_exist = (time.monotonic(), exist)
        return exist

    def current_user(self, name: str) -> User | None:
        """The account as stored now (cached for 2 s): a disabled user loses access."""
        hit = self._user_cache.get(name)
        if hit is not None and time.monotonic() - hit[0] < 2.0:
            return hit[1]
        user = self.users.get(name)
        self._user_cache[name] = (time.monotonic(), user)
        return user

    def session_of(self, request: web.Request, *, touch: bool = True) -> Session | None:
        token = request.cookies.get(COOKIE_SECURE) or request.cookies.get(COOKIE_PLAIN)
        s = self.sessions.get(token, touch=touch)
        if s is None:
            return None
        user = self.current_user(s.user.name)
        if user is None or user.disabled or user.changed > s.user.changed:
            # the password was changed or the account disabled since this login
            self.sessions.drop(s.token)
            return None
        return s

    def secure(self, request: web.Request) -> bool:
        mode = self.options.cookie_secure
        if mode == "always":
            return True
        if mode == "never":
            return False
        if self.options.trust_proxy and request.headers.get("X-Forwarded-Proto") == "https":
            return True
        return request.secure

    def client_ip(self, request: web.Request) -> str:
        if self.options.trust_proxy:
            fwd = request.headers.get("X-Forwarded-For")
            if fwd:
                return fwd.split(",")[0].strip()
        return request.remote or "?"

    def expected_origin(self, request: web.Request) -> str:
        scheme = "https" if self.secure(request) and self.options.trust_proxy else (request.scheme)
        return f"{scheme}://{request.host}".lower()

    def origin_ok(self, request: web.Request, *, required: bool) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:
            return not required
        return origin.lower() == self.expected_origin(request)

    def local_bootstrap(self, request: web.Request) -> bool:
        """No dashboard user exists yet: the API stays open to this machine only (the CLI
        and the daemon's own tests), never to a browser on another origin. The Host must be a
        loopback name too: a page on a foreign name that resolves to 127.0.0.1 (DNS
        rebinding) is same-origin with itself, so the Origin check alone lets it in."""
        if self.users_exist() or "X-Forwarded-For" in request.headers:
            return False
        return _loopback(request.remote) and _loopback(_host_name(request.host))

    def audit(self, what: str, **body: Any) -> None:
        """An authentication record in the daemon's hash-chained audit log."""
        store = self.monitor.store
        now = self.monitor.clock()
        with store.transaction():
            store.audit.append(
                now, "auth", {"event": what, "ts": format_ts(now, self.site.tz), **body}
            )

    # -- alerts, explained ----------------------------------------------------------------------

    def explain(self, policy: str, subject: str) -> dict[str, str]:
        texts = self.text.get("explain", {}).get(policy) or {}
        out = {}
        for lang in ("zh-CN", "en"):
            t = texts.get(lang) or self.text["explain"]["_"][lang]
            out[lang] = t.replace("{subject}", subject)
        return out

    def alert_json(self, v: AlertView) -> dict[str, Any]:
        tz = self.site.tz
        device = v.subject.split("/", 1)[0]
        return {
            "id": v.alert_id,
            "policy": v.policy,
            "subject": v.subject,
            "severity": v.severity,
            "clause": v.clause,
            "message": v.message,
            "raised": format_ts(v.raised_ts, tz),
            "raised_ms": v.raised_ts // 1000,
            "last_ms": v.last_ts // 1000,
            "state": v.isa_state,
            "active": v.active,
            "acked": v.acked,
            "acked_by": v.acked_by,
            "shelved_until": (
                format_ts(v.shelved_until, tz) if v.shelved_until is not None else None
            ),
            "suppressed": v.suppressed,
            "device": device,
            "zone": self._zone_of.get(device),
            "explain": self.explain(v.policy, v.subject),
        }

    # -- device state ---------------------------------------------------------------------------

    def _alert_marks(self) -> tuple[dict[str, str], set[str], set[str]]:
        """Per device: the worst active alert severity; doors forced; devices offline."""
        worst: dict[str, str] = {}
        forced: set[str] = set()
        offline: set[str] = set()
        for v in self.monitor.views.values():
            if not v.active:
                continue
            device = v.subject.split("/", 1)[0]
            if SEVERITY_RANK.get(v.severity, 0) >= SEVERITY_RANK.get(worst.get(device, ""), -1):
                worst[device] = v.severity
            if v.policy == "door-forced":
                forced.add(device)
            elif v.policy == "device-offline":
                offline.add(device)
        return worst, forced, offline

    def device_states(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        world = self.monitor.engine.world
        worst, forced, offline = self._alert_marks()
        site = self.site
        out = []
        for d in ids:
            kind = site.device_kind.get(d)
            if kind is None:
                continue
            seen = world.last_seen.get(d)
            st: dict[str, Any] = {
                "id": d,
                "seen_ms": seen // 1000 if seen else None,
                "online": None if seen is None else not (d in world.offline or d in offline),
                "sev": worst.get(d),
            }
            if kind == "door":
                st["open"] = d in world.doors_open
                st["forced"] = d in forced
            elif kind == "alarm_input":
                st["state"] = world.inputs.get(d)
            elif kind == "alarm_panel":
                st["armed"] = world.panel_armed.get(d)
                mains, battery = world.panel_power.get(d, (None, None))
                st["mains"], st["battery"] = mains, battery
            elif kind == "jammer":
                js = world.jammer.get(d)
                if js is not None:
                    st.update(
                        output=js.output,
                        bands=js.bands,
                        faults=list(js.faults),
                        temp=js.temperature_c,
                    )
            elif kind == "camera":
                cs = world.camera.get(d)
                if cs is not None:
                    st.update(stream=cs.stream, tamper=cs.tamper, fps=cs.fps)
            out.append(st)
        return out

    def people_inside(self) -> dict[str, list[str]]:
        by_zone: dict[str, list[str]] = {}
        for badge, zone in self.monitor.engine.world.location.items():
            by_zone.setdefault(zone, []).append(badge)
        for badges in by_zone.values():
            badges.sort()
        return by_zone

    # -- the seal -------------------------------------------------------------------------------

    def seal_panel(self) -> list[dict[str, Any]]:
        """The seals in force (else the last ended or the next planned) with jammer uptime."""
        seals = self.monitor.engine.seals()
        shown = [s for s in seals if s.status == "active"]
        if not shown:
            ended = [s for s in seals if s.status == "ended" and s.end is not None]
            pending = [s for s in seals if s.status == "pending"]
            if ended:
                shown = [max(ended, key=lambda s: s.end or 0)]
            elif pending:
                shown = [min(pending, key=lambda s: s.planned_start or 0)]
        now = self.monitor.clock()
        started = [s.start for s in shown if s.start is not None]
        intervals: dict[str, list[tuple[int, int | None]]] = {}
        raises: list[tuple[int, str]] = []
        if started:
            rows = self.monitor.store.conn.execute(
                "SELECT ts, subject, state, alert_id FROM transitions "
                "WHERE policy = 'jammer-uptime' AND ts >= ? ORDER BY id",
                (min(started),),
            )
            opened: dict[str, tuple[str, int]] = {}
            for ts, subject, state, alert_id in rows:
                if state == "raised":
                    opened[alert_id] = (subject, ts)
                    raises.append((ts, subject))
                elif state == "cleared" and alert_id in opened:
                    subj, t0 = opened.pop(alert_id)
                    intervals.setdefault(subj, []).append((t0, ts))
            for subj, t0 in opened.values():
                intervals.setdefault(subj, []).append((t0, None))
        out = []
        tz = self.site.tz
        for s in shown:
            item: dict[str, Any] = {
                "id": s.id,
                "name": s.name,
                "classification": s.classification,
                "status": s.status,
                "start_ms": s.start // 1000 if s.start else None,
                "end_ms": s.end // 1000 if s.end else None,
                "planned_start_ms": s.planned_start // 1000 if s.planned_start else None,
                "planned_end_ms": s.planned_end // 1000 if s.planned_end else None,
                "start": format_ts(s.start, tz) if s.start else None,
                "planned_end": format_ts(s.planned_end, tz) if s.planned_end else None,
                "bands": [],
                "interruptions": 0,
            }
            if s.start is not None:
                lo, hi = s.start, s.end if s.end is not None else now
                item["interruptions"] = sum(1 for ts, _ in raises if lo <= ts <= hi)
                for jid, jam in self.site.jammers.items():
                    for band in jam.bands:
                        spans = intervals.get(f"{jid}/{band.id}", []) + intervals.get(jid, [])
                        down, down_now = _union_length(spans, lo, hi)
                        item["bands"].append(
                            {
                                "jammer": jid,
                                "band": band.id,
                                "down_ms": down // 1000,
                                "down_now": down_now,
                            }
                        )
            out.append(item)
        return out

    def _seal_signature(self) -> Any:
        return tuple(
            (s.id, s.status, s.start, s.end, s.planned_end) for s in self.monitor.engine.seals()
        )

    # -- the snapshot ---------------------------------------------------------------------------

    def snapshot(self, session: Session | None) -> dict[str, Any]:
        alerts = [self.alert_json(v) for v in self.monitor.views.values()]
        user = None
        if session is not None:
            user = {
                "name": session.user.name,
                "role": session.user.role,
                "badge": session.user.badge,
            }
        return {
            "t": "snapshot",
            "now_ms": self.monitor.clock() // 1000,
            "site": self.plan,
            "user": user,
            "alerts": alerts,
            "devices": self.device_states(self.site.device_kind),
            "people": self.people_inside(),
            "seals": self.seal_panel(),
            "timeline": self.timeline(limit=100),
            "thumbnails": self.thumbnails is not None,
        }

    # -- the timeline ---------------------------------------------------------------------------

    def timeline(
        self,
        *,
        kinds: set[str] | None = None,
        devices: set[str] | None = None,
        severities: set[str] | None = None,
        before_ms: int | None = None,
        limit: int = 200,
        telemetry: bool = False,
    ) -> list[dict[str, Any]]:
        """Events and alert transitions, newest first, filtered."""
        conn = self.monitor.store.conn
        before = (before_ms * 1000) if before_ms is not None else None
        items: list[dict[str, Any]] = []
        want_events = kinds is None or bool(kinds - {"alert"})
        want_alerts = kinds is None or "alert" in kinds
        if want_events:
            sql = "SELECT seq, ts, device, type, actor, source FROM events"
            where: list[str] = []
            args: list[Any] = []
            if before is not None:
                where.append("ts < ?")
                args.append(before)
            if not telemetry:
                where.append(f"type NOT IN ({','.join('?' * len(TELEMETRY))})")
                args += sorted(TELEMETRY)
            if devices:
                where.append(f"device IN ({','.join('?' * len(devices))})")
                args += sorted(devices)
            if where:
                sql += " WHERE " + " AND ".join(where)
            sql += " ORDER BY ts DESC, seq DESC LIMIT ?"
            # fetch extra rows when filtering by kind in Python (kinds are type prefixes)
            args.append(limit * (4 if kinds else 1))
            for seq, ts, device, etype, actor, source in conn.execute(sql, args):
                item = self._event_item(seq, ts, device, etype, actor, source)
                if kinds is None or item["cat"] in kinds:
                    items.append(item)
        if want_alerts:
            sql = "SELECT id, ts, line FROM transitions"
            where, args = [], []
            if before is not None:
                where.append("ts < ?")
                args.append(before)
            if severities:
                where.append(f"severity IN ({','.join('?' * len(severities))})")
                args += sorted(severities)
            if where:
                sql += " WHERE " + " AND ".join(where)
            sql += " ORDER BY ts DESC, id DESC LIMIT ?"
            args.append(limit * (4 if devices else 1))
            for tid, ts, line in conn.execute(sql, args):
                item = self._transition_item(tid, ts, orjson.loads(line))
                if devices is None or item["device"] in devices:
                    items.append(item)
        items.sort(key=lambda i: (i["ms"], i["k"] == "alert", i["n"]), reverse=True)
        return items[:limit]

    def _event_item(
        self,
        seq: int,
        ts: int,
        device: str,
        etype: str,
        actor: str | None,
        source: str | dict[str, Any],
    ) -> dict[str, Any]:
        src = orjson.loads(source) if isinstance(source, str) else source
        detail = {k: v for k, v in src.items() if k not in ("ts", "device", "type")}
        return {
            "k": "event",
            "n": seq,
            "ms": ts // 1000,
            "time": format_ts(ts, self.site.tz),
            "device": device,
            "type": etype,
            "cat": etype.split(".", 1)[0],
            "zone": self._zone_of.get(device),
            "actor": actor,
            "detail": detail,
        }

    def _transition_item(self, tid: int, ts: int, line: dict[str, Any]) -> dict[str, Any]:
        device = str(line.get("subject", "")).split("/", 1)[0]
        return {
            "k": "alert",
            "n": tid,
            "ms": ts // 1000,
            "time": line.get("ts"),
            "device": device,
            "type": f"alert.{line.get('state')}",
            "cat": "alert",
            "zone": self._zone_of.get(device),
            "actor": line.get("acked_by"),
            "detail": {
                k: line.get(k)
                for k in ("alert_id", "policy", "subject", "severity", "state", "clause", "comment")
            },
            "explain": self.explain(str(line.get("policy")), str(line.get("subject"))),
        }

    # -- live -----------------------------------------------------------------------------------

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

    def on_transitions(self, rows: list[dict[str, Any]]) -> None:
        """Monitor listener: alert transitions right after they are stored."""
        if not self.clients:
            return
        views = self.monitor.views
        upsert: dict[str, dict[str, Any]] = {}
        removed: list[str] = []
        items = []
        for row in rows:
            aid = row["alert_id"]
            v = views.get(aid)
            if v is None:
                upsert.pop(aid, None)
                removed.append(aid)
            else:
                upsert[aid] = self.alert_json(v)
            device = str(row.get("subject", "")).split("/", 1)[0]
            self._dirty.add(device)
            if row.get("policy") == "jammer-uptime":
                self._seal_dirty = True
            items.append(self._transition_item(int(row.get("id", 0)), 0, row))
        for item, row in zip(items, rows, strict=True):
            item["ms"] = _iso_ms(str(row.get("ts", "")))
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
            await asyncio.sleep(self.options.tick_s)
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
            if c.session is not None and not self.sessions.alive(c.session):
                c.push(orjson.dumps({"t": "bye", "reason": "session"}).decode())
                c.push(None)
                self.clients.discard(c)
        if self._event_seq is None:
            self._event_seq = self.monitor.store.last_event_seq()
        message: dict[str, Any] = {"t": "update", "now_ms": self.monitor.clock() // 1000}
        timeline = self._read_events()
        if timeline:
            message["timeline"] = timeline
        now = time.monotonic()
        if now - self._last_sweep > 10.0:  # silent changes (offline timers) and drift
            self._dirty.update(self.site.device_kind)
            self._last_sweep = now
        if self._dirty:
            changed = []
            for st in self.device_states(self._dirty):
                if self._device_cache.get(st["id"]) != st:
                    self._device_cache[st["id"]] = st
                    changed.append(st)
            self._dirty.clear()
            if changed:
                message["devices"] = changed
        people = self.people_inside()
        if people != self._people:
            self._people = people
            message["people"] = people
        key = self._seal_signature()
        if key != self._seal_key or self._seal_dirty:
            self._seal_key, self._seal_dirty = key, False
            message["seals"] = self.seal_panel()
        if len(message) > 2:
            self.broadcast(message)

    def _read_events(self) -> list[dict[str, Any]]:
        rows = self.monitor.store.conn.execute(
            "SELECT seq, ts, device, type, actor, source FROM events WHERE seq > ? "
            "ORDER BY seq LIMIT ?",
            (self._event_seq, MAX_EVENTS_PER_TICK),
        ).fetchall()
        if not rows:
            return []
        self._event_seq = rows[-1][0]
        if len(rows) == MAX_EVENTS_PER_TICK:  # a flood: catch up with a full sweep
            self._event_seq = self.monitor.store.last_event_seq()
            self._dirty.update(self.site.device_kind)
        items = []
        for seq, ts, device, etype, actor, source in rows:
            self._dirty.add(device)
            if etype.startswith("seal."):
                self._seal_dirty = True
            if etype not in TELEMETRY:
                items.append(self._event_item(seq, ts, device, etype, actor, source))
        return items[-200:]

    def snapshot_for(self, session: Session | None) -> dict[str, Any]:
        # The device cache follows what the newest snapshot showed, so deltas start there.
        if self._event_seq is None:
            self._event_seq = self.monitor.store.last_event_seq()
        snap = self.snapshot(session)
        for st in snap["devices"]:
            self._device_cache[st["id"]] = st
        self._people = snap["people"]
        return snap


# -- helpers ------------------------------------------------------------------------------------


def _iso_ms(text: str) -> int:
    from policies.timefmt import parse_ts

    try:
        return parse_ts(text) // 1000
    except ValueError:
        return 0


def _union_length(spans: list[tuple[int, int | None]], lo: int, hi: int) -> tuple[int, bool]:
    """Total time covered by the spans inside [lo, hi] (open spans run to hi); still open?"""
    clipped = sorted((max(a, lo), min(b if b is not None else hi, hi)) for a, b in spans)
    total, cur_a, cur_b = 0, None, None
    for a, b in clipped:
        if b <= a:
            continue
        if cur_b is None or a > cur_b:
            if cur_b is not None and cur_a is not None:
                total += cur_b - cur_a
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    if cur_a is not None and cur_b is not None:
        total += cur_b - cur_a
    return total, any(b is None for _, b in spans)


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _host_name(host: str) -> str:
    """The name part of a Host header: `[::1]:8080` -> `::1`, `localhost:8080` -> `localhost`."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    name, sep, port = host.rpartition(":")
    return name.lower() if sep and port.isdigit() and ":" not in name else host.lower()


def _zone_index(site: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for group in (
        site.jammers,
        site.cameras,
        site.alarm_panels,
        site.alarm_inputs,
        site.phone_detectors,
        site.checkpoints,
        site.consoles,
        site.duty_phones,
    ):
        for dev_id, dev in group.items():
            out[dev_id] = dev.zone
    for door_id, door in site.doors.items():
        # a door belongs to the side inside: the sealed one, else its `b` side
        a_sealed = site.zones[door.a].sealed
        out[door_id] = door.a if a_sealed and not site.zones[door.b].sealed else door.b
    return out


def _api_token(path: Path) -> str:
    """The local CLI's bearer token: whoever can read the data dir may command the daemon."""
    try:
        token = path.read_text(encoding="utf-8").strip()
        if len(token) >= 32:
            return token
    except OSError:
        pass
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(token + "\n", encoding="utf-8")
    with contextlib.suppress(OSError):
        path.chmod(0o600)
    return token


def _raw_extras(site_path: Path | None) -> dict[str, dict[str, Any]]:
    """Display-only fields the site model does not keep (names, positions), by id."""
    if site_path is None:
        return {}
    try:
        raw = yaml.safe_load(site_path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        log.warning("cannot read %s for names and positions: %s", site_path, exc)
        return {}
    out: dict[str, dict[str, Any]] = {}

    def take(item: Any) -> None:
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            out[item["id"]] = {k: item[k] for k in ("name", "position") if k in item}
            for sub in item.get("inputs") or []:
                take(sub)

    for key in (
        "zones",
        "doors",
        "jammers",
        "cameras",
        "alarm_panels",
        "phone_detectors",
        "checkpoints",
        "consoles",
        "duty_phones",
    ):
        for item in raw.get(key) or []:
            take(item)
    return out


def site_plan(site: Any, site_path: Path | None, options: Options) -> dict[str, Any]:
    """What the page draws: zones, doors, devices, people, the entrance (static)."""
    extras = _raw_extras(site_path)
    positions = dict(options.positions or {})

    def pos(dev_id: str, default: Any = None) -> list[float] | None:
        p = positions.get(dev_id) or extras.get(dev_id, {}).get("position") or default
        return [float(p[0]), float(p[1])] if p else None

    def name(obj_id: str) -> str | None:
        n = extras.get(obj_id, {}).get("name")
        return str(n) if n else None

    entrance = site.entrance
    zones = [
        {
            "id": z.id,
            "kind": z.kind,
            "parent": z.parent,
            "classification": z.classification,
            "sealed": z.sealed,
            "name": name(z.id),
        }
        for z in site.zones.values()
    ]
    doors = [
        {
            "id": d.id,
            "a": d.a,
            "b": d.b,
            "kind": d.kind,
            "two_person": d.two_person,
            "boundary": site.is_boundary(d),
            "name": name(d.id),
            "position": pos(d.id),
            "entrance": (
                "outer"
                if entrance and entrance.outer == d.id
                else "inner"
                if entrance and entrance.inner == d.id
                else None
            ),
        }
        for d in site.doors.values()
    ]
    devices: list[dict[str, Any]] = []
    for jid, j in site.jammers.items():
        devices.append(
            {
                "id": jid,
                "kind": "jammer",
                "zone": j.zone,
                "name": name(jid),
                "position": pos(jid),
                "bands": [{"id": b.id, "min_dbm": b.min_dbm} for b in j.bands],
            }
        )
    for cid, c in site.cameras.items():
        devices.append(
            {
                "id": cid,
                "kind": "camera",
                "zone": c.zone,
                "name": name(cid),
                "position": pos(cid, c.position),
            }
        )
    for pid, p in site.alarm_panels.items():
        devices.append(
            {
                "id": pid,
                "kind": "alarm_panel",
                "zone": p.zone,
                "name": name(pid),
                "position": pos(pid),
            }
        )
        for i in p.inputs:
            devices.append(
                {
                    "id": i.id,
                    "kind": "alarm_input",
                    "zone": i.zone,
                    "input_kind": i.kind,
                    "panel": pid,
                    "name": name(i.id),
                    "position": pos(i.id),
                }
            )
    for kind, group in (
        ("phone_detector", site.phone_detectors),
        ("checkpoint", site.checkpoints),
        ("console", site.consoles),
        ("duty_phone", site.duty_phones),
    ):
        for did, dev in group.items():
            devices.append(
                {"id": did, "kind": kind, "zone": dev.zone, "name": name(did), "position": pos(did)}
            )
    screening = None
    if entrance is not None:
        outer = site.doors[entrance.outer]
        screening = outer.b if site.zones[outer.b].kind == "screening" else outer.a
    return {
        "id": site.id,
        "name": site.name,
        "timezone": site.timezone,
        "zones": zones,
        "doors": doors,
        "devices": devices,
        "entrance": (
            {"outer": entrance.outer, "inner": entrance.inner, "zone": screening}
            if entrance
            else None
        ),
        "people": {b: {"name": p.name, "role": p.role} for b, p in site.people.items()},
        "floor_plan": (
            {
                "url": "/api/dashboard/floor-plan",
                "width": options.floor_plan_size[0],
                "height": options.floor_plan_size[1],
            }
            if options.floor_plan and options.floor_plan_size
            else None
        ),
    }


# -- middlewares --------------------------------------------------------------------------------

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        resp = exc
        _headers(resp)
        raise
    _headers(resp)
    return resp


def _headers(resp: web.StreamResponse) -> None:
    if resp.prepared:
        return
    h = resp.headers
    h.setdefault("Content-Security-Policy", CSP)
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "no-referrer")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Cache-Control", "no-store")


def _deny(dash: Dashboard, status: int, reason: str, code: str) -> web.Response:
    dash.monitor.metrics.inc("sealwatch_dashboard_denied_total", code)
    return web.Response(
        body=orjson.dumps({"accepted": False, "reason": reason}),
        status=status,
        content_type="application/json",
    )


def auth_middleware(dash: Dashboard) -> Any:
    """Sessions, CSRF and roles in front of /api/ and the dashboard's own routes."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path in PUBLIC_PATHS or path.startswith("/static/") or path == "/live":
            return await handler(request)  # /live checks its session and Origin itself
        if not (path.startswith("/api/") or path.startswith("/auth/")):
            return await handler(request)
        mutating = request.method not in SAFE_METHODS
        bearer = request.headers.get("Authorization", "")
        if bearer.startswith("Bearer "):
            if not secrets.compare_digest(bearer[7:].strip().encode(), dash.api_token.encode()):
                return _deny(dash, 401, "bad API token", "token")
            return await handler(request)  # the local CLI; the actor comes in the body
        session = dash.session_of(request)
        if session is None:
            if dash.local_bootstrap(request) and dash.origin_ok(request, required=False):
                return await handler(request)
            return _deny(dash, 401, "log in first", "no_session")
        if mutating:
            if not dash.origin_ok(request, required=False):
                return _deny(dash, 403, "request from another origin refused", "origin")
            if not csrf_ok(session, request.headers.get(CSRF_HEADER)):
                return _deny(dash, 403, "missing or wrong CSRF token", "csrf")
        need = required_role(request.method, path)
        if RANK[session.user.role] < RANK[need]:
            if mutating:
                dash.audit(
                    "denied",
                    user=session.user.name,
                    role=session.user.role,
                    method=request.method,
                    path=path,
                    ip=dash.client_ip(request),
                )
            return _deny(dash, 403, f"a {session.user.role} may not do this (needs {need})", "role")
        request["user"] = session.user.actor  # http_api's `_actor` reads this key
        request[SESSION] = session
        return await handler(request)

    return check


# -- routes ---------------------------------------------------------------------------------


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, headers=headers, content_type="application/json"
    )


def _whoami(dash: Dashboard, s: Session) -> dict[str, Any]:
    return {
        "user": s.user.name,
        "role": s.user.role,
        "badge": s.user.badge,
        "csrf": s.csrf,
        "idle_timeout_s": dash.sessions.idle_limit(s),
    }


async def page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(WEB / "index.html", headers={"Cache-Control": "no-store"})


async def login(request: web.Request) -> web.Response:
    dash = request.app[DASHBOARD]
    if not dash.origin_ok(request, required=False):
        return _deny(dash, 403, "login from another origin refused", "origin")
    try:
        body = orjson.loads(await request.read() or b"{}")
        name, password = str(body["username"]).strip(), str(body["password"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return _json({"ok": False, "reason": "send username and password"}, 400)
    ip = dash.client_ip(request)
    name = name[:64]
    wait = dash.limiter.retry_after(name, ip)
    if wait > 0:
        dash.monitor.metrics.inc("sealwatch_logins_total", "throttled")
        dash.audit("login_throttled", user=name, ip=ip)
        return _json(
            {"ok": False, "reason": "too many failed logins; wait", "retry_after_s": round(wait)},
            429,
            headers={"Retry-After": str(max(1, round(wait)))},
        )
    user = await asyncio.to_thread(dash.users.verify, name, password)
    if user is None:
        dash.limiter.failed(name, ip)
        dash.monitor.metrics.inc("sealwatch_logins_total", "failed")
        dash.audit("login_failed", user=name, ip=ip)
        return _json({"ok": False, "reason": "wrong user name or password"}, 401)
    dash.limiter.succeeded(name)
    old = request.cookies.get(COOKIE_SECURE) or request.cookies.get(COOKIE_PLAIN)
    if old:
        dash.sessions.drop(old)
    session = dash.sessions.create(user, ip)
    dash.monitor.metrics.inc("sealwatch_logins_total", "ok")
    dash.audit("login", user=user.name, role=user.role, ip=ip)
    resp = _json({"ok": True, **_whoami(dash, session)})
    secure = dash.secure(request)
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
    dash = request.app[DASHBOARD]
    session = request.get(SESSION)
    if session is not None:
        dash.sessions.drop(session.token)
        dash.audit("logout", user=session.user.name, ip=dash.client_ip(request))
        for c in list(dash.clients):
            if c.session is session:
                c.push(orjson.dumps({"t": "bye", "reason": "logout"}).decode())
                c.push(None)
                dash.clients.discard(c)
    resp = _json({"ok": True})
    for name in (COOKIE_SECURE, COOKIE_PLAIN):
        if name in request.cookies:
            resp.del_cookie(
                name, path="/", secure=name == COOKIE_SECURE, httponly=True, samesite="Strict"
            )
    return resp


async def whoami(request: web.Request) -> web.Response:
    dash = request.app[DASHBOARD]
    session = dash.session_of(request)
    if session is None:
        return _json({"ok": False, "users_exist": dash.users_exist()}, 401)
    return _json({"ok": True, **_whoami(dash, session)})


async def snapshot(request: web.Request) -> web.Response:
    dash = request.app[DASHBOARD]
    return _json(dash.snapshot(request.get(SESSION)))


async def timeline(request: web.Request) -> web.Response:
    dash = request.app[DASHBOARD]
    q = request.query

    def split(key: str) -> set[str] | None:
        raw = q.get(key, "").strip()
        return {x for x in raw.split(",") if x} or None

    devices = split("device")
    zones = split("zone")
    if zones:
        in_zones = {d for d, z in dash._zone_of.items() if z in zones}
        devices = (devices & in_zones) if devices else in_zones
        devices = devices or {"\0none"}
    try:
        before = int(q["before_ms"]) if "before_ms" in q else None
        limit = max(1, min(int(q.get("limit", "200")), 1000))
    except ValueError:
        return _json({"accepted": False, "reason": "before_ms and limit are numbers"}, 400)
    return _json(
        dash.timeline(
            kinds=split("kind"),
            devices=devices,
            severities=split("severity"),
            before_ms=before,
            limit=limit,
            telemetry=q.get("telemetry") == "1",
        )
    )


async def camera_jpeg(request: web.Request) -> web.StreamResponse:
    dash = request.app[DASHBOARD]
    cam = request.match_info["camera"]
    if cam not in dash.site.cameras:
        return _json({"accepted": False, "reason": f"unknown camera '{cam}'"}, 404)
    width = 960 if request.query.get("size") == "large" else 320
    data = dash.thumbnails(cam, width) if dash.thumbnails is not None else None
    if data is None:
        return web.Response(status=204)
    return web.Response(body=data, content_type="image/jpeg", headers={"Cache-Control": "no-store"})


async def floor_plan(request: web.Request) -> web.StreamResponse:
    dash = request.app[DASHBOARD]
    if not dash.options.floor_plan:
        raise web.HTTPNotFound()
    return web.FileResponse(Path(dash.options.floor_plan))


async def list_users(request: web.Request) -> web.Response:
    dash = request.app[DASHBOARD]
    return _json(
        [
            {"name": u.name, "role": u.role, "badge": u.badge, "disabled": u.disabled}
            for u in dash.users.list()
        ]
    )


async def live(request: web.Request) -> web.StreamResponse:
    """The live channel: a WebSocket for a logged-in browser of this very origin."""
    dash = request.app[DASHBOARD]
    if not dash.origin_ok(request, required=True):
        dash.monitor.metrics.inc("sealwatch_dashboard_denied_total", "ws_origin")
        dash._rlog.warning(
            "ws-origin", "live channel from origin %r refused", request.headers.get("Origin")
        )
        return _json({"accepted": False, "reason": "origin refused"}, 403)
    session = dash.session_of(request)
    if session is None and not dash.local_bootstrap(request):
        dash.monitor.metrics.inc("sealwatch_dashboard_denied_total", "ws_session")
        return _json({"accepted": False, "reason": "log in first"}, 401)
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=64 * 1024, compress=False)
    await ws.prepare(request)
    client = Client(ws, session)
    client.push(orjson.dumps(dash.snapshot_for(session)).decode())
    dash.clients.add(client)
    try:
        async with asyncio.TaskGroup() as tg:
            sender = tg.create_task(_send(client), name="dashboard-ws-send")
            async for msg in ws:  # the page sends nothing but pings; read to see the close
                if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
            sender.cancel()
    except* (ConnectionResetError, ConnectionError):
        pass  # the browser went away mid-send
    finally:
        dash.clients.discard(client)
        if not ws.closed:
            await ws.close()
    return ws


async def _send(client: Client) -> None:
    while True:
        text = await client.queue.get()
        if text is None:
            await client.ws.close(code=4001, message=b"session ended")
            return
        await client.ws.send_str(text)


def mount_dashboard(
    app: web.Application,
    monitor: Monitor,
    settings: Settings,
    *,
    site_path: Path | None = None,
    thumbnails: Callable[[str, int], bytes | None] | None = None,
) -> Dashboard:
    """Add the dashboard's routes and middlewares to the daemon's app (before it starts)."""
    dash = Dashboard(monitor, settings, site_path=site_path, thumbnails=thumbnails)
    app[DASHBOARD] = dash
    app.middlewares.insert(0, auth_middleware(dash))
    app.middlewares.insert(0, security_headers)

    async def lifetime(_app: web.Application) -> Any:
        async with dash:
            yield

    app.cleanup_ctx.append(lifetime)
    app.add_routes(
        [
            web.get("/", page),
            web.get("/live", live),
            web.post("/auth/login", login),
            web.post("/auth/logout", logout),
            web.get("/auth/session", whoami),
            web.get("/api/dashboard/snapshot", snapshot),
            web.get("/api/dashboard/timeline", timeline),
            web.get("/api/dashboard/cameras/{camera}.jpg", camera_jpeg),
            web.get("/api/dashboard/floor-plan", floor_plan),
            web.get("/api/users", list_users),
            web.static("/static", WEB, append_version=False),
        ]
    )
    if not dash.users_exist():
        log.warning(
            "no dashboard users yet: the HTTP API answers local clients only. "
            "Create one with: sealwatch user add NAME --role admin --config SITE"
        )
    return dash
