"""A real VictoriaMetrics (Debian's `victoria-metrics`, installed by scripts/setup) on a free
port with its own storage dir: it accepts InfluxDB's `/api/v2/write` (line protocol) and
answers Prometheus queries, naming an InfluxDB field `measurement_field`."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.mosquitto import free_port, stop_process, wait_port

EXE = "victoria-metrics"


def installed() -> bool:
    return shutil.which(EXE) is not None


class VictoriaMetrics:
    """`start()`, `stop()` (the same port and storage on the next start), `export(...)`."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.storage = workdir / "vm-data"
        self.log = workdir / "vm.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> VictoriaMetrics:
        exe = shutil.which(EXE)
        if exe is None:
            raise RuntimeError("victoria-metrics is not installed (scripts/setup installs it)")
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    exe,
                    f"-storageDataPath={self.storage}",
                    f"-httpListenAddr=127.0.0.1:{self.port}",
                    "-retentionPeriod=100y",
                    "-search.latencyOffset=0s",
                ],
                stdout=out,
                stderr=out,
            )
        wait_port("127.0.0.1", self.port, 30.0)
        return self

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None

    def _get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=30) as resp:
            data: bytes = resp.read()
            return data

    def export(self, match: str) -> list[dict[str, Any]]:
        """Every raw sample of the series `match` selects (after a flush, so all are seen)."""
        self._get("/internal/force_flush")
        q = urllib.parse.urlencode({"match[]": match, "start": "0"})
        return [json.loads(line) for line in self._get(f"/api/v1/export?{q}").splitlines()]

    def values(self, match: str) -> list[float]:
        return [v for series in self.export(match) for v in series["values"]]
