"""The telemetry spool's disk fills up (a real tmpfs) under a real `sealwatch run`, real
Mosquitto and a real VictoriaMetrics: alerting goes on, points wait in memory (bounded,
counted beyond), `/healthz` and the log say so once, and when space returns every door point
is spooled and written — once each."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.daemon import (
    AlertWatcher,
    DaemonProcess,
    Gateway,
    now_ts,
    wait_until,
    write_site,
)
from tests.support.disk import fill, small_disk
from tests.support.mosquitto import Mosquitto
from tests.support.victoria import VictoriaMetrics
from tests.test_telemetry_live import (
    door_load,
    door_seqs,
    healthz,
    influx,
    metric,
    metrics,
    site_id,
    stop,
    stored_seqs,
    until,
    vm,  # noqa: F401 (fixture)
)

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("bound", [None, 65536], ids=["all-held", "held-beyond-the-bound"])
async def test_spool_disk_full_alerting_goes_on_points_held_then_written(
    tmp_path: Path,
    mosquitto_session: Mosquitto,
    vm: VictoriaMetrics,  # noqa: F811
    bound: int | None,
) -> None:
    """With the default bound every point is held and arrives; with a bound of 64 KiB and 800
    door points while the disk is full the oldest held are dropped — counted — and the newest
    arrive."""
    sid = site_id("spoolfull")
    extra = {} if bound is None else {"spool_max_bytes": bound, "stats_interval_s": 60}
    path = write_site(tmp_path, sid, daemon=influx(vm.url, **extra))
    with small_disk(tmp_path / "disk", "8m") as disk:
        data = disk / "data"
        d = DaemonProcess(path, mosquitto_session, data)
        d.env["PYTHONFAULTHANDLER"] = "1"
        d.log = tmp_path / "daemon.log"  # not on the disk that fills
        d.start()
        try:
            await d.ready()
            async with (
                AlertWatcher(mosquitto_session, sid) as alerts,
                Gateway(mosquitto_session, sid) as gw,
            ):
                await door_load(gw, "gate-outer", 20)
                await wait_until(
                    lambda: len(door_seqs(vm, sid, "gate-outer")) >= 20, 30, "20 door points"
                )
                filler = fill(disk)
                n = 20 + (200 if bound is None else 800)
                await door_load(gw, "gate-outer", n - 20)
                await gw.event("fire-exit-north", "door.forced", ts=now_ts())
                await alerts.wait_for("door-forced", "raised", "fire-exit-north")  # goes on

                async def held() -> bool:
                    body = await healthz(d)
                    return any(
                        "telemetry spool" in p and "not writable" in p for p in body["problems"]
                    )

                await until(held, 30, "/healthz naming the telemetry spool")
                assert len(door_seqs(vm, sid, "gate-outer")) < n
                filler.unlink()  # space returns: spooled, then written
                await wait_until(
                    lambda: len(stored_seqs(data, "gate-outer")) == n, 60, "all stored"
                )
                want = stored_seqs(data, "gate-outer")
                dropped = 'sealwatch_telemetry_dropped_total{reason="spool_unwritable"}'
                if bound is None:
                    await wait_until(
                        lambda: door_seqs(vm, sid, "gate-outer") == want, 60, "every door point"
                    )
                    assert metric(await metrics(d), dropped) == 0
                else:
                    await wait_until(
                        lambda: want[-1] in door_seqs(vm, sid, "gate-outer"), 60, "the newest"
                    )
                    got = door_seqs(vm, sid, "gate-outer")
                    assert len(got) == len(set(got)) and set(got) <= set(want)
                    assert metric(await metrics(d), dropped) > 0

                async def clear() -> bool:
                    return not any("telemetry" in p for p in (await healthz(d))["problems"])

                await until(clear, 30, "the telemetry problem gone")
            stop(d)
        finally:
            if d.proc is not None and d.proc.poll() is None:
                d.proc.kill()
    log = d.log.read_text()
    lines = [x for x in log.splitlines() if "telemetry spool" in x and "cannot be written" in x]
    assert len(lines) == 1, log[-3000:]  # once, on the change
    assert log.count("writable again") >= 1, log[-3000:]
