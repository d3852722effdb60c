"""Operating `sealwatch run`: a bad start is one line naming the setting to change, and one
data dir belongs to one daemon. Real subprocesses (`python -m daemon run`), real sockets."""

from __future__ import annotations

import ast
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.datadir import LOCK_FILE, DataDirInUse, DataDirLock, holder
from tests.support.daemon import write_site

ROOT = Path(__file__).resolve().parent.parent
NO_BROKER = "mqtt://127.0.0.1:9"  # resolves; nothing listens (the daemon keeps retrying)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return write_site(tmp_path, "ops")


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SEALWATCH_")}
    return {
        **base,
        "PYTHONPATH": str(ROOT),
        "SEALWATCH_MQTT_URL": NO_BROKER,
        "SEALWATCH_HTTP": "127.0.0.1:0",
        **extra,
    }


def run(site: Path, data_dir: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """`sealwatch run` that is expected to refuse to start."""
    return subprocess.run(
        [sys.executable, "-m", "daemon", "run", "--config", str(site), "--data-dir", str(data_dir)],
        env=env(**extra),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def start(site: Path, data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "daemon", "run", "--config", str(site)],
            env=env(SEALWATCH_DATA_DIR=str(data_dir)),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )


def running(proc: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until the daemon says it runs (its signal handlers are in place from then on)."""

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the daemon exited: {log.read_text()[-3000:]}")
        return "sealwatch running for site" in log.read_text()

    wait_for(up, "the daemon to run")


def wait_for(pred: Callable[[], Any], what: str, timeout_s: float = 30.0) -> Any:
    """Poll a condition of another process (there is nothing to await across processes)."""
    deadline = time.monotonic() + timeout_s
    while not (got := pred()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return got


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def one_line(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stdout == ""
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert "Traceback" not in p.stderr
    return lines[0]


# -- one line naming the setting ----------------------------------------------------------


def test_taken_http_port_is_one_line_naming_the_setting(
    site: Path, tmp_path: Path, taken_port: int
) -> None:
    line = one_line(run(site, tmp_path / "data", SEALWATCH_HTTP=f"127.0.0.1:{taken_port}"))
    assert line == (
        f"sealwatch: cannot listen on 127.0.0.1:{taken_port}: address already in use "
        "— set daemon.http in the site file or SEALWATCH_HTTP"
    )


def test_http_address_not_on_this_machine_is_one_line(site: Path, tmp_path: Path) -> None:
    line = one_line(run(site, tmp_path / "data", SEALWATCH_HTTP="192.0.2.7:8080"))
    assert line.startswith("sealwatch: cannot listen on 192.0.2.7:8080: cannot assign")
    assert line.endswith("— set daemon.http in the site file or SEALWATCH_HTTP")


def test_mqtt_host_that_does_not_resolve_is_one_line(site: Path, tmp_path: Path) -> None:
    line = one_line(
        run(site, tmp_path / "data", SEALWATCH_MQTT_URL="mqtt://no-such-broker.invalid:1883")
    )
    assert line.startswith("sealwatch: cannot resolve the MQTT broker's host 'no-such-broker")
    assert line.endswith("— set daemon.mqtt.url in the site file or SEALWATCH_MQTT_URL")


def test_data_dir_that_cannot_be_created_is_one_line(site: Path, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    line = one_line(run(site, tmp_path / "a-file" / "data"))
    assert line == (
        f"sealwatch: cannot use data dir {tmp_path / 'a-file' / 'data'}: not a directory "
        "— set daemon.data_dir in the site file, SEALWATCH_DATA_DIR or --data-dir"
    )


def test_bad_settings_are_reported_by_path_before_anything_starts(
    tmp_path: Path,
) -> None:
    site = write_site(tmp_path, "ops-bad", daemon={"influxdb": {"url": "http://i:8086"}})
    p = run(site, tmp_path / "data")
    assert (p.returncode, p.stderr) == (
        1,
        "daemon.influxdb: needs org, bucket\n",
    )
    assert not (tmp_path / "data").exists()


def test_check_reports_the_daemon_section_too(tmp_path: Path) -> None:
    site = write_site(tmp_path, "ops-check", daemon={"reconnect_max_s": 0, "webhook": []})
    p = subprocess.run(
        [sys.executable, "-m", "daemon", "check", "--config", str(site)],
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 1
    assert p.stdout.splitlines() == [
        "daemon.reconnect_max_s: expected a number from 0.05 to 300, got 0",
        "daemon.webhook: unknown key (did you mean 'webhooks'?)",
        f"2 error(s) in {site}",
    ]


def test_port_taken_between_the_check_and_the_bind_is_still_one_line(
    site: Path,
    tmp_path: Path,
    taken_port: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from daemon import cli
    from daemon.cli import run as run_cmd

    monkeypatch.setattr(run_cmd, "_listen_problem", lambda _s: None)
    monkeypatch.setattr(logging, "basicConfig", lambda **_kw: None)
    monkeypatch.setenv("SEALWATCH_MQTT_URL", NO_BROKER)
    monkeypatch.setenv("SEALWATCH_HTTP", f"127.0.0.1:{taken_port}")
    status = cli.main(["run", "--config", str(site), "--data-dir", str(tmp_path / "data")])
    err = capsys.readouterr().err
    assert status == 1
    assert err.splitlines()[-1] == (
        f"sealwatch: cannot listen on 127.0.0.1:{taken_port}: address already in use "
        "— set daemon.http in the site file or SEALWATCH_HTTP"
    )
    assert holder(tmp_path / "data") is None  # the lock went with the failed start


# -- one daemon per data dir --------------------------------------------------------------


def test_second_daemon_on_the_same_data_dir_refuses_naming_the_first(
    site: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = start(site, data, tmp_path / "first.log")
    try:
        running(first, tmp_path / "first.log")
        assert holder(data) == first.pid
        line = one_line(run(site, data))
        assert line == (
            f"sealwatch: data dir {data} is in use by another sealwatch (pid {first.pid}) "
            "— stop it, or give this one its own data dir: "
            "set daemon.data_dir in the site file, SEALWATCH_DATA_DIR or --data-dir"
        )
        assert first.poll() is None  # the first one runs on
        # a second daemon with its own data dir starts
        other = start(site, tmp_path / "other", tmp_path / "other.log")
        try:
            running(other, tmp_path / "other.log")
            assert holder(tmp_path / "other") == other.pid
        finally:
            other.send_signal(signal.SIGTERM)
            assert other.wait(30) == 0
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0, (tmp_path / "first.log").read_text()
    assert holder(data) is None


def test_lock_goes_with_a_killed_daemon(site: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start(site, data, tmp_path / "first.log")
    wait_for(lambda: holder(data) == first.pid, "the lock")
    first.kill()
    first.wait()
    assert (data / LOCK_FILE).exists() and holder(data) is None
    second = start(site, data, tmp_path / "second.log")
    try:
        running(second, tmp_path / "second.log")
        assert holder(data) == second.pid
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0


def test_lock_nests_in_one_process_and_refuses_another(tmp_path: Path) -> None:
    data = tmp_path / "d"
    with DataDirLock(data):
        with DataDirLock(data):  # the run command and the runtime both take it
            assert holder(data) == os.getpid()
        assert holder(data) == os.getpid()
        code = (
            "import sys; from pathlib import Path; from daemon.datadir import *\n"
            "try:\n    DataDirLock(Path(sys.argv[1])).acquire()\n"
            "except DataDirInUse as e:\n    print(e.pid)\n"
        )
        p = subprocess.run(
            [sys.executable, "-c", code, str(data)], env=env(), capture_output=True, text=True
        )
        assert p.stdout.strip() == str(os.getpid()), p.stderr
    assert holder(data) is None
    assert not issubclass(DataDirInUse, OSError)  # callers tell "in use" from "unusable"


# -- the CLI package has no import circles ------------------------------------------------


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def test_cli_modules_never_import_their_package_and_config_never_imports_devices() -> None:
    cli = ROOT / "daemon" / "cli"
    for path in cli.glob("*.py"):
        if path.name == "__init__.py":
            continue
        modules = _imports(path)
        assert "daemon.cli" not in modules, f"{path.name} imports daemon.cli"
    config = _imports(ROOT / "daemon" / "config.py")
    assert not {m for m in config if m.startswith(("daemon.devices", "daemon.cli"))}
    assert not (ROOT / "daemon" / "commands.py").exists()
