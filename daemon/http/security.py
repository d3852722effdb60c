"""Who is asking, and whether they may: sessions, the API token, origins, CSRF and roles, as
aiohttp middlewares in front of /api/ and /auth/, plus security headers on every response.

`Gate` holds the users file, the sessions, the login limiter and the API token; the
middlewares and the login/live handlers ask it. Operator actions themselves are done by
daemon.http.api; this module only decides who may call them.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from daemon.config import DashboardOptions as Options
from daemon.http.auth import (
    API_TOKEN_FILE,
    RANK,
    USERS_FILE,
    LoginLimiter,
    Session,
    Sessions,
    User,
    UserStore,
    csrf_ok,
    load_api_token,
    same_secret,
)
from daemon.http.params import ACTOR, json_response
from daemon.view import Actions, ReadView

COOKIE_SECURE = "__Host-sealwatch"  # browsers accept __Host- only with Secure (TLS)
COOKIE_PLAIN = "sealwatch_session"  # documented fallback for plain http://127.0.0.1
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_PATHS = frozenset(
    {
        "/",
        "/healthz",
        "/metrics",
        "/auth/login",
        "/auth/session",
        "/favicon.ico",
        "/sw.js",
        "/manifest.webmanifest",
    }
)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; worker-src 'self'; manifest-src 'self'; "
    "object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)

GATE: web.AppKey[Gate] = web.AppKey("gate")
SESSION: web.RequestKey[Session] = web.RequestKey("session", Session)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def required_role(method: str, path: str) -> str:
    """The least role that may make this request (guards only look)."""
    if path.startswith("/api/users"):
        return "admin"
    if path in ("/api/precheck", "/api/precheck/latest"):  # the pre-seal inspection
        return "supervisor"
    if method in SAFE_METHODS or path.startswith("/auth/"):
        return "guard"
    if path.startswith(("/api/seals/", "/api/maintenance")):
        return "supervisor"
    if path.startswith(("/api/alerts/", "/api/approvals", "/api/inspections", "/api/reviews")):
        return "operator"
    return "supervisor"  # a command added later is closed until someone decides otherwise


class Gate:
    """Users, sessions, the login limiter and the API token; answers "who is asking?"."""

    def __init__(self, view: ReadView, actions: Actions, options: Options, data_dir: Path) -> None:
        self.view = view
        self.actions = actions
        self.options = o = options
        self.users = UserStore(data_dir / USERS_FILE)
        self.sessions = Sessions(o.idle_timeout_s, o.guard_idle_timeout_s, o.max_session_s)
        self.limiter = LoginLimiter(
            per_pair=o.login_per_user,
            per_ip=o.login_per_ip,
            per_account=o.login_per_account,
            window_s=o.login_window_s,
            max_delay_s=o.login_max_delay_s,
            account_max_delay_s=o.login_account_max_delay_s,
        )
        self.api_token = load_api_token(data_dir / API_TOKEN_FILE)
        self._user_cache: dict[str, tuple[float, User | None]] = {}
        self._users_exist: tuple[float, bool] = (0.0, False)
        view.declare_counter("sealwatch_logins_total", "Dashboard logins, by result", ("result",))
        view.declare_counter(
            "sealwatch_dashboard_denied_total",
            "Dashboard/API requests refused, by reason",
            ("reason",),
        )

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
        if len(self._user_cache) > 10_000:
            self._user_cache.clear()
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
                return fwd.split(",")[0].strip()[:64]
        return request.remote or "?"

    def expected_origin(self, request: web.Request) -> str:
        scheme = "https" if self.secure(request) and self.options.trust_proxy else request.scheme
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

    def audit(self, what: str, **fields: Any) -> None:
        """An authentication record in the daemon's hash-chained audit log."""
        self.actions.record_auth(
            what, {k: _printable(v) if isinstance(v, str) else v for k, v in fields.items()}
        )

    def deny(self, status: int, reason: str, code: str) -> web.Response:
        self.view.count("sealwatch_dashboard_denied_total", code)
        return json_response({"accepted": False, "reason": reason}, status)


# -- middlewares --------------------------------------------------------------------------------


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        _headers(exc)
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


def auth_middleware(gate: Gate) -> Any:
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
            if not same_secret(gate.api_token, bearer[7:].strip()):
                return gate.deny(401, "bad API token", "token")
            return await handler(request)  # the local CLI; the actor comes in the body
        session = gate.session_of(request)
        if session is None:
            if gate.local_bootstrap(request) and gate.origin_ok(request, required=False):
                return await handler(request)
            return gate.deny(401, "log in first", "no_session")
        if mutating:
            if not gate.origin_ok(request, required=False):
                return gate.deny(403, "request from another origin refused", "origin")
            if not csrf_ok(session, request.headers.get(CSRF_HEADER)):
                return gate.deny(403, "missing or wrong CSRF token", "csrf")
        need = required_role(request.method, path)
        if RANK[session.user.role] < RANK[need]:
            if mutating:
                gate.audit(
                    "denied",
                    user=session.user.name,
                    role=session.user.role,
                    method=request.method,
                    path=path,
                    ip=gate.client_ip(request),
                )
            return gate.deny(403, f"a {session.user.role} may not do this (needs {need})", "role")
        request[ACTOR] = session.user.actor
        request[SESSION] = session
        return await handler(request)

    return check


def _printable(text: str, limit: int = 200) -> str:
    return text[:limit].encode("utf-8", "replace").decode("utf-8")


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
