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
class _Count:
    attempts: int = 0  # password checks counted against this key (failed or in flight)
    last: float = 0.0  # when the last one was counted
    until: float = 0.0  # no password check for this key before this time


@dataclass(slots=True)
class LoginLimiter:
    """Password checks throttled with growing delays (OWASP: throttle, do not lock out).

    Three keys count every password check, and each lets `free` checks through at once, then
    one more after 1 s, 2 s, 4 s … up to a cap:

    - (account, address), strictly: `per_pair` free, delays up to `max_delay_s`;
    - the address across all accounts, strictly: `per_ip` free, delays up to `max_delay_s`;
    - the account across all addresses, loosely: `per_account` free, delays up to only
      `account_max_delay_s`, and not at all from an address this account logged in from in
      the last `remember_s` (the monitoring room's console), so a stranger guessing from
      elsewhere cannot keep the operator on duty out.

    `begin` checks and counts in one synchronous step (no await in between), before any hash
    is computed: concurrent guesses are throttled exactly as sequential ones. A right password
    (`succeeded`) clears its (account, address) key and takes back its count on the others. A
    key with no check for `window_s` after its delay has passed is forgotten. `unlock` clears
    an account (an admin: `sealwatch user unlock NAME`).
    """

    per_pair: int = 5
    per_ip: int = 20
    per_account: int = 20
    window_s: float = 300.0
    max_delay_s: float = 900.0
    account_max_delay_s: float = 30.0
    remember_s: float = 30 * 86_400.0
    clock: Callable[[], float] = time.monotonic
    max_keys: int = 100_000
    _counts: dict[tuple[str, str, str], _Count] = field(default_factory=dict)
    _known: dict[tuple[str, str], float] = field(default_factory=dict)
    _reported: dict[tuple[str, str], float] = field(default_factory=dict)
    checks: int = 0  # password checks let through, ever (for tests and metrics)

    def _keys(
        self, user: str, ip: str, now: float
    ) -> list[tuple[tuple[str, str, str], int, float]]:
        name = user.lower()
        keys = [
            (("pair", name, ip), self.per_pair, self.max_delay_s),
            (("ip", "", ip), self.per_ip, self.max_delay_s),
        ]
        seen = self._known.get((name, ip))
        if seen is None or now - seen > self.remember_s:
            keys.append((("user", name, ""), self.per_account, self.account_max_delay_s))
        return keys

    def _live(self, key: tuple[str, str, str], now: float) -> _Count | None:
        c = self._counts.get(key)
        if c is not None and now - max(c.last, c.until) > self.window_s:
            del self._counts[key]
            return None
        return c

    def retry_after(self, user: str, ip: str) -> float:
        """Seconds until a password may be checked for `user` from `ip`; 0 if now."""
        now = self.clock()
        wait = 0.0
        for key, _free, _cap in self._keys(user, ip, now):
            c = self._live(key, now)
            if c is not None and c.until > now:
                wait = max(wait, c.until - now)
        return wait

    def begin(self, user: str, ip: str) -> float:
        """Check and count in one step: 0.0 means check the password now (the attempt is
        already counted as failed until `succeeded`); more is the seconds to wait."""
        now = self.clock()
        wait = self.retry_after(user, ip)
        if wait > 0:
            return wait
        for key, free, cap in self._keys(user, ip, now):
            c = self._counts.get(key)
            if c is None:
                c = self._counts[key] = _Count()
            c.attempts += 1
            c.last = now
            if c.attempts >= free:
                c.until = now + min(cap, 2.0 ** min(c.attempts - free, 40))
        self.checks += 1
        if len(self._counts) > self.max_keys:
            self._prune(now)
        return 0.0

    def first_refusal(self, user: str, ip: str, wait: float) -> bool:
        """Whether this throttled attempt is the first for (user, address) in its delay: only
        that one is audited, so a flood of guesses cannot flood the audit log."""
        now = self.clock()
        key = (user.lower(), ip)
        if self._reported.get(key, 0.0) > now:
            return False
        if len(self._reported) > self.max_keys:
            self._reported = {k: t for k, t in self._reported.items() if t > now}
            while len(self._reported) > self.max_keys:
                del self._reported[next(iter(self._reported))]
        self._reported[key] = now + wait
        return True

    def succeeded(self, user: str, ip: str) -> None:
        now = self.clock()
        name = user.lower()
        self._counts.pop(("pair", name, ip), None)
        for key in (("ip", "", ip), ("user", name, "")):
            c = self._counts.get(key)
            if c is not None and c.attempts > 0:
                c.attempts -= 1
        self._known[(name, ip)] = now
        if len(self._known) > self.max_keys:
            for old in [k for k, t in self._known.items() if now - t > self.remember_s]:
                del self._known[old]
            while len(self._known) > self.max_keys:
                del self._known[next(iter(self._known))]

    def unlock(self, user: str) -> int:
        """Forget the account's counts (from every address); how many keys were cleared."""
        name = user.lower()
        gone = [k for k in self._counts if k[0] in ("pair", "user") and k[1] == name]
        for k in gone:
            del self._counts[k]
        return len(gone)

    def _prune(self, now: float) -> None:
        """A spray of names and addresses must not grow memory forever."""
        for key in list(self._counts):
            self._live(key, now)
        if len(self._counts) > self.max_keys:  # still too many: forget the oldest half
            by_age = sorted(self._counts, key=lambda k: self._counts[k].last)
            for key in by_age[: len(by_age) // 2]:
                del self._counts[key]


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
