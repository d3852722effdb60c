"""The durable store: SQLite in WAL mode, the embedded default.

Holds every accepted event (exactly as fed to the engine, in feed order), every rejected
payload with its reason, every alert transition (with a published flag: write before publish),
the alerts' current presentation, operator actions, maintenance windows, seals, engine
snapshots and the audit chain.

Two connections: `conn` writes, and is used only by the persist stage's writer thread (every
write of one commit is one `Writes`, applied in one transaction, with ids the engine stage
assigned, so a failed write can be retried unchanged); `reader` serves the event loop's reads.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from daemon.audit import EVENT_COLUMNS, LEDGER_TABLES, SEALS, TRANSITION_COLUMNS, AuditChain

# 1: before the ledger (no `schema_version` in meta); 2: the ledger covers every row;
# 3: seals.precheck (the pre-seal record in force when the seal started).
SCHEMA_VERSION = 3

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events(
    seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, device_ts INTEGER, received INTEGER NOT NULL,
    device TEXT NOT NULL, type TEXT NOT NULL, origin TEXT NOT NULL, actor TEXT, digest TEXT,
    source TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
CREATE TABLE IF NOT EXISTS rejections(
    id INTEGER PRIMARY KEY, received INTEGER NOT NULL, origin TEXT NOT NULL, topic TEXT,
    reason TEXT NOT NULL, size INTEGER NOT NULL, payload BLOB);
CREATE TABLE IF NOT EXISTS transitions(
    id INTEGER PRIMARY KEY, event_seq INTEGER, ts INTEGER NOT NULL, alert_id TEXT NOT NULL,
    policy TEXT NOT NULL, subject TEXT NOT NULL, severity TEXT NOT NULL, state TEXT NOT NULL,
    clause TEXT, message TEXT, acked_by TEXT, comment TEXT, suppressed INTEGER NOT NULL,
    line TEXT NOT NULL, retained TEXT NOT NULL, published INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS transitions_unpublished ON transitions(id) WHERE published = 0;
CREATE INDEX IF NOT EXISTS transitions_alert ON transitions(alert_id);
CREATE INDEX IF NOT EXISTS transitions_ts ON transitions(ts);
CREATE TABLE IF NOT EXISTS alerts(alert_id TEXT PRIMARY KEY, isa_state TEXT NOT NULL,
    closed INTEGER NOT NULL, view TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS alerts_open ON alerts(isa_state) WHERE isa_state != 'normal';
CREATE TABLE IF NOT EXISTS actions(
    id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, kind TEXT NOT NULL, actor TEXT,
    origin TEXT NOT NULL, alert_id TEXT, event_seq INTEGER, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS suppressions(
    id INTEGER PRIMARY KEY, device TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    reason TEXT NOT NULL, by_badge TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS seals(
    id TEXT PRIMARY KEY, name TEXT, classification TEXT, start INTEGER, "end" INTEGER,
    planned_end INTEGER, status TEXT NOT NULL, started_by TEXT, ended_by TEXT, precheck TEXT);
CREATE TABLE IF NOT EXISTS audit(
    seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL,
    prev TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots(
    id INTEGER PRIMARY KEY, taken INTEGER NOT NULL, event_seq INTEGER NOT NULL,
    transition_id INTEGER NOT NULL, clock INTEGER, blob BLOB NOT NULL);
"""


_SEAL_UPSERT = (
    'INSERT INTO seals(id, name, classification, start, "end", planned_end, status, '
    "started_by, ended_by, precheck) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) "
    "DO UPDATE SET name=excluded.name, classification=excluded.classification, "
    'start=excluded.start, "end"=excluded."end", planned_end=excluded.planned_end, '
    "status=excluded.status, precheck=excluded.precheck, "
    "started_by=COALESCE(excluded.started_by, seals.started_by), "
    "ended_by=COALESCE(excluded.ended_by, seals.ended_by)"
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    taken: int
    event_seq: int
    transition_id: int
    clock: int | None
    blob: bytes


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    ts: int
    device_ts: int | None
    origin: str
    actor: str | None
    digest: str | None
    source: dict[str, Any]


@dataclass(slots=True)
class Writes:
    """Everything one commit writes, as rows with their ids already assigned."""

    events: list[tuple[Any, ...]] = field(default_factory=list)
    rejections: list[tuple[Any, ...]] = field(default_factory=list)
    transitions: list[tuple[Any, ...]] = field(default_factory=list)
    alerts: dict[str, tuple[str, int, str]] = field(default_factory=dict)
    actions: list[tuple[Any, ...]] = field(default_factory=list)
    audit: list[tuple[Any, ...]] = field(default_factory=list)
    seals: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    suppressions: list[tuple[Any, ...]] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    published: list[int] = field(default_factory=list)
    snapshot: Snapshot | None = None

    def __bool__(self) -> bool:
        return bool(
            self.events
            or self.rejections
            or self.transitions
            or self.alerts
            or self.actions
            or self.audit
            or self.seals
            or self.suppressions
            or self.meta
            or self.published
            or self.snapshot
        )

    def merge(self, other: Writes) -> None:
        """Append `other` (written after this one) to this commit."""
        self.events += other.events
        self.rejections += other.rejections
        self.transitions += other.transitions
        self.alerts.update(other.alerts)
        self.actions += other.actions
        self.audit += other.audit
        for sid, row in other.seals.items():
            prev = self.seals.get(sid)
            if prev is not None:  # keep who started and ended it, as the upsert would
                row = (*row[:7], row[7] or prev[7], row[8] or prev[8], *row[9:])
            self.seals[sid] = row
        self.suppressions += other.suppressions
        self.meta.update(other.meta)
        self.published += other.published
        if other.snapshot is not None:
            self.snapshot = other.snapshot


def _meta_json(conn: sqlite3.Connection, key: str) -> dict[str, Any]:
    row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return dict(orjson.loads(row[0])) if row else {}


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    return 1 if row is None else int(row[0])


def migrate(conn: sqlite3.Connection) -> None:
    """Bring an existing store up to SCHEMA_VERSION, in one transaction.

    1 → 2: rows written before the ledger are not in the chain; the ids they reach are kept
    as the ledger's floor (`verify` reports rows above it that the chain does not cover).
    2 → 3: seals gain `precheck` (NULL for the rows already there; `audit.seal_hash` hashes
    such a row as before)."""
    version = schema_version(conn)
    if version >= SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if version < 2:
            floor: dict[str, Any] = {
                t: int(conn.execute(f"SELECT COALESCE(MAX({idc}), 0) FROM {t}").fetchone()[0])
                for t, (idc, _cols) in LEDGER_TABLES.items()
            }
            floor[SEALS] = [str(r[0]) for r in conn.execute("SELECT id FROM seals ORDER BY id")]
            conn.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) "
                "DO UPDATE SET value=excluded.value",
                [
                    ("ledger_floor", orjson.dumps(floor).decode()),
                ],
            )
        columns = {str(r[1]) for r in conn.execute("PRAGMA table_info(seals)")}
        if version < 3 and "precheck" not in columns:
            conn.execute("ALTER TABLE seals ADD COLUMN precheck TEXT")
        conn.execute(
            "INSERT INTO meta(key, value) VALUES ('schema_version', ?) ON CONFLICT(key) "
            "DO UPDATE SET value=excluded.value",
            (str(SCHEMA_VERSION),),
        )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class Store:
    """One SQLite database file: `apply(writes)` from the writer thread, reads anywhere."""

    def __init__(
        self, path: Path, synchronous: str = "normal", busy_timeout_ms: int = 1000
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._synchronous = synchronous.upper()
        self._busy_ms = int(busy_timeout_ms)
        self.conn: sqlite3.Connection | None = None
        self.open_error: str | None = None
        try:
            self._open_writer()
            self.reader = self._connect(str(path))
        except sqlite3.OperationalError as exc:
            # A full (or read-only) disk cannot even give SQLite its WAL index. An existing
            # store is then read as it was last closed, and the writer opens it when it can:
            # the daemon starts, alerts, and holds what it accepts (the persist stage).
            if not path.exists():
                raise
            self.open_error = f"{type(exc).__name__}: {exc}"
            self.reader = self._connect(f"{path.resolve().as_uri()}?immutable=1", uri=True)
        self.audit = AuditChain.resume(self.reader)

    def _connect(self, target: str, uri: bool = False) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a batch is one transaction.
        conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False, uri=uri)
        conn.execute(f"PRAGMA busy_timeout={self._busy_ms}")
        return conn

    def _open_writer(self) -> None:
        conn = self._connect(str(self.path))
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            # Checkpoints (which fsync) run in a thread (`checkpoint`), not inline in a commit.
            conn.execute("PRAGMA wal_autocheckpoint=0")
            new = conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name='snapshots'")
            if new.fetchone()[0] == 0:
                conn.executescript(SCHEMA)  # a new store (an existing one needs no write here)
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            else:
                migrate(conn)
        except BaseException:
            conn.close()
            raise
        self.conn = conn

    @property
    def writable(self) -> bool:
        return self.conn is not None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.reader.close()

    def apply(self, w: Writes) -> None:
        """Write one commit in one transaction (the writer thread); all or nothing."""
        if self.conn is None:  # opened read-only at start (a full disk): try again now
            self._open_writer()
            # The old reader may be in use on the event loop: it is left to the collector.
            self.reader = self._connect(str(self.path))
            self.open_error = None
        c = self.conn
        assert c is not None
        c.execute("BEGIN IMMEDIATE")
        try:
            if w.events:
                c.executemany(
                    f"INSERT INTO events({EVENT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", w.events
                )
            if w.rejections:
                c.executemany(
                    "INSERT INTO rejections(id, received, origin, topic, reason, size, payload) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    w.rejections,
                )
            if w.transitions:
                c.executemany(
                    f"INSERT INTO transitions({TRANSITION_COLUMNS}) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    w.transitions,
                )
            if w.alerts:
                c.executemany(
                    "INSERT INTO alerts(alert_id, isa_state, closed, view) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(alert_id) DO UPDATE SET isa_state=excluded.isa_state, "
                    "closed=excluded.closed, view=excluded.view",
                    [(k, *v) for k, v in w.alerts.items()],
                )
            if w.actions:
                c.executemany(
                    "INSERT INTO actions(id, ts, kind, actor, origin, alert_id, event_seq, body) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    w.actions,
                )
            if w.audit:
                c.executemany(
                    "INSERT INTO audit(seq, ts, kind, body, prev, hash) VALUES (?, ?, ?, ?, ?, ?)",
                    w.audit,
                )
            if w.seals:
                c.executemany(_SEAL_UPSERT, list(w.seals.values()))
            if w.suppressions:
                c.executemany(
                    'INSERT INTO suppressions(id, device, start, "end", reason, by_badge, created) '
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    w.suppressions,
                )
            if w.meta:
                c.executemany(
                    "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) "
                    "DO UPDATE SET value=excluded.value",
                    list(w.meta.items()),
                )
            if w.published:
                c.executemany(
                    "UPDATE transitions SET published = 1 WHERE id = ?", [(i,) for i in w.published]
                )
            if w.snapshot is not None:
                snap = w.snapshot
                c.execute(
                    "INSERT INTO snapshots(taken, event_seq, transition_id, clock, blob) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (snap.taken, snap.event_seq, snap.transition_id, snap.clock, snap.blob),
                )
                c.execute(
                    "DELETE FROM snapshots WHERE id NOT IN "
                    "(SELECT id FROM snapshots ORDER BY id DESC LIMIT 2)"
                )
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise

    def next_ids(self) -> dict[str, int]:
        """The highest id in use per table (the engine stage counts on from there)."""
        r = self.reader
        return {
            t: int(r.execute(f"SELECT COALESCE(MAX({col}), 0) FROM {t}").fetchone()[0])
            for t, col in (
                ("events", "seq"),
                ("rejections", "id"),
                ("transitions", "id"),
                ("actions", "id"),
                ("suppressions", "id"),
            )
        }

    # -- meta ------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.reader.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # -- events and rejections ---------------------------------------------------------------

    def events_after(self, seq: int) -> Iterator[StoredEvent]:
        cur = self.reader.execute(
            "SELECT seq, ts, device_ts, origin, actor, digest, source FROM events "
            "WHERE seq > ? ORDER BY seq",
            (seq,),
        )
        for row in cur:
            yield StoredEvent(row[0], row[1], row[2], row[3], row[4], row[5], orjson.loads(row[6]))

    def recent_digests(self, limit: int) -> list[str]:
        return [
            r[0]
            for r in self.reader.execute(
                "SELECT digest FROM (SELECT seq, digest FROM events WHERE digest IS NOT NULL "
                "ORDER BY seq DESC LIMIT ?) ORDER BY seq",
                (limit,),
            )
        ]

    def last_event_seq(self) -> int:
        row = self.reader.execute("SELECT MAX(seq) FROM events").fetchone()
        return int(row[0] or 0)

    def rejections(self, limit: int = 100) -> list[dict[str, Any]]:
        return [
            {
                "id": r[0],
                "received": r[1],
                "origin": r[2],
                "topic": r[3],
                "reason": r[4],
                "size": r[5],
            }
            for r in self.reader.execute(
                "SELECT id, received, origin, topic, reason, size FROM rejections "
                "ORDER BY id DESC LIMIT ?",
                (limit,),
            )
        ]

    # -- transitions and alerts -------------------------------------------------------------

    def transition_keys_after(self, tid: int) -> list[tuple[int, str, str]]:
        return [
            (int(r[0]), str(r[1]), str(r[2]))
            for r in self.reader.execute(
                "SELECT ts, alert_id, state FROM transitions WHERE id > ?", (tid,)
            )
        ]

    def unpublished(self, limit: int = 10_000) -> list[tuple[int, str, str, str]]:
        """(id, alert_id, line, retained) of transitions not yet acked by the broker."""
        return [
            (int(r[0]), str(r[1]), str(r[2]), str(r[3]))
            for r in self.reader.execute(
                "SELECT id, alert_id, line, retained FROM transitions WHERE published = 0 "
                "ORDER BY id LIMIT ?",
                (limit,),
            )
        ]

    def count_unpublished(self) -> int:
        return int(
            self.reader.execute("SELECT COUNT(*) FROM transitions WHERE published = 0").fetchone()[
                0
            ]
        )

    def transitions(
        self, *, alert_id: str | None = None, since_id: int = 0, limit: int = 100_000
    ) -> list[dict[str, Any]]:
        sql = "SELECT id, line FROM transitions WHERE id > ?"
        args: list[Any] = [since_id]
        if alert_id is not None:
            sql += " AND alert_id = ?"
            args.append(alert_id)
        sql += " ORDER BY id LIMIT ?"
        args.append(limit)
        return [{"id": r[0], **orjson.loads(r[1])} for r in self.reader.execute(sql, args)]

    def open_alert_views(self) -> list[dict[str, Any]]:
        return [
            orjson.loads(r[0])
            for r in self.reader.execute("SELECT view FROM alerts WHERE isa_state != 'normal'")
        ]

    def alert_view(self, alert_id: str) -> dict[str, Any] | None:
        row = self.reader.execute(
            "SELECT view FROM alerts WHERE alert_id=?", (alert_id,)
        ).fetchone()
        return None if row is None else dict(orjson.loads(row[0]))

    # -- operator actions, maintenance windows, seals ---------------------------------------

    def actions(self, *, alert_id: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        sql = "SELECT id, ts, kind, actor, origin, alert_id, event_seq, body FROM actions"
        args: list[Any] = []
        if alert_id is not None:
            sql += " WHERE alert_id = ?"
            args.append(alert_id)
        sql += " ORDER BY id LIMIT ?"
        args.append(limit)
        return [
            {
                "id": r[0],
                "ts": r[1],
                "kind": r[2],
                "actor": r[3],
                "origin": r[4],
                "alert_id": r[5],
                "event_seq": r[6],
                "body": orjson.loads(r[7]),
            }
            for r in self.reader.execute(sql, args)
        ]

    def suppressions(self, *, ending_after: int = 0) -> list[dict[str, Any]]:
        return [
            {
                "id": r[0],
                "device": r[1],
                "start": r[2],
                "end": r[3],
                "reason": r[4],
                "by": r[5],
                "created": r[6],
            }
            for r in self.reader.execute(
                'SELECT id, device, start, "end", reason, by_badge, created '
                'FROM suppressions WHERE "end" >= ? ORDER BY id',
                (ending_after,),
            )
        ]

    def seals(self) -> list[dict[str, Any]]:
        return [
            {
                "id": r[0],
                "name": r[1],
                "classification": r[2],
                "start": r[3],
                "end": r[4],
                "planned_end": r[5],
                "status": r[6],
                "started_by": r[7],
                "ended_by": r[8],
                "precheck": r[9],
            }
            for r in self.reader.execute(
                'SELECT id, name, classification, start, "end", planned_end, status, '
                "started_by, ended_by, precheck FROM seals ORDER BY start"
            )
        ]

    # -- snapshots, retention, size --------------------------------------------------------

    def latest_snapshot(self) -> Snapshot | None:
        row = self.reader.execute(
            "SELECT taken, event_seq, transition_id, clock, blob "
            "FROM snapshots ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return None if row is None else Snapshot(row[0], row[1], row[2], row[3], bytes(row[4]))

    def prune(self, cutoff_us: int) -> dict[str, int]:
        """Delete what is older than the retention cutoff; keep the audit chain verifiable.

        Writes: call it from the writer thread (the persist stage's `call`)."""
        snap = self.latest_snapshot()
        # Events after the newest snapshot are needed to rebuild the engine; never prune them.
        max_seq = snap.event_seq if snap else 0
        out: dict[str, int] = {}
        c = self.conn
        if c is None:
            raise sqlite3.OperationalError(f"store not writable: {self.open_error}")
        # Each table loses a prefix only (up to its first row to keep), so the ledger can tell a
        # pruned row (at or below `ledger_pruned`) from a deleted one.
        keep = {
            "events": ("seq", "NOT (ts < ? AND seq <= ?)", (cutoff_us, max_seq)),
            "rejections": ("id", "received >= ?", (cutoff_us,)),
            "transitions": ("id", "NOT (ts < ? AND published = 1)", (cutoff_us,)),
            "actions": ("id", "ts >= ?", (cutoff_us,)),
        }
        c.execute("BEGIN IMMEDIATE")
        try:
            pruned = _meta_json(c, "ledger_pruned")
            for table, (idc, cond, args) in keep.items():
                first = c.execute(f"SELECT MIN({idc}) FROM {table} WHERE {cond}", args).fetchone()
                upto = (
                    int(first[0]) - 1
                    if first[0] is not None
                    else int(
                        c.execute(f"SELECT COALESCE(MAX({idc}), 0) FROM {table}").fetchone()[0]
                    )
                )
                out[table] = c.execute(f"DELETE FROM {table} WHERE {idc} <= ?", (upto,)).rowcount
                if out[table]:
                    pruned[table] = max(int(pruned.get(table, 0)), upto)
            last = c.execute(
                "SELECT seq, hash FROM audit WHERE ts < ? ORDER BY seq DESC LIMIT 1", (cutoff_us,)
            ).fetchone()
            out["audit"] = 0
            meta: list[tuple[str, str]] = [("ledger_pruned", orjson.dumps(pruned).decode())]
            if last is not None:
                # Prune a prefix only: the anchor is the hash of the last pruned record. Rows
                # chained by the pruned records are below the ledger's floor from now on.
                floor = _meta_json(c, "ledger_floor")
                for (body,) in c.execute(
                    "SELECT body FROM audit WHERE kind = 'ledger' AND seq <= ?", (last[0],)
                ):
                    for table, entries in orjson.loads(body).items():
                        if table == SEALS:
                            old = set(floor.get(SEALS, [])) | {str(e[0]) for e in entries}
                            floor[SEALS] = sorted(old)
                            continue
                        if not entries:
                            continue
                        floor[table] = max(int(floor.get(table, 0)), int(entries[-1][0]))
                meta += [
                    ("audit_anchor", str(last[1])),
                    ("audit_anchor_seq", str(last[0])),
                    ("ledger_floor", orjson.dumps(floor).decode()),
                ]
                out["audit"] = c.execute("DELETE FROM audit WHERE seq <= ?", (last[0],)).rowcount
            c.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) "
                "DO UPDATE SET value=excluded.value",
                meta,
            )
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise
        return out

    def checkpoint(self) -> None:
        """Copy the WAL into the database; call from a worker thread (own connection)."""
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()

    def size_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                total += p.stat().st_size
        return total
