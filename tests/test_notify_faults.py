"""The notification outbox's own faults, on real parts: its disk fills up (a real tmpfs), its
file system is read-only when the daemon starts, its file is garbage. A real `sealwatch run`,
real Mosquitto and a real aiohttp webhook receiver: alerting on MQTT goes on, `/healthz` says
what is wrong, and every stored transition reaches the receiver — repeats only under the same
delivery id, byte for byte."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import (
    AlertWatcher,
    DaemonProcess,
    Gateway,
    ahttp,
    now_ts,
    wait_until,
    write_site,
)
from tests.support.disk import fill, remount, small_disk
from tests.support.mosquitto import Mosquitto
from tests.support.receivers import HttpReceiver
from tests.test_notify_daemon import (
    delivered,
    forced_and_closed,
    hook_config,
    ledger,
    metric,
    metrics,
    site_id,
    stored,
    wait_until_metric,
)

pytestmark = pytest.mark.slow


async def health(d: DaemonProcess) -> dict[str, Any]:
    status, body = await ahttp(d.http_port, "GET", "/healthz")
    assert status == 200, body
    return dict(body)


async def problem(d: DaemonProcess, words: str) -> str | None:
    return next((p for p in (await health(d))["problems"] if words in p), None)


async def until(check: Any, timeout_s: float = 30.0, what: str = "") -> Any:
    """Poll an async condition with a generous deadline."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not (got := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
    return got


def outbox_rows(data: Path) -> dict[str, int | None]:
    """delivery id → when it was sent (None: waiting), from the outbox file."""
    with contextlib.closing(sqlite3.connect(data / "notifications.db", timeout=30)) as c:
        return {str(i): s for i, s in c.execute("SELECT delivery_id, sent FROM outbox")}


def check_nothing_lost(data: Path, receiver: HttpReceiver) -> None:
    got = delivered(receiver)  # every HMAC verified
    want = stored(data)
    assert set(got) == set(want), (set(want) - set(got), set(got) - set(want))
    for bodies in got.values():
        assert len(set(bodies)) == 1  # a repeat is the same delivery, byte for byte
    rows = outbox_rows(data)
    assert set(rows) == set(want)  # everything routed was written once the disk was back
    assert all(sent is not None for sent in rows.values()), rows
    assert {s["delivery_id"] for s in ledger(data, "notification.sent")} == set(want)


async def test_outbox_disk_full_alerts_and_webhooks_go_on_then_all_is_written(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    sid = site_id("full")
    receiver = await HttpReceiver().start()
    path = write_site(tmp_path, sid, daemon=hook_config(tmp_path, receiver.url))
    with small_disk(tmp_path / "disk") as disk:
        data = disk / "data"
        d = DaemonProcess(path, mosquitto_session, data)
        d.log = tmp_path / "daemon.log"  # not on the disk that fills
        d.start()
        try:
            await d.ready()
            async with (
                AlertWatcher(mosquitto_session, sid) as alerts,
                Gateway(mosquitto_session, sid) as gw,
            ):
                await forced_and_closed(gw, 3)
                await wait_until(lambda: len(delivered(receiver)) >= 6, 30, "first 6 delivered")
                filler = fill(disk)
                before = len(delivered(receiver))
                await forced_and_closed(gw, 5)
                # Alerting goes on over MQTT, and the webhooks go out from memory.
                await wait_until(
                    lambda: len([t for t in alerts.transitions if t["state"] == "raised"]) >= 8,
                    30,
                    "8 raised on MQTT",
                )
                await wait_until(
                    lambda: len(delivered(receiver)) >= before + 10, 30, "webhooks from memory"
                )
                text = await until(
                    lambda: problem(d, "notification outbox not writable"), 30, "/healthz"
                )
                assert "wait in memory" in text, text
                assert (await health(d))["status"] == "degraded"
                filler.unlink()  # space returns: everything is written, nothing sent twice
                await wait_until(lambda: len(stored(data)) >= 16, 60, "16 transitions stored")
                await until(
                    lambda: _no_problem(d, "notification outbox"), 60, "the outbox writable"
                )
                await wait_until(
                    lambda: set(stored(data)) <= set(outbox_rows(data)), 30, "all in the outbox"
                )
                await wait_until_metric(d, "sealwatch_notification_outbox_depth", 0, below=True)
            assert d.proc is not None and d.proc.poll() is None
        finally:
            d.terminate()
            await receiver.stop()
        check_nothing_lost(data, receiver)
    log = d.log.read_text()
    assert log.count("notification outbox not writable") == 1, log  # on change, not per try
    assert log.count("notification outbox writable again") == 1, log


async def _no_problem(d: DaemonProcess, words: str) -> bool:
    return await problem(d, words) is None


async def test_outbox_read_only_at_start_alerting_goes_on_then_catches_up(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    """The data dir's file system is read-only when the daemon starts (the kernel refuses to
    make it read-only under a process that has files open for writing on it)."""
    sid = site_id("ro")
    receiver = await HttpReceiver().start()
    path = write_site(tmp_path, sid, daemon=hook_config(tmp_path, receiver.url))
    with small_disk(tmp_path / "disk", "32m") as disk:
        data = disk / "data"
        d = DaemonProcess(path, mosquitto_session, data)
        d.log = tmp_path / "daemon.log"
        d.start()
        try:
            await d.ready()
            async with Gateway(mosquitto_session, sid) as gw:
                await forced_and_closed(gw, 2)
                await wait_until(lambda: len(delivered(receiver)) >= 4, 30, "first 4 delivered")
            assert d.terminate() == 0
            remount(disk, "ro")
            d.start()
            await d.ready()
            async with (
                AlertWatcher(mosquitto_session, sid) as alerts,
                Gateway(mosquitto_session, sid) as gw,
            ):
                try:
                    await forced_and_closed(gw, 4)
                    await alerts.wait_for("door-forced", "cleared", "fire-exit-north")
                    await until(lambda: problem(d, "notification outbox"), 30, "/healthz")
                finally:
                    remount(disk, "rw")
                await wait_until(lambda: len(stored(data)) >= 12, 60, "12 transitions stored")
                await wait_until(lambda: set(stored(data)) <= set(delivered(receiver)), 60, "all")
                await until(lambda: _no_problem(d, "notification outbox"), 60, "outbox usable")
                await wait_until_metric(d, "sealwatch_notification_outbox_depth", 0, below=True)
                await wait_until(
                    lambda: all(s is not None for s in outbox_rows(data).values()), 30, "all sent"
                )
        finally:
            d.terminate()
            await receiver.stop()
        check_nothing_lost(data, receiver)


async def test_damaged_outbox_is_set_aside_alerting_and_notifications_go_on_loudly(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    """Garbage over `notifications.db` while the daemon is stopped (with deliveries waiting
    in it): the daemon starts, sets the file aside, says the loss (log, metric, /healthz until
    the file is moved away) and notifies what comes next."""
    sid = site_id("damaged")
    receiver = HttpReceiver()  # down: deliveries wait in the outbox
    path = write_site(tmp_path, sid, daemon=hook_config(tmp_path, receiver.url))
    data = tmp_path / "data"
    d = DaemonProcess(path, mosquitto_session, data).start()
    try:
        await d.ready()
        async with Gateway(mosquitto_session, sid) as gw:
            await forced_and_closed(gw, 2)
            await wait_until_metric(d, "sealwatch_notification_outbox_depth", 4)
        assert d.terminate() == 0
        lost = set(outbox_rows(data))
        (data / "notifications.db").write_bytes(bytes(range(256)) * 64)  # garbage
        await receiver.start()
        d.start()
        await d.ready()
        log = d.log.read_text()
        assert "notification outbox" in log and "is damaged" in log, log[-3000:]
        aside = list(data.glob("notifications.db.corrupt-*"))
        assert len(aside) == 1
        text = await until(lambda: problem(d, "notification outbox was damaged"), 30, "/healthz")
        assert aside[0].name in text
        assert metric(await metrics(d), "sealwatch_notification_outbox_damaged_total") == 1
        async with (
            AlertWatcher(mosquitto_session, sid) as alerts,
            Gateway(mosquitto_session, sid) as gw,
        ):
            await gw.event("press-hall-door", "door.forced", ts=now_ts())
            raised = await alerts.wait_for("door-forced", "raised", "press-hall-door")
            got = await wait_until(
                lambda: [k for k in delivered(receiver) if k.startswith(str(raised["alert_id"]))],
                30,
                "the new alert's webhook",
            )
        assert not lost & set(delivered(receiver))  # what the damaged file held: not sent
        assert set(got) <= set(outbox_rows(data))  # the fresh outbox works
        # acknowledged by moving the file away (after looking at it): the problem goes at
        # the next start, or within a minute
        aside[0].rename(tmp_path / aside[0].name)
        assert d.terminate() == 0
        d.start()
        await d.ready()
        assert await problem(d, "notification outbox") is None
    finally:
        d.terminate()
        await receiver.stop()
