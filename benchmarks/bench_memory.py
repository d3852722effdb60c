"""Resident memory of the daemon with 10,000 configured devices (target ≤ 200 MB).

Runs `sealwatch run` as a subprocess on a synthetic site, feeds one event from every device
over MQTT, and reads VmRSS / VmHWM from /proc.

    .venv/bin/python benchmarks/bench_memory.py [--devices 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulators.load import publish_stream, synthetic_site_yaml
from tests.support.daemon import DaemonProcess
from tests.support.mosquitto import Mosquitto


def rss_mb(pid: int) -> tuple[float, float]:
    fields = dict(
        line.split(":", 1)
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if ":" in line
    )
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--devices", type=int, default=10_000)
    n = p.parse_args().devices
    workdir = Path(tempfile.mkdtemp(prefix="sealwatch-bench-"))
    os.chmod(workdir, 0o777)
    broker = Mosquitto(workdir).start()
    try:
        raw = yaml.safe_load(synthetic_site_yaml(n, "mem"))
        raw["daemon"] = {"snapshot_interval_s": 60}
        site_path = workdir / "mem.yaml"
        site_path.write_text(yaml.safe_dump(raw, sort_keys=False))
        devices = [
            d["id"]
            for key in ("doors", "cameras", "jammers", "phone_detectors", "checkpoints", "consoles")
            for d in raw[key]
        ]
        devices += [i["id"] for panel in raw["alarm_panels"] for i in panel["inputs"]]
        proc = DaemonProcess(site_path, broker, workdir / "data").start()
        try:
            await proc.ready(timeout_s=300)
            assert proc.proc is not None
            idle = rss_mb(proc.proc.pid)
            print(f"{len(devices)} devices configured; daemon idle RSS {idle[0]:.0f} MB")
            await publish_stream(
                ({"device": d, "type": "device.heartbeat"} for d in devices),
                "127.0.0.1",
                broker.port,
                site_id="mem",
            )
            db = sqlite3.connect(workdir / "data" / "sealwatch.db", timeout=10)
            deadline = time.monotonic() + 300
            while db.execute("SELECT COUNT(*) FROM events").fetchone()[0] < len(devices):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            now, peak = rss_mb(proc.proc.pid)
            print(f"after one event from every device: RSS {now:.0f} MB (peak {peak:.0f} MB)")
        finally:
            proc.terminate(timeout_s=60)
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
