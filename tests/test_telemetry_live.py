"""Telemetry on real parts: a real `sealwatch run` daemon, real Mosquitto and a real
VictoriaMetrics (it takes InfluxDB's /api/v2/write; its Prometheus API reads the points back,
naming each field `measurement_field`). The database is stopped under load, the daemon is
restarted while it is down, the spool fills to its bound: every point is counted."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import signal
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, ClientTimeout, web

from tests.support.daemon import (
    AlertWatcher,
    DaemonProcess,
    Gateway,
    ahttp,
    now_ts,
    running_daemon,
    wait_until,
    write_site,
)
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.victoria import VictoriaMetrics

pytestmark = pytest.mark.slow
_ids = itertools.count()


def site_id(name: str) -> str:
    return f"t-{name}-{next(_ids)}-{uuid.uuid4().hex[:4]}"


@pytest.fixture
def vm(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    db = VictoriaMetrics(tmp_path).start()
    yield db
    db.stop()


def influx(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "influxdb": {
            "url": url,
            "org": "works",
            "bucket": "sealwatch",
            "flush_interval_s": 0.1,
            "retry_min_s": 0.05,
            "retry_max_s": 0.3,
            "timeout_s": 2,
            "stats_interval_s": 0.5,
            **extra,
        }
    }


def daemon(site_path: Path, broker: Mosquitto, data: Path) -> DaemonProcess:
    """`sealwatch run` with Python's fault handler on, so a hang can be shown (`stop`)."""
    d = DaemonProcess(site_path, broker, data)
    d.env["PYTHONFAULTHANDLER"] = "1"
    return d.start()


def stop(d: DaemonProcess) -> None:
    """SIGTERM; a daemon that does not exit within 20 s is made to dump every thread's stack
    into its log (SIGABRT), and the test fails with it."""
    assert d.proc is not None
    d.proc.terminate()
    try:
        code = d.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        d.proc.send_signal(signal.SIGABRT)
        d.proc.wait(timeout=10)
        raise AssertionError(f"daemon hung on SIGTERM:\n{d.log.read_text()[-8000:]}") from None
    assert code == 0, d.log.read_text()[-3000:]


def stored_seqs(data_dir: Path, device: str) -> list[int]:
    with contextlib.closing(sqlite3.connect(data_dir / "sealwatch.db", timeout=30)) as c:
        rows = c.execute("SELECT seq FROM events WHERE device=? ORDER BY seq", (device,))
        return [int(r[0]) for r in rows]


def metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name)] in " {":
            total += float(line.rsplit(" ", 1)[1])
    return total


async def metrics(d: DaemonProcess) -> str:
    status, body = await ahttp(d.http_port, "GET", "/metrics")
    assert status == 200
    return str(body)


async def healthz(d: DaemonProcess) -> dict[str, Any]:
    status, body = await ahttp(d.http_port, "GET", "/healthz")
    assert status == 200, body
    return dict(body)


async def until(check: Any, timeout_s: float = 30.0, what: str = "") -> Any:
    """Poll an async condition with a generous deadline."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        got = await check()
        if got:
            return got
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def door_seqs(db: VictoriaMetrics, sid: str, device: str) -> list[int]:
    return sorted(int(v) for v in db.values(f'door_seq{{site="{sid}",device="{device}"}}'))


async def door_load(gw: Gateway, device: str, n: int, per_s: float = 400.0) -> None:
    for i in range(n):
        await gw.event(device, "door.opened" if i % 2 == 0 else "door.closed", ts=now_ts())
        await asyncio.sleep(1 / per_s)  # pacing the load, not waiting for a condition


async def test_the_daemon_writes_what_it_accepted(
    tmp_path: Path, mosquitto_session: Mosquitto, vm: VictoriaMetrics
) -> None:
    sid = site_id("points")
    path = write_site(tmp_path, sid, daemon=influx(vm.url))
    d = daemon(path, mosquitto_session, tmp_path / "data")
    try:
        await d.ready()
        async with (
            AlertWatcher(mosquitto_session, sid) as alerts,
            Gateway(mosquitto_session, sid) as gw,
        ):
            await gw.event("gate-outer", "door.opened", ts=now_ts())
            await gw.event("gate-outer", "door.closed", ts=now_ts())
            await gw.event(
                "jam-work",
                "jammer.status",
                output=True,
                bands={"cdma800": 31.5, "gsm900": 12.0},
                faults=["fan"],
                temperature_c=41.5,
                ts=now_ts(),
            )
            await gw.event(
                "cam-gate", "camera.status", stream="up", tamper=None, fps=12.5, sharpness=0.93
            )
            await gw.event("belt-north-fence", "alarm.input", state="alarm", ts=now_ts())
            await gw.event("fire-exit-north", "door.forced", ts=now_ts())
            await alerts.wait_for("door-forced", "raised", "fire-exit-north")

        def series(match: str) -> list[dict[str, Any]] | None:
            got = vm.export(match)
            return got or None

        tags = f'site="{sid}"'
        band = await wait_until(
            lambda: series(f'jammer_band_power_dbm{{{tags},band="gsm900"}}'), 30, "band power"
        )
        assert band[0]["metric"]["device"] == "jam-work" and band[0]["metric"]["zone"] == "work"
        assert band[0]["values"] == [12.0]
        # VictoriaMetrics makes a write searchable within about a second: await each one.
        expected = [
            (f'jammer_band_floor_dbm{{{tags},band="gsm900"}}', [30.0]),
            (f'jammer_band_below_floor{{{tags},band="gsm900"}}', [1.0]),
            (f'jammer_band_below_floor{{{tags},band="cdma800"}}', [0.0]),
            (f"jammer_temperature_c{{{tags}}}", [41.5]),
            (f"jammer_fault_fan{{{tags}}}", [1.0]),
            (f'door_open{{{tags},device="gate-outer"}}', [1.0, 0.0]),
            (f"jammer_status_bits{{{tags}}}", [9.0]),
            (f'door_forced{{{tags},device="fire-exit-north"}}', [1.0]),
            (f"camera_fps{{{tags}}}", [12.5]),
            (f"camera_sharpness{{{tags}}}", [0.93]),
            (f"camera_tamper{{{tags}}}", [0.0]),
        ]
        for match, values in expected:

            def arrived(m: str = match, v: list[float] = values) -> bool | None:
                return vm.values(m) == v or None

            await wait_until(arrived, 30, match)
        alarm = await wait_until(
            lambda: series(f"alarm_input_state_code{{{tags}}}"), 30, "the alarm input"
        )
        assert alarm[0]["values"] == [1.0] and alarm[0]["metric"]["zone"] == "belt"
        raised = await wait_until(
            lambda: series(f'alert_count{{{tags},policy="door-forced",state="raised"}}'),
            30,
            "the alert transition",
        )
        assert raised[0]["metric"]["severity"] == "critical"
        # The daemon's own lag and queue depths, and the alerts still open by policy.
        await wait_until(lambda: series(f"daemon_engine_lag_seconds{{{tags}}}"), 30, "lag")
        await wait_until(lambda: series(f"daemon_queue_depth{{{tags}}}"), 30, "queue depth")
        await wait_until(
            lambda: series(f'alerts_open_open{{{tags},policy="door-forced"}}'), 30, "open alerts"
        )
        text = await metrics(d)
        assert metric(text, "sealwatch_telemetry_points_written_total") > 0
        assert metric(text, "sealwatch_telemetry_write_failures_total") == 0
        assert (await healthz(d))["status"] == "ok"
    finally:
        stop(d)


class RecordingProxy:
    """A real HTTP server between the daemon and VictoriaMetrics that forwards each write and
    records, in order, the bodies the database accepted (to check the order of writes)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.port = free_port()
        self.accepted: list[str] = []
        self.failed = 0
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None

    async def __aenter__(self) -> RecordingProxy:
        self._session = ClientSession(timeout=ClientTimeout(total=5))
        app = web.Application()
        app.router.add_post("/api/v2/write", self.write)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None and self._session is not None
        await self._runner.cleanup()
        await self._session.close()

    async def write(self, request: web.Request) -> web.Response:
        assert self._session is not None
        body = await request.read()
        try:
            async with self._session.post(
                f"{self.target}/api/v2/write?{request.query_string}", data=body
            ) as resp:
                status = resp.status
        except OSError:
            self.failed += 1
            return web.Response(status=503, text="database down")
        if status < 300:
            self.accepted.append(body.decode())
        return web.Response(status=status)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def test_database_stopped_under_load_every_point_arrives_in_order(
    tmp_path: Path, mosquitto_session: Mosquitto, vm: VictoriaMetrics
) -> None:
    sid = site_id("outage")
    n = 1500
    async with RecordingProxy(vm.url) as proxy:
        path = write_site(tmp_path, sid, daemon=influx(proxy.url, batch_size=200))
        data = tmp_path / "data"
        d = daemon(path, mosquitto_session, data)
        try:
            await d.ready()
            async with Gateway(mosquitto_session, sid) as gw:
                load = asyncio.create_task(door_load(gw, "gate-outer", n))
                await wait_until(
                    lambda: len(door_seqs(vm, sid, "gate-outer")) >= 100, 30, "first points"
                )
                vm.stop()  # under load
                body = await until(
                    lambda: _problem(d, "telemetry database"), what="the /healthz problem"
                )
                assert "unreachable" in body
                await load
            await wait_until(lambda: len(stored_seqs(data, "gate-outer")) == n, 30, "all stored")
            text = await metrics(d)
            assert metric(text, "sealwatch_telemetry_write_failures_total") > 0
            assert metric(text, "sealwatch_telemetry_spool_points") > 0
            vm.start()
            expected = stored_seqs(data, "gate-outer")
            await wait_until(
                lambda: door_seqs(vm, sid, "gate-outer") == expected, 60, "every point, once"
            )
            await until(lambda: _no_problem(d), what="the problem to clear")
            text = await metrics(d)
            assert metric(text, 'sealwatch_telemetry_dropped_total{reason="bound"}') == 0
            # Written in order: the door points' seq rise across every accepted write.
            seen = [
                int(m.group(1))
                for body in proxy.accepted
                for line in body.splitlines()
                if line.startswith("door,") and f"site={sid}" in line
                for m in [re.search(r"seq=(\d+)i", line)]
                if m
            ]
            assert seen == expected
            assert proxy.failed > 0
        finally:
            stop(d)
    log = (data / "daemon.log").read_text()
    assert "unreachable" in log and "reachable again" in log


async def _problem(d: DaemonProcess, text: str) -> str | None:
    problems = (await healthz(d))["problems"]
    return next((p for p in problems if text in p), None)


async def _no_problem(d: DaemonProcess) -> bool:
    return not any("telemetry" in p for p in (await healthz(d))["problems"])


async def test_a_restart_while_the_database_is_down_keeps_the_spool(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    sid = site_id("restart")
    db = VictoriaMetrics(tmp_path)  # not started yet: nothing listens on its port
    path = write_site(tmp_path, sid, daemon=influx(db.url))
    data = tmp_path / "data"
    d = daemon(path, mosquitto_session, data)
    try:
        await d.ready()
        async with Gateway(mosquitto_session, sid) as gw:
            await door_load(gw, "gate-outer", 50)
        await wait_until(lambda: len(stored_seqs(data, "gate-outer")) == 50, 30, "stored")
        await until(
            lambda: _spooled(d, 50), what="50 door points in the spool (the database is down)"
        )
    finally:
        stop(d)
    assert "points wait in the spool for the next start" in (data / "daemon.log").read_text()
    d2 = daemon(path, mosquitto_session, data)
    try:
        await d2.ready()
        db.start()
        expected = stored_seqs(data, "gate-outer")
        await wait_until(lambda: door_seqs(db, sid, "gate-outer") == expected, 60, "all 50")
    finally:
        stop(d2)
        db.stop()
    assert "from before: writing them first" in (data / "daemon.log").read_text()


async def _spooled(d: DaemonProcess, n: int) -> bool:
    return metric(await metrics(d), "sealwatch_telemetry_spool_points") >= n


async def test_the_spool_bound_warns_then_drops_the_oldest_counted(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    sid = site_id("bound")
    db = VictoriaMetrics(tmp_path)  # down for now
    n = 1500  # ~100 bytes each: twice the 64 KiB bound
    path = write_site(
        tmp_path, sid, daemon=influx(db.url, spool_max_bytes=65536, stats_interval_s=60)
    )
    data = tmp_path / "data"
    d = daemon(path, mosquitto_session, data)
    try:
        await d.ready()
        async with Gateway(mosquitto_session, sid) as gw:
            await door_load(gw, "gate-outer", n, per_s=1000)
        await wait_until(lambda: len(stored_seqs(data, "gate-outer")) == n, 30, "stored")
        await until(lambda: _dropped(d), what="drops at the bound")
        text = await metrics(d)
        assert metric(text, "sealwatch_telemetry_spool_warning") == 1
        assert metric(text, "sealwatch_telemetry_spool_bytes") <= 65536
        assert await _problem(d, "telemetry spool at")
        db.start()
        stored = stored_seqs(data, "gate-outer")

        def arrived() -> list[int] | None:
            # The database shows a write's points a moment apart: wait for an unbroken run
            # that ends with the newest (a hole would never close, and time out).
            got = door_seqs(db, sid, "gate-outer")
            whole = got and got[-1] == stored[-1] and got == stored[len(stored) - len(got) :]
            return got if whole else None

        got = await wait_until(arrived, 60, "the newest points")
        # The oldest went, the newest are all there, in one unbroken run.
        assert got == stored[len(stored) - len(got) :]
        dropped = await _dropped(d)  # every point that went is counted
        assert len(got) < n and len(got) + dropped >= n
    finally:
        stop(d)
        db.stop()
    log = (data / "daemon.log").read_text()
    assert "oldest points" in log
    # the warning before the bound, then the drops at it
    assert 0 < log.index("telemetry spool at") < log.index("telemetry spool full")


async def _dropped(d: DaemonProcess) -> float:
    return metric(await metrics(d), 'sealwatch_telemetry_dropped_total{reason="bound"}')


async def test_without_influxdb_the_daemon_runs_on_sqlite_alone(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    sid = site_id("none")
    path = write_site(tmp_path, sid)
    data = tmp_path / "data"
    async with running_daemon(path, mosquitto_session, data) as daemon:
        assert daemon.telemetry is None and daemon.pipeline is not None
        owners = [
            type(getattr(tap, "__self__", None)).__name__ for tap in daemon.pipeline.fanout.taps
        ]
        assert "Telemetry" not in owners, owners  # the site summary's tap only
        async with Gateway(mosquitto_session, sid) as gw:
            await gw.event("gate-outer", "door.opened", ts=now_ts())
        await wait_until(lambda: stored_seqs(data, "gate-outer"), 15, "stored")
        assert "sealwatch_telemetry" not in daemon.pipeline.metrics.render()
    assert not (data / "telemetry-spool.db").exists()
