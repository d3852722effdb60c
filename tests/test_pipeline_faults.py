"""Faults outside the process, on real parts: the store's disk fills up, is locked or goes
read-only; the broker stops under load or comes back without the daemon's session; the daemon
restarts (snapshots), is sent SIGHUP. Alerting goes on and nothing accepted is lost."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.support.daemon import (
    AlertWatcher,
    DaemonProcess,
    Gateway,
    ahttp,
    now_ts,
    poll_until,
    wait_until,
    write_site,
)
from tests.support.disk import fill, remount, small_disk
from tests.support.gateways import BufferingGateway
from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.slow
_ids = itertools.count()


def site_id(name: str) -> str:
    return f"f-{name}-{next(_ids)}-{uuid.uuid4().hex[:4]}"


def stored_events(data_dir: Path, device: str) -> int:
    with contextlib.closing(sqlite3.connect(data_dir / "sealwatch.db", timeout=30)) as c:
        return int(c.execute("SELECT COUNT(*) FROM events WHERE device=?", (device,)).fetchone()[0])


async def health(d: DaemonProcess) -> dict[str, Any]:
    status, body = await ahttp(d.http_port, "GET", "/healthz")
    assert status == 200, body
    return dict(body)


async def door_cycle(gw: Gateway, device: str, n: int) -> None:
    for i in range(n):
        await gw.event(device, "door.opened" if i % 2 == 0 else "door.closed", ts=now_ts())


async def test_disk_full_alerting_goes_on_held_events_written_when_space_returns(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    sid = site_id("full")
    path = write_site(tmp_path, sid)
    with small_disk(tmp_path / "disk") as disk:
        data = disk / "data"
        d = DaemonProcess(path, mosquitto_session, data).start()
        try:
            await d.ready()
            async with (
                AlertWatcher(mosquitto_session, sid) as alerts,
                Gateway(mosquitto_session, sid) as gw,
            ):
                await door_cycle(gw, "gate-outer", 10)
                await wait_until(lambda: stored_events(data, "gate-outer") == 10, what="10 stored")
                filler = fill(disk)
                await door_cycle(gw, "gate-outer", 200)
                await gw.event("fire-exit-north", "door.forced", ts=now_ts())
                # Alerting goes on over MQTT while nothing can be written.
                await alerts.wait_for("door-forced", "raised", "fire-exit-north")
                body = await wait_until_async(d, lambda b: b["status"] == "degraded")
                assert any("store" in p for p in body["problems"]), body
                # ...and the daemon raises an alert of its own.
                await alerts.wait_for("daemon-health", "raised", "store")
                assert stored_events(data, "gate-outer") == 10
                filler.unlink()
                await wait_until(
                    lambda: stored_events(data, "gate-outer") == 210, 30, "held events written"
                )
                await alerts.wait_for("daemon-health", "cleared", "store")
                await wait_until_async(d, lambda b: b["status"] == "ok")
            assert d.proc is not None and d.proc.poll() is None
        finally:
            d.terminate()


async def wait_until_async(d: DaemonProcess, pred: Any, timeout_s: float = 20.0) -> dict[str, Any]:
    return await poll_until(lambda: health(d), lambda b: bool(pred(b)), timeout_s, "/healthz")


async def test_daemon_starts_and_alerts_on_a_full_disk(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    sid = site_id("fullstart")
    path = write_site(tmp_path, sid)
    with small_disk(tmp_path / "disk") as disk:
        data = disk / "data"
        d = DaemonProcess(path, mosquitto_session, data)
        d.log = tmp_path / "daemon.log"
        d.start()
        await d.ready()
        async with Gateway(mosquitto_session, sid) as gw:
            await door_cycle(gw, "gate-outer", 4)
            await wait_until(lambda: stored_events(data, "gate-outer") == 4, what="4 stored")
        assert d.terminate() == 0
        filler = fill(disk)
        d2 = DaemonProcess(path, mosquitto_session, data)
        d2.log = tmp_path / "daemon2.log"  # not on the full disk
        d2.start()
        try:
            await d2.ready()
            async with (
                AlertWatcher(mosquitto_session, sid) as alerts,
                Gateway(mosquitto_session, sid) as gw,
            ):
                await gw.event("fire-exit-north", "door.forced", ts=now_ts())
                await alerts.wait_for("door-forced", "raised", "fire-exit-north")
                filler.unlink()
                await door_cycle(gw, "gate-outer", 2)
                await wait_until(lambda: stored_events(data, "gate-outer") == 6, 30, "all stored")
        finally:
            d2.terminate()


async def test_read_only_file_system_alerting_goes_on_then_catches_up(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    """The data dir's file system is read-only when the daemon starts (a file system cannot be
    made read-only under a process writing to it: the kernel refuses while files are open)."""
    sid = site_id("ro")
    path = write_site(tmp_path, sid)
    with small_disk(tmp_path / "disk", "32m") as disk:
        data = disk / "data"
        d = DaemonProcess(path, mosquitto_session, data)
        d.log = tmp_path / "daemon.log"
        d.start()
        await d.ready()
        async with Gateway(mosquitto_session, sid) as gw:
            await door_cycle(gw, "gate-outer", 2)
        await wait_until(lambda: stored_events(data, "gate-outer") == 2, what="2 stored")
        assert d.terminate() == 0
        remount(disk, "ro")
        d.start()
        try:
            await d.ready()
            async with (
                AlertWatcher(mosquitto_session, sid) as alerts,
                Gateway(mosquitto_session, sid) as gw,
            ):
                try:
                    await door_cycle(gw, "gate-outer", 30)
                    await gw.event("fire-exit-north", "door.forced", ts=now_ts())
                    await alerts.wait_for("door-forced", "raised", "fire-exit-north")
                    await wait_until_async(d, lambda b: b["status"] == "degraded")
                finally:
                    remount(disk, "rw")
                await wait_until(
                    lambda: stored_events(data, "gate-outer") == 32, 30, "held events written"
                )
                await wait_until_async(d, lambda b: b["status"] == "ok")
        finally:
            d.terminate()


async def test_locked_store_degrades_then_catches_up(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    sid = site_id("locked")
    path = write_site(tmp_path, sid)
    data = tmp_path / "data"
    d = DaemonProcess(path, mosquitto_session, data).start()
    try:
        await d.ready()
        async with (
            AlertWatcher(mosquitto_session, sid) as alerts,
            Gateway(mosquitto_session, sid) as gw,
        ):
            await door_cycle(gw, "gate-outer", 2)
            await wait_until(lambda: stored_events(data, "gate-outer") == 2, what="2 stored")
            locker = sqlite3.connect(data / "sealwatch.db", isolation_level=None, timeout=30)
            locker.execute("BEGIN EXCLUSIVE")
            try:
                await door_cycle(gw, "gate-outer", 50)
                await gw.event("fire-exit-north", "door.forced", ts=now_ts())
                await alerts.wait_for("door-forced", "raised", "fire-exit-north")
                await wait_until_async(d, lambda b: b["status"] == "degraded")
            finally:
                locker.execute("COMMIT")
                locker.close()
            await wait_until(lambda: stored_events(data, "gate-outer") == 52, 30, "caught up")
            await wait_until_async(d, lambda b: b["status"] == "ok")
    finally:
        d.terminate()


async def test_broker_stopped_under_load_loses_nothing_acknowledged(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    sid = site_id("outage")
    path = write_site(tmp_path, sid)
    data = tmp_path / "data"
    d = DaemonProcess(path, mosquitto, data).start()
    gws = [BufferingGateway(mosquitto, sid, dev) for dev in ("gate-outer", "gate-inner")]
    try:
        await d.ready()
        for g in gws:
            g.start()

        async def load(seconds: float) -> None:
            loop = asyncio.get_running_loop()
            end = loop.time() + seconds
            while loop.time() < end:
                for g in gws:
                    g.publish()
                await asyncio.sleep(1 / 150)  # ~300 events/s in all

        await load(2.0)
        mosquitto.stop()
        await load(6.0)  # the gateways buffer; the daemon's clock runs on past its hold
        mosquitto.start()
        await load(2.0)
        await wait_until(
            lambda: all(len(g.acked) == g.sent for g in gws), 60, "every publish acknowledged"
        )
        total = sum(g.sent for g in gws)

        def stored() -> int:
            return sum(stored_events(data, dev) for dev in ("gate-outer", "gate-inner"))

        await wait_until(lambda: stored() >= total, 60, f"{total} events stored")
        with contextlib.closing(sqlite3.connect(data / "sealwatch.db")) as c:
            ns = {
                (dev, orjson.loads(src)["n"])
                for dev, src in c.execute(
                    "SELECT device, source FROM events WHERE device IN ('gate-outer','gate-inner')"
                )
            }
            late = c.execute("SELECT COUNT(*) FROM events WHERE device_ts IS NOT NULL").fetchone()[
                0
            ]
        acked = {(g.topic.rsplit("/", 1)[1], n) for g in gws for n in g.acked}
        assert acked <= ns, f"{len(acked - ns)} acknowledged events never stored"
        assert late > 0  # the buffered ones did arrive late, and were accepted
    finally:
        for g in gws:
            g.stop()
        d.terminate()


async def test_broker_that_lost_the_session_is_detected_and_raised(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    sid = site_id("lost")
    path = write_site(tmp_path, sid)
    d = DaemonProcess(path, mosquitto, tmp_path / "data").start()
    try:
        await d.ready()
        mosquitto.stop()
        for f in mosquitto.workdir.glob("*.db"):
            f.unlink()  # the broker forgets every session (persistence lost)
        mosquitto.start()
        async with AlertWatcher(mosquitto, sid) as alerts:
            await d.ready()
            got = await alerts.wait_for("daemon-health", "raised", "mqtt-session", 30)
            assert got["severity"] in ("major", "critical")
        _, text = await ahttp(d.http_port, "GET", "/metrics")
        assert "sealwatch_mqtt_sessions_lost_total 1" in str(text)
        assert "session" in d.log.read_text()
    finally:
        d.terminate()


async def test_restart_reuses_the_snapshot_in_another_process(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    sid = site_id("snap")
    path = write_site(tmp_path, sid)
    data = tmp_path / "data"
    d = DaemonProcess(path, mosquitto_session, data)
    d.env["PYTHONHASHSEED"] = "1"
    d.start()
    await d.ready()
    async with Gateway(mosquitto_session, sid) as gw:
        await door_cycle(gw, "gate-outer", 20)
    await wait_until(lambda: stored_events(data, "gate-outer") == 20, what="20 stored")
    assert d.terminate() == 0
    d.env["PYTHONHASHSEED"] = "2"  # sets iterate in another order in this process
    d.log.write_text("")
    d.start()
    try:
        await d.ready()
        text = d.log.read_text()
        assert "snapshot at event" in text and " 0 events re-fed" in text, text[-2000:]
        assert "not used" not in text
    finally:
        d.terminate()


async def test_snapshot_of_another_format_is_refused_and_the_engine_rebuilt(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    sid = site_id("oldsnap")
    path = write_site(tmp_path, sid)
    data = tmp_path / "data"
    d = DaemonProcess(path, mosquitto_session, data).start()
    await d.ready()
    async with Gateway(mosquitto_session, sid) as gw:
        await gw.event("fire-exit-north", "door.forced", ts=now_ts())
        await door_cycle(gw, "gate-outer", 4)
    await wait_until(lambda: stored_events(data, "gate-outer") == 4, what="stored")
    assert d.terminate() == 0
    with contextlib.closing(sqlite3.connect(data / "sealwatch.db")) as c:
        # What an older release wrote: a bare pickle, no header.
        c.execute("UPDATE snapshots SET blob = substr(blob, instr(blob, x'0a') + 1)")
        c.execute("UPDATE snapshots SET blob = substr(blob, instr(blob, x'0a') + 1)")
        c.commit()
    d.log.write_text("")
    d.start()
    try:
        body = await d.ready()
        text = d.log.read_text()
        assert "not used (written in an older format" in text, text[-2000:]
        assert body["open_alerts"] >= 1  # door-forced, rebuilt from the stored events
    finally:
        d.terminate()


async def test_a_store_that_never_accepted_an_event_starts_again(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    path = write_site(tmp_path, site_id("empty"))
    d = DaemonProcess(path, mosquitto_session, tmp_path / "data").start()
    await d.ready()
    assert d.terminate() == 0
    d.start()
    try:
        await d.ready()
    finally:
        assert d.terminate() == 0


async def test_sighup_rereads_the_site_file_and_keeps_running_on_a_bad_one(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    sid = site_id("hup")
    path = write_site(tmp_path, sid)
    good = path.read_text()
    d = DaemonProcess(path, mosquitto_session, tmp_path / "data").start()
    try:
        await d.ready()
        assert d.proc is not None
        path.write_text(good.replace("zones:", "zonez:", 1))
        d.proc.send_signal(signal.SIGHUP)
        await wait_until(lambda: "is not valid, still running" in d.log.read_text(), 20, "refusal")
        assert "zonez" in d.log.read_text()
        await d.ready()
        raw = yaml.safe_load(good)
        raw["policies"]["door_held_open_s"] = 2
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        d.proc.send_signal(signal.SIGHUP)
        await wait_until(lambda: "changed; restarting" in d.log.read_text(), 20, "reload")
        await d.ready()
        async with (
            AlertWatcher(mosquitto_session, sid) as alerts,
            Gateway(mosquitto_session, sid) as gw,
        ):
            await gw.event("fire-exit-north", "door.forced", ts=now_ts())
            await alerts.wait_for("door-forced", "raised", "fire-exit-north")
        assert d.proc.poll() is None
    finally:
        d.terminate()


def test_poisoned_payloads_never_stop_the_engine_stage() -> None:
    """Unit level: the engine stage answers every payload shape with an outcome."""
    from daemon.config import load_settings
    from daemon.metrics import Metrics
    from daemon.pipeline.decode import Decoder
    from daemon.pipeline.evaluate import EngineStage
    from daemon.pipeline.flow import new_metrics
    from daemon.pipeline.items import Incoming, Kind
    from daemon.store import Store
    from policies.site import load_site
    from tests.support.daemon import EXAMPLE_SITE

    site = load_site(EXAMPLE_SITE)
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"poison-{uuid.uuid4().hex}"
    settings = load_settings(site, {"SEALWATCH_DATA_DIR": str(tmp)})
    store = Store(settings.db_path)
    metrics: Metrics = new_metrics()
    stage = EngineStage(
        site, settings, store, Decoder(site.id, 65536), metrics, lambda: 1_800_000_000_000_000
    )
    payloads = [
        b'{"type": "jammer.status", "faults": null, "output": true, "bands": {}}',
        b'{"type": "jammer.status", "bands": null}',
        b'{"type": "door.opened", "ts": "9999-12-31T23:59:59-14:00"}',
        b'{"type": "door.opened", "ts": 1e400}',
        b'{"type": "alarm.input", "state": {"a": [1, 2]}}',
        b"\xff\xfe",
        b"[" * 5000,
        b'{"type": "daemon.health", "device": "sealwatch", "component": "store", "state": "ok"}',
    ]
    devices = [
        "jam-work",
        "jam-work",
        "gate-outer",
        "gate-outer",
        "belt-north-fence",
        "gate-outer",
        "gate-outer",
        "sealwatch",
    ]
    items = [
        Incoming(Kind.EVENT, p, "mqtt", 1_800_000_000_000_000, topic="t", device=dev)
        for p, dev in zip(payloads, devices, strict=True)
    ]
    result = stage.process(items)
    assert len(result.outcomes) == len(items)
    for o in result.outcomes:
        assert o.accepted or o.reason, o
    assert not result.outcomes[-1].accepted  # daemon.health is the daemon's own, not MQTT's
    store.close()


async def test_third_party_topics_are_mapped_into_events_by_the_running_daemon(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    """`daemon.mqtt_mappings` is wired into ingest: a zigbee contact on its own topic becomes a
    door event (and an alert); a payload no rule fits is a stored rejection with its reason."""
    sid = site_id("map")
    mappings = [
        {"topic": f"z2m-{sid}/+/contact", "device": "{1}", "type": "door.forced", "when": "ON"},
        {"topic": f"z2m-{sid}/+/contact", "device": "{1}", "type": "door.closed", "when": "OFF"},
    ]
    path = write_site(tmp_path, sid, daemon={"mqtt_mappings": mappings})
    data = tmp_path / "data"
    d = DaemonProcess(path, mosquitto_session, data).start()
    try:
        await d.ready()
        async with (
            AlertWatcher(mosquitto_session, sid) as alerts,
            Gateway(mosquitto_session, sid) as gw,
        ):
            await gw.client.publish(f"z2m-{sid}/fire-exit-north/contact", b"ON", qos=1)
            await alerts.wait_for("door-forced", "raised", "fire-exit-north")
            await gw.client.publish(f"z2m-{sid}/fire-exit-north/contact", b"MAYBE", qos=1)
            await gw.client.publish(f"z2m-{sid}/fire-exit-north/contact", b"OFF", qos=1)
            await alerts.wait_for("door-forced", "cleared", "fire-exit-north")

        def rejected() -> list[str]:
            with contextlib.closing(sqlite3.connect(data / "sealwatch.db")) as c:
                return [r[0] for r in c.execute("SELECT reason FROM rejections")]

        reasons = await wait_until(rejected, what="the unmapped payload's rejection")
        assert any("MAYBE" in r for r in reasons), reasons
    finally:
        d.terminate()
