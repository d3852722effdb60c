"""Inclusion proofs carried in the archive: an auditor checks, on a machine that never saw the
database, that every figure comes from records in the ledger, unchanged.

`proofs` (beside the signed document; the signature does not cover it, the proofs prove
themselves against the signed `ledger.head_hash`) holds:
- `site_file`: the site file's text (its parsed fingerprint is the signed `site.fingerprint`);
- `rows`: every stored row the archive was built from (`Rows.used`), with the columns the
  ledger hashes (daemon/audit.py `LEDGER_TABLES`);
- `chain`: `prev` and the audit records `[seq, ts, kind, body]` from the first one that chains
  any of those rows (or the seal's first record, or the `config` record it names) up to the
  head at the seal's end.

`check` recomputes the chain from `prev` and requires it to end at the signed head; requires
each row's content hash in the last ledger record of the chain that lists its id; and rebuilds
the archive from those rows and records alone (an in-memory store, the same builder) and
requires the signed document. A row older than the proof window (`MAX_RECORDS` records before
the head) is listed in `beyond`: its inclusion is then checked only against the store.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import orjson

from daemon.audit import (
    ACTION_COLUMNS,
    EVENT_COLUMNS,
    SEAL_COLUMNS,
    SEALS,
    TRANSITION_COLUMNS,
    record_hash,
    row_hash,
    seal_hash,
)
from daemon.store import SCHEMA

Json = dict[str, Any]
FORMAT = "sealwatch-proofs/1"
MAX_RECORDS = 200_000  # audit records a proof carries at most (≈ 150 bytes each)
# table → (id column, the hashed columns)
TABLES: dict[str, tuple[str, str]] = {
    "events": ("seq", EVENT_COLUMNS),
    "transitions": ("id", TRANSITION_COLUMNS),
    "actions": ("id", ACTION_COLUMNS),
    SEALS: ("id", SEAL_COLUMNS),
}


def _blobs(values: tuple[Any, ...]) -> list[Any]:
    return [{"blob": bytes(v).hex()} if isinstance(v, bytes | memoryview) else v for v in values]


def build(
    conn: sqlite3.Connection,
    used: dict[str, set[Any]],
    ledger: Json,
    site_text: str,
    max_records: int = MAX_RECORDS,
) -> Json:
    """The proofs of an archive built on `conn` (its `Rows.used` and `ledger` section)."""
    rows: dict[str, list[list[Any]]] = {}
    for table, (id_col, cols) in TABLES.items():
        ids = sorted(used.get(table, ()), key=str)
        got: list[list[Any]] = []
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            got += [
                _blobs(r)
                for r in conn.execute(
                    f"SELECT {cols} FROM {table} WHERE {id_col} IN ({marks})", chunk
                )
            ]
        rows[table] = sorted(got, key=lambda r: str(r[0]) if table == SEALS else r[0])
    head = ledger.get("head_seq")
    wanted = {(t, r[0]) for t, rs in rows.items() for r in rs}
    floor = min(
        (s for s in (ledger.get("first_seq"), _config_seq(conn, head)) if s is not None),
        default=head,
    )
    records: list[list[Any]] = []
    prev = None
    if head is not None:
        for seq, ts, kind, body, prev_hash in _backwards(conn, int(head)):
            records.append([seq, ts, kind, body])
            prev = prev_hash
            if kind == "ledger":
                for table, pairs in orjson.loads(body).items():
                    for rid, _digest in pairs:
                        wanted.discard((table, rid))
            if (not wanted and (floor is None or seq <= floor)) or len(records) >= max_records:
                break
    records.reverse()
    return {
        "format": FORMAT,
        "site_file": site_text,
        "rows": rows,
        "chain": {"prev": prev, "records": records},
        "beyond": sorted([t, r] for t, r in wanted),
    }


def _backwards(conn: sqlite3.Connection, head: int) -> Iterator[tuple[int, int, str, str, str]]:
    cur = conn.execute(
        "SELECT seq, ts, kind, body, prev FROM audit WHERE seq <= ? ORDER BY seq DESC", (head,)
    )
    for r in cur:
        yield int(r[0]), int(r[1]), str(r[2]), str(r[3]), str(r[4])


def _config_seq(conn: sqlite3.Connection, head: Any) -> int | None:
    if head is None:
        return None
    row = conn.execute(
        "SELECT MAX(seq) FROM audit WHERE kind = 'config' AND seq <= ?", (head,)
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _unblob(values: list[Any]) -> list[Any]:
    return [
        bytes.fromhex(v["blob"]) if isinstance(v, dict) and set(v) == {"blob"} else v
        for v in values
    ]


def check(doc: Json) -> tuple[list[str], list[str]]:
    """(problems, notes) of the proofs a signed archive carries. The signature is checked
    elsewhere (daemon/archive/sign.py); this proves the content against the signed head."""
    from policies.site import SiteError, parse_site

    proofs = doc.get("proofs")
    if not isinstance(proofs, dict) or proofs.get("format") != FORMAT:
        return ["the archive carries no inclusion proofs"], []
    ledger = doc.get("ledger") or {}
    chain = proofs.get("chain") or {}
    records = chain.get("records") or []
    try:
        head, problems = _walk(chain.get("prev"), records)
    except (TypeError, ValueError, IndexError):
        return ["the proofs' chain is malformed"], []
    if head != (ledger.get("head_seq"), ledger.get("head_hash")):
        problems.append(
            f"the proofs' chain ends at record {head[0]}, not at the signed head "
            f"{ledger.get('head_seq')}: records were changed, dropped or added"
        )
    listed: dict[tuple[str, Any], str] = {}
    for _seq, _ts, kind, body in records:
        if kind == "ledger":
            for table, pairs in orjson.loads(body).items():
                for rid, digest in pairs:
                    listed[(table, rid)] = digest  # the last version of a seal row wins
    beyond = {(t, r) for t, r in proofs.get("beyond") or []}
    rows = proofs.get("rows") or {}
    for table, values in rows.items():
        if table not in TABLES:
            problems.append(f"the proofs carry rows of an unknown table {table!r}")
            continue
        for r in values:
            key = (table, r[0])
            digest = seal_hash(_unblob(r)) if table == SEALS else row_hash(_unblob(r))
            if key in beyond:
                continue
            if key not in listed:
                problems.append(f"{table} {r[0]} is in no ledger record of the proofs' chain")
            elif listed[key] != digest:
                problems.append(f"{table} {r[0]} differs from its hash in the ledger")
    notes = []
    if beyond:
        notes.append(
            f"{len(beyond)} rows predate the proofs' window ({MAX_RECORDS} records): "
            "check them against the store (archive verify --config)"
        )
    try:
        site = parse_site(str(proofs.get("site_file")))
    except (SiteError, ValueError) as exc:
        return [*problems, f"the proofs' site file does not load: {exc}"], notes
    rebuilt = _rebuild(rows, records, chain.get("prev"), site, str(doc["seal"].get("id")))
    mine = {k: v for k, v in doc.items() if k not in ("signature", "proofs")}
    if rebuilt is None:
        problems.append("the proofs' rows hold no such seal")
    else:
        for name in sorted(set(mine) | set(rebuilt)):
            if mine.get(name) != rebuilt.get(name):
                problems.append(f"'{name}' is not what the proofs' rows give")
    return problems, notes


def _walk(prev: Any, records: list[list[Any]]) -> tuple[tuple[Any, Any], list[str]]:
    problems: list[str] = []
    h, last = str(prev), None
    for seq, ts, kind, body in records:
        if last is not None and seq != last + 1:
            problems.append(f"the proofs' chain skips from record {last} to {seq}")
        h = record_hash(h, int(seq), int(ts), str(kind), str(body))
        last = seq
    return (last, h if last is not None else None), problems


def _rebuild(
    rows: dict[str, list[list[Any]]],
    records: list[list[Any]],
    prev: Any,
    site: Any,
    seal_id: str,
) -> Json | None:
    from daemon.archive.model import build_archive

    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(SCHEMA)
        for table, values in rows.items():
            cols = TABLES[table][1]
            marks = ",".join("?" * len(cols.split(",")))
            conn.executemany(
                f"INSERT INTO {table}({cols}) VALUES ({marks})", [_unblob(v) for v in values]
            )
        h = str(prev)
        audit = []
        for seq, ts, kind, body in records:
            digest = record_hash(h, int(seq), int(ts), str(kind), str(body))
            audit.append((seq, ts, kind, body, h, digest))
            h = digest
        conn.executemany("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?)", audit)
        return build_archive(conn, site, seal_id)
    finally:
        conn.close()
