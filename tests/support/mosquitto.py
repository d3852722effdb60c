"""A real Mosquitto broker on a free port, started by the tests (installed by scripts/test)."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

_rng = random.Random()


def free_port() -> int:
    """A port nothing listens on, for a server a test starts a moment later.

    Chosen below the kernel's ephemeral range (32768-60999 here): a port the kernel hands out
    is also what the next outgoing connection (an MQTT client, an HTTP fetch) may take between
    this pick and the server's bind."""
    for _ in range(200):
        port = _rng.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32000")


def stop_process(proc: subprocess.Popen[bytes] | None, timeout_s: float = 20.0) -> None:
    """SIGTERM, then SIGKILL if it has not ended within `timeout_s` (test servers)."""
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_port(host: str, port: int, timeout_s: float = 10.0) -> None:
    """Block until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port}") from None
            time.sleep(0.02)


class Mosquitto:
    """One mosquitto process; `restart()` keeps the port and the persistence file."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            raise RuntimeError("mosquitto is not installed (scripts/test installs it)")
        self.exe = exe
        self.port = port or free_port()
        self.workdir = workdir
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {workdir}/\n"
            "max_queued_messages 1000000\n"
            "max_inflight_messages 10000\n"
            "log_dest stderr\n"
            "log_type error\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Mosquitto:
        self.proc = subprocess.Popen(
            [self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_port("127.0.0.1", self.port)
        return self

    def stop(self) -> None:
        stop_process(self.proc, 10.0)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


class ConfiguredMosquitto(Mosquitto):
    """Mosquitto started from a given configuration file's text (e.g. the shipped
    deploy/mosquitto/mosquitto.conf), with its paths and listener rewritten for a test:
    `replace` maps each text found in it to its stand-in (the port is `self.port`)."""

    def __init__(
        self,
        workdir: Path,
        conf_text: str,
        replace: dict[str, str],
        *,
        port: int | None = None,
        scheme: str = "mqtts",
    ) -> None:
        super().__init__(workdir, port)
        self.scheme = scheme
        text = conf_text
        for old, new in replace.items():
            if old not in text:
                raise ValueError(f"{old!r} is not in the configuration")
            text = text.replace(old, new.replace("{port}", str(self.port)))
        self.conf.write_text(text)
        self.log = workdir / "mosquitto.log"

    def start(self) -> Mosquitto:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=out, stderr=out)
        try:
            wait_port("127.0.0.1", self.port)
        except TimeoutError:
            raise TimeoutError(f"mosquitto did not start: {self.log.read_text()[-2000:]}") from None
        return self

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"
