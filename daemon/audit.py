"""The tamper-evident ledger: a hash chain over the audit records, and through them every row.

A record's hash covers its sequence number, time, kind, body and the previous hash, so editing,
deleting or reordering any stored record breaks the chain at that record. When retention prunes
the oldest records, the hash of the last pruned one is kept as the chain's anchor.

Every commit that writes rows an auditor relies on (events, rejections, transitions, operator
actions, maintenance windows, seal versions) also writes one `ledger` record listing each row's
table, id and content hash (`row_hash`). `verify` walks the chain and the tables together: every
chained row must be stored with that content, and every stored row must be chained, so an
edited, deleted, inserted, reordered or truncated row is named. The chain's head (seq, hash) is
signed with the site's Ed25519 key (`SignedHead`) and kept outside the database (retained on
MQTT, in every seal archive, in a file), so a cut-off tail is caught by `verify(anchor=...)`.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

GENESIS = "0" * 64


def canonical(body: dict[str, Any]) -> str:
    """The one text a body is hashed and stored as (sorted keys, no spaces)."""
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()


def record_hash(prev: str, seq: int, ts: int, kind: str, body: str) -> str:
    h = hashlib.sha256()
    h.update(f"{prev}\n{seq}\n{ts}\n{kind}\n".encode())
    h.update(body.encode())
    return h.hexdigest()


class AuditChain:
    """Computes the chain's next records in memory; the store writes them in order.

    The head lives here, not in the database, so that records can be made on the event loop
    and written later by the store's writer (or again, after a failed write) unchanged.
    """

    def __init__(self, seq: int = 0, head: str = GENESIS) -> None:
        self.seq, self.head = seq, head

    @classmethod
    def resume(cls, conn: sqlite3.Connection) -> AuditChain:
        """The chain as stored: after its newest record, or its anchor once pruned."""
        row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        if row is not None:
            return cls(int(row[0]), str(row[1]))
        anchor = conn.execute("SELECT value FROM meta WHERE key='audit_anchor'").fetchone()
        seq_row = conn.execute("SELECT value FROM meta WHERE key='audit_anchor_seq'").fetchone()
        return cls(int(seq_row[0]) if seq_row else 0, anchor[0] if anchor else GENESIS)

    def record(
        self, ts: int, kind: str, body: dict[str, Any]
    ) -> tuple[int, int, str, str, str, str]:
        """The next record as a row (seq, ts, kind, body, prev, hash); the head moves on."""
        text = canonical(body)
        seq = self.seq + 1
        digest = record_hash(self.head, seq, ts, kind, text)
        row = (seq, ts, kind, text, self.head, digest)
        self.seq, self.head = seq, digest
        return row


# The tables the ledger covers: name → (id column, the columns whose content is hashed, in
# the order the engine stage builds the row tuples). Mutable bookkeeping (`transitions.
# published`) and derived state (the `alerts` presentation, snapshots, meta) are not covered.
EVENT_COLUMNS = "seq, ts, device_ts, received, device, type, origin, actor, digest, source"
REJECTION_COLUMNS = "id, received, origin, topic, reason, size, payload"
TRANSITION_COLUMNS = (
    "id, event_seq, ts, alert_id, policy, subject, severity, state, clause, message, "
    "acked_by, comment, suppressed, line, retained"
)
ACTION_COLUMNS = "id, ts, kind, actor, origin, alert_id, event_seq, body"
SUPPRESSION_COLUMNS = 'id, device, start, "end", reason, by_badge, created'
SEAL_COLUMNS = (
    'id, name, classification, start, "end", planned_end, status, started_by, ended_by, precheck'
)
SEAL_KEYS = tuple(c.strip().strip('"') for c in SEAL_COLUMNS.split(","))  # as dict keys
LEDGER_TABLES: dict[str, tuple[str, str]] = {
    "events": ("seq", EVENT_COLUMNS),
    "rejections": ("id", REJECTION_COLUMNS),
    "transitions": ("id", TRANSITION_COLUMNS),
    "actions": ("id", ACTION_COLUMNS),
    "suppressions": ("id", SUPPRESSION_COLUMNS),
}
SEALS = "seals"  # versioned rows (an upsert per change): the stored row is the newest version


def _default(obj: Any) -> Any:
    if isinstance(obj, bytes | bytearray | memoryview):
        return {"blob": bytes(obj).hex()}
    raise TypeError(type(obj).__name__)


def row_hash(values: tuple[Any, ...] | list[Any]) -> str:
    """The content hash of one stored row (its columns as listed in LEDGER_TABLES)."""
    return hashlib.sha256(orjson.dumps(list(values), default=_default)).hexdigest()


def seal_hash(values: tuple[Any, ...] | list[Any]) -> str:
    """A seal row's content hash. A row without `precheck` (the tenth column, schema 3) hashes
    as its first nine columns, so rows chained before schema 3 still verify."""
    return row_hash(values[:9] if len(values) > 9 and values[9] is None else values)


def ledger_body(tables: dict[str, list[tuple[Any, ...]]]) -> dict[str, Any]:
    """A `ledger` record's body: per table, [id, content hash] of each row, in write order."""
    return {
        t: [[r[0], seal_hash(r) if t == SEALS else row_hash(r)] for r in rows]
        for t, rows in tables.items()
        if rows
    }


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    records: int
    head: str
    broken_seq: int | None = None
    problem: str = ""
    table: str | None = None  # the first bad row, when the problem is a row
    row: Any = None
    seq: int = 0  # the head's sequence number
    rows: int = 0  # rows checked against the chain
    note: str = ""

    def describe(self) -> str:
        if self.ok:
            text = (
                f"audit chain intact: {self.records} records, {self.rows} ledger rows, "
                f"head {self.seq} {self.head}"
            )
            return f"{text} ({self.note})" if self.note else text
        if self.table is not None:
            return f"ledger broken at {self.table} {self.row}: {self.problem}"
        if self.broken_seq is None:
            return f"audit chain not verified: {self.problem}"
        return f"audit chain broken at record {self.broken_seq}: {self.problem}"


class _Cursor:
    """One table's rows in id order, walked alongside the chain."""

    def __init__(self, conn: sqlite3.Connection, table: str, id_col: str, cols: str) -> None:
        self._it: Iterator[tuple[Any, ...]] = conn.execute(
            f"SELECT {cols} FROM {table} ORDER BY {id_col}"
        )
        self.row: tuple[Any, ...] | None = next(self._it, None)

    def advance(self) -> None:
        self.row = next(self._it, None)


def _meta_json(conn: sqlite3.Connection, key: str) -> dict[str, Any]:
    row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return dict(orjson.loads(row[0])) if row else {}


class _Broken(Exception):
    def __init__(self, table: str | None, row: Any, problem: str, seq: int | None = None) -> None:
        super().__init__(problem)
        self.table, self.row, self.problem, self.seq = table, row, problem, seq


def verify(
    conn: sqlite3.Connection,
    anchor: SignedHead | None = None,
    public_key: Ed25519PublicKey | None = None,
) -> Verdict:
    """Walk the chain from its anchor and every covered table with it; name the first record
    (audit seq, or table and id) that does not fit. With `anchor` (a signed head kept outside
    the database), also check its signature and that the chain still reaches it."""
    if anchor is not None:
        if public_key is None or not anchor.valid(public_key):
            return Verdict(
                False, 0, "", None, "the anchor's signature does not verify with the site key"
            )
    start = conn.execute("SELECT value FROM meta WHERE key='audit_anchor'").fetchone()
    start_seq_row = conn.execute("SELECT value FROM meta WHERE key='audit_anchor_seq'").fetchone()
    prev = start[0] if start else GENESIS
    start_seq = int(start_seq_row[0]) if start_seq_row else 0
    expected_seq = start_seq + 1
    floor = {t: int(v) for t, v in _meta_json(conn, "ledger_floor").items() if t != SEALS}
    old_seals = set(_meta_json(conn, "ledger_floor").get(SEALS, []))
    pruned = {t: int(v) for t, v in _meta_json(conn, "ledger_pruned").items()}
    cursors = {t: _Cursor(conn, t, idc, cols) for t, (idc, cols) in LEDGER_TABLES.items()}
    last_id: dict[str, Any] = {}
    seals: dict[str, tuple[str, int]] = {}
    count = rows = 0
    anchored_hash: str | None = None

    def chained(table: str, rid: Any, digest: str, seq: int) -> None:
        if table == SEALS:
            seals[str(rid)] = (digest, seq)
            return
        if table not in cursors or not isinstance(rid, int):
            raise _Broken(None, None, f"unknown ledger entry {table} {rid!r}", seq)
        if table in last_id and rid <= last_id[table]:
            raise _Broken(table, rid, f"chained twice or out of order (audit record {seq})", seq)
        last_id[table] = rid
        cur = cursors[table]
        while cur.row is not None and cur.row[0] < rid:
            if cur.row[0] > floor.get(table, 0):
                raise _Broken(table, cur.row[0], "is not in the chain (inserted or re-numbered)")
            cur.advance()
        if cur.row is None or cur.row[0] != rid:
            if rid <= pruned.get(table, 0):
                return  # pruned by retention (a prefix)
            raise _Broken(table, rid, f"is missing (chained by audit record {seq})", seq)
        if row_hash(cur.row) != digest:
            raise _Broken(
                table, rid, f"its content does not match its hash in audit record {seq}", seq
            )
        cur.advance()

    try:
        for seq, ts, kind, body, stored_prev, stored_hash in conn.execute(
            "SELECT seq, ts, kind, body, prev, hash FROM audit ORDER BY seq"
        ):
            if seq != expected_seq:
                raise _Broken(
                    None,
                    None,
                    f"record {expected_seq} is missing (next stored is {seq})",
                    expected_seq,
                )
            if stored_prev != prev:
                raise _Broken(
                    None, None, "its previous-hash does not match the record before it", seq
                )
            if record_hash(prev, seq, ts, kind, body) != stored_hash:
                raise _Broken(None, None, "its content does not match its hash", seq)
            if kind == "ledger":
                for table, entries in orjson.loads(body).items():
                    for rid, digest in entries:
                        chained(table, rid, digest, seq)
                        rows += 1
            if anchor is not None and seq == anchor.seq:
                anchored_hash = stored_hash
            prev, expected_seq, count = stored_hash, seq + 1, count + 1
        for table, cur in cursors.items():
            while cur.row is not None:
                if cur.row[0] > floor.get(table, 0):
                    raise _Broken(
                        table, cur.row[0], "is not in the chain (inserted after the head)"
                    )
                cur.advance()
        stored_seals = {
            str(r[0]): r for r in conn.execute(f"SELECT {SEAL_COLUMNS} FROM seals ORDER BY id")
        }
        for sid, (digest, seq) in seals.items():
            row = stored_seals.pop(sid, None)
            if row is None:
                raise _Broken(SEALS, sid, f"is missing (chained by audit record {seq})", seq)
            if seal_hash(row) != digest:
                raise _Broken(
                    SEALS, sid, f"its content does not match its newest version (record {seq})"
                )
        extra = [sid for sid in stored_seals if sid not in old_seals]
        if extra:
            raise _Broken(SEALS, sorted(extra)[0], "is not in the chain (inserted)")
    except _Broken as b:
        return Verdict(False, count, prev, b.seq, b.problem, b.table, b.row, expected_seq - 1, rows)
    head_seq = expected_seq - 1
    note = ""
    if anchor is not None:
        if anchor.seq > head_seq:
            return Verdict(
                False,
                count,
                prev,
                head_seq + 1,
                f"the chain ends at record {head_seq} but the anchor signed at {anchor.ts} holds "
                f"record {anchor.seq}: records {head_seq + 1}..{anchor.seq} (and the rows they "
                "chain) are missing",
                seq=head_seq,
                rows=rows,
            )
        if anchor.seq == start_seq:
            anchored_hash = start[0] if start else GENESIS
        if anchor.seq < start_seq:
            note = f"the anchor (record {anchor.seq}) is older than the retained chain"
        elif anchored_hash != anchor.hash:
            return Verdict(
                False,
                count,
                prev,
                anchor.seq,
                "it differs from the anchored head (the chain was rewritten from here on)",
                seq=head_seq,
                rows=rows,
            )
        else:
            note = f"reaches the anchor at record {anchor.seq}"
    return Verdict(True, count, prev, seq=head_seq, rows=rows, note=note)


# -- the signed head ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedHead:
    """The chain's head, signed with the site's Ed25519 key; kept outside the database."""

    site: str
    seq: int
    hash: str
    ts: int
    key: str  # the signer's public key (hex), for reference: check with the site's own key
    sig: str

    @staticmethod
    def message(site: str, seq: int, digest: str, ts: int) -> bytes:
        return canonical({"site": site, "seq": seq, "hash": digest, "ts": ts}).encode()

    def valid(self, public_key: Ed25519PublicKey) -> bool:
        try:
            public_key.verify(
                bytes.fromhex(self.sig), self.message(self.site, self.seq, self.hash, self.ts)
            )
        except (InvalidSignature, ValueError):
            return False
        return True

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "site": self.site,
                "seq": self.seq,
                "hash": self.hash,
                "ts": self.ts,
                "key": self.key,
                "sig": self.sig,
            }
        )

    @classmethod
    def from_json(cls, data: bytes | str | dict[str, Any]) -> SignedHead:
        d = data if isinstance(data, dict) else orjson.loads(data)
        return cls(
            str(d["site"]),
            int(d["seq"]),
            str(d["hash"]),
            int(d["ts"]),
            str(d["key"]),
            str(d["sig"]),
        )


def sign_head(key: Ed25519PrivateKey, site: str, seq: int, digest: str, ts: int) -> SignedHead:
    sig = key.sign(SignedHead.message(site, seq, digest, ts)).hex()
    return SignedHead(site, seq, digest, ts, public_hex(key.public_key()), sig)


def public_hex(pub: Ed25519PublicKey) -> str:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The site's signing key: created (0600, PKCS#8 PEM) on first start, with `<name>.pub`."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_or_create_key(path)  # another process made it meanwhile
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        Path(str(path) + ".pub").write_text(public_hex(key.public_key()) + "\n")
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return loaded


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A public key file: raw hex (`<key>.pub`), a PEM public key, or the private key itself."""
    data = path.read_bytes()
    if b"PRIVATE KEY" in data:
        priv = serialization.load_pem_private_key(data, password=None)
        if not isinstance(priv, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 key")
        return priv.public_key()
    if b"PUBLIC KEY" in data:
        pub = serialization.load_pem_public_key(data)
        if not isinstance(pub, Ed25519PublicKey):
            raise ValueError(f"{path} is not an Ed25519 key")
        return pub
    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(data.decode().strip()))
