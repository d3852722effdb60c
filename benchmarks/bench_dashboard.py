"""Dashboard benchmarks (issue 5), in Debian's Chromium against the real daemon and Mosquitto.

    .venv/bin/python benchmarks/bench_dashboard.py [--alerts 60] [--seconds 10]

1. Latency: a simulator action (a door forced, through the simulator's MQTT gateway) to the
   alert painted in the browser (the frame after the page inserted it), p50/p95/max over
   --alerts alerts; also the daemon's share (publish to the transition stored and handed to
   the dashboard).
2. Smoothness: a site of 500+ devices with 100 active alerts, while device events stream
   in (--rate per second for --seconds): long tasks (> 50 ms) and frame times seen by the
   page (requestAnimationFrame), and the page's own time spent applying deltas.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from policies.site import load_site  # noqa: E402
from simulators.site_sim import SiteSimulator  # noqa: E402
from tests.support.browser import add_users, chromium, login  # noqa: E402
from tests.support.daemon import Gateway, now_ts, running_daemon, write_site  # noqa: E402
from tests.support.mosquitto import Mosquitto, free_port  # noqa: E402


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


async def latency(tmp: Path, broker: Mosquitto, n: int) -> None:
    path = write_site(tmp, "benchlat")
    site = load_site(path)
    ports = {j.modbus.port: free_port() for j in site.jammers.values() if j.modbus}
    raw = yaml.safe_load(path.read_text())
    cam_port = free_port()
    for cam in raw["cameras"]:
        cam["url"] = cam["url"].replace(":18081/", f":{cam_port}/")
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    site = load_site(path)
    add_users(tmp / "data-lat")
    doors = [d for d in site.doors if d not in ("supply-hatch",)]
    async with (
        running_daemon(path, broker, tmp / "data-lat") as d,
        SiteSimulator(
            site, "127.0.0.1", broker.port, tmp / "sim", port_map=ports, heartbeat_s=3600
        ) as sim,
        chromium() as browser,
    ):
        assert d.pipeline is not None
        handed: dict[str, float] = {}
        d.pipeline.listeners.subscribe(
            lambda rows: handed.update(
                {r["alert_id"]: time.time() for r in rows if r["state"] == "raised"}
            )
        )
        page = await browser.new_page(viewport={"width": 1680, "height": 1050})
        await login(page, f"http://127.0.0.1:{d.http_port}", "olga")
        total, daemon_part = [], []
        seen: set[str] = set()
        monitor = d.pipeline

        def forced(door: str) -> str | None:
            for v in monitor.stage.views.values():
                if v.policy == "door-forced" and v.subject == door and v.alert_id not in seen:
                    return v.alert_id
            return None

        for i in range(n):
            door = doors[i % len(doors)]
            t0 = time.time()
            await sim.perform({"do": "door.force", "door": door})
            while (alert_id := forced(door)) is None:  # noqa: ASYNC110 - polls the engine
                await asyncio.sleep(0.001)
            seen.add(alert_id)
            await page.wait_for_function(
                "id => id in window.sealwatchStats.alertPainted", arg=alert_id
            )
            painted = await page.evaluate(f"window.sealwatchStats.alertPainted['{alert_id}']")
            total.append(painted / 1000 - t0)
            daemon_part.append(handed[alert_id] - t0)
            await sim.perform({"do": "door.close", "door": door})
    print(f"latency, simulator action -> alert painted in Chromium, {n} alerts:")
    print(
        f"  p50 {pct(total, 50) * 1000:.1f} ms   p95 {pct(total, 95) * 1000:.1f} ms   "
        f"max {max(total) * 1000:.1f} ms   mean {statistics.mean(total) * 1000:.1f} ms"
    )
    if daemon_part:
        print(
            f"  of which MQTT + engine + store (action -> transition handed to the "
            f"dashboard): p50 {pct(daemon_part, 50) * 1000:.1f} ms   "
            f"p95 {pct(daemon_part, 95) * 1000:.1f} ms"
        )


def big_site(tmp: Path) -> Path:
    """The reference site plus enough devices to pass 500."""
    raw = yaml.safe_load((ROOT / "deploy" / "examples" / "site.yaml").read_text())
    raw["site"]["id"] = "benchbig"
    raw.pop("seals", None)
    raw["policies"] = {
        **raw.get("policies", {}),
        "heartbeat_timeout_s": 3600,
        "ack_escalation_s": 3600,
        "door_held_open_s": 3600,
    }
    raw["daemon"] = {"ingest_hold_max_s": 3.0}
    zones = ["work", "living", "typesetting", "press-hall", "secure-room", "belt"]
    raw["cameras"] += [{"id": f"cam-x{i:03d}", "zone": zones[i % len(zones)]} for i in range(120)]
    raw["phone_detectors"] += [
        {"id": f"pd-x{i:03d}", "zone": zones[i % len(zones)]} for i in range(80)
    ]
    raw["checkpoints"] += [{"id": f"cp-x{i:03d}", "zone": "belt"} for i in range(60)]
    raw["alarm_panels"].append(
        {
            "id": "panel-x",
            "zone": "monitoring-room",
            "inputs": [
                {"id": f"in-x{i:03d}", "zone": zones[i % len(zones)], "kind": "pir"}
                for i in range(200)
            ],
        }
    )
    raw["doors"] += [{"id": f"door-x{i:03d}", "a": "work", "b": "living"} for i in range(40)]
    path = tmp / "big.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


async def smoothness(tmp: Path, broker: Mosquitto, seconds: float, rate: int) -> None:
    path = big_site(tmp)
    site = load_site(path)
    add_users(tmp / "data-big")
    n_devices = len(site.device_kind)
    inputs = [i for i in site.alarm_inputs if i.startswith("in-x")]
    async with (
        running_daemon(path, broker, tmp / "data-big") as d,
        Gateway(broker, "benchbig") as gw,
        chromium() as browser,
    ):
        assert d.pipeline is not None
        for inp in inputs[:100]:  # tamper: an intrusion alert at any time, 100 of them
            await gw.event(inp, "alarm.input", state="tamper", ts=now_ts())
        while len(d.pipeline.stage.views) < 100:  # noqa: ASYNC110 - polls the engine
            await asyncio.sleep(0.05)
        page = await browser.new_page(viewport={"width": 1680, "height": 1050})
        await login(page, f"http://127.0.0.1:{d.http_port}", "olga")
        await page.wait_for_function("document.querySelectorAll('.alert').length >= 100")
        await page.evaluate("""() => {
            const s = window.sealwatchStats;
            s.long = []; s.frames = []; s.flushMs = 0; s.flushes = 0;
            new PerformanceObserver((l) => {
                for (const e of l.getEntries()) s.long.push(e.duration);
            }).observe({type: 'longtask', buffered: false});
            let last = performance.now();
            const loop = (t) => {
                s.frames.push(t - last); last = t;
                if (!s.stop) requestAnimationFrame(loop);
            };
            requestAnimationFrame(loop);
        }""")
        cams = [c for c in site.cameras if c.startswith("cam-x")]
        states = ["normal", "alarm", "fault"]
        t_end = time.monotonic() + seconds
        sent = 0
        while time.monotonic() < t_end:
            tick = time.monotonic()
            for k in range(rate // 10):
                j = sent + k
                if j % 3 == 0:
                    await gw.event(
                        cams[j % len(cams)],
                        "camera.status",
                        stream="up",
                        tamper=None,
                        fps=10.0 + j % 5,
                        ts=now_ts(),
                    )
                elif j % 3 == 1:
                    await gw.event(
                        inputs[100 + j % 100], "alarm.input", state=states[j % 3], ts=now_ts()
                    )
                else:
                    await gw.event(f"pd-x{j % 80:03d}", "device.heartbeat", ts=now_ts())
            sent += rate // 10
            await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))
        stats: dict[str, Any] = await page.evaluate(
            "(() => { const s = window.sealwatchStats; s.stop = true; return s; })()"
        )
        shown = await page.evaluate("document.querySelectorAll('.alert').length")
    frames = stats["frames"][1:]
    print(
        f"smoothness: {n_devices} devices, {shown} alerts on the page, {sent} device events "
        f"in {seconds:.0f} s ({rate}/s):"
    )
    print(
        f"  frames {len(frames)}: p50 {pct(frames, 50):.1f} ms  p95 {pct(frames, 95):.1f} ms  "
        f"p99 {pct(frames, 99):.1f} ms  max {max(frames):.1f} ms; "
        f"frames > 50 ms: {sum(f > 50 for f in frames)}"
    )
    print(
        f"  long tasks: {len(stats['long'])} (total {sum(stats['long']):.0f} ms); page time "
        f"applying deltas: {stats['flushMs']:.0f} ms in {stats['flushes']} frames "
        f"({stats['flushMs'] / max(1, stats['flushes']):.2f} ms each)"
    )


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alerts", type=int, default=60)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=int, default=200, help="device events per second")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "broker").mkdir()
        broker = Mosquitto(tmp / "broker").start()
        try:
            await latency(tmp, broker, args.alerts)
            await smoothness(tmp, broker, args.seconds, args.rate)
        finally:
            broker.stop()


if __name__ == "__main__":
    asyncio.run(main())
