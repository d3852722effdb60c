"""Sustained ingest through a local Mosquitto: the daemon against a bare client's ceiling.

Both receivers drain the same backlog the same way: a persistent session (QoS 1) is created,
N events are published while the receiver is away, then the receiver connects and the time
until the last event is in is measured. The bare clients only count messages; the daemon
parses, feeds the engine, stores every event in SQLite and acks after the commit.

    .venv/bin/python benchmarks/bench_ingest.py [--events 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from daemon.config import load_settings
from daemon.runtime import Daemon
from daemon.systemd import Notifier
from policies.site import load_site
from simulators.load import publish_stream
from tests.support.daemon import NODELAY, write_site
from tests.support.mosquitto import Mosquitto

SITE = "bench"


def events(n: int) -> list[dict[str, object]]:
    """A mix of what a site sends most: statuses and heartbeats (ts = receive time)."""
    bands = {"cdma800": 33.0, "gsm900": 33.0, "dcs1800": 30.0, "lte2100": 30.0, "nr3500": 27.0}
    mix: list[dict[str, object]] = [
        {
            "device": "jam-work",
            "type": "jammer.status",
            "output": True,
            "bands": bands,
            "faults": [],
            "temperature_c": 41.5,
        },
        {
            "device": "cam-press",
            "type": "camera.status",
            "stream": "up",
            "tamper": None,
            "fps": 12.5,
        },
        {"device": "pd-work", "type": "device.heartbeat"},
        {"device": "panel-main", "type": "alarm.panel", "armed": True, "mains": "ok"},
        {"device": "cp-north", "type": "device.heartbeat"},
    ]
    kinds = itertools.cycle(mix)
    return [dict(next(kinds)) for _ in range(n)]


async def backlog(broker: Mosquitto, n: int) -> None:
    stats = await publish_stream(events(n), "127.0.0.1", broker.port, site_id=SITE)
    print(f"  published {n} events in {stats.seconds:.2f} s ({stats.rate:,.0f}/s)")


async def bare_aiomqtt(broker: Mosquitto, n: int) -> float:
    topic = f"sealwatch/{SITE}/events/#"
    async with aiomqtt.Client(
        "127.0.0.1",
        broker.port,
        identifier="bare-aiomqtt",
        clean_session=False,
        socket_options=NODELAY,
    ) as c:
        await c.subscribe(topic, 1)
    await backlog(broker, n)
    got = 0
    t0 = time.perf_counter()
    async with aiomqtt.Client(
        "127.0.0.1",
        broker.port,
        identifier="bare-aiomqtt",
        clean_session=False,
        socket_options=NODELAY,
    ) as c:
        async for _msg in c.messages:
            got += 1
            if got == n:
                break
    return n / (time.perf_counter() - t0)


async def bare_paho(broker: Mosquitto, n: int) -> float:
    def connect() -> paho.Client:
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id="bare-paho", clean_session=False)
        c.max_inflight_messages_set(1000)
        c.connect("127.0.0.1", broker.port)
        return c

    c = connect()
    c.subscribe(f"sealwatch/{SITE}/events/#", 1)
    c.loop(0.5)
    c.disconnect()
    await backlog(broker, n)
    done = threading.Event()
    count = [0]

    def on_message(_c: paho.Client, _u: object, _m: paho.MQTTMessage) -> None:
        count[0] += 1
        if count[0] == n:
            done.set()

    c = connect()
    c.on_message = on_message
    t0 = time.perf_counter()
    c.loop_start()
    await asyncio.to_thread(done.wait, 120)
    rate = n / (time.perf_counter() - t0)
    c.loop_stop()
    c.disconnect()
    return rate


async def bare_gmqtt(broker: Mosquitto, n: int) -> float | None:
    """gmqtt (asyncio, its own protocol code): the fastest Python client measured here. Not a
    dependency of the project: measured only when importable. Install it beside, not into, the
    virtualenv — it ships a top-level `tests` package that would shadow ours:
    `pip install --target /tmp/gm gmqtt`, then run with PYTHONPATH=/tmp/gm."""
    try:
        import gmqtt  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    topic = f"sealwatch/{SITE}/events/#"
    subscribed = asyncio.Event()
    first = gmqtt.Client("bare-gmqtt", clean_session=False)
    first.on_subscribe = lambda *_a: subscribed.set()
    await first.connect("127.0.0.1", broker.port, version=gmqtt.constants.MQTTv311)
    first.subscribe(topic, qos=1)
    await subscribed.wait()
    await first.disconnect()
    await backlog(broker, n)
    done = asyncio.Event()
    count = [0]

    def on_message(*_args: object) -> int:
        count[0] += 1
        if count[0] == n:
            done.set()
        return 0  # PUBACK

    c = gmqtt.Client("bare-gmqtt", clean_session=False)
    c.on_message = on_message
    t0 = time.perf_counter()
    await c.connect("127.0.0.1", broker.port, version=gmqtt.constants.MQTTv311)
    await asyncio.wait_for(done.wait(), 120)
    rate = n / (time.perf_counter() - t0)
    await c.disconnect()
    return rate


async def daemon(
    broker: Mosquitto,
    n: int,
    workdir: Path,
    extra: dict[str, Any] | None = None,
    after: Callable[[Daemon, float], Awaitable[None]] | None = None,
) -> tuple[float, int, int]:
    """The daemon's drain rate; `extra` adds `daemon:` settings (bench_telemetry.py turns
    telemetry on), `after(daemon, t0)` runs once every event is stored, before it stops."""
    site_path = write_site(workdir, SITE, daemon={"snapshot_interval_s": 3600, **(extra or {})})
    site = load_site(site_path)
    settings = load_settings(
        site,
        {
            "SEALWATCH_MQTT_URL": broker.url,
            "SEALWATCH_DATA_DIR": str(workdir / "data"),
            "SEALWATCH_HTTP": "127.0.0.1:0",
        },
    )
    async with Daemon(site, settings, notifier=Notifier({})) as d:  # creates the session
        assert d.link is not None
        await d.link.connected.wait()
    await backlog(broker, n)
    async with Daemon(site, settings, notifier=Notifier({})) as d:
        assert d.pipeline is not None
        store = d.pipeline.store
        base = store.last_event_seq()
        t0 = time.perf_counter()
        deadline = t0 + 300
        while store.last_event_seq() - base + len(store.rejections(n)) < n:
            if time.perf_counter() > deadline:
                break
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - t0
        stored = store.last_event_seq() - base
        rejected = len(store.rejections(n))
        if after is not None:
            await after(d, t0)
    return stored / elapsed, stored, rejected


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=50_000)
    n = p.parse_args().events
    workdir = Path(tempfile.mkdtemp(prefix="sealwatch-bench-"))
    os.chmod(workdir, 0o777)  # mosquitto drops to its own user when started as root
    broker = Mosquitto(workdir).start()
    try:
        print(f"ingest benchmark: {n} QoS 1 events drained from a Mosquitto backlog")
        print("bare aiomqtt client (count only):")
        aio = await bare_aiomqtt(broker, n)
        print(f"  {aio:,.0f} events/s")
        print("bare paho-mqtt client (count only, its own network thread):")
        raw = await bare_paho(broker, n)
        print(f"  {raw:,.0f} events/s")
        gm = await bare_gmqtt(broker, n)
        if gm is not None:
            print(f"bare gmqtt client (count only): {gm:,.0f} events/s")
        print("sealwatch daemon (parse, engine, SQLite, ack after commit):")
        rate, stored, rejected = await daemon(broker, n, workdir)
        lost = n - stored - rejected
        ceiling = max(aio, raw)
        print(f"  {rate:,.0f} events/s, stored {stored}, rejected {rejected}, lost {lost}")
        print(f"  = {100 * rate / ceiling:.0f} % of the bare ceiling ({ceiling:,.0f}/s)")
        if gm is not None:
            print(f"  = {100 * rate / gm:.0f} % of gmqtt's ({gm:,.0f}/s)")
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
