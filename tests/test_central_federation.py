"""Many sites, one centre (docs/central.md), on real parts: a three-node RabbitMQ cluster with
the MQTT plugin (quorum queues), two site Mosquittos bridged to it with the shipped
deploy/mosquitto/bridge/bridge.conf, two sealwatch daemons (subprocesses), and `sealwatch
central` (a subprocess) following the cluster.

Every alert transition a site publishes is collected on its own broker and must be seen by the
central (its HTTP API), deduplicated by (alert id, state, ts): after an incident, after the
bridge's only cluster node was stopped and restarted (the site broker queues meanwhile), and
after the node the central follows is killed with SIGKILL (the central fails over; its quorum
queue kept what the cluster acknowledged).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import AlertWatcher, DaemonProcess, Gateway, now_ts, wait_until
from tests.support.e2e import e2e_site
from tests.support.federation import BridgedMosquitto, CentralProcess
from tests.support.rabbit import RabbitCluster, available

pytestmark = pytest.mark.slow
OFF = {"jammers": False, "cameras": False, "recordings": False, "duty_phone": False}
QUIET = {"heartbeat_timeout_s": 3600, "jammer_status_timeout_s": 3600}
DOORS = ("fire-exit-north", "gate-outer", "gate-inner")
Key = tuple[str, str, str]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitCluster]:
    why = available()
    if why:
        pytest.skip(why)
    c = RabbitCluster(tmp_path_factory.mktemp("rabbit")).start()
    try:
        yield c
    finally:
        c.stop()


def keys(transitions: list[dict[str, Any]]) -> set[Key]:
    return {(t["alert_id"], t["state"], t["ts"]) for t in transitions}


def central_keys(central: CentralProcess, site: str) -> set[Key]:
    return keys(central.get(f"/api/sites/{site}/transitions")["transitions"])


async def incidents(gw: Gateway, rounds: int) -> None:
    """Doors forced and closed: a raised and a cleared transition each."""
    for _ in range(rounds):
        for door in DOORS:
            await gw.event(door, "door.forced", ts=now_ts())
            await gw.event(door, "door.closed", ts=now_ts())


async def all_seen(central: CentralProcess, site: str, watcher: AlertWatcher, at_least: int) -> int:
    """Await: the site published at least `at_least` transitions and the central has them all."""

    def done() -> int | None:
        published = keys(watcher.transitions)
        if len(published) < at_least:
            return None
        missing = published - central_keys(central, site)
        return len(published) if not missing else None

    try:
        return await wait_until(done, 90, f"every transition of {site} at the central")
    except AssertionError:
        published = keys(watcher.transitions)
        missing = published - central_keys(central, site)
        raise AssertionError(f"{site}: {len(missing)} of {len(published)} missing") from None


async def test_two_sites_through_the_cluster(tmp_path: Path, cluster: RabbitCluster) -> None:
    n1, n2, n3 = cluster.nodes
    a, b = "fed-a", "fed-b"
    # Site A's bridge knows two nodes; site B's only node 1 (so stopping node 1 cuts it).
    broker_a = BridgedMosquitto(tmp_path / "mq-a", a, [n3, n1]).start()
    broker_b = BridgedMosquitto(tmp_path / "mq-b", b, [n1]).start()
    daemons = [
        DaemonProcess(
            e2e_site(tmp_path / s, s, policies=QUIET, devices=OFF), broker, tmp_path / s / "data"
        ).start()
        for s, broker in ((a, broker_a), (b, broker_b))
    ]
    central = CentralProcess(tmp_path, [n2, n3, n1], [a, b]).start()
    try:
        async with contextlib.AsyncExitStack() as stack:
            watch_a = await stack.enter_async_context(AlertWatcher(broker_a, a))
            watch_b = await stack.enter_async_context(AlertWatcher(broker_b, b))
            gw_a = await stack.enter_async_context(Gateway(broker_a, a))
            gw_b = await stack.enter_async_context(Gateway(broker_b, b))
            for d in daemons:
                await d.ready()
            health = await central.ready()
            assert health["broker"] == n2.url

            # 1. An incident at site B appears at the centre.
            await gw_b.event("fire-exit-north", "door.forced", ts=now_ts())
            raised = await watch_b.wait_for("door-forced", "raised", "fire-exit-north")

            def b_worst() -> dict[str, Any] | None:
                site = central.get(f"/api/sites/{b}")
                ids = {x.get("alert_id") for x in site["active_alerts"]}
                return site if raised["alert_id"] in ids and site["worst"] else None

            site_b = await wait_until(b_worst, 60, "site B's door-forced at the centre")
            assert site_b["worst"]["severity"] == "critical"
            # the bridge's "1" went out before the central's session existed, retained on node
            # 1 only (RabbitMQ 3.10 keeps retained messages per node): not "down" is all we know
            assert site_b["availability"] == "online" and site_b["bridge"] != "down"
            await wait_until(
                lambda: central.get(f"/api/sites/{b}")["seals"], 60, "B's seal in the summary"
            )
            seal = central.get(f"/api/sites/{b}")["seals"][0]
            assert seal["id"] == "e2e-seal" and all(
                0 <= band["uptime_pct"] <= 100 for band in seal["bands"]
            )
            await gw_b.event("fire-exit-north", "door.closed", ts=now_ts())
            await incidents(gw_a, 2)
            await all_seen(central, a, watch_a, 12)
            n_b = await all_seen(central, b, watch_b, 2)

            # 2. The bridge of site B cut: its only cluster node stopped. The site goes on
            # alerting; its broker queues for the bridge; nothing is lost once it is back.
            n1.stop()
            await incidents(gw_b, 3)
            await wait_until(
                lambda: len(keys(watch_b.transitions)) >= n_b + 18, 60, "B alerting on its own"
            )
            assert central_keys(central, b) < keys(watch_b.transitions)  # not through yet
            await asyncio.to_thread(n1.restart)
            n_b = await all_seen(central, b, watch_b, n_b + 18)

            # 3. The node the central follows killed (SIGKILL): the central fails over, and
            # what the cluster acknowledged meanwhile is delivered from the quorum queue.
            n2.kill9()
            await incidents(gw_a, 2)
            await incidents(gw_b, 2)

            def moved() -> dict[str, Any] | None:
                h: dict[str, Any] = central.get("/healthz")
                return h if h["broker"] not in (None, n2.url) else None

            health = await wait_until(moved, 60, "the central on another node")
            assert health["connections"] >= 2
            await all_seen(central, a, watch_a, 24)
            await all_seen(central, b, watch_b, n_b + 12)
            overview = central.get("/api/overview")
            assert {s["id"]: s["availability"] for s in overview["sites"]} == {
                a: "online",
                b: "online",
            }
            assert overview["rejected"] == 0
    finally:
        central.stop()
        for d in daemons:
            if d.proc is not None and d.proc.poll() is None:
                d.terminate()
        broker_a.stop()
        broker_b.stop()
        for node in (n1, n2, n3):  # the module's cluster is left whole for the next test
            if node.proc is None:
                await asyncio.to_thread(node.restart)
