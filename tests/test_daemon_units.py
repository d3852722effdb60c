"""Fast unit tests of the daemon's pieces that need no broker: audit chain, ISA presentation,
metrics, systemd notify (settings: tests/test_config.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from daemon import audit
from daemon.config import load_settings
from daemon.lifecycle import AlertView
from daemon.pipeline.flow import Pipeline
from daemon.pipeline.items import Incoming, Kind
from daemon.store import Store, Writes
from daemon.systemd import Notifier
from policies.site import load_site
from policies.timefmt import format_ts

EXAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "examples" / "site.yaml"


def write_audit(store: Store, ts: list[int]) -> None:
    store.apply(Writes(audit=[store.audit.record(t, "action", {"n": i}) for i, t in enumerate(ts)]))


def test_audit_chain_names_the_first_edited_or_missing_record(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    write_audit(store, list(range(5)))
    conn = store.conn
    assert conn is not None
    assert audit.verify(conn).ok
    conn.execute("UPDATE audit SET body = '{\"n\":9}' WHERE seq = 3")
    verdict = audit.verify(conn)
    assert (verdict.ok, verdict.broken_seq) == (False, 3)
    conn.execute("UPDATE audit SET body = '{\"n\":2}' WHERE seq = 3")
    assert audit.verify(conn).ok
    conn.execute("DELETE FROM audit WHERE seq = 4")
    assert audit.verify(conn).broken_seq == 4


def test_retention_prunes_a_prefix_and_the_chain_still_verifies(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    write_audit(store, [i * 10 for i in range(6)])
    store.prune(cutoff_us=25)
    conn = store.conn
    assert conn is not None
    assert conn.execute("SELECT MIN(seq) FROM audit").fetchone()[0] == 4
    verdict = audit.verify(conn)
    assert verdict.ok and verdict.records == 3
    store.close()
    store = Store(tmp_path / "db.sqlite")  # the chain goes on from the anchor
    write_audit(store, [99])
    assert store.conn is not None
    assert audit.verify(store.conn).ok


@pytest.mark.parametrize(
    ("fields", "state"),
    [
        ({}, "unacknowledged"),
        ({"acked": True}, "acknowledged"),
        ({"active": False}, "rtn_unacknowledged"),
        ({"shelved_until": 5}, "shelved"),
        ({"suppressed": True}, "suppressed"),
        ({"closed": True, "active": False}, "normal"),
    ],
)
def test_isa_states(fields: dict[str, object], state: str) -> None:
    view = AlertView("a", "p", "s", "major", "C", "m", 0, 0, "raised", **fields)  # type: ignore[arg-type]
    assert view.isa_state == state


def test_systemd_notifier_sends_ready_and_watchdog(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000000"})
        assert n.watchdog_interval_s == 10.0
        assert n.ready() and n.watchdog()
        assert server.recv(100) == b"READY=1"
        assert server.recv(100) == b"WATCHDOG=1"
    assert not Notifier({}).ready()


async def test_timers_fired_before_a_refused_event_reach_the_listeners(tmp_path: Path) -> None:
    from policies.timefmt import format_ts, parse_ts

    site = load_site(EXAMPLE)
    settings = load_settings(site, {"SEALWATCH_DATA_DIR": str(tmp_path)})
    t0 = parse_ts("2027-06-01T09:00:00+08:00")
    store = Store(settings.db_path, settings.sqlite_synchronous)
    pipeline = Pipeline(site, settings, store, clock=lambda: t0 + 120_000_000)
    pipeline.start()
    seen: list[dict[str, object]] = []
    pipeline.listeners.subscribe(seen.extend)
    try:
        door = {"ts": format_ts(t0, site.tz), "device": "gate-outer", "type": "door.opened"}
        pipeline.process([Incoming(Kind.EVENT, door, "test", t0)])
        # An ack of an unknown alert is refused, but the door's held-open timer fired first.
        late = t0 + 60_000_000
        ack = {
            "ts": format_ts(late, site.tz),
            "device": "console-1",
            "type": "alert.ack",
            "alert_id": "nope",
            "badge": "O4001",
        }
        pipeline.process([Incoming(Kind.EVENT, ack, "test", late)])
        await pipeline.persister.call(lambda _s: None)  # written and released
        assert ("door-held-open", "gate-outer", "raised") in [
            (r["policy"], r["subject"], r["state"]) for r in seen
        ]
        assert "nope" in store.rejections(10)[0]["reason"]
    finally:
        await pipeline.stop(snapshot=False)
        store.close()


def test_a_repeated_failure_is_logged_once_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    from adapters.base import RateLimitedLog

    rlog = RateLimitedLog(logging.getLogger("sealwatch.test"), interval_s=3600)
    for _ in range(3):
        try:
            raise KeyError("boom")
        except KeyError:
            rlog.log(logging.ERROR, "tick", "tick failed", exc_info=True)
    assert [r.exc_info is not None and r.exc_info[0] is KeyError for r in caplog.records] == [True]


async def test_a_daemon_that_cannot_bind_its_port_leaves_nothing_running(tmp_path: Path) -> None:
    import asyncio
    import sqlite3

    from daemon.runtime import Daemon

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    site = load_site(EXAMPLE)
    settings = load_settings(
        site, {"SEALWATCH_DATA_DIR": str(tmp_path), "SEALWATCH_HTTP": f"127.0.0.1:{port}"}
    )
    daemon = Daemon(site, settings, notifier=Notifier({}))
    try:
        with pytest.raises(OSError):
            async with daemon:
                pass
    finally:
        taken.close()
    assert daemon.store is not None
    conn = daemon.store.conn
    assert conn is not None
    with pytest.raises(sqlite3.ProgrammingError):  # closed
        conn.execute("SELECT 1")
    me = asyncio.current_task()
    assert me is not None
    others = {t.get_name() for t in asyncio.all_tasks()} - {me.get_name()}
    assert "dashboard-live" not in others


async def test_housekeeping_forgets_maintenance_windows_that_have_ended(tmp_path: Path) -> None:
    from daemon.runtime import Daemon

    site = load_site(EXAMPLE)
    settings = load_settings(site, {"SEALWATCH_DATA_DIR": str(tmp_path)})
    now = [10_000_000_000]
    daemon = Daemon(site, settings, notifier=Notifier({}))
    daemon.store = store = Store(settings.db_path, settings.sqlite_synchronous)
    daemon.pipeline = pipeline = Pipeline(site, settings, store, clock=lambda: now[0])
    pipeline.start()
    try:
        start, end = format_ts(now[0]), format_ts(now[0] + 60_000_000)
        out = await pipeline.suppression("jam-work", start, end, "filter swap", "S2001", "test")
        assert out.accepted, out
        await daemon.housekeeping()
        assert pipeline.stage.is_suppressed("jam-work/gsm900", now[0] + 1)
        now[0] += 61_000_000
        await daemon.housekeeping()
        assert pipeline.stage.suppressions == []
        assert len(store.suppressions()) == 1  # kept in the store, no longer scanned
    finally:
        await pipeline.stop(snapshot=False)
        store.close()


async def test_a_bug_in_a_rule_refuses_the_event_and_the_daemon_goes_on(tmp_path: Path) -> None:
    from policies.timefmt import parse_ts

    site = load_site(EXAMPLE)
    settings = load_settings(site, {"SEALWATCH_DATA_DIR": str(tmp_path)})
    t0 = parse_ts("2027-06-01T09:00:00+08:00")
    store = Store(settings.db_path, settings.sqlite_synchronous)
    pipeline = Pipeline(site, settings, store, clock=lambda: t0 + 120_000_000)
    pipeline.start()

    def broken_rule(_ev: object) -> None:
        raise RuntimeError("a bug")

    # fault injection: a rule that crashes on door.forced (no real rule does)
    pipeline.stage.engine._dispatch["door.forced"].insert(0, broken_rule)
    try:

        def event(t: int, device: str, etype: str) -> Incoming:
            body = {"ts": format_ts(t, site.tz), "device": device, "type": etype}
            return Incoming(Kind.EVENT, body, "test", t)

        pipeline.process([event(t0, "fire-exit-north", "door.forced")])
        pipeline.process([event(t0 + 1_000_000, "gate-outer", "door.opened")])
        await pipeline.persister.call(lambda _s: None)
        assert "internal error in the engine: RuntimeError" in store.rejections(10)[0]["reason"]
        assert store.last_event_seq() == 1  # the next event was accepted
    finally:
        await pipeline.stop(snapshot=False)
        store.close()
