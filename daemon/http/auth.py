"""Who may use the dashboard and the API: users, roles, sessions, CSRF tokens, the login
rate limit and the local CLI's API token (`API_TOKEN_FILE` in the data dir).

Users live in their own small SQLite file (`users.db` in the data dir) so that the
`sealwatch user` command can change them while the daemon runs. Passwords are argon2id
hashes; there is no default account. Sessions live in memory: a daemon restart logs
everyone out, which is the safe direction.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

ROLES = ("guard", "operator", "supervisor", "admin")
RANK = {role: i for i, role in enumerate(ROLES)}
MIN_PASSWORD_LEN = 10
USERS_FILE = "users.db"
API_TOKEN_FILE = "api.token"  # the local CLI's bearer token, in the data dir

_hasher = PasswordHasher()  # argon2id with the library's current recommended costs
# Verified against when the user does not exist, so a wrong name costs as much as a wrong
# password and the response time does not tell which names exist.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class AuthError(Exception):
    """A refused user-management request (bad role, weak password, unknown user …)."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: str
    badge: str | None
    disabled: bool = False
    changed: float = 0.0  # wall time of the last password or account change

    @property
    def actor(self) -> str:
        """Who the daemon records as acting: the person's badge, else the user name."""
        return self.badge or self.name


def check_password(name: str, password: str) -> None:
    if len(password) < MIN_PASSWORD_LEN:
        raise AuthError(f"password too short: at least {MIN_PASSWORD_LEN} characters")
    if password.strip().lower() == name.strip().lower():
        raise AuthError("password must not be the user name")


class UserStore:
    """The users file: one SQLite database, opened per call (the CLI may edit it too)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._conn() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS users(name TEXT PRIMARY KEY, "
                "role TEXT NOT NULL, badge TEXT, hash TEXT NOT NULL, "
                "disabled INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, "
                "changed REAL NOT NULL)"
            )
        try:
            path.chmod(0o600)  # password hashes: readable by the daemon's user only
        except OSError:
            pass

    def _conn(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=5.0)
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    def add(self, name: str, role: str, password: str, badge: str | None = None) -> User:
        if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise AuthError(f"bad user name {name!r}: letters, digits, '-', '_' and '.' only")
        if role not in ROLES:
            raise AuthError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
        check_password(name, password)
        now = time.time()
        with self._conn() as conn:
            if conn.execute("SELECT 1 FROM users WHERE name=?", (name,)).fetchone():
                raise AuthError(f"user {name!r} already exists (use 'sealwatch user passwd')")
            conn.execute(
                "INSERT INTO users(name, role, badge, hash, created, changed) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (name, role, badge, _hasher.hash(password), now, now),
            )
        return User(name, role, badge, False, now)

    def set_password(self, name: str, password: str) -> None:
        check_password(name, password)
        with self._conn() as conn:
            cur = conn.execute(
                "UPDATE users SET hash=?, changed=? WHERE name=?",
                (_hasher.hash(password), time.time(), name),
            )
            if cur.rowcount == 0:
                raise AuthError(f"no user {name!r}")

    def set_disabled(self, name: str, disabled: bool) -> None:
        with self._conn() as conn:
            cur = conn.execute(
                "UPDATE users SET disabled=?, changed=? WHERE name=?",
                (int(disabled), time.time(), name),
            )
            if cur.rowcount == 0:
                raise AuthError(f"no user {name!r}")

    def get(self, name: str) -> User | None:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT name, role, badge, disabled, changed FROM users WHERE name=?", (name,)
            ).fetchone()
        return None if row is None else User(row[0], row[1], row[2], bool(row[3]), row[4])

    def list(self) -> list[User]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT name, role, badge, disabled, changed FROM users ORDER BY name"
            )
            return [User(r[0], r[1], r[2], bool(r[3]), r[4]) for r in rows]

    def verify(self, name: str, password: str) -> User | None:
        """The user if the password is right and the account enabled (slow: argon2)."""
        with self._conn() as conn:
            row = conn.execute(
                "SELECT name, role, badge, disabled, hash, changed FROM users WHERE name=?", (name,)
            ).fetchone()
        stored = row[4] if row is not None else _DUMMY_HASH
        try:
            _hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None or row[3]:
            return None
        if _hasher.check_needs_rehash(stored):
            with self._conn() as conn:
                conn.execute("UPDATE users SET hash=? WHERE name=?", (_hasher.hash(password), name))
        return User(row[0], row[1], row[2], False, row[5])


# -- sessions ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Session:
    token: str
    user: User
    csrf: str
    ip: str
    created: float
    last_seen: float


@dataclass(slots=True)
class Sessions:
    """Sessions in memory, with an idle timeout (per role) and an absolute lifetime."""

    idle_timeout_s: float = 900.0
    guard_idle_timeout_s: float = 12 * 3600.0  # a view-only wall screen watched all shift
    max_age_s: float = 12 * 3600.0
    clock: Callable[[], float] = time.monotonic
    _by_token: dict[str, Session] = field(default_factory=dict)

    def create(self, user: User, ip: str) -> Session:
        now = self.clock()
        # Sessions whose browser never came back are only seen here: drop the expired ones
        # so that a daemon running for years does not keep every abandoned login.
        for token in [t for t, old in self._by_token.items() if self._expired(old, now)]:
            del self._by_token[token]
        s = Session(secrets.token_urlsafe(32), user, secrets.token_urlsafe(32), ip, now, now)
        self._by_token[s.token] = s
        return s

    def idle_limit(self, s: Session) -> float:
        return self.guard_idle_timeout_s if s.user.role == "guard" else self.idle_timeout_s

    def get(self, token: str | None, *, touch: bool = True) -> Session | None:
        """The live session for a cookie value; an expired one is dropped."""
        if not token:
            return None
        s = self._by_token.get(token)
        if s is None:
            return None
        now = self.clock()
        if self._expired(s, now):
            del self._by_token[token]
            return None
        if touch:
            s.last_seen = now
        return s

    def _expired(self, s: Session, now: float) -> bool:
        return now - s.last_seen > self.idle_limit(s) or now - s.created > self.max_age_s

    def alive(self, s: Session) -> bool:
        return self.get(s.token, touch=False) is s

    def drop(self, token: str) -> Session | None:
        return self._by_token.pop(token, None)

    def drop_user(self, name: str) -> int:
        """Log a user out everywhere (password changed, account disabled)."""
        gone = [t for t, s in self._by_token.items() if s.user.name == name]
        for t in gone:
            del self._by_token[t]
        return len(gone)

    def __len__(self) -> int:
        return len(self._by_token)


def same_secret(expected: str, sent: str | None) -> bool:
    """Constant-time comparison of a secret with what a client sent (any characters)."""
    if sent is None:
        return False
    return hmac.compare_digest(expected.encode(), sent.encode("utf-8", "surrogatepass"))


def csrf_ok(session: Session, sent: str | None) -> bool:
    return same_secret(session.csrf, sent)


# -- login rate limit -------------------------------------------------------------------------


@dataclass(slots=True)
class LoginLimiter:
    """Failed logins per user name and per client address in a sliding window.

    Only failures count, so a guard who types the password right is never slowed down;
    past the limit every attempt is refused without checking the password until the
    oldest failure leaves the window.
    """

    per_user: int = 5
    per_ip: int = 20
    window_s: float = 300.0
    clock: Callable[[], float] = time.monotonic
    _fails: dict[tuple[str, str], deque[float]] = field(default_factory=dict)

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        q = self._fails.get(key)
        if q is None:
            return deque()
        cutoff = self.clock() - self.window_s
        while q and q[0] <= cutoff:
            q.popleft()
        if not q:
            del self._fails[key]
        return q

    def retry_after(self, user: str, ip: str) -> float:
        """Seconds until another attempt is allowed; 0 if allowed now."""
        wait = 0.0
        for key, limit in ((("user", user.lower()), self.per_user), (("ip", ip), self.per_ip)):
            q = self._recent(key)
            if len(q) >= limit:
                wait = max(wait, q[-limit] + self.window_s - self.clock())
        return max(0.0, wait)

    def failed(self, user: str, ip: str) -> None:
        now = self.clock()
        for key in (("user", user.lower()), ("ip", ip)):
            self._fails.setdefault(key, deque()).append(now)
        if len(self._fails) > 100_000:  # a spray of names must not grow memory forever
            for key in list(self._fails)[:50_000]:
                self._recent(key)

    def succeeded(self, user: str) -> None:
        self._fails.pop(("user", user.lower()), None)


# -- the local CLI's token -----------------------------------------------------------------------


def load_api_token(path: Path) -> str:
    """The local CLI's bearer token (created on first start): whoever can read the data dir
    may command the daemon."""
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
