"""What `sealwatch audit verify` costs at three years of events.

Builds a store of N events written the way the live daemon writes them at a realistic rate:
one event per commit (a quiet site's batches hold one event), so one `ledger` audit record per
event, plus an alert transition (with its own audit record) every 20 events and an operator
action every 200. Rows and records are made with the engine stage's own functions
(`row_hash`, `ledger_body`, `AuditChain`) and written with `Store.apply`. Then it times a full
verification and extrapolates linearly (verify is one pass over the chain and the tables) to
three years at the assumed site rate.

    .venv/bin/python benchmarks/bench_audit.py [--events 1000000] [--rate 0.5]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from daemon import audit
from daemon.store import Store, Writes

T0 = 1_780_000_000_000_000
YEARS3_S = 3 * 365.25 * 86_400


def build(store: Store, n: int, commit_every: int = 5000) -> None:
    chain = store.audit
    pending = Writes()
    tid = aid = 0
    for seq in range(1, n + 1):
        ts = T0 + seq * 2_000_000
        source = orjson.dumps(
            {"type": "door.opened", "device": "gate-outer", "ts": "2026-06-07T08:00:00+08:00"}
        ).decode()
        w = Writes()
        w.events.append(
            (seq, ts, None, ts, "gate-outer", "door.opened", "mqtt", None, f"{seq:024x}", source)
        )
        if seq % 20 == 0:
            tid += 1
            line = orjson.dumps({"alert_id": f"a-{tid}", "state": "raised"}).decode()
            row = (
                tid,
                seq,
                ts,
                f"a-{tid}",
                "door-held",
                "gate-outer",
                "high",
                "raised",
                None,
                "held open",
                None,
                None,
                0,
                line,
                line,
            )
            w.transitions.append(row)
            w.audit.append(chain.record(ts, "transition", {"id": tid, "line": line}))
        if seq % 200 == 0:
            aid += 1
            w.actions.append((aid, ts, "alert.ack", "O4001", "console-1", f"a-{tid}", seq, "{}"))
            w.audit.append(chain.record(ts, "action", {"id": aid}))
        body = audit.ledger_body(
            {"events": w.events, "transitions": w.transitions, "actions": w.actions}
        )
        w.audit.append(chain.record(ts, "ledger", body))
        pending.merge(w)
        if seq % commit_every == 0 or seq == n:
            store.apply(pending)
            pending = Writes()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--rate", type=float, default=0.5, help="site events per second (average)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sealwatch.db"
        store = Store(path, synchronous="off")
        t = time.perf_counter()
        build(store, args.events)
        built = time.perf_counter() - t
        store.checkpoint()
        store.close()
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
        conn = sqlite3.connect(path)
        records = conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
        audit_bytes = conn.execute(
            "SELECT SUM(LENGTH(body)) + 150 * COUNT(*) FROM audit"
        ).fetchone()[0]
        t = time.perf_counter()
        v = audit.verify(conn)
        took = time.perf_counter() - t
        conn.close()
        assert v.ok, v.describe()
        per_event_us = took / args.events * 1e6
        n3 = args.rate * YEARS3_S
        print(
            f"store: {args.events:,} events, {records:,} audit records, {size / 1e6:.0f} MB "
            f"(audit ≈ {audit_bytes / 1e6:.0f} MB), built in {built:.0f} s"
        )
        print(f"verify: {took:.1f} s for {v.rows:,} ledger rows = {per_event_us:.1f} µs per event")
        print(
            f"3 years at {args.rate} events/s ({args.rate * 86_400:,.0f}/day): {n3 / 1e6:.1f} M "
            f"events → verify ≈ {n3 * per_event_us / 1e6 / 60:.1f} min, store ≈ "
            f"{size / args.events * n3 / 1e9:.1f} GB"
        )


if __name__ == "__main__":
    main()
