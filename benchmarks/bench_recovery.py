"""Restart recovery time: load the newest snapshot, re-feed the events stored after it.

Builds a store by running N events through the real engine loop, then times `recover()` of a
fresh Monitor on that store: with a snapshot taken after the last event, and with K events
stored after the snapshot (the most a default daemon re-feeds is `snapshot_every_events`).

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
from daemon.monitor import Incoming, Monitor
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
    monitor = Monitor(site, settings, Store(settings.db_path), clock=lambda: t[0])
    monitor.recover()
    # Events a millisecond apart, so the engine sees a realistic time line.
    for i, ev in enumerate(events(n)):
        t[0] += 1000
        device = str(ev.pop("device"))
        monitor.process(
            [Incoming("event", orjson.dumps(ev), "bench", t[0], topic="b", device=device)]
        )
        if i == n // 2:
            monitor.snapshot()
    half = n - n // 2 - 1
    for label, snap_first in (
        (f"{half} events after the snapshot", False),
        ("snapshot after the last event", True),
    ):
        if snap_first:
            monitor.snapshot()
        fresh = Monitor(site, settings, Store(settings.db_path), clock=lambda: t[0])
        t0 = time.perf_counter()
        fresh.recover()
        print(
            f"recovery with {label}: {time.perf_counter() - t0:.3f} s "
            f"(snapshot {len(monitor.store.latest_snapshot().blob) / 1024:.0f} KiB)"
        )


if __name__ == "__main__":
    asyncio.run(main())
