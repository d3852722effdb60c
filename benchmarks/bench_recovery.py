"""Restart recovery time: load the newest snapshot, re-feed the events stored after it.

Builds a store by running N events through the real pipeline (engine stage and writer), then
times the recovery of a fresh engine stage on that store: with a snapshot taken after the last
event, and with K events stored after the snapshot (the most a default daemon re-feeds is
`snapshot_every_events`).

    .venv/bin/python benchmarks/bench_recovery.py [--events 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import events

from daemon.config import load_settings
from daemon.pipeline.flow import Pipeline
from daemon.pipeline.items import Incoming, Kind
from daemon.store import Store
from policies.site import load_site

SITE = Path(__file__).resolve().parents[1] / "deploy" / "examples" / "site.yaml"


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=50_000)
    n = p.parse_args().events
    site = load_site(SITE)
    settings = load_settings(site, {"SEALWATCH_DATA_DIR": tempfile.mkdtemp()})
    t = [time.time_ns() // 1000 - n * 1000]
    store = Store(settings.db_path)
    pipeline = Pipeline(site, settings, store, clock=lambda: t[0])
    pipeline.start()
    # Events a millisecond apart, so the engine sees a realistic time line.
    for i, ev in enumerate(events(n)):
        t[0] += 1000
        device = str(ev.pop("device"))
        pipeline.process(
            [Incoming(Kind.EVENT, orjson.dumps(ev), "bench", t[0], topic="b", device=device)]
        )
        if i == n // 2:
            pipeline.snapshot()
    half = n - n // 2 - 1
    for label, snap_first in (
        (f"{half} events after the snapshot", False),
        ("snapshot after the last event", True),
    ):
        if snap_first:
            pipeline.snapshot()
        await pipeline.persister.call(lambda _store: None)  # everything before it is written
        fresh = Pipeline(site, settings, Store(settings.db_path), clock=lambda: t[0])
        t0 = time.perf_counter()
        fresh.stage.recover()
        elapsed = time.perf_counter() - t0
        snap = store.latest_snapshot()
        size = len(snap.blob) / 1024 if snap else 0
        print(f"recovery with {label}: {elapsed:.3f} s (snapshot {size:.0f} KiB)")
    await pipeline.stop(snapshot=False)


if __name__ == "__main__":
    asyncio.run(main())
