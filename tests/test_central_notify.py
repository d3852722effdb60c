"""The centre's notifications in-process: transitions handed to the real `Centre` (no broker),
the real sink with its SQLite outbox in a temporary data dir, real webhook receivers (aiohttp
servers). The clock of the escalation timers is the test's (µs), moved on by hand."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from daemon.central.config import parse_central
from daemon.central.notify import CentralNotifications
from daemon.central.state import Centre
from daemon.notify.channels import signature
from policies.timefmt import format_ts
from tests.support.daemon import wait_until
from tests.support.receivers import HttpReceiver

T0 = 1_800_000_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def config(tmp_path: Path, port: int) -> dict[str, Any]:
    def hook(path: str) -> dict[str, Any]:
        return {"type": "webhook", "url": f"http://127.0.0.1:{port}/{path}", "secret_env": "K"}

    return {
        "brokers": ["mqtt://127.0.0.1:1"],
        "sites": [{"id": s, "lon": 116.0, "lat": 39.0} for s in ("works-a", "works-b")],
        "data_dir": str(tmp_path / "data"),
        "timezone": "UTC",
        "notifications": {
            "retry_initial_s": 0.05,
            "retry_max_s": 0.2,
            "channels": {n: hook(n) for n in ("a", "b", "ops", "boss", "director")},
            "recipients": {n: {"channel": n} for n in ("a", "b", "ops", "boss", "director")},
            "routes": [
                {"sites": "works-a", "notify": "a"},  # raised and escalated, any severity
                {"sites": ["works-b"], "severity": "critical", "notify": "b"},
            ],
            "escalation": {
                "operators": ["ops"],
                "supervisors": ["boss"],
                "levels": [{"after_s": 60, "notify": "director"}],
            },
        },
    }


def line(alert: str, state: str, severity: str, ts: int) -> bytes:
    return orjson.dumps(
        {
            "ts": format_ts(ts),
            "alert_id": alert,
            "policy": "door-forced",
            "subject": "fire-exit-north",
            "severity": severity,
            "state": state,
            "clause": "c",
            "message": "m",
        }
    )


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Centre, CentralNotifications, HttpReceiver, Clock]]:
    monkeypatch.setenv("K", "hook-secret")
    receiver = await HttpReceiver().start()
    cfg = parse_central(config(tmp_path, receiver.port))
    clock = Clock()
    centre = Centre(cfg)
    sink = CentralNotifications(cfg, centre.metrics, centre.problems, centre.seals_of, clock)
    centre.on_transition.append(sink.take)
    task = asyncio.create_task(sink.run())
    try:
        yield centre, sink, receiver, clock
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await receiver.stop()


def got(receiver: HttpReceiver) -> dict[str, list[str]]:
    """Path → the delivery ids it received, each checked against its signature."""
    out: dict[str, list[str]] = {}
    for r in receiver.requests:
        assert r.headers["X-Sealwatch-Signature"] == signature("hook-secret", r.body)
        body = json.loads(r.body)
        assert body["delivery_id"] == r.headers["X-Sealwatch-Delivery"]
        out.setdefault(r.path.strip("/"), []).append(body["delivery_id"])
    return out


async def test_routes_by_site_and_the_chain_runs_at_the_centre(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(tmp_path, monkeypatch) as (centre, sink, receiver, clock):
        t = T0
        centre.handle("sealwatch/works-a/alerts", line("A1", "raised", "minor", t))
        centre.handle("sealwatch/works-b/alerts", line("B1", "raised", "minor", t))  # no route
        centre.handle("sealwatch/works-b/alerts", line("B2", "raised", "critical", t))
        centre.handle("sealwatch/works-b/alerts", line("B2", "raised", "critical", t))  # repeat
        ts = format_ts(t)
        want = {"a": [f"works-a:A1-raised@{ts}"]}
        want["b"] = want["ops"] = [f"works-b:B2-raised@{ts}"]
        await wait_until(lambda: got(receiver) == want, 20, "routed by site; step 0")
        msg = json.loads(receiver.requests[-1].body)
        assert msg["site"] == {"id": "works-b", "name": "works-b", "timezone": "UTC"}

        # the site's engine escalates B2 (nobody acknowledged): step 1, the supervisors
        centre.handle("sealwatch/works-b/alerts", line("B2", "escalated", "critical", t + 1))
        await wait_until(lambda: "boss" in got(receiver), 20, "step 1: the supervisors")
        # B3 the same, but acknowledged at the site: its chain stops
        centre.handle("sealwatch/works-b/alerts", line("B3", "raised", "critical", t + 2))
        centre.handle("sealwatch/works-b/alerts", line("B3", "escalated", "critical", t + 3))
        centre.handle("sealwatch/works-b/alerts", line("B3", "acknowledged", "critical", t + 4))
        await wait_until(lambda: len(got(receiver)["boss"]) == 2, 20, "B3's step 1")
        await wait_until(lambda: sink.status()["chains_open"] == 1, 20, "B3's chain stopped")
        # a minute later B2 climbs to level 2; B3 does not
        clock.now = t + 61_000_000
        sink._wake.set()
        await wait_until(lambda: "director" in got(receiver), 20, "level 2")
        assert got(receiver)["director"] == ["works-b:B2-L2"]
        assert sink.status() == {
            "sent": 10,
            "waiting": 0,
            "chains_open": 1,
            "chains": ["works-b:B2"],
            "failing": [],
        }

    with sqlite3.connect(tmp_path / "data" / "notifications.db") as db:
        steps = sorted(db.execute("SELECT alert_id, level FROM steps"))
        kinds = [k for (k,) in db.execute("SELECT kind FROM records")]
    assert steps == [
        ("works-b:B2", 0),
        ("works-b:B2", 1),
        ("works-b:B2", 2),
        ("works-b:B3", 0),
        ("works-b:B3", 1),
    ]
    assert kinds.count("notification.sent") == 10 and kinds.count("notification.escalated") == 5


async def test_a_receiver_down_is_visible_and_nothing_is_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(tmp_path, monkeypatch) as (centre, sink, receiver, _clock):
        await receiver.stop()
        for i in range(3):
            centre.handle("sealwatch/works-a/alerts", line(f"A{i}", "raised", "major", T0 + i))
        await wait_until(lambda: "notify:channel:a" in centre.problems, 20, "the problem")
        text = centre.metrics.render()
        assert 'sealwatch_notifications_failed_total{channel="a"}' in text
        await receiver.start()
        await wait_until(lambda: len(set(got(receiver).get("a", []))) == 3, 20, "all three")
        await wait_until(lambda: "notify:channel:a" not in centre.problems, 20, "cleared")
        # a transition taken twice (the cluster delivers at least once; a restarted centre
        # has forgotten what it counted) is one delivery: the outbox keeps it by its id
        again = {"ts": format_ts(T0), "alert_id": "A0", "state": "raised", "severity": "major"}
        sink.take("works-a", {**again, "policy": "door-forced", "subject": "x"})
        centre.handle("sealwatch/works-a/alerts", line("A9", "raised", "major", T0 + 9))
        await wait_until(lambda: len(got(receiver)["a"]) == 4, 20, "the next one")
        assert sorted(got(receiver)["a"]) == sorted(
            f"works-a:A{i}-raised@{format_ts(T0 + i)}" for i in (0, 1, 2, 9)
        )
        assert 'sealwatch_notifications_sent_total{channel="a"} 4' in centre.metrics.render()
