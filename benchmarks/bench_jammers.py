"""How many Modbus jammers one core can poll at 1 Hz (target: 1,000 using < 50 % of it).

    .venv/bin/python -m benchmarks.bench_jammers [--counts 100,500,1000] [--seconds 20]

Endpoints: K real pymodbus TCP servers, one port each (as on a site, where every jammer is
its own IP:502), answering the CONTRACT §6 reference map with five bands. They run in
`--server-procs` separate processes so that their CPU is not counted against the poller.
The poller is `adapters.modbus_jammer.JammerHub` in this process, one event loop, feeding a
sink that only counts. Printed: statuses/s, and this process's CPU (time.process_time over
wall time) while polling, after a warm-up of one period (the connects are excluded).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BANDS = 5


def reference_registers() -> list[int]:
    r = [0] * 64
    r[0], r[1], r[2], r[3] = 1, BANDS, 1, 355
    r[4], r[5] = 0, 12345
    for i in range(BANDS):
        r[10 + i] = 330
        r[30 + i] = 20
    return r


async def serve(first_port: int, count: int) -> None:
    """Run `count` jammer servers on consecutive ports until stdin closes."""
    import logging

    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    servers = []
    for port in range(first_port, first_port + count):
        device = SimDevice(
            1, simdata=[SimData(0, values=reference_registers(), datatype=DataType.REGISTERS)]
        )
        server = ModbusTcpServer(device, address=("127.0.0.1", port))
        await server.serve_forever(background=True)
        servers.append(server)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for s in servers:
        await s.shutdown()  # type: ignore[no-untyped-call]  # unannotated in pymodbus


class CountingSink:
    def __init__(self) -> None:
        self.statuses = 0
        self.other = 0
        self.rejections = 0

    async def submit(self, event: dict[str, Any], *, source: str) -> None:
        if event["type"] == "jammer.status":
            self.statuses += 1
        else:
            self.other += 1

    async def reject(self, source: str, payload: str, reason: str) -> None:
        self.rejections += 1


def cpu_seconds(pid: int) -> float:
    """utime + stime of another process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def poll(k: int, first_port: int, seconds: float, server_pids: list[int]) -> dict[str, float]:
    from adapters.modbus_jammer import JammerHub
    from policies.site import Band, Jammer, Modbus

    bands = tuple(Band(i, f"b{i}", 20.0) for i in range(BANDS))
    jammers = [
        Jammer(
            f"jam-{i}",
            "work",
            bands,
            Modbus("127.0.0.1", first_port + i, 1, poll_s=1.0, timeout_s=2.0),
        )
        for i in range(k)
    ]
    sink = CountingSink()
    async with JammerHub(jammers, sink) as hub:
        await asyncio.sleep(2.0)  # connects and first polls, spread over one period
        s0, c0, w0 = sink.statuses, time.process_time(), time.perf_counter()
        k0 = hub.stats().skipped
        sc0 = sum(cpu_seconds(p) for p in server_pids)
        await asyncio.sleep(seconds)
        s1, c1, w1 = sink.statuses, time.process_time(), time.perf_counter()
        sc1 = sum(cpu_seconds(p) for p in server_pids)
        k1 = hub.stats().skipped
    wall = w1 - w0
    return {
        "jammers": k,
        "statuses_per_s": (s1 - s0) / wall,
        "cpu_percent": 100.0 * (c1 - c0) / wall,
        "servers_cpu_percent": 100.0 * (sc1 - sc0) / wall,
        "rejections": sink.rejections,
        "health_events": sink.other,
        "slots_skipped": k1 - k0,
        "load_avg_1m": os.getloadavg()[0],
    }


def run_one(k: int, seconds: float, procs: int, base_port: int) -> dict[str, float]:
    per = -(-k // procs)
    servers = []
    for p in range(procs):
        n = min(per, k - p * per)
        if n <= 0:
            break
        servers.append(
            subprocess.Popen(
                [sys.executable, __file__, "--serve", str(base_port + p * per), str(n)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
        )
    try:
        for s in servers:
            assert s.stdout is not None
            if s.stdout.readline().strip() != "ready":
                raise RuntimeError("server process failed to start")
        return asyncio.run(poll(k, base_port, seconds, [s.pid for s in servers]))
    finally:
        for s in servers:
            assert s.stdin is not None
            s.stdin.close()
            s.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", default="100,500,1000")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--server-procs", type=int, default=2)
    ap.add_argument("--base-port", type=int, default=21000)
    ap.add_argument("--serve", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        asyncio.run(serve(*args.serve))
        return
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores, poll 1 Hz, "
        f"{args.seconds:.0f} s per run"
    )
    for k in (int(x) for x in args.counts.split(",")):
        result = run_one(k, args.seconds, args.server_procs, args.base_port)
        print(
            json.dumps(
                {key: round(v, 1) if isinstance(v, float) else v for key, v in result.items()}
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
