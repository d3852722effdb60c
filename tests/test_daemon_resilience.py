"""The daemon under bad input, broker restarts, kill -9, tampering; and live equals replay."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
from pathlib import Path

import aiomqtt
import orjson
import pytest

from tests.support.daemon import (
    NODELAY,
    AlertWatcher,
    DaemonProcess,
    Gateway,
    ahttp,
    now_ts,
    running_daemon,
    sealwatch_cli,
    wait_until,
    write_site,
)
from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.slow
_ids = itertools.count()


def site_id(name: str) -> str:
    return f"r-{name}-{next(_ids)}"


def db(data_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(data_dir / "sealwatch.db", timeout=10)


async def test_malformed_payloads_are_rejected_counted_and_stored_while_serving(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    sid = site_id("bad")
    path = write_site(tmp_path, sid)
    async with (
        running_daemon(path, mosquitto_session, tmp_path / "data") as d,
        AlertWatcher(mosquitto_session, sid) as alerts,
        Gateway(mosquitto_session, sid) as gw,
    ):
        assert d.pipeline is not None and d.http_port is not None
        await gw.raw("events/gate-outer", b"{not json")
        await gw.raw("events/gate-outer", orjson.dumps({"type": "door.opened", "ts": 12}))
        await gw.raw("events/ghost-door", orjson.dumps({"type": "door.opened"}))
        await gw.raw(
            "events/gate-outer", b'{"type": "door.opened", "pad": "' + b"x" * 70_000 + b'"}'
        )
        await gw.raw("events/gate-outer/extra", orjson.dumps({"type": "door.opened"}))
        await gw.raw(
            "events/gate-outer", orjson.dumps({"type": "door.opened", "device": "gate-inner"})
        )
        await gw.raw(
            "events/gate-outer", orjson.dumps({"type": "door.opened", "ts": "2020-01-01T00:00:00"})
        )
        await gw.raw("status/cam-gate", b"maybe")
        await gw.raw("events/gate-outer", b"[1, 2]")
        # Still serving: a good event right after all of that raises its alert.
        await gw.event("fire-exit-north", "door.forced")
        await alerts.wait_for("door-forced", "raised", "fire-exit-north")

        store = d.pipeline.store
        rejected = await wait_until(lambda: r if len(r := store.rejections()) >= 9 else None)
        reasons = " | ".join(r["reason"] for r in rejected)
        for expected in (
            "not valid JSON",
            "ts",
            "unknown device 'ghost-door'",
            "byte limit",
            "wrong topic",
            "does not match the topic",
            "with an offset",
            "online or offline",
            "expected a JSON object",
        ):
            assert expected in reasons, (expected, reasons)
        huge = next(r for r in rejected if "byte limit" in r["reason"])
        assert huge["size"] > 70_000
        status, text = await ahttp(d.http_port, "GET", "/metrics")
        assert status == 200
        counted = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("sealwatch_rejected_total{")
        )
        assert counted == 9
        for label in ("not_json", "too_large", "wrong_topic", "device_mismatch", "unknown_device"):
            assert f'reason="{label}"' in text, label


async def test_a_redelivered_payload_is_stored_as_a_duplicate_not_fed_twice(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    sid = site_id("dup")
    path = write_site(tmp_path, sid)
    async with (
        running_daemon(path, mosquitto_session, tmp_path / "data") as d,
        AlertWatcher(mosquitto_session, sid) as alerts,
        Gateway(mosquitto_session, sid) as gw,
    ):
        assert d.pipeline is not None
        forced = orjson.dumps({"type": "door.forced", "ts": now_ts()})
        await gw.raw("events/fire-exit-north", forced)
        await gw.raw("events/fire-exit-north", forced)  # what a QoS 1 redelivery looks like
        await gw.event("fire-exit-north", "door.closed")
        await alerts.wait_for("door-forced", "cleared", "fire-exit-north")
        store = d.pipeline.store
        rejected = await wait_until(lambda: store.rejections())
        assert [r["reason"].split(":")[0] for r in rejected] == ["duplicate delivery"]
        assert [t["state"] for t in alerts.transitions if t["policy"] == "door-forced"] == [
            "raised",
            "cleared",
        ]


async def test_broker_restart_mid_stream_loses_no_event_and_no_alert(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    sid = site_id("restart")
    path = write_site(tmp_path, sid)
    total = 120
    async with running_daemon(path, mosquitto, tmp_path / "data") as d:
        assert d.pipeline is not None
        store = d.pipeline.store
        conn = store.conn
        assert conn is not None

        async def publish_all() -> None:
            # A gateway that retries until the broker acks (QoS 1, at least once).
            pending = [
                orjson.dumps(
                    {
                        "type": "badge.granted",
                        "badge": f"X{i:04d}",
                        "direction": "in",
                        "ts": now_ts(),
                    }
                )
                for i in range(total)
            ]
            i = 0
            while i < len(pending):
                try:
                    async with aiomqtt.Client(
                        "127.0.0.1", mosquitto.port, socket_options=NODELAY
                    ) as client:
                        while i < len(pending):
                            await client.publish(
                                f"sealwatch/{sid}/events/gate-inner", pending[i], qos=1
                            )
                            i += 1
                            if i == total // 2:
                                await asyncio.to_thread(mosquitto.restart)
                except aiomqtt.MqttError:
                    await asyncio.sleep(0.1)

        await publish_all()
        # Every unknown badge raised its own zone-authorization alert, and every transition
        # reached the broker (published only once acked).
        await wait_until(
            lambda: (
                conn.execute("SELECT COUNT(*) FROM events WHERE type='badge.granted'").fetchone()[0]
                == total
            ),
            30,
            "all events stored",
        )
        await wait_until(lambda: store.count_unpublished() == 0, 30, "all published")
        raised = conn.execute(
            "SELECT COUNT(DISTINCT subject) FROM transitions "
            "WHERE policy='zone-authorization' AND state='raised'"
        ).fetchone()[0]
        assert raised == total
    # A newcomer sees every alert on its retained topic.
    async with AlertWatcher(mosquitto, sid) as alerts:
        await wait_until(lambda: len(alerts.active) == total, 15, "retained alerts")


async def test_kill_9_and_restart_keeps_alerts_and_timers_and_raises_nothing_twice(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    sid = site_id("kill")
    path = write_site(tmp_path, sid, policies={"door_held_open_s": 4})
    data = tmp_path / "data"
    proc = DaemonProcess(path, mosquitto, data).start()
    try:
        await proc.ready()
        async with AlertWatcher(mosquitto, sid) as alerts, Gateway(mosquitto, sid) as gw:
            await gw.event("fire-exit-north", "door.forced", ts=now_ts())
            forced = await alerts.wait_for("door-forced", "raised", "fire-exit-north")
            await wait_until(
                lambda: db(data).execute("SELECT COUNT(*) FROM snapshots").fetchone()[0] > 0,
                15,
                "a snapshot",
            )
            await gw.event("press-hall-door", "door.opened", ts=now_ts())
            await wait_until(
                lambda: (
                    db(data)
                    .execute("SELECT COUNT(*) FROM events WHERE device='press-hall-door'")
                    .fetchone()[0]
                ),
                15,
                "the door event stored",
            )
            proc.kill9()
            # Published while the daemon is down: the broker keeps it for the session.
            await gw.event("fire-exit-north", "door.closed", ts=now_ts())
            proc.start()
            await proc.ready()
            # The held-open timer survived the crash and fires once, at its due time.
            held = await alerts.wait_for("door-held-open", "raised", "press-hall-door")
            opened = (
                db(data)
                .execute("SELECT source FROM events WHERE device='press-hall-door'")
                .fetchone()[0]
            )
            assert held["ts"] > orjson.loads(opened)["ts"]
            cleared = await alerts.wait_for("door-forced", "cleared", "fire-exit-north")
            assert cleared["alert_id"] == forced["alert_id"]
            _status, listed = await ahttp(proc.http_port, "GET", "/api/alerts")
            by_policy = {a["policy"]: a for a in listed}
            assert by_policy["door-forced"]["isa_state"] == "rtn_unacknowledged"
            assert by_policy["door-held-open"]["isa_state"] == "unacknowledged"
            await gw.event("press-hall-door", "door.closed")
            await alerts.wait_for("door-held-open", "cleared", "press-hall-door")
        rows = (
            db(data)
            .execute("SELECT policy, state, COUNT(*) FROM transitions GROUP BY policy, state")
            .fetchall()
        )
        assert all(n == 1 for _p, _s, n in rows), rows
        raised_seen = [t for t in alerts.transitions if t["state"] == "raised"]
        assert len(raised_seen) == len({t["alert_id"] for t in raised_seen}) == 2
        assert proc.terminate() == 0
    finally:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.kill9()


async def test_editing_one_audit_record_makes_verify_name_it(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    sid = site_id("audit")
    path = write_site(tmp_path, sid)
    data = tmp_path / "data"
    async with (
        running_daemon(path, mosquitto_session, data) as d,
        AlertWatcher(mosquitto_session, sid) as alerts,
        Gateway(mosquitto_session, sid) as gw,
    ):
        for door in ("fire-exit-north", "press-hall-door", "typesetting-door"):
            await gw.event(door, "door.forced")
            raised = await alerts.wait_for("door-forced", "raised", door)
        assert d.http_port is not None
        status, body = await ahttp(
            d.http_port, "POST", f"/api/alerts/{raised['alert_id']}/ack", {"badge": "O4001"}
        )
        assert status == 200, body
    env_args = ("--config", str(path), "--data-dir", str(data))
    ok = sealwatch_cli("audit", "verify", *env_args)
    assert ok.returncode == 0 and "audit chain intact" in ok.stdout, ok.stdout + ok.stderr
    with contextlib.closing(db(data)) as conn:
        seq, body = conn.execute(
            "SELECT seq, body FROM audit WHERE kind = 'transition' AND body LIKE "
            "'%press-hall-door%' ORDER BY seq LIMIT 1"
        ).fetchone()
        conn.execute(
            "UPDATE audit SET body = ? WHERE seq = ?",
            (body.replace("press-hall-door", "typesetting-door"), seq),
        )
        conn.commit()
    broken = sealwatch_cli("audit", "verify", *env_args)
    assert broken.returncode == 1
    assert f"broken at record {seq}" in broken.stdout, broken.stdout


async def test_export_events_replayed_gives_the_daemons_transitions(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    sid = site_id("replay")
    path = write_site(tmp_path, sid, policies={"door_held_open_s": 1, "ack_escalation_s": 1})
    data = tmp_path / "data"
    async with (
        running_daemon(path, mosquitto_session, data) as d,
        AlertWatcher(mosquitto_session, sid) as alerts,
        Gateway(mosquitto_session, sid) as gw,
    ):
        assert d.http_port is not None
        await ahttp(
            d.http_port,
            "POST",
            "/api/seals/s-r/start",
            {"badge": "S2001", "name": "replay seal", "classification": "secret"},
        )
        await gw.event("console-1", "operator.duty", badge="O4001", state="on")
        await gw.event("press-hall-door", "door.opened", ts=now_ts())
        await gw.event("gate-outer", "door.opened")
        await gw.event("gate-inner", "door.opened")
        await alerts.wait_for("entrance-interlock", "raised")
        await gw.event("gate-inner", "door.closed", ts=now_ts(-2))  # a little late: re-stamped
        await alerts.wait_for("door-held-open", "raised", "press-hall-door")
        await gw.event("pd-living", "phone.detected")
        phone = await alerts.wait_for("prohibited-device", "raised", "pd-living")
        await alerts.wait_for("prohibited-device", "escalated", "pd-living")
        await ahttp(
            d.http_port,
            "POST",
            f"/api/alerts/{phone['alert_id']}/ack",
            {"badge": "O4001", "comment": "found"},
        )
        await gw.event("press-hall-door", "door.closed")
        await alerts.wait_for("door-held-open", "cleared", "press-hall-door")
        await ahttp(d.http_port, "POST", "/api/seals/s-r/end", {"badge": "S2001"})
        await alerts.wait_for("monitoring-staffed", "cleared")
    env_args = ("--config", str(path), "--data-dir", str(data))
    exported = tmp_path / "events.jsonl"
    assert sealwatch_cli("export-events", *env_args, "-o", str(exported)).returncode == 0
    with contextlib.closing(db(data)) as conn:
        live = [
            orjson.loads(line)
            for (line,) in conn.execute("SELECT line FROM transitions ORDER BY id")
        ]
        clock = conn.execute("SELECT value FROM meta WHERE key='clock'").fetchone()[0]
    from zoneinfo import ZoneInfo

    from policies.timefmt import format_ts

    until = format_ts(int(clock), ZoneInfo("Asia/Shanghai"))
    replayed = sealwatch_cli(
        "replay", "--config", str(path), "--strict", "--until", until, str(exported)
    )
    assert replayed.returncode == 0, replayed.stderr
    keys = ("ts", "alert_id", "policy", "subject", "severity", "state", "clause", "message")
    live_lines = [{k: t[k] for k in keys} for t in live]
    replay_lines = [
        {k: t[k] for k in keys} for t in map(orjson.loads, replayed.stdout.splitlines())
    ]
    assert len(live_lines) > 8
    assert replay_lines == live_lines
