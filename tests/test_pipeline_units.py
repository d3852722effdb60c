"""The pipeline's stages one at a time, on real SQLite files: the writer thread and its failure
policy, the snapshot format and the site fingerprint, the lateness window after an outage."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from daemon import snapshot
from daemon.config import load_settings
from daemon.pipeline.decode import Decoder
from daemon.pipeline.evaluate import EngineStage
from daemon.pipeline.flow import new_metrics
from daemon.pipeline.items import Incoming, Kind
from daemon.pipeline.persist import Commit, Persister, StoreHealth
from daemon.store import Store, Writes
from policies.engine import Engine
from policies.site import load_site
from policies.timefmt import parse_ts
from tests.support.daemon import EXAMPLE_SITE, ROOT, wait_until

T0 = parse_ts("2026-06-07T08:00:00+08:00")


def event_row(seq: int) -> tuple[object, ...]:
    return (seq, T0 + seq, None, T0, "gate-outer", "door.opened", "test", None, None, "{}")


async def test_writer_holds_commits_while_the_database_is_locked_then_writes_them_in_order(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "db.sqlite", busy_timeout_ms=50)
    changes: list[StoreHealth] = []
    changed = asyncio.Event()

    def on_health(h: StoreHealth, reason: str) -> None:
        changes.append(h)
        changed.set()

    p = Persister(store, queue_max=1000, retry_s=0.05, on_health=on_health)
    p.start()
    released: list[int] = []
    locker = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    for seq in range(1, 6):
        p.submit(
            Commit(Writes(events=[event_row(seq)]), 1, functools.partial(released.append, seq))
        )
    # While the store fails, what was accepted is released at once (alerting goes on).
    await asyncio.wait_for(changed.wait(), 10)
    changed.clear()
    assert released == [1, 2, 3, 4, 5]
    assert p.pending_items == 5
    locker.execute("COMMIT")
    locker.close()
    await asyncio.wait_for(changed.wait(), 10)
    await wait_until(lambda: p.pending_items == 0, what="the held commits written")
    assert changes == [StoreHealth.DEGRADED, StoreHealth.OK]
    seqs = [r[0] for r in store.reader.execute("SELECT seq FROM events ORDER BY rowid")]
    assert seqs == [1, 2, 3, 4, 5]
    await p.stop()
    store.close()


async def test_writer_bound_closes_the_door_until_the_store_is_back(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite", busy_timeout_ms=50)
    p = Persister(store, queue_max=3, retry_s=0.05, on_health=lambda h, r: None)
    p.start()
    locker = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    for seq in range(1, 4):
        p.submit(Commit(Writes(events=[event_row(seq)]), 1))
    assert p.full and not p.room.is_set()
    locker.execute("COMMIT")
    locker.close()
    await asyncio.wait_for(p.room.wait(), 10)
    await p.stop()
    assert store.reader.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 3
    store.close()


def test_site_fingerprint_is_the_same_in_every_process_and_ignores_comments(
    tmp_path: Path,
) -> None:
    code = (
        "from policies.site import load_site; from daemon.snapshot import site_fingerprint; "
        f"print(site_fingerprint(load_site({str(EXAMPLE_SITE)!r})))"
    )
    prints = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)},
            check=True,
        ).stdout.strip()
        for seed in ("0", "1", "2", "3")
    }
    assert len(prints) == 1
    # Comments and the runtime section do not change the meaning; a tunable does.
    site = load_site(EXAMPLE_SITE)
    raw = yaml.safe_load(EXAMPLE_SITE.read_text())
    raw["daemon"] = {"tick_s": 0.5}
    other = tmp_path / "site.yaml"
    other.write_text("# a comment\n" + yaml.safe_dump(raw))
    assert snapshot.site_fingerprint(load_site(other)) == snapshot.site_fingerprint(site)
    raw["policies"]["door_held_open_s"] = 99
    other.write_text(yaml.safe_dump(raw))
    assert snapshot.site_fingerprint(load_site(other)) != snapshot.site_fingerprint(site)


def test_snapshot_loads_only_for_its_engine_and_site(tmp_path: Path) -> None:
    site = load_site(EXAMPLE_SITE)
    blob = snapshot.dump(Engine(site), site)
    assert isinstance(snapshot.load(blob, site), Engine)
    raw = yaml.safe_load(EXAMPLE_SITE.read_text())
    raw["policies"]["door_held_open_s"] = 99
    changed = tmp_path / "site.yaml"
    changed.write_text(yaml.safe_dump(raw))
    refusals = {
        "older format": blob[len(snapshot.MAGIC) :],
        "format": blob.replace(b'"format":1', b'"format":2', 1),
        "another version of the engine": blob.replace(
            snapshot.ENGINE_CODE.encode(), b"0" * len(snapshot.ENGINE_CODE), 1
        ),
        "does not load": blob[:-20],
        "header is unreadable": snapshot.MAGIC + b"{not json\n",
    }
    for why, bad in refusals.items():
        with pytest.raises(snapshot.SnapshotRefused, match=why):
            snapshot.load(bad, site)
    with pytest.raises(snapshot.SnapshotRefused, match="meaning changed"):
        snapshot.load(blob, load_site(changed))


def test_events_buffered_during_an_outage_are_accepted_late_and_others_are_not(
    tmp_path: Path,
) -> None:
    site = load_site(EXAMPLE_SITE)
    settings = load_settings(site, {"SEALWATCH_DATA_DIR": str(tmp_path)})
    now = [T0]
    store = Store(settings.db_path)
    stage = EngineStage(
        site, settings, store, Decoder(site.id, 65536), new_metrics(), lambda: now[0]
    )

    def door(ts: int, device: str = "gate-outer") -> Incoming:
        from policies.timefmt import format_ts

        body = f'{{"type": "door.opened", "ts": "{format_ts(ts)}"}}'.encode()
        return Incoming(Kind.EVENT, body, "mqtt", now[0], topic="t", device=device)

    assert stage.process([door(T0)]).outcomes[0].accepted
    now[0] = T0 + 60_000_000
    assert stage.process([door(now[0], "gate-inner")]).outcomes[0].accepted
    # 30 s older than what the engine processed, no outage: refused.
    out = stage.process([door(T0 + 30_000_000)]).outcomes[0]
    assert not out.accepted and "out of order" in (out.reason or "")
    # A broker outage from T0 + 10 s: what the gateways buffered since then is accepted.
    stage.open_late_window(T0 + 10_000_000)
    out = stage.process([door(T0 + 31_000_000)]).outcomes[0]
    assert out.accepted, out
    out = stage.process([door(T0 + 1_000_000)]).outcomes[0]
    assert not out.accepted  # older than the outage (beyond the reorder tolerance)
    store.close()


def test_the_daemon_has_no_import_circles() -> None:
    """Stages and readers import downwards only (a module never imports one that imports it)."""
    import ast

    modules: dict[str, Path] = {}
    for p in (ROOT / "daemon").rglob("*.py"):
        name = ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = p
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for m, p in modules.items():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                for cand in (node.module, *(f"{node.module}.{a.name}" for a in node.names)):
                    if cand in modules and cand != m:
                        graph[m].add(cand)
            elif isinstance(node, ast.Import):
                graph[m].update(a.name for a in node.names if a.name in modules)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for n in graph[start]:
            if n == goal:
                return True
            if n not in seen:
                seen.add(n)
                if reaches(n, goal, seen):
                    return True
        return False

    circles = sorted(m for m in graph if reaches(m, m, set()))
    assert circles == []


async def test_each_seal_is_attributed_to_whoever_started_and_ended_it(tmp_path: Path) -> None:
    """Issue 10: the seal record named whoever last started a *different* seal; each seal's
    `started_by`/`ended_by` is the badge of its own seal.start/seal.end, and a seal the site
    file's schedule started has no starter."""
    from daemon.pipeline.flow import Pipeline
    from policies.timefmt import format_ts

    site = load_site(EXAMPLE_SITE)
    settings = load_settings(site, {"SEALWATCH_DATA_DIR": str(tmp_path)})
    scheduled = site.seals[0]  # gk2027-a, started by the site file's schedule
    assert scheduled.start is not None
    start_us = parse_ts(scheduled.start.isoformat())
    now = [start_us - 10_000_000]
    store = Store(settings.db_path)
    p = Pipeline(site, settings, store, metrics=new_metrics(), clock=lambda: now[0])
    p.start()
    p.release()

    def seal(etype: str, seal_id: str, origin: str, actor: str | None = None, **extra: str) -> None:
        body = {"ts": format_ts(now[0], site.tz), "type": etype, "seal": seal_id, **extra}
        if origin == "mqtt":  # a console's gateway: the event names who acts
            item = Incoming(
                Kind.EVENT,
                json.dumps(body).encode(),
                origin,
                now[0],
                topic="t/console-1",
                device="console-1",
            )
        else:  # the HTTP API: the session's badge is the actor (and fills `badge`)
            body["device"] = "console-1"
            item = Incoming(Kind.EVENT, body, origin, now[0], actor=actor)
        p.process([item])
        now[0] += 1_000_000
        p.tick()

    paper = {"classification": "secret"}
    seal("seal.start", "s-1", "mqtt", name="Paper B", badge="S2001", **paper)
    now[0] = start_us + 20_000_000  # the schedule starts its seal
    p.tick()
    seal("seal.start", "s-2", "http", "S2002", name="Paper C", badge="S2002", **paper)
    seal("seal.end", "s-1", "http", "S2002", badge="S2002")
    seal("seal.end", "s-2", "mqtt", badge="S2001")
    await p.persister.call(lambda _s: None)
    try:
        rows = {s["id"]: s for s in store.seals()}
        got = {k: (r["status"], r["started_by"], r["ended_by"]) for k, r in rows.items()}
        assert got == {
            "s-1": ("ended", "S2001", "S2002"),
            "s-2": ("ended", "S2002", "S2001"),
            scheduled.id: ("active", None, None),
        }
    finally:
        await p.stop(snapshot=False)
        store.close()


async def test_precheck_lists_every_readiness_item_from_the_live_engine(tmp_path: Path) -> None:
    from daemon.pipeline.flow import Pipeline
    from daemon.view import ReadView
    from policies.timefmt import format_ts

    site = load_site(EXAMPLE_SITE)
    settings = load_settings(site, {"SEALWATCH_DATA_DIR": str(tmp_path)})
    store = Store(settings.db_path)
    p = Pipeline(site, settings, store, metrics=new_metrics(), clock=lambda: T0)
    p.start()
    p.release()
    try:
        body = {"ts": format_ts(T0, site.tz), "type": "door.opened"}
        p.process([Incoming(Kind.EVENT, body | {"device": "fire-exit-north"}, "test", T0)])
        view = ReadView(p)
        record = view.precheck("S2001")
        view.close()
        assert (record["inspector"], record["passed"]) == ("S2001", False)
        items = {i["item"]: i for i in record["items"]}
        assert (
            "door fire-exit-north open" in items["boundary and entrance doors closed"]["problems"]
        )
        retention = items["video retention compliant"]["problems"]
        assert "camera cam-press retention unknown: no inventory received" in retention
        assert not items["perimeter armed"]["passed"] or items["perimeter armed"]["problems"] == []
    finally:
        await p.stop(snapshot=False)
        store.close()
