"""Device identity on the broker (issue 9, part 1), against a real Mosquitto started from the
shipped deploy/mosquitto/mosquitto.conf (only its paths, port and log destination rewritten)
with credentials issued by the shipped deploy/mosquitto/credentials.py.

What it proves (docs/security.md, "A gateway insider"): a gateway login cannot publish as
another device (MQTT 5 PUBACK "not authorized", and the daemon never stores it), cannot read
alerts or other devices' topics, cannot take the daemon's client id (refused; the daemon's
session stays up), the daemon works end to end over TLS with its own login, and a revoked
login is disconnected and cannot connect again."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from tests.support.daemon import DaemonProcess, now_ts, wait_until, write_site
from tests.support.mosquitto import ConfiguredMosquitto

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "mosquitto"
SITE = "sec-print"
BASE = f"sealwatch/{SITE}"
# PUBACK, SUBACK and CONNACK "not authorized" (the plugin refuses a wrong client id, an
# unknown login and a wrong password alike).
NOT_AUTHORIZED = 0x87
WAIT_S = 15.0


@dataclass
class Site:
    workdir: Path
    etc: Path
    site_path: Path
    broker: ConfiguredMosquitto

    def password(self, login: str) -> str:
        return (self.etc / "secrets" / f"{login}.password").read_text().strip()

    def credentials(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                str(DEPLOY / "credentials.py"),
                "--dir",
                str(self.etc),
                "--state",
                str(self.workdir / "dynamic-security.json"),
                *args,
            ],
            capture_output=True,
            text=True,
            check=True,
        )


class Client:
    """A paho MQTT 5 client over TLS (the site CA) that records what the broker answers."""

    def __init__(
        self, site: Site, login: str, client_id: str | None = None, password: str | None = None
    ) -> None:
        self.cond = threading.Condition()
        self.connack: int | None = None
        self.pubacks: dict[int, int] = {}
        self.subacks: dict[int, list[int]] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.disconnected: int | None = None
        self.c = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or login,
            protocol=paho.MQTTv5,
        )
        self.c.username_pw_set(login, password or site.password(login))
        self.c.tls_set(ca_certs=str(site.etc / "ca.crt"), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.c.on_connect = self._on_connect
        self.c.on_publish = self._on_publish
        self.c.on_subscribe = self._on_subscribe
        self.c.on_message = self._on_message
        self.c.on_disconnect = self._on_disconnect
        self.port = site.broker.port

    def _note(self, fn: Any) -> None:
        with self.cond:
            fn()
            self.cond.notify_all()

    def _on_connect(self, c: Any, u: Any, flags: Any, rc: ReasonCode, p: Any) -> None:
        self._note(lambda: setattr(self, "connack", rc.value))

    def _on_publish(self, c: Any, u: Any, mid: int, rc: ReasonCode, p: Any) -> None:
        self._note(lambda: self.pubacks.__setitem__(mid, rc.value))

    def _on_subscribe(self, c: Any, u: Any, mid: int, rcs: list[ReasonCode], p: Any) -> None:
        self._note(lambda: self.subacks.__setitem__(mid, [r.value for r in rcs]))

    def _on_message(self, c: Any, u: Any, msg: paho.MQTTMessage) -> None:
        self._note(lambda: self.messages.append((msg.topic, bytes(msg.payload))))

    def _on_disconnect(self, c: Any, u: Any, flags: Any, rc: ReasonCode, p: Any) -> None:
        self._note(lambda: setattr(self, "disconnected", rc.value))

    def wait(self, pred: Any, what: str) -> Any:
        with self.cond:
            if not self.cond.wait_for(pred, WAIT_S):
                raise AssertionError(f"timed out waiting for {what}")
            return pred()

    def connect(self) -> int:
        """Connect; the CONNACK's reason code (0 = accepted)."""
        self.c.connect("127.0.0.1", self.port, keepalive=30, clean_start=True)
        self.c.loop_start()
        self.wait(lambda: self.connack is not None, "CONNACK")
        assert self.connack is not None
        return self.connack

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> int:
        """Publish at QoS 1; the PUBACK's reason code."""
        info = self.c.publish(topic, payload, qos=1, retain=retain)
        self.wait(lambda: info.mid in self.pubacks, f"PUBACK on {topic}")
        return self.pubacks[info.mid]

    def subscribe(self, topic: str) -> int:
        """Subscribe at QoS 1; the SUBACK's reason code."""
        _, mid = self.c.subscribe(topic, qos=1)
        assert mid is not None
        self.wait(lambda: mid in self.subacks, f"SUBACK on {topic}")
        return self.subacks[mid][0]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def event(device: str, type: str, **fields: Any) -> bytes:
    return json.dumps({"type": type, "device": device, "ts": now_ts(), **fields}).encode()


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    # Mosquitto, started as root, drops to its own user: the directory must be its to write
    # (persistence, and the plugin's state file, which it rewrites on every change).
    workdir = Path(tempfile.mkdtemp(prefix="sealwatch-brokersec-"))
    workdir.chmod(0o777)
    etc = workdir / "etc"
    gateways = workdir / "gateways.yaml"
    gateways.write_text(
        "gateways:\n  gw-entrance: [gate-outer, gate-inner]\n  gw-doors: [fire-exit-north]\n"
    )
    site_path = write_site(
        workdir, SITE, daemon={"mqtt": {"tls": {"ca_file": str(etc / "ca.crt")}}}
    )
    conf = (DEPLOY / "mosquitto.conf").read_text()
    broker = ConfiguredMosquitto(
        workdir,
        conf,
        {
            "/etc/mosquitto/sealwatch/": f"{etc}/",
            "/var/lib/mosquitto/dynamic-security.json": f"{workdir}/dynamic-security.json",
            "persistence_location /var/lib/mosquitto/": f"persistence_location {workdir}/",
            "listener 8883 0.0.0.0": "listener {port} 127.0.0.1",
            "log_dest syslog": "log_dest stderr",
        },
    )
    s = Site(workdir, etc, site_path, broker)
    s.credentials(
        "init", "--site", str(site_path), "--gateways", str(gateways), "--host", "localhost",
        "--host", "127.0.0.1",
    )  # fmt: skip
    broker.start()
    yield s
    broker.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def daemon(site: Site) -> Iterator[DaemonProcess]:
    """The real daemon over TLS with its own login (mqtts://sealwatch@…)."""
    data = site.workdir / "data"
    d = DaemonProcess(site.site_path, site.broker, data)
    d.env["SEALWATCH_MQTT_URL"] = f"mqtts://sealwatch@127.0.0.1:{site.broker.port}"
    d.env["SEALWATCH_MQTT_PASSWORD_FILE"] = str(site.etc / "secrets" / "sealwatch.password")
    d.start()
    yield d
    if d.proc is not None and d.proc.poll() is None:
        d.terminate()


def exported(site: Site) -> list[dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, "-m", "daemon", "export-events", "--config", str(site.site_path)],
        env={**os.environ, "SEALWATCH_DATA_DIR": str(site.workdir / "data")},
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


async def test_gateway_identity_on_the_shipped_broker(site: Site, daemon: DaemonProcess) -> None:
    await daemon.ready()  # (d) connected over TLS with the `sealwatch` login

    operator = Client(site, "operator")
    assert operator.connect() == 0
    assert operator.subscribe(f"{BASE}/alerts") == 1
    doors = Client(site, "gw-doors")
    assert doors.connect() == 0

    # (a) Publishing as another device: refused with PUBACK 0x87 (MQTT 5), not dropped
    # silently with a success code; on the device's own topic: accepted (0).
    assert doors.publish(f"{BASE}/events/gate-outer", event("gate-outer", "door.forced")) == (
        NOT_AUTHORIZED
    )
    assert doors.publish(f"{BASE}/status/gate-outer", b"offline", retain=True) == NOT_AUTHORIZED
    assert doors.publish(f"{BASE}/alerts", b"{}") == NOT_AUTHORIZED
    assert doors.publish(f"{BASE}/daemon", b"offline", retain=True) == NOT_AUTHORIZED
    assert doors.publish("sealwatch/other-site/events/x", b"{}") == NOT_AUTHORIZED
    own = doors.publish(f"{BASE}/events/fire-exit-north", event("fire-exit-north", "door.forced"))
    assert own == 0

    # (d) …which the daemon turns into an alert that the operator login reads.
    def forced(subject: str) -> bool:
        return any(
            t == f"{BASE}/alerts"
            and json.loads(p)["policy"] == "door-forced"
            and json.loads(p)["subject"] == subject
            for t, p in operator.messages
        )

    operator.wait(lambda: forced("fire-exit-north"), "the door-forced alert over MQTT")
    assert not forced("gate-outer")

    # (b) Reading alerts, another device's events, or everything: SUBACK 0x87, no delivery.
    assert doors.subscribe(f"{BASE}/alerts") == NOT_AUTHORIZED
    assert doors.subscribe(f"{BASE}/alerts/active/#") == NOT_AUTHORIZED
    assert doors.subscribe(f"{BASE}/events/gate-outer") == NOT_AUTHORIZED
    assert doors.subscribe(f"{BASE}/events/#") == NOT_AUTHORIZED
    assert doors.subscribe("#") == NOT_AUTHORIZED
    entrance = Client(site, "gw-entrance")
    assert entrance.connect() == 0
    assert entrance.publish(f"{BASE}/events/gate-outer", event("gate-outer", "door.opened")) == 0
    operator.wait(lambda: forced("fire-exit-north"), "")  # the operator's link is still up
    # A round trip through the broker after gw-entrance's publish: anything routed to
    # gw-doors would have arrived before its own PUBACK below.
    doors.publish(f"{BASE}/events/fire-exit-north", event("fire-exit-north", "door.closed"))
    assert doors.messages == []

    # (c) Taking the daemon's client id with a gateway login: CONNACK refused, the daemon's
    # session untouched (with the open configuration this kicked the daemon off and the
    # broker dropped its session and what was queued for it).
    thief = Client(site, "gw-doors", client_id=f"sealwatch-{SITE}")
    assert thief.connect() == NOT_AUTHORIZED
    thief.close()
    other = Client(site, "gw-entrance", client_id="gw-doors")  # another gateway's session
    assert other.connect() == NOT_AUTHORIZED
    other.close()
    assert doors.disconnected is None
    health = await daemon.ready()
    assert health["mqtt_connected"]
    # …and still receives what the gateways publish (checked in the store below).
    assert (
        doors.publish(f"{BASE}/events/fire-exit-north", event("fire-exit-north", "door.closed"))
        == 0
    )

    # (e) Revoking gw-doors on the running broker: its connection is dropped and it cannot
    # connect again; the other logins go on.
    old_password = site.password("gw-doors")
    site.credentials("revoke", "gw-doors", "--broker", f"127.0.0.1:{site.broker.port}")
    doors.wait(lambda: doors.disconnected is not None, "gw-doors to be disconnected")
    doors.close()
    again = Client(site, "gw-doors", password=old_password)
    assert again.connect() == NOT_AUTHORIZED
    again.close()
    assert entrance.publish(f"{BASE}/events/gate-inner", event("gate-inner", "door.opened")) == 0
    entrance.close()

    # A replacement issued on the running broker works at once, within its own devices only.
    site.credentials(
        "issue", "gw-doors-2", "--site", str(site.site_path), "--devices", "fire-exit-north",
        "--broker", f"127.0.0.1:{site.broker.port}",
    )  # fmt: skip
    fresh = Client(site, "gw-doors-2")
    assert fresh.connect() == 0
    assert (
        fresh.publish(f"{BASE}/events/fire-exit-north", event("fire-exit-north", "door.opened"))
        == 0
    )
    assert fresh.publish(f"{BASE}/events/gate-outer", event("gate-outer", "door.forced")) == (
        NOT_AUTHORIZED
    )
    fresh.close()
    operator.close()

    # What the gateways were allowed to publish reaches the store (a PUBACK comes from the
    # broker, not from the daemon, so wait for it); what they were refused never does.
    allowed = {
        ("fire-exit-north", "door.forced"),
        ("gate-outer", "door.opened"),
        ("gate-inner", "door.opened"),
        ("fire-exit-north", "door.opened"),
    }

    def stored() -> set[tuple[str, str]]:
        return {(e["device"], e["type"]) for e in exported(site)}

    await wait_until(lambda: allowed <= stored(), what="the allowed events in the store")
    assert daemon.terminate() == 0
    assert ("gate-outer", "door.forced") not in stored()
