"""Sites bridged to a RabbitMQ cluster and a central sealwatch, for the federation tests.

`bridged_broker` starts a site's Mosquitto with the shipped deploy/mosquitto/bridge/bridge.conf
appended, rewritten for the test: SITE → the site id, the addresses → the given cluster nodes,
and without TLS or a login (the test cluster listens on plain MQTT with anonymous access; TLS
to the centre is documented, not exercised here). `CentralProcess` runs `sealwatch central` as
a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.support.daemon import ROOT, http, wait_until
from tests.support.mosquitto import Mosquitto, free_port, stop_process
from tests.support.rabbit import RabbitNode

BRIDGE_CONF = ROOT / "deploy" / "mosquitto" / "bridge" / "bridge.conf"
DROPPED = (
    "bridge_cafile",
    "bridge_tls_version",
    "bridge_insecure",
    "remote_username",
    "remote_password",
)


def bridge_text(site_id: str, nodes: list[RabbitNode]) -> str:
    out = []
    for line in BRIDGE_CONF.read_text().splitlines():
        if line.startswith(DROPPED):
            continue
        if line.startswith("address "):
            line = "address " + " ".join(f"127.0.0.1:{n.mqtt_port}" for n in nodes)
        out.append(line.replace("SITE", site_id))
    return "\n".join(out) + "\n"


class BridgedMosquitto(Mosquitto):
    """A site broker (the tests' Mosquitto: persistence, large queues) bridged to the centre."""

    def __init__(self, workdir: Path, site_id: str, nodes: list[RabbitNode]) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(workdir)
        self.conf.write_text(self.conf.read_text() + bridge_text(site_id, nodes))
        self.log = workdir / "mosquitto.log"

    def start(self) -> Mosquitto:
        from tests.support.mosquitto import wait_port

        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [self.exe, "-c", str(self.conf), "-v"], stdout=out, stderr=out
            )
        wait_port("127.0.0.1", self.port)
        return self


class CentralProcess:
    """`sealwatch central --config CENTRAL.yaml` as a subprocess."""

    def __init__(
        self,
        workdir: Path,
        nodes: list[RabbitNode],
        sites: list[str],
        extra: dict[str, Any] | None = None,  # more of CENTRAL.yaml (notifications, data_dir)
    ) -> None:
        self.http_port = free_port()
        self.config = workdir / "central.yaml"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "name": "test province",
                    "brokers": [n.url for n in nodes],
                    "mqtt": {"client_id": f"central-{os.getpid()}"},
                    "http": f"127.0.0.1:{self.http_port}",
                    "offline_after_s": 120,
                    "sites": [
                        {"id": s, "name": s, "lon": 116.0 + i, "lat": 39.0 + i / 2}
                        for i, s in enumerate(sites)
                    ],
                    **(extra or {}),
                }
            )
        )
        self.log = workdir / "central.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> CentralProcess:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "daemon", "central", "--config", str(self.config)],
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        return self

    def get(self, path: str) -> Any:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"central exited: {self.log.read_text()[-3000:]}")
        status, body = http(self.http_port, "GET", path)
        assert status == 200, (path, status, body)
        return body

    async def ready(self) -> dict[str, Any]:
        def up() -> dict[str, Any] | None:
            try:
                body = self.get("/healthz")
            except OSError:
                return None
            return body if body.get("broker") else None

        return await wait_until(up, 60, "the central's /healthz with a broker")

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None
