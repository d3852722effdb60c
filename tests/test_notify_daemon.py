"""Notifications from a real `sealwatch run` (a subprocess, real Mosquitto) to real receivers:
a webhook receiver that is down for a while under a stream of alerts, a daemon killed while
it is down, and the escalation chain live — webhook, SMS gateway and mail (aiosmtpd) — with
every step in the ledger."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from tests.support.daemon import (
    DaemonProcess,
    Gateway,
    ahttp,
    now_ts,
    poll_until,
    sealwatch_cli,
    wait_until,
    write_site,
)
from tests.support.mosquitto import Mosquitto
from tests.support.receivers import HttpReceiver, SmtpServer

pytestmark = pytest.mark.slow
SECRET = "hook-secret-for-tests"
_ids = itertools.count()


def site_id(name: str) -> str:
    return f"n-{name}-{next(_ids)}-{uuid.uuid4().hex[:4]}"


def hook_config(tmp_path: Path, url: str) -> dict[str, Any]:
    secret = tmp_path / "hook.secret"
    secret.write_text(SECRET)
    return {
        "notifications": {
            "retry_initial_s": 0.05,
            "retry_max_s": 0.5,
            "channels": {"hook": {"type": "webhook", "url": url, "secret_file": str(secret)}},
            "recipients": {"ops": {"channel": "hook"}},
            "routes": [{"states": ["raised", "cleared"], "notify": ["ops"]}],
        }
    }


def stored(data: Path) -> dict[str, str]:
    """delivery id → state, for every transition the daemon stored."""
    with contextlib.closing(sqlite3.connect(data / "sealwatch.db", timeout=30)) as c:
        rows = c.execute("SELECT id, alert_id, state FROM transitions").fetchall()
    return {f"{a}-{i}": s for i, a, s in rows if s in ("raised", "cleared")}


def ledger(data: Path, kind: str) -> list[dict[str, Any]]:
    with contextlib.closing(sqlite3.connect(data / "sealwatch.db", timeout=30)) as c:
        rows = c.execute("SELECT body FROM audit WHERE kind = ? ORDER BY seq", (kind,)).fetchall()
    return [json.loads(r[0]) for r in rows]


def delivered(receiver: HttpReceiver) -> dict[str, list[bytes]]:
    """delivery id → every body received under it; each signature checked."""
    out: dict[str, list[bytes]] = {}
    for r in receiver.requests:
        sig = hmac.new(SECRET.encode(), r.body, hashlib.sha256).hexdigest()
        assert r.headers["X-Sealwatch-Signature"] == f"sha256={sig}"
        body = json.loads(r.body)
        assert r.headers["Idempotency-Key"] == body["delivery_id"]
        out.setdefault(body["delivery_id"], []).append(r.body)
    return out


async def metrics(d: DaemonProcess) -> str:
    status, text = await ahttp(d.http_port, "GET", "/metrics")
    assert status == 200
    return str(text)


def metric(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


async def collect(client: aiomqtt.Client, into: list[dict[str, Any]]) -> None:
    async for msg in client.messages:
        if isinstance(msg.payload, bytes):
            into.append(json.loads(msg.payload))


async def forced_and_closed(gw: Gateway, n: int) -> None:
    for _ in range(n):
        await gw.event("fire-exit-north", "door.forced", ts=now_ts())
        await gw.event("fire-exit-north", "door.closed", ts=now_ts())


def all_delivered(data: Path, receiver: HttpReceiver, at_least: int) -> bool:
    want = stored(data)
    return len(want) >= at_least and set(want) <= set(delivered(receiver))


async def test_receiver_down_then_up_nothing_lost_retries_idempotent(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    sid = site_id("downup")
    receiver = HttpReceiver()
    path = write_site(tmp_path, sid, daemon=hook_config(tmp_path, receiver.url))
    data = tmp_path / "data"
    await receiver.start()
    d = DaemonProcess(path, mosquitto_session, data).start()
    try:
        await d.ready()
        async with Gateway(mosquitto_session, sid) as gw:
            await forced_and_closed(gw, 5)
            await wait_until(lambda: all_delivered(data, receiver, 10), 30, "first 10 delivered")
            await receiver.stop()  # the receiver goes down under the stream
            await forced_and_closed(gw, 10)
            await wait_until(lambda: len(stored(data)) >= 30, 30, "30 transitions stored")
            text = await wait_until_metric(d, "sealwatch_notification_outbox_depth", 1)
            assert metric(text, "sealwatch_notifications_failed_total") >= 1
            status, health = await ahttp(d.http_port, "GET", "/healthz")
            assert (status, health["status"]) == (200, "degraded")
            assert any("notifications by hook not delivered" in p for p in health["problems"])
            await forced_and_closed(gw, 5)
            await receiver.start()  # back: everything held is delivered
            await wait_until(lambda: all_delivered(data, receiver, 40), 60, "all 40 delivered")
            await wait_until_metric(d, "sealwatch_notification_outbox_depth", 0, below=True)
            status, health = await ahttp(d.http_port, "GET", "/healthz")
            assert status == 200
            assert not any("notif" in p for p in health["problems"]), health
    finally:
        d.terminate()
        await receiver.stop()
    got = delivered(receiver)
    assert set(got) == set(stored(data))  # nothing lost, nothing invented
    for bodies in got.values():
        assert len(set(bodies)) == 1  # a repeat is the same delivery, byte for byte
    sent = ledger(data, "notification.sent")
    assert {s["delivery_id"] for s in sent} == set(got)
    assert ledger(data, "notification.failed")
    log = d.log.read_text()
    assert log.count("notifications by hook not delivered") == 1, log  # on change, not per try
    assert log.count("notifications by hook are delivered again") == 1
    ok = sealwatch_cli("audit", "verify", "--config", str(path), "--data-dir", str(data))
    assert ok.returncode == 0, ok.stdout + ok.stderr


async def wait_until_metric(
    d: DaemonProcess, name: str, value: float, *, below: bool = False, timeout_s: float = 30
) -> str:
    def reached(text: str) -> bool:
        v = metric(text, name)
        return v <= value if below else v >= value

    return await poll_until(
        lambda: metrics(d), reached, timeout_s, f"{name} {'<=' if below else '>='} {value}"
    )


async def test_held_notifications_survive_a_kill_and_go_out_after_restart(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    sid = site_id("restart")
    receiver = HttpReceiver()  # down from the start
    path = write_site(tmp_path, sid, daemon=hook_config(tmp_path, receiver.url))
    data = tmp_path / "data"
    d = DaemonProcess(path, mosquitto_session, data).start()
    try:
        await d.ready()
        async with Gateway(mosquitto_session, sid) as gw:
            await forced_and_closed(gw, 6)
            await wait_until(lambda: len(stored(data)) >= 12, 30, "12 transitions stored")
            await wait_until_metric(d, "sealwatch_notification_outbox_depth", 12)
        d.kill9()
        await receiver.start()
        d.start()
        await d.ready()
        await wait_until(lambda: all_delivered(data, receiver, 12), 60, "held ones delivered")
    finally:
        d.terminate()
        await receiver.stop()
    assert set(delivered(receiver)) == set(stored(data))


async def test_escalation_chain_live_with_acknowledgement_stopping_it(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    sid = site_id("chain")
    hook, sms = HttpReceiver(), HttpReceiver()
    await hook.start()
    await sms.start()
    cfg = hook_config(tmp_path, hook.url)
    n = cfg["notifications"]
    n["routes"] = []
    n["channels"]["sms"] = {
        "type": "sms",
        "url": sms.url,
        "form": {"to": "{phone}", "msg": "{text}", "ref": "{delivery_id}"},
    }
    with SmtpServer() as smtp:
        n["channels"]["mail"] = {
            "type": "email",
            "host": "127.0.0.1",
            "port": smtp.port,
            "security": "plain",
            "from": "sealwatch@jb.example",
        }
        n["recipients"] = {
            "ops": {"channel": "hook"},
            "chen": {"channel": "sms", "to": "13800000001", "badge": "S2001"},
            "director": {"channel": "mail", "to": "director@jb.example"},
        }
        n["escalation"] = {
            "operators": ["ops"],
            "levels": [{"after_s": 1, "notify": ["director"]}],
        }
        path = write_site(tmp_path, sid, daemon=cfg, policies={"ack_escalation_s": 3})
        data = tmp_path / "data"
        d = DaemonProcess(path, mosquitto_session, data).start()
        try:
            await d.ready()
            async with (
                Gateway(mosquitto_session, sid) as gw,
                aiomqtt.Client("127.0.0.1", mosquitto_session.port) as watcher,
            ):
                await watcher.subscribe(f"sealwatch/{sid}/notifications", qos=1)
                records: list[dict[str, Any]] = []
                seen = asyncio.create_task(collect(watcher, records))
                await gw.event("fire-exit-north", "door.forced", ts=now_ts())  # A: unanswered
                first = await wait_until(lambda: delivered(hook), 30, "step 0 of A")
                (a_id,) = {json.loads(b[0])["alert"]["alert_id"] for b in first.values()}
                await gw.event("press-hall-door", "door.forced", ts=now_ts())  # B: acknowledged
                b_hook = await wait_until(
                    lambda: [
                        json.loads(b[0])
                        for b in delivered(hook).values()
                        if json.loads(b[0])["alert"]["subject"] == "press-hall-door"
                    ],
                    30,
                    "step 0 of B",
                )
                b_id = b_hook[0]["alert"]["alert_id"]
                status, body = await ahttp(
                    d.http_port, "POST", f"/api/alerts/{b_id}/ack", {"badge": "O4001"}
                )
                assert status == 200 and body["accepted"], body
                # A climbs: the supervisor on duty by SMS, then the director by mail.
                await wait_until(lambda: smtp.mails, 60, "level 2 by mail")
                # each step is visible on MQTT too, once it is in the ledger
                await wait_until(
                    lambda: [
                        r
                        for r in records
                        if r["kind"] == "notification.escalated" and r["level"] == 2
                    ],
                    30,
                    "level 2 on sealwatch/SITE/notifications",
                )
                seen.cancel()
            steps = await wait_until(
                lambda: [s for s in ledger(data, "notification.escalated") if s["level"] == 2],
                30,
                "the ledger record of level 2",
            )
        finally:
            d.terminate()
    await hook.stop()
    await sms.stop()
    chain = [(s["alert_id"], s["level"]) for s in ledger(data, "notification.escalated")]
    assert (a_id, 0) in chain and (a_id, 1) in chain and (a_id, 2) in chain and steps
    assert (b_id, 0) in chain and (b_id, 1) not in chain and (b_id, 2) not in chain
    (sms_req,) = sms.requests
    form = dict(x.split("=", 1) for x in sms_req.body.decode().split("&"))
    assert form["to"] == "13800000001" and form["ref"].startswith(a_id)
    (mail,) = smtp.mails
    assert mail.rcpt_tos == ["director@jb.example"]
    assert "升级2级" in str(mail.message["Subject"])
    assert mail.message["X-Sealwatch-Delivery"] == f"{a_id}-L2"
    ok = sealwatch_cli("audit", "verify", "--config", str(path), "--data-dir", str(data))
    assert ok.returncode == 0, ok.stdout + ok.stderr


async def test_mail_server_down_then_up_every_mail_arrives_once(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    """The SMTP server is not there while alerts are raised: the mails wait in the outbox
    (`/healthz` says so) and all arrive, one per delivery, once it is up."""
    from tests.support.mosquitto import free_port

    sid = site_id("smtp")
    port = free_port()  # nothing listens here yet: the mail server is down
    cfg = {
        "notifications": {
            "retry_initial_s": 0.05,
            "retry_max_s": 0.5,
            "channels": {
                "mail": {
                    "type": "email",
                    "host": "127.0.0.1",
                    "port": port,
                    "security": "plain",
                    "from": "sealwatch@jb.example",
                }
            },
            "recipients": {"duty": {"channel": "mail", "to": "duty@jb.example"}},
            "routes": [{"states": ["raised"], "notify": ["duty"]}],
        }
    }
    path = write_site(tmp_path, sid, daemon=cfg)
    data = tmp_path / "data"
    d = DaemonProcess(path, mosquitto_session, data).start()
    try:
        await d.ready()
        async with Gateway(mosquitto_session, sid) as gw:
            await forced_and_closed(gw, 4)
            await wait_until(lambda: len(stored(data)) >= 8 or None, 30, "8 transitions stored")
            raised = [k for k, state in stored(data).items() if state == "raised"]
            await wait_until_metric(d, "sealwatch_notification_outbox_depth", 1)
            deadline = time.monotonic() + 30
            while True:  # the first attempt fails: /healthz says the mails wait
                _status, health = await ahttp(d.http_port, "GET", "/healthz")
                if health.get("status") == "degraded" or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            assert any("notifications by mail not delivered" in p for p in health["problems"])
            with SmtpServer(port=port) as smtp:  # the mail server is back
                await wait_until(lambda: len(smtp.mails) >= len(raised) or None, 60, "mails")
                await wait_until_metric(d, "sealwatch_notification_outbox_depth", 0, below=True)
                mails = list(smtp.mails)
    finally:
        d.terminate()
    ids = [str(m.message["X-Sealwatch-Delivery"]) for m in mails]
    assert sorted(ids) == sorted(raised)  # every raised alert, once each
    assert all(m.rcpt_tos == ["duty@jb.example"] for m in mails)
