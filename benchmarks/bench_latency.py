"""Latency from publishing a device event to receiving its alert on the alerts topic.

The daemon runs as a real subprocess. A paced publisher sends background events (statuses,
heartbeats) at the target rate; 20 times a second one of them is a probe (a door forced, then
closed) whose alert transition is timed on `sealwatch/SITE/alerts`.

    .venv/bin/python benchmarks/bench_latency.py [--rates 1000 5000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import aiomqtt
import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import events as background

from tests.support.daemon import NODELAY, DaemonProcess, write_site
from tests.support.mosquitto import Mosquitto

PROBES_PER_S = 20


def paced_publisher(port: int, site_id: str, rate: int, seconds: float, sent: list[float]) -> float:
    """Publish background events at `rate` (QoS 1) from paho's own thread, with a probe
    (door forced, then closed) PROBES_PER_S times a second; returns the rate achieved.

    paho in a thread rather than aiomqtt in the benchmark's loop: aiomqtt spends a task and a
    scan of its pending calls on every publish and cannot offer 5,000 events/s here."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{site_id}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    sock = client.socket()
    assert isinstance(sock, socket.socket)  # connected above, plain TCP
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.loop_start()
    total_probes = int(seconds * PROBES_PER_S)
    bg = background(int(rate * seconds))
    every = max(1, rate // PROBES_PER_S)
    probes = 0
    began = time.perf_counter()
    for i, ev in enumerate(bg):
        delay = began + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        if i % every == 0 and probes < total_probes:
            etype = "door.forced" if probes % 2 == 0 else "door.closed"
            topic = f"sealwatch/{site_id}/events/fire-exit-north"
            payload = orjson.dumps({"type": etype})
            sent.append(time.perf_counter())
            probes += 1
        else:
            topic = f"sealwatch/{site_id}/events/{ev.pop('device')}"
            payload = orjson.dumps(ev)
        client.publish(topic, payload, qos=1)
    achieved = len(bg) / (time.perf_counter() - began)
    client.loop_stop()
    client.disconnect()
    return achieved


def publish_in_child(
    port: int, site_id: str, rate: int, seconds: float
) -> tuple[float, list[float]]:
    sent: list[float] = []
    achieved = paced_publisher(port, site_id, rate, seconds, sent)
    return achieved, sent


async def run_rate(broker: Mosquitto, site_id: str, rate: int, seconds: float) -> list[float]:
    sent: list[float] = []
    got: list[float] = []
    done = asyncio.Event()
    total_probes = int(seconds * PROBES_PER_S)

    async def watch(client: aiomqtt.Client) -> None:
        async for msg in client.messages:
            line = orjson.loads(msg.payload)
            if line["policy"] == "door-forced":
                got.append(time.perf_counter())
                if len(got) == total_probes:
                    done.set()
                    return

    async with aiomqtt.Client("127.0.0.1", broker.port, socket_options=NODELAY) as sub:
        await sub.subscribe(f"sealwatch/{site_id}/alerts", 1)
        watcher = asyncio.create_task(watch(sub))
        # The publisher runs in a process of its own: in this one it would share the GIL
        # with the subscriber and time its own stalls. perf_counter is CLOCK_MONOTONIC on
        # Linux, one clock for both processes.
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            achieved, stamps = await loop.run_in_executor(
                pool, publish_in_child, broker.port, site_id, rate, seconds
            )
        sent.extend(stamps)
        try:
            await asyncio.wait_for(done.wait(), 30)
        except TimeoutError:
            print(f"  only {len(got)} of {total_probes} probe alerts arrived")
        watcher.cancel()
    print(f"  offered {achieved:,.0f} events/s")
    # each probe gives one door-forced transition: raised when forced, cleared when closed
    return [(g - s) * 1000 for s, g in zip(sent, got, strict=False)]


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rates", type=int, nargs="+", default=[1000, 5000])
    p.add_argument("--seconds", type=float, default=10.0)
    args = p.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sealwatch-bench-"))
    os.chmod(workdir, 0o777)
    broker = Mosquitto(workdir).start()
    try:
        for rate in args.rates:
            site_id = f"lat{rate}"
            site = write_site(workdir, site_id, daemon={"snapshot_interval_s": 60})
            proc = DaemonProcess(site, broker, workdir / f"data-{rate}").start()
            try:
                await proc.ready()
                lat = sorted(await run_rate(broker, site_id, rate, args.seconds))
                if lat:
                    p50 = statistics.median(lat)
                    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
                    print(
                        f"{rate} events/s: publish→alert p50 {p50:.1f} ms, p99 {p99:.1f} ms "
                        f"({len(lat)} probes)"
                    )
            finally:
                proc.terminate()
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
