"""Load for benchmarks: a realistic event stream for a site, a paced MQTT publisher, and
synthetic sites of any size.

`generate_stream(site, seconds, start)` yields events (CONTRACT §2 dicts) in time order:
every jammer, camera, panel and phone detector reports once a second; doors see badge
grants followed by open and close; now and then an incident (denied unknown badge, an alarm
input tripping and restoring, a jammer band dipping below its floor, a held-open door).
Deterministic for a given seed.

    python -m simulators.load --config SITE.yaml --mqtt HOST:PORT --rate 5000 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import itertools
import random
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiomqtt
import orjson
import yaml

from policies.site import Site, load_site, parse_site

from .clock import now_utc, rfc3339
from .gateways import NODELAY


def generate_stream(
    site: Site,
    seconds: float,
    start: datetime | None = None,
    *,
    seed: int = 1,
    door_rate: float = 0.05,
    incident_every_s: float = 120.0,
) -> Iterator[dict[str, Any]]:
    """Events for `seconds` of site life from `start`; `door_rate` = passages/door/second."""
    rng = random.Random(seed)
    start = start or now_utc()
    periodic = (
        [(j, "jammer") for j in site.jammers]
        + [(c, "camera") for c in site.cameras]
        + [(p, "panel") for p in site.alarm_panels]
        + [(d, "detector") for d in site.phone_detectors]
    )
    doors = list(site.doors.values())
    people = list(site.people.values())
    inputs = list(site.alarm_inputs)
    jammer_dip: dict[str, tuple[str, float]] = {}  # jammer -> (band, until second)
    pending: list[tuple[float, int, dict[str, Any]]] = []  # (offset s, seq, event)
    seq = itertools.count()

    def at(offset: float, device: str, type_: str, **fields: Any) -> None:
        ts = rfc3339(start + timedelta(seconds=offset))
        heapq.heappush(
            pending, (offset, next(seq), {"ts": ts, "device": device, "type": type_, **fields})
        )

    for second in range(int(seconds)):
        n = max(1, len(periodic))
        for k, (dev, kind) in enumerate(periodic):
            off = second + k / n * 0.9  # spread reports over the second, as real polls are
            if kind == "jammer":
                jam = site.jammers[dev]
                dip = jammer_dip.get(dev)
                bands = {b.id: round(b.min_dbm + 3.0 + rng.gauss(0, 0.2), 1) for b in jam.bands}
                if dip and dip[1] > second:
                    bands[dip[0]] = 9.5
                at(
                    off,
                    dev,
                    "jammer.status",
                    output=True,
                    bands=bands,
                    faults=[],
                    temperature_c=round(40 + rng.gauss(0, 0.3), 1),
                )
            elif kind == "camera":
                at(off, dev, "camera.status", stream="up", tamper=None, fps=10)
            elif kind == "panel":
                at(off, dev, "alarm.panel", armed=True, mains="ok", battery="ok", tamper=False)
            else:
                at(off, dev, "device.heartbeat")
        for door in doors:
            if door.kind == "hatch" or rng.random() >= door_rate or not people:
                continue
            person = rng.choice(people)
            direction = rng.choice(("in", "out"))
            off = second + rng.random() * 0.9
            if door.zone_entered(direction) in person.zones:
                at(off, door.id, "badge.granted", badge=person.badge, direction=direction)
                at(off + 0.5, door.id, "door.opened")
                at(off + 4.0 + rng.random() * 4, door.id, "door.closed")
            else:
                at(
                    off,
                    door.id,
                    "badge.denied",
                    badge=person.badge,
                    direction=direction,
                    reason="not authorised",
                )
        if incident_every_s > 0 and second > 0 and second % int(incident_every_s) == 0:
            _incident(rng, site, second, doors, inputs, jammer_dip, at)
        while pending and pending[0][0] < second + 1:
            yield heapq.heappop(pending)[2]
    while pending and pending[0][0] < seconds:
        yield heapq.heappop(pending)[2]


def _incident(
    rng: random.Random,
    site: Site,
    second: int,
    doors: list[Any],
    inputs: list[str],
    jammer_dip: dict[str, tuple[str, float]],
    at: Any,
) -> None:
    kind = rng.choice(("badge", "alarm", "jammer", "held"))
    off = second + 0.95
    if kind == "badge" and doors:
        door = rng.choice(doors)
        for k in range(3):
            at(
                off + k * 0.01,
                door.id,
                "badge.denied",
                badge="X9999",
                direction="in",
                reason="unknown badge",
            )
    elif kind == "alarm" and inputs:
        inp = rng.choice(inputs)
        at(off, inp, "alarm.input", state="alarm")
        at(off + 5, inp, "alarm.input", state="normal")
    elif kind == "jammer" and site.jammers:
        jid = rng.choice(list(site.jammers))
        jammer_dip[jid] = (rng.choice(site.jammers[jid].bands).id, second + 4)
    elif doors:
        door = rng.choice(doors)
        at(off, door.id, "door.opened")
        at(off + site.policies.door_held_open_s + 5, door.id, "door.closed")


@dataclass(frozen=True, slots=True)
class PublishStats:
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


async def publish_stream(
    events: Iterable[dict[str, Any]],
    host: str,
    port: int,
    *,
    site_id: str,
    rate: float | None = None,
    qos: int = 1,
    window: int = 500,
) -> PublishStats:
    """Publish events to `sealwatch/SITE/events/DEVICE` in order, paced to `rate` per second
    (as fast as the broker acknowledges when None), with up to `window` QoS 1 in flight."""
    began = time.monotonic()
    sent = 0
    async with aiomqtt.Client(
        host,
        port,
        identifier=f"sim-load-{int(began * 1000)}",
        socket_options=NODELAY,
        max_inflight_messages=window,
        max_queued_outgoing_messages=0,
    ) as client:
        inflight = asyncio.Semaphore(window)
        async with asyncio.TaskGroup() as tg:
            for event in events:
                if rate:
                    due = began + sent / rate
                    delay = due - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                await inflight.acquire()
                # Tasks start in creation order, so the broker receives events in order.
                task = tg.create_task(
                    client.publish(
                        f"sealwatch/{site_id}/events/{event['device']}",
                        orjson.dumps(event),
                        qos=qos,
                    )
                )
                task.add_done_callback(lambda _t: inflight.release())
                sent += 1
    return PublishStats(sent, time.monotonic() - began)


def synthetic_site(devices: int, site_id: str = "load", *, base_port: int = 30000) -> Site:
    """A valid site with about `devices` devices of every kind (for memory/scale benchmarks).

    Loading goes through the real site loader (PyYAML): about 11 s for 10,000 devices.
    """
    return parse_site(synthetic_site_yaml(devices, site_id, base_port=base_port))


def synthetic_site_yaml(devices: int, site_id: str = "load", *, base_port: int = 30000) -> str:
    """The site file text of `synthetic_site`, to hand to a daemon under test."""
    zones = [
        {"id": "outside", "kind": "public"},
        {"id": "belt", "kind": "buffer"},
        {"id": "screening", "kind": "screening"},
        {"id": "work", "kind": "sealed_work"},
        {"id": "living", "kind": "sealed_living"},
        {"id": "monitoring-room", "kind": "monitoring", "parent": "work"},
    ]
    rooms = [f"room-{k}" for k in range(10)]
    zones += [{"id": r, "kind": "sealed_work", "parent": "work"} for r in rooms]
    inner = ["work", "living"]
    share = {
        "door": 0.25,
        "camera": 0.15,
        "jammer": 0.08,
        "input": 0.3,
        "detector": 0.1,
        "checkpoint": 0.07,
        "console": 0.05,
    }
    count = {k: max(1, int(devices * v)) for k, v in share.items()}
    doors = [
        {"id": "gate-outer", "a": "outside", "b": "screening"},
        {"id": "gate-inner", "a": "screening", "b": "work"},
    ]
    doors += [
        {"id": f"door-{i}", "a": "work", "b": rooms[i % len(rooms)]}
        for i in range(count["door"] - 2)
    ]
    cameras = [
        {
            "id": f"cam-{i}",
            "zone": inner[i % 2],
            "url": f"http://127.0.0.1:{base_port + i // 100}/cam-{i}.mjpg",
            "recordings": f"var/nvr/cam-{i}",
        }
        for i in range(count["camera"])
    ]
    jammers = [
        {
            "id": f"jam-{i}",
            "zone": inner[i % 2],
            "modbus": {"host": "127.0.0.1", "port": base_port + 1000 + i % 20000},
            "bands": [
                {"index": 0, "id": "gsm900", "min_dbm": 30.0},
                {"index": 1, "id": "lte2100", "min_dbm": 27.0},
            ],
        }
        for i in range(count["jammer"])
    ]
    n_inputs = count["input"]
    panels = [
        {
            "id": f"panel-{p}",
            "zone": "monitoring-room",
            "inputs": [
                {"id": f"input-{p}-{k}", "zone": "belt" if k % 4 == 0 else "work", "kind": "pir"}
                for k in range(min(16, n_inputs - p * 16))
            ],
        }
        for p in range((n_inputs + 15) // 16)
    ]
    people = [
        {
            "badge": f"B{i:05d}",
            "name": f"Person {i}",
            "role": ("sealed_staff", "operator", "guard", "supervisor")[i % 4],
            "zones": ["work", "living", "monitoring-room", *rooms[: i % 10]]
            if i % 4 != 2
            else ["belt", "screening"],
        }
        for i in range(max(20, devices // 20))
    ]
    raw = {
        "site": {
            "id": site_id,
            "name": f"Synthetic site with {devices} devices",
            "timezone": "UTC",
        },
        "zones": zones,
        "doors": doors,
        "entrance": {"outer": "gate-outer", "inner": "gate-inner"},
        "people": people,
        "jammers": jammers,
        "cameras": cameras,
        "alarm_panels": panels,
        "phone_detectors": [
            {"id": f"pd-{i}", "zone": inner[i % 2]} for i in range(count["detector"])
        ],
        "checkpoints": [{"id": f"cp-{i}", "zone": "belt"} for i in range(count["checkpoint"])],
        "consoles": [
            {"id": f"console-{i}", "zone": "monitoring-room"} for i in range(count["console"])
        ],
    }
    return yaml.dump(raw, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m simulators.load")
    p.add_argument("--config", help="site file (default: a synthetic site of --devices)")
    p.add_argument("--devices", type=int, default=100)
    p.add_argument("--mqtt", default="127.0.0.1:1883")
    p.add_argument("--rate", type=float, default=None, help="events per second (default: max)")
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--topic-site", help="publish under sealwatch/THIS/")
    args = p.parse_args(argv)
    site = load_site(args.config) if args.config else synthetic_site(args.devices)
    host, _, port = args.mqtt.rpartition(":")
    stats = asyncio.run(
        publish_stream(
            generate_stream(site, args.seconds),
            host or "127.0.0.1",
            int(port),
            site_id=args.topic_site or site.id,
            rate=args.rate,
        )
    )
    print(f"published {stats.events} events in {stats.seconds:.2f} s = {stats.rate:.0f}/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
