"""The ledger: every row an auditor relies on is in the hash chain, and its signed head is kept
outside the database. A store written by the real pipeline is tampered with in every way an
insider with a copy of the database could; `audit verify` names the first bad record."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from daemon import audit
from daemon.config import load_settings
from daemon.pipeline.flow import Pipeline, new_metrics
from daemon.pipeline.items import Incoming, Kind
from daemon.store import SCHEMA, SCHEMA_VERSION, Store
from policies.site import load_site
from policies.timefmt import format_ts, parse_ts
from tests.support.daemon import (
    EXAMPLE_SITE,
    AlertWatcher,
    Gateway,
    running_daemon,
    sealwatch_cli,
    write_site,
)
from tests.support.mosquitto import Mosquitto

T0 = parse_ts("2026-06-07T08:00:00+08:00")
SITE = load_site(EXAMPLE_SITE)


def ev(now: int, device: str, body: dict[str, object]) -> Incoming:
    payload = orjson.dumps({"ts": format_ts(now, SITE.tz), **body})
    return Incoming(Kind.EVENT, payload, "mqtt", now, topic=f"t/{device}", device=device)


async def _write_store(data: Path) -> None:
    settings = load_settings(SITE, {"SEALWATCH_DATA_DIR": str(data)})
    now = [T0]
    store = Store(settings.db_path)
    p = Pipeline(SITE, settings, store, metrics=new_metrics(), clock=lambda: now[0])
    p.start()
    p.release()

    def step(*items: Incoming, dt: int = 1_000_000) -> None:
        p.process(list(items))
        now[0] += dt
        p.tick()

    console = "console-1"
    step(
        ev(
            now[0],
            console,
            {
                "type": "seal.start",
                "seal": "s-1",
                "name": "Paper B",
                "classification": "secret",
                "badge": "S2001",
            },
        )
    )
    for _ in range(5):
        step(ev(now[0], "gate-outer", {"type": "door.opened"}))
        step(ev(now[0], "gate-outer", {"type": "door.closed"}))
    step(ev(now[0], "fire-exit-north", {"type": "door.opened"}), dt=40_000_000)
    step(ev(now[0], "fire-exit-north", {"type": "door.closed"}))
    # something that does not parse: a stored rejection
    p.process([Incoming(Kind.EVENT, b"not json", "mqtt", now[0], topic="t/x", device="gate-outer")])
    await p.suppression(
        "jam-work",
        format_ts(now[0] + 60_000_000, SITE.tz),
        format_ts(now[0] + 120_000_000, SITE.tz),
        "service",
        "S2001",
        "cli",
    )
    alerts = [r["alert_id"] for r in store.transitions()] or ["none"]
    step(ev(now[0], console, {"type": "alert.ack", "alert_id": alerts[0], "badge": "O4001"}))
    if alerts[0] != "none":
        await p.comment(alerts[0], "O4001", "checked the door", "cli")
    step(ev(now[0], console, {"type": "seal.end", "seal": "s-1", "badge": "S2002"}))
    p.audit("auth", {"event": "login", "user": "alice"})
    for _ in range(3):
        step(ev(now[0], "gate-outer", {"type": "door.opened"}))
        step(ev(now[0], "gate-outer", {"type": "door.closed"}))
    await p.stop(snapshot=True)
    store.close()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("ledger")
    asyncio.run(_write_store(data))
    return data / "sealwatch.db"


@pytest.fixture
def db(pristine: Path, tmp_path: Path) -> Path:
    target = tmp_path / "sealwatch.db"
    src = sqlite3.connect(pristine)
    dst = sqlite3.connect(target)
    src.backup(dst)
    src.close()
    dst.close()
    return target


def verdict(path: Path, **kw: object) -> audit.Verdict:
    conn = sqlite3.connect(path)
    try:
        return audit.verify(conn, **kw)  # type: ignore[arg-type]
    finally:
        conn.close()


def sql(path: Path, *stmts: str) -> None:
    conn = sqlite3.connect(path)
    for s in stmts:
        conn.execute(s)
    conn.commit()
    conn.close()


def test_the_real_pipeline_writes_a_ledger_that_verifies_and_covers_every_table(
    pristine: Path,
) -> None:
    v = verdict(pristine)
    assert v.ok, v.describe()
    conn = sqlite3.connect(pristine)
    for table in ("events", "rejections", "transitions", "actions", "suppressions", "seals"):
        assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] > 0, table
    kinds = {k for (k,) in conn.execute("SELECT DISTINCT kind FROM audit")}
    assert {"ledger", "config", "auth", "transition", "action"} <= kinds
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(
        SCHEMA_VERSION
    )
    conn.close()


def _mid(path: Path, table: str, idc: str = "id") -> object:
    conn = sqlite3.connect(path)
    ids = [r[0] for r in conn.execute(f"SELECT {idc} FROM {table} ORDER BY {idc}")]
    conn.close()
    return ids[len(ids) // 2]


Tamper = Callable[[Path], tuple[str, object]]


def _edit_event(p: Path) -> tuple[str, object]:
    i = _mid(p, "events", "seq")
    sql(p, f"UPDATE events SET device = 'gate-inner' WHERE seq = {i}")
    return "events", i


def _delete_event(p: Path) -> tuple[str, object]:
    i = _mid(p, "events", "seq")
    sql(p, f"DELETE FROM events WHERE seq = {i}")
    return "events", i


def _insert_event(p: Path) -> tuple[str, object]:
    conn = sqlite3.connect(p)
    top = conn.execute("SELECT MAX(seq) FROM events").fetchone()[0]
    conn.close()
    sql(
        p,
        f"INSERT INTO events SELECT {top} + 1, ts, device_ts, received, device, type, origin,"
        f" actor, digest, source FROM events WHERE seq = {top}",
    )
    return "events", top + 1


def _reorder_events(p: Path) -> tuple[str, object]:
    i = _mid(p, "events", "seq")
    assert isinstance(i, int)
    sql(
        p,
        f"UPDATE events SET seq = -1 WHERE seq = {i}",
        f"UPDATE events SET seq = {i} WHERE seq = {i + 1}",
        f"UPDATE events SET seq = {i + 1} WHERE seq = -1",
    )
    return "events", i


def _edit_transition(p: Path) -> tuple[str, object]:
    i = _mid(p, "transitions")
    sql(p, f"UPDATE transitions SET severity = 'low' WHERE id = {i}")
    return "transitions", i


def _delete_transition(p: Path) -> tuple[str, object]:
    i = _mid(p, "transitions")
    sql(p, f"DELETE FROM transitions WHERE id = {i}")
    return "transitions", i


def _edit_action(p: Path) -> tuple[str, object]:
    i = _mid(p, "actions")
    sql(p, f"UPDATE actions SET actor = 'NOBODY' WHERE id = {i}")
    return "actions", i


def _delete_action(p: Path) -> tuple[str, object]:
    i = _mid(p, "actions")
    sql(p, f"DELETE FROM actions WHERE id = {i}")
    return "actions", i


def _edit_seal(p: Path) -> tuple[str, object]:
    sql(p, "UPDATE seals SET ended_by = 'G3001' WHERE id = 's-1'")
    return "seals", "s-1"


def _delete_seal(p: Path) -> tuple[str, object]:
    sql(p, "DELETE FROM seals WHERE id = 's-1'")
    return "seals", "s-1"


def _insert_seal(p: Path) -> tuple[str, object]:
    sql(p, "INSERT INTO seals(id, name, status) VALUES ('s-0', 'fake', 'ended')")
    return "seals", "s-0"


def _edit_suppression(p: Path) -> tuple[str, object]:
    sql(p, 'UPDATE suppressions SET "end" = "end" + 86400000000 WHERE id = 1')
    return "suppressions", 1


def _delete_suppression(p: Path) -> tuple[str, object]:
    sql(p, "DELETE FROM suppressions WHERE id = 1")
    return "suppressions", 1


def _edit_rejection(p: Path) -> tuple[str, object]:
    sql(p, "UPDATE rejections SET reason = 'fine' WHERE id = 1")
    return "rejections", 1


def _edit_audit(p: Path) -> tuple[str, object]:
    i = _mid(p, "audit", "seq")
    sql(p, f"UPDATE audit SET ts = ts + 1 WHERE seq = {i}")
    return "audit", i


def _delete_audit(p: Path) -> tuple[str, object]:
    i = _mid(p, "audit", "seq")
    sql(p, f"DELETE FROM audit WHERE seq = {i}")
    return "audit", i


def _reorder_audit(p: Path) -> tuple[str, object]:
    i = _mid(p, "audit", "seq")
    assert isinstance(i, int)
    sql(
        p,
        f"UPDATE audit SET seq = -1 WHERE seq = {i}",
        f"UPDATE audit SET seq = {i} WHERE seq = {i + 1}",
        f"UPDATE audit SET seq = {i + 1} WHERE seq = -1",
    )
    return "audit", i


TAMPERING = [
    _edit_event,
    _delete_event,
    _insert_event,
    _reorder_events,
    _edit_transition,
    _delete_transition,
    _edit_action,
    _delete_action,
    _edit_seal,
    _delete_seal,
    _insert_seal,
    _edit_suppression,
    _delete_suppression,
    _edit_rejection,
    _edit_audit,
    _delete_audit,
    _reorder_audit,
]


@pytest.mark.parametrize("tamper", TAMPERING, ids=lambda f: f.__name__.strip("_"))
def test_each_tampering_is_named(db: Path, tamper: Tamper) -> None:
    assert verdict(db).ok
    table, row = tamper(db)
    v = verdict(db)
    assert not v.ok
    if table == "audit":
        assert v.table is None and v.broken_seq == row, v.describe()
    else:
        assert (v.table, v.row) == (table, row), v.describe()


def _head(db: Path, key: Ed25519PrivateKey) -> audit.SignedHead:
    conn = sqlite3.connect(db)
    seq, digest, ts = conn.execute(
        "SELECT seq, hash, ts FROM audit ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    conn.close()
    return audit.sign_head(key, SITE.id, seq, digest, ts)


def test_truncating_every_table_is_caught_only_with_the_anchor(db: Path, tmp_path: Path) -> None:
    key = audit.load_or_create_key(tmp_path / "k.key")
    anchor = _head(db, key)
    conn = sqlite3.connect(db)
    # the newest records (after the seal ended) and every row they chain: cut them all off
    sealed = conn.execute(
        "SELECT MAX(seq) FROM audit WHERE kind = 'ledger' AND body LIKE '%\"seals\"%'"
    ).fetchone()[0]
    cut = conn.execute("SELECT MIN(seq) FROM audit WHERE seq > ?", (sealed,)).fetchone()[0]
    for (body,) in conn.execute(
        "SELECT body FROM audit WHERE seq >= ? AND kind='ledger'", (cut,)
    ).fetchall():
        for table, entries in orjson.loads(body).items():
            idc = "seq" if table == "events" else "id"
            for rid, _h in entries:
                conn.execute(f"DELETE FROM {table} WHERE {idc} = ?", (rid,))
    conn.execute("DELETE FROM audit WHERE seq >= ?", (cut,))
    conn.commit()
    conn.close()
    assert verdict(db).ok  # without an anchor a clean cut is invisible
    v = verdict(db, anchor=anchor, public_key=key.public_key())
    assert not v.ok and v.broken_seq == cut, v.describe()
    assert f"records {cut}..{anchor.seq}" in v.problem


def test_a_forged_anchor_is_refused_and_a_true_one_accepted(db: Path, tmp_path: Path) -> None:
    key = audit.load_or_create_key(tmp_path / "k.key")
    assert (tmp_path / "k.key").stat().st_mode & 0o777 == 0o600
    true = _head(db, key)
    v = verdict(db, anchor=true, public_key=key.public_key())
    assert v.ok and "reaches the anchor" in v.note, v.describe()
    forger = Ed25519PrivateKey.generate()
    forged = audit.sign_head(forger, SITE.id, true.seq + 5, "f" * 64, true.ts)
    v = verdict(db, anchor=forged, public_key=key.public_key())
    assert not v.ok and "signature" in v.problem
    # a true signature on edited fields
    edited = audit.SignedHead(true.site, true.seq + 5, true.hash, true.ts, true.key, true.sig)
    assert not verdict(db, anchor=edited, public_key=key.public_key()).ok
    # round trip through a file
    back = audit.SignedHead.from_json(true.to_json())
    assert back == true and back.valid(audit.load_public_key(tmp_path / "k.key.pub"))


def test_retention_prunes_a_prefix_and_the_ledger_still_verifies(db: Path) -> None:
    store = Store(db)
    conn = sqlite3.connect(db)
    mid_ts = conn.execute("SELECT ts FROM events ORDER BY seq LIMIT 1 OFFSET 6").fetchone()[0]
    conn.close()
    out = store.prune(mid_ts + 1)
    store.close()
    assert out["events"] > 0 and out["audit"] > 0, out
    v = verdict(db)
    assert v.ok, v.describe()
    # deleting a row above what was pruned is still caught
    i = _mid(db, "events", "seq")
    sql(db, f"DELETE FROM events WHERE seq = {i}")
    assert (verdict(db).table, verdict(db).row) == ("events", i)


def test_a_store_of_the_previous_schema_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)  # version 1: the same tables, no schema_version, no ledger
    conn.execute(
        "INSERT INTO events VALUES (1, 1, NULL, 1, 'gate-outer', 'door.opened', 'mqtt', NULL, "
        "NULL, '{}')"
    )
    conn.execute("INSERT INTO seals(id, status) VALUES ('old', 'ended')")
    conn.commit()
    conn.close()
    store = Store(path)
    assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
    assert orjson.loads(store.get_meta("ledger_floor") or "{}")["events"] == 1
    store.close()
    v = verdict(path)
    assert v.ok, v.describe()  # the old rows are below the floor
    sql(
        path, "INSERT INTO events VALUES (2, 1, NULL, 1, 'x', 'door.opened', 'm', NULL, NULL, '{}')"
    )
    assert (verdict(path).table, verdict(path).row) == ("events", 2)
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_a_store_of_schema_2_gains_the_seals_precheck_column(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA.replace(", precheck TEXT", ""))
    conn.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    conn.execute("INSERT INTO seals(id, status) VALUES ('old', 'ended')")
    conn.commit()
    conn.close()
    store = Store(path)
    assert store.get_meta("schema_version") == str(SCHEMA_VERSION) == "3"
    assert [(s["id"], s["precheck"]) for s in store.seals()] == [("old", None)]
    store.close()
    # a row without precheck hashes as it did under schema 2, so its chained digest holds
    old = ("old", None, None, None, None, None, "ended", None, None)
    assert audit.seal_hash((*old, None)) == audit.row_hash(old)
    assert audit.seal_hash((*old, "failed")) != audit.row_hash(old)
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.slow
async def test_the_daemon_publishes_its_signed_head_retained_and_it_anchors_the_store(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    sid = "ledger-head"
    path = write_site(tmp_path, sid)
    data = tmp_path / "data"
    async with (
        running_daemon(path, mosquitto_session, data),
        AlertWatcher(mosquitto_session, sid) as alerts,
        Gateway(mosquitto_session, sid) as gw,
    ):
        for door in ("fire-exit-north", "press-hall-door"):
            await gw.event(door, "door.forced")
            await alerts.wait_for("door-forced", "raised", door)
        await asyncio.sleep(1.5)  # the head is published at most once a second
    # a fresh subscriber gets the retained head (the daemon is stopped)
    async with aiomqtt.Client("127.0.0.1", mosquitto_session.port) as c:
        await c.subscribe(f"sealwatch/{sid}/audit/head", qos=1)
        msg = await asyncio.wait_for(anext(aiter(c.messages)), 5)
        assert msg.retain
        head = audit.SignedHead.from_json(bytes(msg.payload))
    assert (data / "audit-ed25519.key").stat().st_mode & 0o777 == 0o600
    assert head.valid(audit.load_public_key(data / "audit-ed25519.key.pub"))
    anchor = tmp_path / "head.json"
    anchor.write_bytes(head.to_json())
    args = ("--config", str(path), "--data-dir", str(data))
    ok = sealwatch_cli("audit", "verify", *args, "--anchor", str(anchor))
    assert ok.returncode == 0 and "reaches the anchor" in ok.stdout, ok.stdout + ok.stderr
    saved = tmp_path / "saved.json"
    assert sealwatch_cli("audit", "head", *args, "-o", str(saved)).returncode == 0
    # cut off the newest records: only the anchor notices
    conn = sqlite3.connect(data / "sealwatch.db")
    conn.execute("DELETE FROM audit WHERE seq > ?", (head.seq - 2,))
    conn.commit()
    conn.close()
    cut = sealwatch_cli("audit", "verify", *args, "--anchor", str(saved))
    assert cut.returncode == 1, cut.stdout  # (here the rows left behind are named first)
