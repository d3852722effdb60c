"""Run the daemon for tests: in-process (`running_daemon`) or as a subprocess (`DaemonProcess`),
plus an MQTT watcher of the alert topics and a small HTTP helper."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiomqtt
import orjson
import yaml

from daemon.config import load_settings
from daemon.runtime import Daemon
from daemon.systemd import Notifier
from policies.site import load_site
from policies.timefmt import format_ts
from tests.support.mosquitto import Mosquitto, free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_SITE = ROOT / "deploy" / "examples" / "site.yaml"
NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)

T = TypeVar("T")
U = TypeVar("U")

# Timers short enough for tests, long enough that nothing goes off on its own.
TEST_POLICIES = {
    "door_held_open_s": 1,
    "heartbeat_timeout_s": 3600,
    "jammer_status_timeout_s": 3600,
    "patrol_interval_min": 600,
    "ack_escalation_s": 3600,
}


def write_site(
    directory: Path,
    site_id: str,
    *,
    policies: dict[str, Any] | None = None,
    daemon: dict[str, Any] | None = None,
    seals: bool = False,
) -> Path:
    """The reference site under another id (so tests on one broker do not meet)."""
    raw = yaml.safe_load(EXAMPLE_SITE.read_text())
    raw["site"]["id"] = site_id
    raw["policies"] = {**raw.get("policies", {}), **TEST_POLICIES, **(policies or {})}
    if not seals:
        raw.pop("seals", None)
    # No device adapters unless a test asks: the reference site's fixed Modbus and camera
    # addresses belong to whichever simulator happens to run.
    raw["daemon"] = {
        "snapshot_interval_s": 1.0,
        "ingest_hold_max_s": 3.0,
        "devices": {"jammers": False, "cameras": False, "recordings": False, "duty_phone": False},
        **(daemon or {}),
    }
    path = directory / f"{site_id}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def now_ts(offset_s: float = 0.0, tz: str = "Asia/Shanghai") -> str:
    from zoneinfo import ZoneInfo

    return format_ts(time.time_ns() // 1000 + int(offset_s * 1e6), ZoneInfo(tz))


def daemon_env(broker: Mosquitto, data_dir: Path, http_port: int = 0) -> dict[str, str]:
    return {
        "SEALWATCH_MQTT_URL": broker.url,
        "SEALWATCH_DATA_DIR": str(data_dir),
        "SEALWATCH_HTTP": f"127.0.0.1:{http_port}",
    }


async def wait_until(pred: Callable[[], T | None], timeout_s: float = 15.0, what: str = "") -> T:
    """Poll a condition (there is nothing to await) until it holds or the deadline passes;
    returns what `pred` gave when it held."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        await asyncio.sleep(0.02)


async def poll_until(
    fetch: Callable[[], Awaitable[U]],
    holds: Callable[[U], bool],
    timeout_s: float = 20.0,
    what: str = "",
) -> U:
    """Fetch (an HTTP answer, a metrics page …) until `holds(it)` or the deadline passes;
    returns the last fetched, or fails showing it."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = await fetch()
        if holds(got):
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: last {str(got)[-2000:]}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running_daemon(
    site_path: Path, broker: Mosquitto, data_dir: Path
) -> AsyncIterator[Daemon]:
    """The whole daemon in this process, connected and past its broker backlog."""
    site = load_site(site_path)
    settings = load_settings(site, daemon_env(broker, data_dir))
    async with Daemon(site, settings, notifier=Notifier({})) as d:
        assert d.link is not None and d.pipeline is not None
        await asyncio.wait_for(d.link.connected.wait(), 15)
        monitor = d.pipeline
        await wait_until(lambda: not monitor.holding, what="the broker backlog")
        yield d


class AlertWatcher:
    """Collects what the daemon publishes on sealwatch/SITE/alerts and …/alerts/active/#."""

    def __init__(self, broker: Mosquitto, site_id: str) -> None:
        self.broker = broker
        self.site_id = site_id
        self.transitions: list[dict[str, Any]] = []
        self.active: dict[str, bytes] = {}  # alert id -> last retained payload seen
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def __aenter__(self) -> AlertWatcher:
        self._client = aiomqtt.Client("127.0.0.1", self.broker.port, socket_options=NODELAY)
        await self._client.__aenter__()
        base = f"sealwatch/{self.site_id}/alerts"
        await self._client.subscribe([(base, 1), (base + "/active/#", 1)])
        self._task = asyncio.create_task(self._run(), name="alert-watcher")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._task
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._client.__aexit__(None, None, None)

    async def _run(self) -> None:
        assert self._client is not None
        active = f"sealwatch/{self.site_id}/alerts/active/"
        async for msg in self._client.messages:
            payload = msg.payload if isinstance(msg.payload, bytes) else b""
            if msg.topic.value.startswith(active):
                self.active[msg.topic.value[len(active) :]] = payload
            else:
                self.transitions.append(orjson.loads(payload))
            self._changed.set()

    def find(self, policy: str, state: str, subject: str | None = None) -> dict[str, Any] | None:
        for t in self.transitions:
            if (
                t["policy"] == policy
                and t["state"] == state
                and (subject is None or t["subject"] == subject)
            ):
                return t
        return None

    async def wait_for(
        self, policy: str, state: str, subject: str | None = None, timeout_s: float = 15.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while (found := self.find(policy, state, subject)) is None:
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"no {policy} {state} {subject or ''} on the alerts topic; "
                    f"saw {[(t['policy'], t['state']) for t in self.transitions]}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return found

    async def wait_active(
        self, alert_id: str, pred: Callable[[bytes], bool], timeout_s: float = 15.0
    ) -> bytes:
        deadline = time.monotonic() + timeout_s
        while alert_id not in self.active or not pred(self.active[alert_id]):
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"retained state of {alert_id}: {self.active.get(alert_id)!r}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return self.active[alert_id]


class Gateway:
    """A device gateway publishing events (QoS 1) for one site."""

    def __init__(self, broker: Mosquitto, site_id: str) -> None:
        self.client = aiomqtt.Client("127.0.0.1", broker.port, socket_options=NODELAY)
        self.site_id = site_id

    async def __aenter__(self) -> Gateway:
        await self.client.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            await self.client.__aexit__(None, None, None)

    async def event(self, device: str, type: str, **fields: Any) -> None:
        await self.client.publish(
            f"sealwatch/{self.site_id}/events/{device}",
            orjson.dumps({"type": type, **fields}),
            qos=1,
        )

    async def raw(self, topic_tail: str, payload: bytes, retain: bool = False) -> None:
        await self.client.publish(
            f"sealwatch/{self.site_id}/{topic_tail}", payload, qos=1, retain=retain
        )


def http(port: int, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """A blocking HTTP call (run it in a thread from async tests)."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw, status = resp.read(), resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, orjson.loads(raw)
    except orjson.JSONDecodeError:
        return status, raw.decode()


async def ahttp(
    port: int, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    return await asyncio.to_thread(http, port, method, path, body)


def sealwatch_cli(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    """`sealwatch ARGS…` as a real subprocess (`python -m daemon`), its output as text."""
    return subprocess.run(
        [sys.executable, "-m", "daemon", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout_s,
    )


class DaemonProcess:
    """`sealwatch run` as a real subprocess, for kill -9 and signal tests."""

    def __init__(self, site_path: Path, broker: Mosquitto, data_dir: Path) -> None:
        self.site_path = site_path
        self.http_port = free_port()
        self.env = {
            **os.environ,
            **daemon_env(broker, data_dir, self.http_port),
            "PYTHONPATH": str(ROOT),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "daemon.log"

    def start(self) -> DaemonProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "daemon", "run", "--config", str(self.site_path)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        return self

    async def ready(self, timeout_s: float = 30.0) -> dict[str, Any]:
        """Wait until /healthz answers with the broker connected."""

        def up() -> dict[str, Any] | None:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited: {self.log.read_text()[-3000:]}")
            try:
                status, body = http(self.http_port, "GET", "/healthz")
            except OSError:
                return None
            return body if status == 200 and body.get("mqtt_connected") else None

        return await wait_until(up, timeout_s, "the daemon's /healthz")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def terminate(self, timeout_s: float = 20.0) -> int:
        assert self.proc is not None
        self.proc.terminate()
        return self.proc.wait(timeout=timeout_s)
