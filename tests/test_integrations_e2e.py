"""Third-party payloads end to end through `sealwatch run` (a real subprocess) and a real
Mosquitto: a door contact that publishes plain `ON`/`OFF`, and Frigate's `frigate/events`
JSON, each mapped by `daemon.mqtt_mappings` into events that raise alerts on
`sealwatch/SITE/alerts` (docs/integrations.md)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemon import (
    AlertWatcher,
    DaemonProcess,
    Gateway,
    http,
    wait_until,
    write_site,
)
from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.slow
DATA = Path(__file__).resolve().parent / "data"
_ids = itertools.count()


def mappings(sid: str) -> list[dict[str, object]]:
    """What docs/integrations.md tells a site to write, under per-test topic prefixes."""
    return [
        # a contact publishing ON (open) / OFF (closed) as plain text
        {
            "topic": f"z2m-{sid}/+/contact",
            "device": "{1}",
            "devices": {"fire_exit": "fire-exit-north"},
            "type": "door.opened",
            "when": "ON",
        },
        {
            "topic": f"z2m-{sid}/+/contact",
            "device": "{1}",
            "devices": {"fire_exit": "fire-exit-north"},
            "type": "door.closed",
            "when": "OFF",
        },
        # Frigate: a person on a camera of the sealed area
        {
            "topic": f"frigate-{sid}/events",
            "where": {"type": ["new", "update"], "after.label": "person"},
            "json_path": "after.camera",
            "device": "{value}",
            "devices": {"secure_room": "cam-secure", "press": "cam-press"},
            "type": "camera.object",
            "fields": {
                "label": "{$.after.label}",
                "score": "{$.after.score}",
                "zones": "{$.after.current_zones}",
                "object_id": "{$.after.id}",
            },
        },
    ]


@pytest.fixture
def sid() -> str:
    return f"t-integ-{next(_ids)}"


@pytest.fixture
def daemon(tmp_path: Path, mosquitto_session: Mosquitto, sid: str) -> Iterator[DaemonProcess]:
    path = write_site(tmp_path, sid, daemon={"mqtt_mappings": mappings(sid)})
    proc = DaemonProcess(path, mosquitto_session, tmp_path / "data").start()
    try:
        yield proc
    finally:
        assert proc.terminate() == 0


async def start_seal(gw: Gateway, alerts: AlertWatcher) -> None:
    await gw.event(
        "console-1", "seal.start", seal="s-int", badge="S2001", name="n", classification="secret"
    )
    # nobody is on duty: monitoring-staffed says the seal is in force
    await alerts.wait_for("monitoring-staffed", "raised")


async def test_on_off_contact_drives_single_entrance_through_sealwatch_run(
    daemon: DaemonProcess, mosquitto_session: Mosquitto, sid: str
) -> None:
    await daemon.ready()
    async with (
        AlertWatcher(mosquitto_session, sid) as alerts,
        Gateway(mosquitto_session, sid) as gw,
    ):
        await start_seal(gw, alerts)
        await gw.client.publish(f"z2m-{sid}/fire_exit/contact", b"ON", qos=1)
        raised = await alerts.wait_for("single-entrance", "raised", "fire-exit-north")
        assert raised["severity"] == "critical" and raised["clause"] == "EXAM-2.7.3"
        await gw.client.publish(f"z2m-{sid}/fire_exit/contact", b"OFF", qos=1)
        await alerts.wait_for("single-entrance", "cleared", "fire-exit-north")
        # a value the mapping does not know is a counted, stored rejection, not a crash
        await gw.client.publish(f"z2m-{sid}/fire_exit/contact", b"MAYBE", qos=1)
        await wait_until(
            lambda: 'sealwatch_rejected_total{reason="mapping"} 1' in metrics(daemon),
            what="the rejection counted",
        )


def metrics(daemon: DaemonProcess) -> str:
    status, body = http(daemon.http_port, "GET", "/metrics")
    assert status == 200 and isinstance(body, str)
    return body


async def test_frigate_person_in_an_empty_sealed_room_through_sealwatch_run(
    daemon: DaemonProcess, mosquitto_session: Mosquitto, sid: str
) -> None:
    await daemon.ready()
    sample = json.loads((DATA / "frigate-event.json").read_text())
    async with (
        AlertWatcher(mosquitto_session, sid) as alerts,
        Gateway(mosquitto_session, sid) as gw,
    ):
        await start_seal(gw, alerts)
        # Frigate's `end` and a car are left alone by the mapping's `where`
        for kind, label in (("end", "person"), ("new", "car")):
            other = {**sample, "type": kind, "after": {**sample["after"], "label": label}}
            await gw.client.publish(f"frigate-{sid}/events", json.dumps(other).encode(), qos=1)
        await gw.client.publish(f"frigate-{sid}/events", json.dumps(sample).encode(), qos=1)
        raised = await alerts.wait_for("unbadged-presence", "raised", "secure-room")
        assert raised["severity"] == "critical" and raised["clause"] == "CITY-key-3"
        assert "cam-secure" in raised["message"]
    assert "sealwatch_mapping_ignored_total 2" in metrics(daemon)
