"""The centre notifies and escalates (docs/central.md, "Notifications at the centre"), on real
parts: a single-node RabbitMQ 3.10 with the MQTT plugin (one node, not the federation test's
three, to save CPU: fail-over is that test's subject, not this one's), a site Mosquitto bridged
to it with the shipped bridge.conf, a `sealwatch run` and a `sealwatch central` subprocess, and
a real webhook receiver (aiohttp) for the exam authority, stopped and started again.

- a critical alert raised at the site reaches the centre and the authority's webhook (HMAC
  signed, delivery id `SITE:ALERT-STATE@TS`);
- unacknowledged, the site's engine escalates it (`ack_escalation_s`), the centre's chain
  sends step 1 to the supervisors and, `after_s` later, level 2 to the director; the site's
  acknowledgement stops the chain (no chain left open at the centre);
- the receiver down: the centre shows it (/healthz problem, /metrics), holds the deliveries in
  its outbox, and once the receiver is back delivers every one — repeats only under the same
  delivery id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.notify.channels import signature
from tests.support.daemon import AlertWatcher, DaemonProcess, Gateway, ahttp, now_ts, wait_until
from tests.support.e2e import e2e_site
from tests.support.federation import BridgedMosquitto, CentralProcess
from tests.support.rabbit import RabbitCluster, available
from tests.support.receivers import HttpReceiver

pytestmark = pytest.mark.slow
OFF = {"jammers": False, "cameras": False, "recordings": False, "duty_phone": False}
POLICIES = {"heartbeat_timeout_s": 3600, "jammer_status_timeout_s": 3600, "ack_escalation_s": 3}
SECRET = "authority-hook-secret"
SID = "cn-a"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    why = available()
    if why:
        pytest.skip(why)
    c = RabbitCluster(tmp_path_factory.mktemp("rabbit1"), size=1).start()
    try:
        yield c.nodes[0]
    finally:
        c.stop()


def notifications(tmp_path: Path, url: str) -> dict[str, Any]:
    (tmp_path / "hook.secret").write_text(SECRET)

    def hook(path: str) -> dict[str, Any]:
        return {
            "type": "webhook",
            "url": f"{url}/{path}",
            "secret_file": str(tmp_path / "hook.secret"),
        }

    return {
        "data_dir": str(tmp_path / "central-data"),
        "notifications": {
            "retry_initial_s": 0.2,
            "retry_max_s": 1.0,
            "channels": {n: hook(n) for n in ("authority", "boss", "director")},
            "recipients": {n: {"channel": n} for n in ("authority", "boss", "director")},
            "routes": [{"sites": [SID], "severity": "critical", "notify": "authority"}],
            "escalation": {
                "operators": ["authority"],
                "supervisors": ["boss"],
                "levels": [
                    {"after_s": 1, "notify": "director"},
                    {"after_s": 3600, "notify": "director"},
                ],
            },
        },
    }


def received(receiver: HttpReceiver) -> dict[str, dict[str, bytes]]:
    """Path → delivery id → body; every request signed, a repeat identical to the first."""
    out: dict[str, dict[str, bytes]] = {}
    for r in receiver.requests:
        assert r.headers["X-Sealwatch-Signature"] == signature(SECRET, r.body)
        did = r.headers["X-Sealwatch-Delivery"]
        seen = out.setdefault(r.path.strip("/").split("/")[-1], {})
        assert seen.setdefault(did, r.body) == r.body, f"{did} repeated with another body"
    return out


def expected_ids(transitions: list[dict[str, Any]]) -> set[str]:
    """The authority's delivery ids for what the site published (critical raised/escalated)."""
    return {
        f"{SID}:{t['alert_id']}-{t['state']}@{t['ts']}"
        for t in transitions
        if t["severity"] == "critical" and t["state"] in ("raised", "escalated")
    }


async def test_the_centre_notifies_escalates_and_holds_through_a_receiver_outage(
    tmp_path: Path, node: Any
) -> None:
    receiver = await HttpReceiver().start()
    url = receiver.url.rsplit("/", 1)[0]
    broker = BridgedMosquitto(tmp_path / "mq", SID, [node]).start()
    site = e2e_site(tmp_path / SID, SID, policies=POLICIES, devices=OFF)
    daemon = DaemonProcess(site, broker, tmp_path / SID / "data").start()
    central = CentralProcess(tmp_path, [node], [SID], notifications(tmp_path, url)).start()
    try:
        async with AlertWatcher(broker, SID) as watch, Gateway(broker, SID) as gw:
            await daemon.ready()
            await central.ready()

            # 1. A critical alert at the site: delivered to the authority's webhook.
            await gw.event("fire-exit-north", "door.forced", ts=now_ts())
            raised = await watch.wait_for("door-forced", "raised", "fire-exit-north")
            a_id = raised["alert_id"]
            first = f"{SID}:{a_id}-raised@{raised['ts']}"
            await wait_until(
                lambda: first in received(receiver).get("authority", {}), 60, "at the authority"
            )
            msg = json.loads(received(receiver)["authority"][first])
            assert msg["site"]["id"] == SID and msg["alert"]["severity"] == "critical"

            # 2. Unacknowledged: the site escalates it, the centre's chain climbs to level 2.
            await wait_until(
                lambda: f"{SID}:{a_id}-L2" in received(receiver).get("director", {}),
                60,
                "level 2 at the director",
            )
            assert any(d.startswith(f"{SID}:{a_id}-escalated@") for d in received(receiver)["boss"])
            chain = f"{SID}:{a_id}"
            assert chain in central.get("/healthz")["notifications"]["chains"]
            # ... and acknowledged at the site: the ack arrives, the chain stops.
            status, body = await ahttp(
                daemon.http_port, "POST", f"/api/alerts/{a_id}/ack", {"badge": "O4001"}
            )
            assert status == 200 and body["accepted"], body
            await wait_until(
                lambda: chain not in central.get("/healthz")["notifications"]["chains"],
                60,
                "the chain stopped by the site's ack",
            )
            assert f"{SID}:{a_id}-L3" not in received(receiver).get("director", {})

            # 3. The authority's receiver down: held, visible, then all delivered once up.
            await receiver.stop()
            mark = len(watch.transitions)
            for door in ("gate-outer", "gate-inner"):
                await gw.event(door, "door.forced", ts=now_ts())
            await wait_until(
                lambda: any("authority" in p for p in central.get("/healthz")["problems"]),
                60,
                "the authority's webhook failing on /healthz",
            )
            health = central.get("/healthz")
            assert health["status"] == "degraded" and health["notifications"]["failing"]
            status, text = await ahttp(central.http_port, "GET", "/metrics")
            assert 'sealwatch_notifications_failed_total{channel="authority"}' in str(text)
            await receiver.start()

            def complete() -> set[str] | None:
                want = expected_ids(watch.transitions[mark:])  # raised and escalated of both
                got = set(received(receiver).get("authority", {}))
                return want if len(want) >= 4 and want <= got else None

            want = await wait_until(complete, 90, "every critical transition at the authority")
            before = expected_ids(watch.transitions[:mark])
            assert set(received(receiver)["authority"]) <= want | before  # nothing else
            await wait_until(lambda: not central.get("/healthz")["problems"], 60, "no problem")
    finally:
        central.stop()
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.terminate()
        broker.stop()
        await receiver.stop()
    log = (tmp_path / "central.log").read_text()
    assert log.count("notifications by authority not delivered") == 1, log[-3000:]
    assert log.count("notifications by authority are delivered again") == 1
