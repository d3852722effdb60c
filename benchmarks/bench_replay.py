"""Replay throughput and memory on a large stream for the reference site (issue 2).

    .venv/bin/python benchmarks/bench_replay.py [--events 1000000] [--cli]

Generates a stream in which every periodic device (jammers, cameras, the alarm panel, phone
detectors) reports every second, with door and badge traffic, during the reference seal;
writes it to a temporary file, then replays it with the engine streaming from the file
(nothing is loaded whole). Prints events/s and peak RSS at several stream lengths so that a
flat memory profile is visible. With --cli it also times `sealwatch replay` end to end.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from daemon.replay import replay_lines  # noqa: E402
from policies.site import Site, load_site  # noqa: E402
from policies.timefmt import format_ts, parse_ts  # noqa: E402

SITE = ROOT / "deploy" / "examples" / "site.yaml"


def write_stream(site: Site, path: Path, n_events: int, seed: int = 1) -> int:
    """Write about n_events lines; return how many were written."""
    rnd = random.Random(seed)
    tz = site.tz
    t = parse_ts("2027-05-21T08:00:00+08:00")
    periodic: list[bytes] = []
    for j in site.jammers.values():
        bands = {b.id: b.min_dbm + 3.0 for b in j.bands}
        periodic.append(
            orjson.dumps(
                {
                    "device": j.id,
                    "type": "jammer.status",
                    "output": True,
                    "bands": bands,
                    "faults": [],
                    "temperature_c": 41.5,
                }
            )
        )
    for c in site.cameras:
        periodic.append(
            orjson.dumps(
                {"device": c, "type": "camera.status", "stream": "up", "tamper": None, "fps": 12.5}
            )
        )
    for p in site.alarm_panels:
        periodic.append(
            orjson.dumps(
                {
                    "device": p,
                    "type": "alarm.panel",
                    "armed": True,
                    "mains": "ok",
                    "battery": "ok",
                    "tamper": False,
                }
            )
        )
    for d in site.phone_detectors:
        periodic.append(orjson.dumps({"device": d, "type": "device.heartbeat"}))
    staff = [p.badge for p in site.people.values() if p.role == "sealed_staff"]
    doors = ["living-link", "typesetting-door", "press-hall-door", "monitoring-door"]
    written = 0
    with path.open("wb") as f:
        duty = orjson.dumps(
            {"device": "console-1", "type": "operator.duty", "badge": "O4001", "state": "on"}
        )
        f.write(b'{"ts":"' + format_ts(t, tz).encode() + b'",' + duty[1:] + b"\n")
        written += 1
        while written < n_events:
            prefix = b'{"ts":"' + format_ts(t, tz).encode() + b'",'
            lines = [prefix + body[1:] for body in periodic]
            if rnd.random() < 0.05:
                cp = rnd.choice(list(site.checkpoints))
                lines.append(
                    prefix
                    + orjson.dumps({"device": cp, "type": "patrol.checkpoint", "badge": "G3001"})[
                        1:
                    ]
                )
            if rnd.random() < 0.3:  # someone moves between zones: badge, open, close
                door = rnd.choice(doors)
                badge = rnd.choice(staff)
                lines.append(
                    prefix
                    + orjson.dumps(
                        {"device": door, "type": "badge.granted", "badge": badge, "direction": "in"}
                    )[1:]
                )
                lines.append(prefix + orjson.dumps({"device": door, "type": "door.opened"})[1:])
                closed = b'{"ts":"' + format_ts(t + 400_000, tz).encode() + b'",'
                lines.append(closed + orjson.dumps({"device": door, "type": "door.closed"})[1:])
            f.write(b"\n".join(lines) + b"\n")
            written += len(lines)
            t += 1_000_000
    return written


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def replay_file(site: Site, path: Path, limit: int | None = None) -> tuple[int, int, float, float]:
    """Replay (streaming) and serialise transitions as the CLI does.

    Returns events, transitions, wall seconds and CPU seconds of this process (the CPU time is
    what "on one core" means when other work shares the machine)."""
    tz = site.tz
    n_alerts = 0
    with path.open("rb") as f:
        lines = f if limit is None else (line for i, line in enumerate(f) if i < limit)
        start, cpu = time.perf_counter(), time.process_time()
        for tr in replay_lines(site, lines):
            orjson.dumps(tr.to_dict(tz))
            n_alerts += 1
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return (limit or sum(1 for _ in path.open("rb"))), n_alerts, elapsed, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--cli", action="store_true", help="also time `sealwatch replay`")
    args = ap.parse_args()
    site = load_site(SITE)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stream.jsonl"
        t0 = time.perf_counter()
        n = write_stream(site, path, args.events)
        print(
            f"generated {n:,} events ({path.stat().st_size / 1e6:.0f} MB) in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        base = rss_mb()
        for frac in (0.25, 1.0):
            limit = int(n * frac) if frac < 1 else None
            events, alerts, secs, cpu = replay_file(site, path, limit)
            print(
                f"replay {events:>10,} events: {events / cpu:>10,.0f} events/s of CPU, "
                f"{events / secs:>10,.0f} events/s wall ({alerts} transitions), "
                f"peak RSS {rss_mb():.0f} MB (before replay {base:.0f} MB)"
            )
        if args.cli:
            exe = ROOT / ".venv" / "bin" / "sealwatch"
            start = time.perf_counter()
            subprocess.run(
                [str(exe), "replay", "--config", str(SITE), str(path)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            secs = time.perf_counter() - start
            print(
                f"sealwatch replay (CLI, incl. start-up): {n / secs:,.0f} events/s ({secs:.2f} s)"
            )
    print(f"python {sys.version.split()[0]}, pid {os.getpid()}")


if __name__ == "__main__":
    main()
