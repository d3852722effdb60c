"""How many sites one `sealwatch central` follows, and the delay from a site's alert publish to
the centre's view (docs/central.md).

A real three-node RabbitMQ cluster (tests/support/rabbit.py) and the central in this process
(its real code: the persistent session, the state, nothing stubbed). The sites are simulated
directly on the cluster to save CPU — no Mosquitto, no daemon per site: a publisher process
sends, per site, what a site's bridge forwards (an alert transition and its retained active
state every `--alert-every` s, the summary on each change and every 30 s, the signed ledger
head once a second) plus the site's device traffic the bridge does *not* forward (4 jammer
statuses a second, a door or badge event every 5 s), which loads the cluster but is not routed
to the centre. All QoS 1, spread over the three nodes. Each alert line carries its send time;
the central's probe takes the delay when the transition enters its state.

    .venv/bin/python benchmarks/bench_central.py [--sites 100 300 1000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from daemon.central.app import Central
from daemon.central.config import parse_central
from tests.support.rabbit import RabbitCluster, available

JAMMERS = 4


def publisher(ports: list[int], sites: int, seconds: float, alert_every: float, out: Any) -> None:
    clients = []
    for i, port in enumerate(ports):
        c = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{i}", protocol=paho.MQTTv311
        )
        c.max_inflight_messages_set(10_000)
        c.max_queued_messages_set(0)
        c.connect("127.0.0.1", port)
        c.loop_start()
        clients.append(c)
    sent_alerts = 0
    published = 0
    start = time.time()
    tick = 0
    while time.time() - start < seconds:
        t0 = time.time()
        for s in range(sites):
            # spread over the second, as independent sites would be
            lag = t0 + s / sites - time.time()
            if lag > 0:
                time.sleep(lag)
            c = clients[s % len(clients)]
            base = f"sealwatch/site{s}"
            for j in range(JAMMERS):
                c.publish(
                    f"{base}/events/jam-{j}",
                    b'{"type":"jammer.status","output":true,"bands":{"b1":-10.0,"b2":-11.0}}',
                    qos=1,
                )
            if (tick + s) % 5 == 0:
                c.publish(f"{base}/events/door-{s}", b'{"type":"badge","badge":"S1"}', qos=1)
            c.publish(
                f"{base}/audit/head",
                orjson.dumps({"seq": tick, "hash": "x" * 64, "sig": "y" * 88}),
                qos=1,
                retain=True,
            )
            published += JAMMERS + 1
            if (tick + s) % max(1, int(alert_every)) == 0:
                line = {
                    "alert_id": f"site{s}-a{tick}",
                    "state": "raised",
                    "ts": f"{tick}",
                    "policy": "door-forced",
                    "subject": "door-1",
                    "severity": "critical",
                    "sent": time.time(),
                }
                c.publish(f"{base}/alerts", orjson.dumps(line), qos=1)
                c.publish(
                    f"{base}/alerts/active/{line['alert_id']}",
                    orjson.dumps(line),
                    qos=1,
                    retain=True,
                )
                summary = {
                    "site": f"site{s}",
                    "seals": [],
                    "active": {"critical": 1},
                    "alerts": [line],
                    "alerts_truncated": 0,
                }
                c.publish(f"{base}/summary", orjson.dumps(summary), qos=1, retain=True)
                sent_alerts += 1
                published += 3
            elif (tick + s) % 30 == 0:
                c.publish(
                    f"{base}/summary", b'{"site":"x","alerts_truncated":1}', qos=1, retain=True
                )
                published += 1
        tick += 1
        time.sleep(max(0.0, 1.0 - (time.time() - t0)))
    behind = time.time() - start - seconds
    for c in clients:
        c.loop_stop()
        c.disconnect()
    out.put({"alerts": sent_alerts, "published": published, "behind_s": behind})


async def run(cluster: RabbitCluster, sites: int, seconds: float, alert_every: float) -> None:
    config = parse_central(
        {
            "brokers": cluster.urls,
            "mqtt": {"client_id": f"bench-central-{sites}"},
            "http": "127.0.0.1:0",
            "sites": [
                {"id": f"site{i}", "lon": 100 + i % 30, "lat": 30 + i // 30} for i in range(sites)
            ],
        }
    )
    delays: list[float] = []

    def probe(_site: str, tr: dict[str, Any]) -> None:
        if "sent" in tr:
            delays.append(time.time() - float(tr["sent"]))

    async with Central(config) as central:
        central.centre.on_transition.append(probe)
        await asyncio.wait_for(central.link.up.wait(), 30)
        out: multiprocessing.Queue[dict[str, Any]] = multiprocessing.Queue()
        ports = [n.mqtt_port for n in cluster.nodes]
        proc = multiprocessing.Process(
            target=publisher, args=(ports, sites, seconds, alert_every, out)
        )
        cpu0, wall0, msgs0 = time.process_time(), time.monotonic(), central.centre.messages
        proc.start()
        got = await asyncio.to_thread(out.get)
        await asyncio.to_thread(proc.join)
        deadline = time.monotonic() + 60
        # the last alerts in flight: poll (nothing to await on; a benchmark, not a test)
        while len(delays) < got["alerts"] and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        msgs = central.centre.messages - msgs0
    delays.sort()

    def q(p: float) -> float:
        return delays[min(len(delays) - 1, int(p * len(delays)))] * 1000 if delays else 0.0

    print(
        f"{sites:5d} sites: sent {got['published'] / seconds:7.0f} msg/s to the cluster "
        f"(publisher {got['behind_s']:+.1f} s behind), the central took {msgs / wall:6.0f} msg/s "
        f"at {100 * cpu / wall:4.0f} % of a core (this process); alerts {len(delays)}/"
        f"{got['alerts']} seen, delay p50 {q(0.5):.0f} ms p99 {q(0.99):.0f} ms "
        f"max {delays[-1] * 1000 if delays else 0:.0f} ms",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sites", type=int, nargs="+", default=[100, 300, 1000])
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--alert-every", type=float, default=10, help="s between a site's alerts")
    args = ap.parse_args()
    why = available()
    if why:
        sys.exit(why)
    with tempfile.TemporaryDirectory() as tmp:
        cluster = RabbitCluster(Path(tmp)).start()
        print(f"three-node RabbitMQ cluster up in {cluster.started_in_s:.0f} s", flush=True)
        try:
            for n in args.sites:
                asyncio.run(run(cluster, n, args.seconds, args.alert_every))
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
