"""The live daemon against a real Mosquitto: events in over MQTT, alert transitions out."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.daemon import (
    AlertWatcher,
    Gateway,
    ahttp,
    now_ts,
    running_daemon,
    write_site,
)
from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.slow
_ids = itertools.count()


def site_id(name: str) -> str:
    return f"t-{name}-{next(_ids)}"


async def test_forced_door_raises_then_clears_with_retained_active_topic(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    sid = site_id("forced")
    path = write_site(tmp_path, sid)
    async with (
        running_daemon(path, mosquitto_session, tmp_path / "data"),
        AlertWatcher(mosquitto_session, sid) as alerts,
        Gateway(mosquitto_session, sid) as gw,
    ):
        await gw.event("fire-exit-north", "door.forced", ts=now_ts())
        raised = await alerts.wait_for("door-forced", "raised", "fire-exit-north")
        assert raised["clause"] == "EXAM-2.7.5" and raised["severity"] == "critical"
        retained = await alerts.wait_active(raised["alert_id"], lambda p: p != b"")
        assert orjson.loads(retained)["isa_state"] == "unacknowledged"
        await gw.event("fire-exit-north", "door.closed")
        cleared = await alerts.wait_for("door-forced", "cleared", "fire-exit-north")
        assert cleared["alert_id"] == raised["alert_id"]
        # Not acknowledged yet: returned to normal unacknowledged, still on the list.
        retained = await alerts.wait_active(
            raised["alert_id"], lambda p: orjson.loads(p)["state"] == "cleared"
        )
        assert orjson.loads(retained)["isa_state"] == "rtn_unacknowledged"


# Each family: events to publish (device, type, fields), the alert expected, and the events
# that end its condition (None for a latched alert).
Step = tuple[str, str, dict[str, Any]]
FAMILIES: dict[str, tuple[list[Step], tuple[str, str], list[Step] | None]] = {
    "door-held-open": (
        [("press-hall-door", "door.opened", {})],
        ("door-held-open", "press-hall-door"),
        [("press-hall-door", "door.closed", {})],
    ),
    "zone-authorization": (
        [("gate-inner", "badge.granted", {"badge": "G3001", "direction": "in"})],
        ("zone-authorization", "G3001"),
        None,
    ),
    "intrusion": (
        [("secure-safe", "alarm.input", {"state": "tamper"})],
        ("intrusion", "secure-safe"),
        [("secure-safe", "alarm.input", {"state": "normal"})],
    ),
    "jammer-health": (
        [
            (
                "jam-work",
                "jammer.status",
                {
                    "output": True,
                    "faults": ["fan"],
                    "temperature_c": 40,
                    "bands": {
                        "cdma800": 33,
                        "gsm900": 33,
                        "dcs1800": 30,
                        "lte2100": 30,
                        "nr3500": 27,
                    },
                },
            )
        ],
        ("jammer-health", "jam-work"),
        [
            (
                "jam-work",
                "jammer.status",
                {
                    "output": True,
                    "faults": [],
                    "temperature_c": 40,
                    "bands": {
                        "cdma800": 33,
                        "gsm900": 33,
                        "dcs1800": 30,
                        "lte2100": 30,
                        "nr3500": 27,
                    },
                },
            )
        ],
    ),
    "camera-integrity": (
        [("cam-press", "camera.status", {"stream": "up", "tamper": "covered"})],
        ("camera-integrity", "cam-press"),
        [("cam-press", "camera.status", {"stream": "up", "tamper": None})],
    ),
    "power": (
        [("panel-main", "alarm.panel", {"mains": "lost"})],
        ("power", "panel-main"),
        [("panel-main", "alarm.panel", {"mains": "ok"})],
    ),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
async def test_policy_family_over_mqtt(
    family: str, tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    events, (policy, subject), ending = FAMILIES[family]
    sid = site_id(family)
    path = write_site(tmp_path, sid)
    async with (
        running_daemon(path, mosquitto_session, tmp_path / "data"),
        AlertWatcher(mosquitto_session, sid) as alerts,
        Gateway(mosquitto_session, sid) as gw,
    ):
        for device, etype, fields in events:
            await gw.event(device, etype, **fields)
        raised = await alerts.wait_for(policy, "raised", subject)
        await alerts.wait_active(raised["alert_id"], lambda p: p != b"")
        if ending is not None:
            for device, etype, fields in ending:
                await gw.event(device, etype, **fields)
            await alerts.wait_for(policy, "cleared", subject)


async def test_seal_rules_over_mqtt_and_operator_commands_over_http(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    sid = site_id("seal")
    path = write_site(tmp_path, sid, policies={"ack_escalation_s": 1})
    async with (
        running_daemon(path, mosquitto_session, tmp_path / "data") as d,
        AlertWatcher(mosquitto_session, sid) as alerts,
        Gateway(mosquitto_session, sid) as gw,
    ):
        port = d.http_port
        assert port is not None
        status, body = await ahttp(
            port,
            "POST",
            "/api/seals/s-live/start",
            {"badge": "S2001", "name": "live test seal", "classification": "secret"},
        )
        assert status == 200 and body["accepted"], body
        # Nobody on duty and nothing heard: pre-seal and monitoring-staffed raise at once.
        pre = await alerts.wait_for("pre-seal", "raised", "s-live")
        await alerts.wait_for("monitoring-staffed", "raised")
        await gw.event("pd-work", "phone.detected", band="lte")
        phone = await alerts.wait_for("prohibited-device", "raised", "pd-work")
        # Unacknowledged critical alerts escalate after ack_escalation_s.
        await alerts.wait_for("prohibited-device", "escalated", "pd-work")

        status, body = await ahttp(
            port,
            "POST",
            f"/api/alerts/{phone['alert_id']}/ack",
            {"badge": "O4001", "comment": "phone found, confiscated"},
        )
        assert status == 200 and body["accepted"], body
        acked = await alerts.wait_for("prohibited-device", "acknowledged", "pd-work")
        assert acked["acked_by"] == "O4001"
        await alerts.wait_for("prohibited-device", "cleared", "pd-work")  # latched: ack clears
        await alerts.wait_active(phone["alert_id"], lambda p: p == b"")

        status, body = await ahttp(
            port,
            "POST",
            f"/api/alerts/{pre['alert_id']}/comment",
            {"badge": "S2001", "text": "devices were being installed"},
        )
        assert status == 200 and body["accepted"], body
        status, body = await ahttp(port, "POST", "/api/alerts/nope/ack", {"badge": "O4001"})
        assert status == 409 and "unknown" in body["reason"]

        status, detail = await ahttp(port, "GET", f"/api/alerts/{phone['alert_id']}")
        assert [t["state"] for t in detail["transitions"]] == [
            "raised",
            "escalated",
            "acknowledged",
            "cleared",
        ]
        assert [a["kind"] for a in detail["actions"]] == ["alert.ack"]
        # the stored view agrees with the transitions: closed by its acknowledgement
        assert detail["acked"] is True and detail["acked_by"] == "O4001", detail
        assert detail["closed"] is True and detail["isa_state"] == "normal"

        # a shelve is recorded as a shelve, never as an acknowledgement
        status, body = await ahttp(
            port,
            "POST",
            f"/api/alerts/{pre['alert_id']}/shelve",
            {"badge": "O4001", "for_s": 600, "reason": "installers on site"},
        )
        assert status == 200 and body["accepted"], body
        shelved = await alerts.wait_for("pre-seal", "shelved", "s-live")
        assert shelved["shelved_by"] == "O4001" and "acked_by" not in shelved
        status, detail = await ahttp(port, "GET", f"/api/alerts/{pre['alert_id']}")
        assert detail["transitions"][-1]["shelved_by"] == "O4001"
        assert detail["acked"] is False and detail["acked_by"] is None
        assert detail["shelved_by"] == "O4001"

        status, body = await ahttp(port, "POST", "/api/seals/s-live/end", {"badge": "S2001"})
        assert status == 200 and body["accepted"], body
        await alerts.wait_for("monitoring-staffed", "cleared")
        status, archive = await ahttp(port, "GET", "/api/seals/s-live/archive")
        assert archive["seal"]["status"] == "ended" and archive["seal"]["started_by"] == "S2001"
        assert {i["policy"] for i in archive["alerts"]} >= {"pre-seal", "prohibited-device"}
        # the auditor's command line gives the same archive, with the audit head hash
        cli = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "daemon",
                "archive",
                "s-live",
                "--http",
                f"127.0.0.1:{port}",
                "--data-dir",
                str(tmp_path / "data"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 0, cli.stderr
        printed = orjson.loads(cli.stdout)
        assert printed["seal"]["status"] == "ended" and printed["ledger"]["head_hash"]
        status, verdict = await ahttp(port, "GET", "/api/audit/verify")
        assert verdict["ok"] and verdict["records"] > 5


async def test_maintenance_window_suppresses_annunciation_but_stores_the_alert(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    sid = site_id("maint")
    path = write_site(tmp_path, sid)
    async with (
        running_daemon(path, mosquitto_session, tmp_path / "data") as d,
        AlertWatcher(mosquitto_session, sid) as alerts,
        Gateway(mosquitto_session, sid) as gw,
    ):
        assert d.http_port is not None
        status, body = await ahttp(
            d.http_port,
            "POST",
            "/api/maintenance",
            {
                "device": "cam-gate",
                "start": now_ts(-60),
                "end": now_ts(3600),
                "reason": "lens replacement",
                "badge": "O4001",
            },
        )
        assert status == 409 and "supervisor" in body["reason"]  # operators cannot schedule
        status, body = await ahttp(
            d.http_port,
            "POST",
            "/api/maintenance",
            {
                "device": "cam-gate",
                "start": now_ts(-60),
                "end": now_ts(3600),
                "reason": "lens replacement",
                "badge": "S2001",
            },
        )
        assert status == 200, body
        await gw.event("cam-gate", "camera.status", stream="down")
        raised = await alerts.wait_for("camera-integrity", "raised", "cam-gate")
        assert raised.get("suppressed") is True
        retained = await alerts.wait_active(raised["alert_id"], lambda p: p != b"")
        assert orjson.loads(retained)["isa_state"] == "suppressed"
        status, listed = await ahttp(d.http_port, "GET", "/api/alerts")
        assert [a["isa_state"] for a in listed if a["subject"] == "cam-gate"] == ["suppressed"]
