"""The tamper-evident audit chain: each record carries the sha256 of the one before.

A record's hash covers its sequence number, time, kind, body and the previous hash, so editing,
deleting or reordering any stored record breaks the chain at that record. When retention prunes
the oldest records, the hash of the last pruned one is kept as the chain's anchor.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from typing import Any

import orjson

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


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    records: int
    head: str
    broken_seq: int | None = None
    problem: str = ""

    def describe(self) -> str:
        if self.ok:
            return f"audit chain intact: {self.records} records, head {self.head}"
        return f"audit chain broken at record {self.broken_seq}: {self.problem}"


def verify(conn: sqlite3.Connection) -> Verdict:
    """Walk the chain from its anchor; name the first record that does not fit."""
    anchor = conn.execute("SELECT value FROM meta WHERE key='audit_anchor'").fetchone()
    anchor_seq = conn.execute("SELECT value FROM meta WHERE key='audit_anchor_seq'").fetchone()
    prev = anchor[0] if anchor else GENESIS
    expected_seq = (int(anchor_seq[0]) if anchor_seq else 0) + 1
    count = 0
    for seq, ts, kind, body, stored_prev, stored_hash in conn.execute(
        "SELECT seq, ts, kind, body, prev, hash FROM audit ORDER BY seq"
    ):
        if seq != expected_seq:
            return Verdict(
                False,
                count,
                prev,
                expected_seq,
                f"record {expected_seq} is missing (next stored is {seq})",
            )
        if stored_prev != prev:
            return Verdict(
                False, count, prev, seq, "its previous-hash does not match the record before it"
            )
        if record_hash(prev, seq, ts, kind, body) != stored_hash:
            return Verdict(False, count, prev, seq, "its content does not match its hash")
        prev, expected_seq, count = stored_hash, seq + 1, count + 1
    return Verdict(True, count, prev)
