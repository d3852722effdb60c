"""Telemetry's cost and throughput, against a real VictoriaMetrics (scripts/setup installs it).

1. The daemon draining a Mosquitto backlog of N events (bench_ingest.py's mix and machinery)
   with telemetry off, then on: the ingest rate both ways.
2. In the run with telemetry on: points built, spooled and written to the database, per second
   from the start of the drain until the writer has written them all.

    .venv/bin/python benchmarks/bench_telemetry.py [--events 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_ingest import daemon as ingest
from daemon.runtime import Daemon
from tests.support.mosquitto import Mosquitto
from tests.support.victoria import VictoriaMetrics


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=20_000)
    n = p.parse_args().events
    workdir = Path(tempfile.mkdtemp(prefix="sealwatch-bench-"))
    os.chmod(workdir, 0o777)  # mosquitto drops to its own user when started as root
    (workdir / "off").mkdir()
    (workdir / "on").mkdir()
    broker = Mosquitto(workdir).start()
    vm = VictoriaMetrics(workdir).start()
    written: dict[str, float] = {}

    async def drain(d: Daemon, t0: float) -> None:
        tel = d.telemetry
        assert tel is not None
        while True:  # every point taken so far spooled and written
            await asyncio.sleep(0.05)
            w = tel.writer
            if w is not None and tel.spool is not None and not tel._inbox and not tel.spool.points:
                if w.written and time.perf_counter() - t0 > 0.2:
                    break
        written["points"] = w.written if w is not None else 0
        written["seconds"] = time.perf_counter() - t0

    influx = {
        "influxdb": {"url": vm.url, "org": "bench", "bucket": "sealwatch", "flush_interval_s": 0.2}
    }
    try:
        print(f"telemetry benchmark: {n} QoS 1 events drained from a Mosquitto backlog")
        off, stored_off, _ = await ingest(broker, n, workdir / "off")
        print(f"  telemetry off: {off:,.0f} events/s ({stored_off} stored)")
        on, stored_on, _ = await ingest(broker, n, workdir / "on", influx, drain)
        print(f"  telemetry on:  {on:,.0f} events/s ({stored_on} stored) = {100 * on / off:.0f} %")
        pts, secs = written["points"], written["seconds"]
        print(
            f"  points built, spooled and written to VictoriaMetrics: {pts:,.0f} in {secs:.2f} s"
            f" = {pts / secs:,.0f} points/s"
        )
    finally:
        vm.stop()
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
