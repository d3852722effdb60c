"""Backup, restore and upgrade of the store (docs/deploy.md): `sealwatch backup` copies the
store while a real daemon ingests through a real Mosquitto, alerts keep flowing, and the copy
verifies; `sealwatch restore` refuses a running daemon and a tampered file, keeps the old
store aside; stores written by the previous schemas open with the current code and their
ledger verifies."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from daemon import audit, backup
from daemon.config import load_settings
from daemon.datadir import DataDirLock
from daemon.pipeline.flow import Pipeline, new_metrics
from daemon.pipeline.items import Incoming, Kind
from daemon.store import SCHEMA, SCHEMA_VERSION, Store
from policies.site import load_site
from tests.support.daemon import (
    EXAMPLE_SITE,
    AlertWatcher,
    DaemonProcess,
    Gateway,
    now_ts,
    sealwatch_cli,
    wait_until,
    write_site,
)
from tests.support.mosquitto import Mosquitto
from tests.test_ledger import T0, _write_store, ev

SITE = str(EXAMPLE_SITE)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir whose store the real pipeline wrote (events, alerts, a seal, actions …)."""
    data = tmp_path_factory.mktemp("written")
    asyncio.run(_write_store(data))
    return data


@pytest.fixture(scope="module")
def written_without_seals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store the real pipeline wrote with no seal in it: a seal's pre-seal record
    (schema 3) is in its ledger hash, so only such a store has an exact schema-2 form."""
    data = tmp_path_factory.mktemp("no-seals")
    asyncio.run(_write_without_seals(data))
    return data


async def _write_without_seals(data: Path) -> None:
    site = load_site(write_site(data, "no-seals"))  # the reference site, its seals removed
    settings = load_settings(site, {"SEALWATCH_DATA_DIR": str(data)})
    now = [T0]
    store = Store(settings.db_path)
    p = Pipeline(site, settings, store, metrics=new_metrics(), clock=lambda: now[0])
    p.start()
    p.release()
    for i in range(10):
        door = "fire-exit-north" if i % 2 else "gate-outer"
        for kind in ("door.forced", "door.closed"):
            p.process([ev(now[0], door, {"type": kind})])
            now[0] += 1_000_000
            p.tick()
    p.process([Incoming(Kind.EVENT, b"not json", "mqtt", now[0], topic="t/x", device="x")])
    await p.stop(snapshot=True)
    store.close()


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _dump(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return sealwatch_cli(*args)


def test_backup_verifies_and_restore_keeps_the_old_store_aside(
    written: Path, tmp_path: Path
) -> None:
    data = _copy(written, tmp_path / "data")
    audit.load_or_create_key(data / "audit-ed25519.key")  # the daemon makes it on first start
    out = tmp_path / "site.backup"
    r = _cli("backup", "--config", SITE, "--data-dir", str(data), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "verified (integrity ok, ledger ok)" in r.stdout and "signed head" in r.stdout
    assert _dump(out) == _dump(data / "sealwatch.db")
    head = orjson.loads((tmp_path / "site.backup.head.json").read_bytes())
    assert head["seq"] == backup.check(out).audit_seq > 0

    # restore into a data dir whose store went on (or went bad): the old one is kept aside
    conn = sqlite3.connect(data / "sealwatch.db")
    conn.execute("DELETE FROM events WHERE seq = (SELECT MAX(seq) FROM events)")
    conn.commit()
    conn.close()
    r = _cli("restore", "--config", SITE, "--data-dir", str(data), str(out))
    assert r.returncode == 0, r.stderr
    assert "previous store is kept as" in r.stdout
    assert _dump(data / "sealwatch.db") == _dump(out)
    aside = list(data.glob("sealwatch.db.before-restore-*"))
    assert [p.name.endswith(("-wal", "-shm")) for p in aside].count(False) == 1
    # the restored store reaches the signed head the backup noted
    r = _cli(
        "audit",
        "verify",
        "--config",
        SITE,
        "--data-dir",
        str(data),
        "--anchor",
        str(tmp_path / "site.backup.head.json"),
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_restore_refuses_a_tampered_backup_and_a_running_daemon(
    written: Path, tmp_path: Path
) -> None:
    data = _copy(written, tmp_path / "data")
    before = _dump(data / "sealwatch.db")
    out = tmp_path / "b.db"
    backup.take(data / "sealwatch.db", out)
    bad = tmp_path / "bad.db"
    shutil.copy(out, bad)
    conn = sqlite3.connect(bad)
    conn.execute("UPDATE events SET device = 'gate-inner' WHERE seq = 3")
    conn.commit()
    conn.close()
    r = _cli("restore", "--config", SITE, "--data-dir", str(data), str(bad))
    assert r.returncode == 1 and "ledger broken at events 3" in r.stderr, r.stderr
    assert _dump(data / "sealwatch.db") == before
    # a daemon (here: this process) holding the data dir
    with DataDirLock(data):
        r = _cli("restore", "--config", SITE, "--data-dir", str(data), str(out))
    assert r.returncode == 1 and "in use by another sealwatch" in r.stderr, r.stderr
    assert "stop it before restoring" in r.stderr
    assert not list(data.glob("*.before-restore-*"))
    # not a store at all
    junk = tmp_path / "junk"
    junk.write_bytes(b"x" * 4096)
    r = _cli("restore", "--config", SITE, "--data-dir", str(data), str(junk))
    assert r.returncode == 1 and "not restored" in r.stderr
    # a backup of a tampered store is refused before it is kept
    r = _cli("backup", "--config", SITE, "--data-dir", str(data), "-o", str(tmp_path / "x"))
    assert r.returncode == 0
    shutil.copy(bad, data / "sealwatch.db")
    for side in ("-wal", "-shm"):
        (data / f"sealwatch.db{side}").unlink(missing_ok=True)
    r = _cli("backup", "--config", SITE, "--data-dir", str(data), "-o", str(tmp_path / "y"))
    assert r.returncode == 1 and "nothing written" in r.stderr
    assert not (tmp_path / "y").exists() and not (tmp_path / "y.part").exists()


# --- upgrades ---------------------------------------------------------------------------


def _rebuild(current: Path, old: Path, ddl: str, *, ledger: bool) -> None:
    """`old`: the rows of the store `current` under an older schema's DDL."""
    src = sqlite3.connect(current)
    dst = sqlite3.connect(old)
    dst.executescript(ddl)
    for (table,) in src.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
        if not ledger and table in ("audit",):
            continue
        cols = [str(r[1]) for r in dst.execute(f"PRAGMA table_info({table})")]
        names = ", ".join(f'"{c}"' for c in cols)
        rows = src.execute(f"SELECT {names} FROM {table}").fetchall()
        if table == "meta":
            rows = [r for r in rows if ledger and r[0] != "schema_version"]
        dst.executemany(f"INSERT INTO {table}({names}) VALUES ({', '.join('?' * len(cols))})", rows)
    if ledger:
        dst.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    dst.commit()
    src.close()
    dst.close()


def test_a_store_of_schema_2_opens_upgraded_with_its_ledger_and_data(
    written_without_seals: Path, tmp_path: Path
) -> None:
    current = written_without_seals / "sealwatch.db"
    conn = sqlite3.connect(current)
    assert conn.execute("SELECT COUNT(*) FROM seals").fetchone() == (0,)
    assert conn.execute("SELECT COUNT(*) FROM transitions").fetchone()[0] > 10
    conn.close()
    old = tmp_path / "v2.db"
    _rebuild(current, old, SCHEMA.replace(", precheck TEXT", ""), ledger=True)
    # the old store verifies as it is (through a migrated copy: the file is not changed) …
    as_written = _dump(old)
    assert backup.check(old).schema_version == 2
    assert _dump(old) == as_written and "precheck" not in "".join(as_written)
    store = Store(old)  # … is migrated on open …
    assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
    store.close()
    checked = backup.check(old)  # … and still verifies, holding every row
    want = backup.check(current)
    assert (checked.audit_seq, checked.audit_hash, checked.events) == (
        want.audit_seq,
        want.audit_hash,
        want.events,
    )
    assert checked.schema_version == SCHEMA_VERSION
    for table in ("events", "transitions", "actions", "rejections", "audit"):
        assert _rows(old, table) == _rows(current, table), table


def test_a_store_of_schema_1_opens_upgraded_and_the_old_rows_stay_below_the_floor(
    written: Path, tmp_path: Path
) -> None:
    old = tmp_path / "v1.db"
    _rebuild(written / "sealwatch.db", old, SCHEMA.replace(", precheck TEXT", ""), ledger=False)
    store = Store(old)
    assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
    floor = orjson.loads(store.get_meta("ledger_floor") or "{}")
    store.close()
    assert floor["events"] == len(_rows(old, "events")) > 0
    checked = backup.check(old)
    assert checked.audit_seq == 0 and checked.events == len(
        _rows(written / "sealwatch.db", "events")
    )
    for table in ("events", "transitions", "actions"):
        assert _rows(old, table) == _rows(written / "sealwatch.db", table), table


def test_a_store_of_the_current_schema_opens_unchanged(written: Path, tmp_path: Path) -> None:
    data = _copy(written, tmp_path / "data")
    before = _dump(data / "sealwatch.db")
    Store(data / "sealwatch.db").close()
    assert _dump(data / "sealwatch.db") == before


def _rows(db: Path, table: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return list(conn.execute(f"SELECT * FROM {table} ORDER BY rowid"))
    finally:
        conn.close()


# --- online, against a real daemon ------------------------------------------------------


@pytest.mark.slow
async def test_a_backup_taken_while_the_daemon_ingests_keeps_alerts_flowing_and_restores(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    sid = "backup-live"
    site = write_site(tmp_path, sid)
    data = tmp_path / "data"
    proc = DaemonProcess(site, mosquitto_session, data).start()
    out = tmp_path / "live.backup"
    try:
        await proc.ready()
        async with (
            AlertWatcher(mosquitto_session, sid) as alerts,
            Gateway(mosquitto_session, sid) as gw,
        ):

            def forced() -> int:
                return sum(
                    t["policy"] == "door-forced" and t["state"] == "raised"
                    for t in alerts.transitions
                )

            async def one_alert() -> None:
                n = forced()
                await gw.event("fire-exit-north", "door.forced", ts=now_ts())
                await wait_until(lambda: forced() > n, 15, "a door-forced alert")
                await gw.event("fire-exit-north", "door.closed", ts=now_ts())

            for _ in range(20):  # a store of some pages before the backup starts
                await one_alert()
            accepted_before = forced()
            # one page per step with a pause: the copy takes a while, the daemon goes on
            backup_run = asyncio.create_task(
                asyncio.to_thread(
                    subprocess.run,
                    [
                        sys.executable,
                        "-m",
                        "daemon",
                        "backup",
                        "--config",
                        str(site),
                        "--data-dir",
                        str(data),
                        "-o",
                        str(out),
                        "--pages",
                        "1",
                        "--pause",
                        "0.05",
                    ],
                    capture_output=True,
                    text=True,
                    timeout=240,
                )
            )
            during = 0
            while not backup_run.done():
                await one_alert()
                during += 1 if not backup_run.done() else 0
            result = await backup_run
            assert result.returncode == 0, result.stderr
            assert during > 0, "no alert was raised while the backup ran"
            for _ in range(3):  # and after it
                await one_alert()
    finally:
        assert proc.terminate() == 0

    live = data / "sealwatch.db"
    checked = backup.check(out)
    assert checked.events > 0
    # everything accepted before the backup began is in it, exactly as the daemon stored it
    copied = _rows(out, "events")
    assert copied == _rows(live, "events")[: len(copied)]
    forced_in_copy = sum(
        orjson.loads(r[9]).get("type") == "door.forced" for r in copied if isinstance(r[9], str)
    )
    assert forced_in_copy >= accepted_before
    # restore into the stopped daemon's data dir: verified, the live store kept aside
    r = _cli("restore", "--config", str(site), "--data-dir", str(data), str(out))
    assert r.returncode == 0, r.stderr
    r = _cli("audit", "verify", "--config", str(site), "--data-dir", str(data))
    assert r.returncode == 0, r.stdout + r.stderr
    assert _rows(data / "sealwatch.db", "events") == copied
