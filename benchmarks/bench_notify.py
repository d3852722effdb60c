"""Notifications to a real local webhook receiver (aiohttp), from the whole daemon in this
process with a real Mosquitto.

1. Throughput: N door-forced/closed pairs published at once; alert transitions routed,
   written to the outbox and delivered (one lane: one request at a time) per second, from the
   first publish to the last webhook received.
2. Latency at a steady rate: a door forced every 1/rate s; publish → webhook received, p50/p99.

    .venv/bin/python benchmarks/bench_notify.py [--pairs 500] [--rate 20] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import web

from daemon.config import load_settings
from daemon.runtime import Daemon
from daemon.systemd import Notifier
from policies.site import load_site
from tests.support.daemon import Gateway, now_ts, write_site
from tests.support.mosquitto import Mosquitto
from tests.support.receivers import HttpReceiver

SITE = "bench-notify"


class TimedReceiver(HttpReceiver):
    """Notes when each delivery arrived (perf_counter), by its alert's subject."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: list[tuple[float, dict[str, object]]] = []
        self.changed = asyncio.Event()

    async def until(self, count: int, state: str | None = None) -> None:
        while len([x for x in self.arrived if state in (None, x[1]["state"])]) < count:
            self.changed.clear()
            await self.changed.wait()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.arrived.append((time.perf_counter(), json.loads(body)["alert"]))
        self.changed.set()
        return web.Response(text="ok")


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--pairs", type=int, default=500)
    p.add_argument("--rate", type=float, default=20.0)
    p.add_argument("--seconds", type=float, default=10.0)
    a = p.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sealwatch-bench-"))
    os.chmod(workdir, 0o777)  # mosquitto drops to its own user when started as root
    broker = Mosquitto(workdir).start()
    receiver = TimedReceiver()
    await receiver.start()
    secret = workdir / "hook.secret"
    secret.write_text("bench")
    cfg = {
        "notifications": {
            "channels": {
                "hook": {"type": "webhook", "url": receiver.url, "secret_file": str(secret)}
            },
            "recipients": {"ops": {"channel": "hook"}},
            "routes": [{"states": ["raised", "cleared"], "notify": ["ops"]}],
        }
    }
    site = load_site(write_site(workdir, SITE, daemon=cfg))
    env = {
        "SEALWATCH_MQTT_URL": broker.url,
        "SEALWATCH_DATA_DIR": str(workdir / "data"),
        "SEALWATCH_HTTP": "127.0.0.1:0",
    }
    try:
        async with (
            Daemon(site, load_settings(site, env), notifier=Notifier({})) as d,
            Gateway(broker, SITE) as gw,
        ):
            assert d.link is not None
            await d.link.connected.wait()
            n = 2 * a.pairs
            t0 = time.perf_counter()
            for _ in range(a.pairs):
                await gw.event("fire-exit-north", "door.forced", ts=now_ts())
                await gw.event("fire-exit-north", "door.closed", ts=now_ts())
            await receiver.until(n)
            secs = receiver.arrived[-1][0] - t0
            print(f"throughput: {n} transitions routed, written and delivered in {secs:.2f} s")
            print(f"  = {n / secs:,.0f} transitions/s to one webhook receiver")
            receiver.arrived.clear()
            sent: list[float] = []
            doors = ["press-hall-door", "fire-exit-north"]
            end = time.perf_counter() + a.seconds
            i = 0
            while time.perf_counter() < end:
                door = doors[i % 2]
                sent.append(time.perf_counter())
                await gw.event(door, "door.forced", ts=now_ts())
                await gw.event(door, "door.closed", ts=now_ts())
                i += 1
                await asyncio.sleep(1 / a.rate)  # pacing the load
            await receiver.until(len(sent), "raised")
            raised = [t for t, al in receiver.arrived if al["state"] == "raised"]
            lat = sorted((r - s) * 1000 for r, s in zip(raised, sent, strict=True))
            print(f"latency at {a.rate:g} raises/s ({len(lat)} raises): publish → webhook")
            print(
                f"  p50 {statistics.median(lat):.1f} ms, "
                f"p99 {lat[min(len(lat) - 1, int(len(lat) * 0.99))]:.1f} ms, max {lat[-1]:.1f} ms"
            )
    finally:
        await receiver.stop()
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
