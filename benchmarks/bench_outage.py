"""Broker outage under load, on real processes: how fast the daemon is back, and what is lost.

A real Mosquitto with persistence, `sealwatch run` as a subprocess (the daemon settings at
their defaults) and paho gateways as field devices behave (each its own persistent session,
QoS 1, and paho's client-side queue for what it cannot send while the broker is away),
publishing door events with their device time at `--rate` events/s in all. Under that load the
broker is stopped (SIGTERM) for `--outage-s`, then started again on the same port and
persistence file. Reported per run:

- daemon back: from the broker accepting connections again to the daemon's `online` on its
  retained availability topic `sealwatch/SITE/daemon` (a watcher with a persistent session
  that reconnects every few ms; "≤" when the `online` was queued for the watcher, i.e. the
  daemon was back before the watcher); /healthz `mqtt_connected` polled every 10 ms as well;
- gateways back: the last gateway's on_connect, from the daemon's `online` (negative: the
  gateways were back first; their paho backoff is 0.05 s doubling to 0.5 s);
- acked (PUBACKs the gateways got), stored (rows in the daemon's `events` for their devices),
  lost = acked − stored, missing (acknowledged events whose number is not in the store),
  late (stored with their device time kept: `device_ts IS NOT NULL`), rejected (by reason).

Then the median of each over the runs. `--keep` keeps each run's data and broker directories
(the daemon's log is data/daemon.log).

    .venv/bin/python benchmarks/bench_outage.py [--runs 3] [--outage-s 8] [--rate 300]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import socket
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.daemon import DaemonProcess, http, wait_until, write_site
from tests.support.gateways import BufferingGateway
from tests.support.mosquitto import Mosquitto

DEVICES = ("gate-outer", "gate-inner")
# The daemon's own defaults (write_site shortens these two for tests).
DAEMON_DEFAULTS = {"snapshot_interval_s": 60.0, "ingest_hold_max_s": 10.0}


class AvailabilityWatcher:
    """Subscribes (persistent session, QoS 1) to the daemon's retained availability topic and
    reconnects every few ms, so a new `online` is seen as soon as the daemon publishes it."""

    def __init__(self, broker: Mosquitto, site_id: str) -> None:
        self.topic = f"sealwatch/{site_id}/daemon"
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"bench-watch-{site_id}",
            clean_session=False,
        )
        self.client.reconnect_delay_set(0.002, 0.005)  # type: ignore[arg-type]
        self.messages: list[tuple[float, bytes]] = []
        self.connects: list[float] = []
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.broker = broker

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, *rest: Any) -> None:
        if not reason.is_failure:
            self.connects.append(time.monotonic())
            if not flags.session_present:
                client.subscribe(self.topic, 1)

    def _on_message(self, client: Any, userdata: Any, msg: paho.MQTTMessage) -> None:
        self.messages.append((time.monotonic(), bytes(msg.payload)))

    def start(self) -> None:
        self.client.connect("127.0.0.1", self.broker.port, keepalive=5)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def online_after(self, t: float) -> float | None:
        return next((at for at, p in self.messages if at > t and p == b"online"), None)

    def connect_before(self, t: float) -> float | None:
        return max((at for at in self.connects if at <= t), default=None)


class HealthPoller(threading.Thread):
    """GET /healthz every 10 ms; notes when `mqtt_connected` changes."""

    def __init__(self, port: int) -> None:
        super().__init__(name="healthz-poller", daemon=True)
        self.port = port
        self.changes: list[tuple[float, bool]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        last: bool | None = None
        while not self.halt.is_set():
            with contextlib.suppress(OSError, ValueError):
                _, body = http(self.port, "GET", "/healthz")
                now = time.monotonic()
                up = bool(body.get("mqtt_connected")) if isinstance(body, dict) else False
                if up != last:
                    self.changes.append((now, up))
                    last = up
            self.halt.wait(0.010)

    def first(self, up: bool, after: float) -> float | None:
        return next((at for at, u in self.changes if u is up and at > after), None)


class Load(threading.Thread):
    """Publishes at `rate` events/s in all, round robin over the gateways, on a fixed schedule
    (so the rate holds whatever the sleeps' granularity)."""

    def __init__(self, gateways: list[BufferingGateway], rate: float) -> None:
        super().__init__(name="load", daemon=True)
        self.gateways = gateways
        self.interval = 1.0 / rate
        self.halt = threading.Event()

    def run(self) -> None:
        start = time.perf_counter()
        i = 0
        while not self.halt.is_set():
            self.gateways[i % len(self.gateways)].publish()
            i += 1
            delay = start + i * self.interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)


def wait_accepting(port: int, deadline_s: float = 30.0) -> float:
    """The monotonic time at which a TCP connect to the port first succeeds (polled each ms)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.05):
                return time.monotonic()
        except OSError:
            time.sleep(0.001)
    raise TimeoutError(f"the broker did not come back on {port}")


def broker_directory() -> Path:
    """Its own directory under /tmp: started as root, mosquitto drops to its own user, which
    must reach and write its persistence file (else a restart forgets every session)."""
    path = Path(tempfile.mkdtemp(prefix="sealwatch-outage-broker-"))
    path.chmod(0o777)
    return path


@dataclass
class Result:
    sent: int
    acked: int
    stored: int
    lost: int  # acked − stored
    missing: int
    late: int
    daemon_back_s: float
    daemon_back_bound: bool  # the `online` was queued for the watcher: an upper bound
    healthz_back_s: float | None
    gateways_after_daemon_s: float
    gateways_back_s: list[float]
    rejected: dict[str, int] = field(default_factory=dict)


def stored_counts(
    db: Path, topics: list[str]
) -> tuple[int, set[tuple[str, int]], int, dict[str, int]]:
    marks = ",".join("?" * len(DEVICES))
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as c:
        rows = c.execute(
            f"SELECT device, source, device_ts FROM events WHERE device IN ({marks})", DEVICES
        ).fetchall()
        tmarks = ",".join("?" * len(topics))
        rejected = dict(
            c.execute(
                f"SELECT reason, COUNT(*) FROM rejections WHERE topic IN ({tmarks}) "
                "GROUP BY reason",
                topics,
            ).fetchall()
        )
    ns = {(dev, int(orjson.loads(src)["n"])) for dev, src, _ in rows}
    late = sum(1 for *_, dts in rows if dts is not None)
    return len(rows), ns, late, rejected


async def one_run(
    outage_s: float, rate: float, warm_s: float, after_s: float, keep: bool
) -> Result:
    work = Path(tempfile.mkdtemp(prefix="sealwatch-outage-"))
    broker_dir = broker_directory()
    broker = Mosquitto(broker_dir).start()
    sid = f"outage-{uuid.uuid4().hex[:6]}"
    data = work / "data"
    d = DaemonProcess(write_site(work, sid, daemon=DAEMON_DEFAULTS), broker, data).start()
    gws = [BufferingGateway(broker, sid, dev) for dev in DEVICES]
    watcher = AvailabilityWatcher(broker, sid)
    poller: HealthPoller | None = None
    load = Load(gws, rate)
    try:
        await d.ready()
        watcher.start()
        await wait_until(lambda: watcher.online_after(0.0), 10, "the daemon's retained online")
        for g in gws:
            g.start()
        await wait_until(lambda: all(g.connects for g in gws), 10, "the gateways connected")
        poller = HealthPoller(d.http_port)
        poller.start()
        load.start()
        await asyncio.sleep(warm_s)

        await asyncio.to_thread(broker.stop)  # SIGTERM; waits until it has exited
        down = time.monotonic()
        await asyncio.sleep(outage_s)
        accepting = asyncio.create_task(asyncio.to_thread(wait_accepting, broker.port))
        await asyncio.to_thread(broker.start)
        back = await accepting
        await asyncio.sleep(after_s)
        load.halt.set()
        await asyncio.to_thread(load.join)

        await wait_until(lambda: watcher.online_after(back), 30, "the daemon back")
        await wait_until(lambda: all(g.connects[-1] > back for g in gws), 30, "gateways back")
        await wait_until(
            lambda: all(g.n_acked == g.sent for g in gws), 120, "every publish acknowledged"
        )
        sent = sum(g.sent for g in gws)
        acked = sum(g.n_acked for g in gws)
        # Wait until the daemon has stored everything, or nothing more arrives for 5 s.
        db = data / "sealwatch.db"
        topics = [g.topic for g in gws]
        last, since = -1, time.monotonic()
        while True:
            stored, ns, late, rejected = await asyncio.to_thread(stored_counts, db, topics)
            if stored >= acked:
                break
            if stored != last:
                last, since = stored, time.monotonic()
            elif time.monotonic() - since > 5.0:
                break
            await asyncio.sleep(0.2)
        poller.halt.set()

        online = watcher.online_after(back)
        assert online is not None
        watcher_up = watcher.connect_before(online)
        bound = watcher_up is not None and watcher_up > back and online - watcher_up < 0.002
        healthz = poller.first(True, down)
        gw_back = [min(t for t in g.connects if t > back) for g in gws]
        acked_ns = {(g.device, n) for g in gws for n in g.acked}
        return Result(
            sent=sent,
            acked=acked,
            stored=stored,
            lost=acked - stored,
            missing=len(acked_ns - ns),
            late=late,
            daemon_back_s=online - back,
            daemon_back_bound=bound,
            healthz_back_s=None if healthz is None else healthz - back,
            gateways_after_daemon_s=max(gw_back) - online,
            gateways_back_s=[t - back for t in gw_back],
            rejected=rejected,
        )
    finally:
        load.halt.set()
        if poller is not None:
            poller.halt.set()
        for g in gws:
            g.stop()
        watcher.stop()
        with contextlib.suppress(Exception):
            d.terminate()
        broker.stop()
        if keep:
            print(f"  kept {work} and {broker_dir}")
        else:
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(broker_dir, ignore_errors=True)


def ms(s: float | None) -> str:
    return "   -  " if s is None else f"{s * 1000:6.0f}"


def show(label: str, r: Result) -> None:
    bound = "≤" if r.daemon_back_bound else " "
    print(
        f"{label:>7}  daemon back {bound}{ms(r.daemon_back_s)} ms (healthz {ms(r.healthz_back_s)}"
        f" ms)  last gateway {r.gateways_after_daemon_s * 1000:+5.0f} ms from it"
        f" ({', '.join(ms(s).strip() for s in r.gateways_back_s)} ms after the broker)"
        f"  acked {r.acked:6d}  stored {r.stored:6d}  lost {r.lost:6d}  missing {r.missing:6d}"
        f"  late {r.late:6d}" + (f"  rejected {r.rejected}" if r.rejected else "")
    )


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--outage-s", type=float, default=8.0)
    p.add_argument("--rate", type=float, default=300.0, help="events/s over all gateways")
    p.add_argument("--warm-s", type=float, default=3.0, help="load before the outage")
    p.add_argument("--after-s", type=float, default=5.0, help="load after the broker is back")
    p.add_argument("--keep", action="store_true", help="keep the data and broker directories")
    a = p.parse_args()
    print(
        f"broker stopped for {a.outage_s:g} s under {a.rate:g} events/s QoS 1 from "
        f"{len(DEVICES)} gateways ({a.warm_s:g} s before, {a.after_s:g} s after); "
        f"times from the broker accepting connections again"
    )
    results = []
    for i in range(a.runs):
        r = await one_run(a.outage_s, a.rate, a.warm_s, a.after_s, a.keep)
        show(f"run {i + 1}", r)
        results.append(r)
    healthz = [r.healthz_back_s for r in results if r.healthz_back_s is not None]
    med = Result(
        sent=int(statistics.median(r.sent for r in results)),
        acked=int(statistics.median(r.acked for r in results)),
        stored=int(statistics.median(r.stored for r in results)),
        lost=int(statistics.median(r.lost for r in results)),
        missing=int(statistics.median(r.missing for r in results)),
        late=int(statistics.median(r.late for r in results)),
        daemon_back_s=statistics.median(r.daemon_back_s for r in results),
        daemon_back_bound=False,
        healthz_back_s=statistics.median(healthz) if healthz else None,
        gateways_after_daemon_s=statistics.median(r.gateways_after_daemon_s for r in results),
        gateways_back_s=[
            statistics.median(r.gateways_back_s[k] for r in results) for k in range(len(DEVICES))
        ],
    )
    show("median", med)


if __name__ == "__main__":
    asyncio.run(main())
