"""The durable outbox: `DATA_DIR/notifications.db`, a SQLite file of its own.

Held here until delivered, across restarts (and `kill -9`: each change is one committed
transaction): every delivery (UNIQUE by delivery id, channel and address, so routing the same
transition twice adds nothing), the chain steps taken (so a restart does not take one twice),
and the cursor — the last stored transition id routed — so transitions written while the
daemon stopped before routing them are routed on the next start. Delivered rows are kept
`keep_sent_days` for inspection, then deleted. Used from one thread at a time (the sink runs
every call in its own single worker thread).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import orjson

from daemon.damaged import set_aside
from daemon.notify.chain import Step
from daemon.notify.routing import Delivery

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox(
    id INTEGER PRIMARY KEY, delivery_id TEXT NOT NULL, channel TEXT NOT NULL,
    address TEXT NOT NULL, alert_id TEXT NOT NULL, recipients TEXT NOT NULL,
    message TEXT NOT NULL, created INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT, sent INTEGER,
    UNIQUE(delivery_id, channel, address));
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(channel, address, id) WHERE sent IS NULL;
CREATE TABLE IF NOT EXISTS steps(
    alert_id TEXT NOT NULL, level INTEGER NOT NULL, due INTEGER NOT NULL, taken INTEGER NOT NULL,
    PRIMARY KEY(alert_id, level));
"""


@dataclass(frozen=True, slots=True)
class Pending:
    id: int
    delivery_id: str
    channel: str
    address: str
    alert_id: str
    recipients: tuple[str, ...]
    message: dict[str, object]
    attempts: int


class Outbox:
    """A file that is not an outbox (not SQLite, failing `quick_check`) is moved aside
    (`damaged` says where, and why) and a fresh one started: what it held is lost, loudly (the
    sink says so). A disk that cannot be read or written raises `sqlite3.OperationalError`."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.damaged: tuple[Path, str] | None = None  # where the damaged file went, and why
        try:
            self.conn = self._connect()
        except sqlite3.OperationalError:
            raise  # its disk (full, read-only, gone): not damage
        except sqlite3.DatabaseError as exc:
            self.damaged = (set_aside(path), str(exc))
            self.conn = self._connect()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("PRAGMA journal_mode=WAL")
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {check}")
            conn.executescript(SCHEMA)
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        self.conn.close()

    def cursor(self) -> int | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key='cursor'").fetchone()
        return int(row[0]) if row else None

    def taken(self) -> set[tuple[str, int]]:
        return {(str(a), int(n)) for a, n in self.conn.execute("SELECT alert_id, level FROM steps")}

    def add(
        self, items: list[Delivery], steps: list[Step], cursor: int | None, now: int
    ) -> tuple[int, list[Step]]:
        """Insert deliveries (a repeat is ignored), record steps and move the cursor, in one
        transaction. Returns how many deliveries were new and which steps were."""
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            added = 0
            for d in items:
                cur = c.execute(
                    "INSERT OR IGNORE INTO outbox(delivery_id, channel, address, alert_id, "
                    "recipients, message, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        d.delivery_id,
                        d.channel,
                        d.address,
                        d.alert_id,
                        orjson.dumps(list(d.recipients)).decode(),
                        orjson.dumps(d.message).decode(),
                        now,
                    ),
                )
                added += cur.rowcount
            new_steps = []
            for s in steps:
                cur = c.execute(
                    "INSERT OR IGNORE INTO steps(alert_id, level, due, taken) VALUES (?, ?, ?, ?)",
                    (s.alert_id, s.level, s.due, now),
                )
                if cur.rowcount:
                    new_steps.append(s)
            if cursor is not None:
                c.execute(
                    "INSERT INTO meta(key, value) VALUES ('cursor', ?) ON CONFLICT(key) "
                    "DO UPDATE SET value = "
                    "max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
                    (str(cursor),),
                )
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:  # SQLite may have rolled back itself (a full disk)
                c.execute("ROLLBACK")
            raise
        return added, new_steps

    def mark_sent(self, marks: list[tuple[str, str, str, int]]) -> None:
        """(delivery id, channel, address, when) of deliveries sent while the outbox could
        not record it (its disk failing, or still in memory): recorded now, in one
        transaction."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany(
                "UPDATE outbox SET sent = ?4, attempts = attempts + 1 "
                "WHERE delivery_id = ?1 AND channel = ?2 AND address = ?3 AND sent IS NULL",
                marks,
            )

    def lanes(self) -> list[tuple[str, str]]:
        """(channel, address) of every receiver with something to deliver."""
        return [
            (str(a), str(b))
            for a, b in self.conn.execute(
                "SELECT DISTINCT channel, address FROM outbox WHERE sent IS NULL"
            )
        ]

    def pending(self, channel: str, address: str, limit: int = 50) -> list[Pending]:
        return [
            Pending(
                int(r[0]),
                str(r[1]),
                channel,
                address,
                str(r[2]),
                tuple(orjson.loads(r[3])),
                orjson.loads(r[4]),
                int(r[5]),
            )
            for r in self.conn.execute(
                "SELECT id, delivery_id, alert_id, recipients, message, attempts FROM outbox "
                "WHERE sent IS NULL AND channel = ? AND address = ? ORDER BY id LIMIT ?",
                (channel, address, limit),
            )
        ]

    def sent(self, row_id: int, now: int) -> None:
        self.conn.execute(
            "UPDATE outbox SET sent = ?, attempts = attempts + 1 WHERE id = ?", (now, row_id)
        )

    def failed(self, row_id: int, error: str) -> None:
        self.conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
            (error[:500], row_id),
        )

    def depth(self) -> dict[str, int]:
        """Deliveries waiting, by channel."""
        return {
            str(ch): int(n)
            for ch, n in self.conn.execute(
                "SELECT channel, COUNT(*) FROM outbox WHERE sent IS NULL GROUP BY channel"
            )
        }

    def prune(self, before: int, live: list[str]) -> int:
        """Forget deliveries sent before `before`, and the steps of alerts whose chain is no
        longer `live` (a live chain's steps are what keeps a restart from repeating them)."""
        cur = self.conn.execute("DELETE FROM outbox WHERE sent IS NOT NULL AND sent < ?", (before,))
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS live(alert_id TEXT PRIMARY KEY)")
        self.conn.execute("DELETE FROM live")
        self.conn.executemany("INSERT OR IGNORE INTO live VALUES (?)", [(a,) for a in live])
        self.conn.execute(
            "DELETE FROM steps WHERE taken < ? AND alert_id NOT IN (SELECT alert_id FROM live)",
            (before,),
        )
        return int(cur.rowcount)
