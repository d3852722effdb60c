"""Two demos on one machine run side by side, each with its own data dir and ports, and no
demo wipes a data dir that another demo or a daemon is using (scripts/demo.py)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "scripts" / "demo.py"
RUNNING = re.compile(r"sealwatch demo is running: (http://\S+)/")
DATA = re.compile(r"data in (\S+);")


def load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sealwatch_demo", DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Demo:
    """`scripts/demo.py` as a real process; its stdout read line by line."""

    def __init__(self, var: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEALWATCH_")}
        env["PYTHONPATH"] = str(ROOT)
        self.proc = subprocess.Popen(
            [sys.executable, str(DEMO), "--var", str(var), "--any-ports"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=ROOT,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, pattern: re.Pattern[str], timeout_s: float = 120.0) -> str:
        """The first group of the first output line matching `pattern`."""
        deadline = time.monotonic() + timeout_s
        while True:
            for line in self.seen:
                if m := pattern.search(line):
                    return m.group(1)
            try:
                got = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {pattern.pattern!r} in {self.seen}") from None
            if got is None:
                raise AssertionError(f"the demo exited ({self.proc.wait()}): {self.seen}")
            self.seen.append(got)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


def healthz(url: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{url}/healthz", timeout=5) as r:
        body: dict[str, object] = json.loads(r.read())
        return body


def wait_healthy(url: str, timeout_s: float = 60.0) -> dict[str, object]:
    """Poll /healthz until the daemon behind it is connected to the demo's broker."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            body = healthz(url)
            if body.get("mqtt_connected"):
                return body
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url}/healthz did not become healthy")
        time.sleep(0.2)


@pytest.fixture
def demos() -> Iterator[list[Demo]]:
    started: list[Demo] = []
    yield started
    for demo in started:
        demo.stop()


@pytest.mark.slow
def test_second_demo_runs_beside_the_first_and_leaves_its_data_alone(
    tmp_path: Path, demos: list[Demo]
) -> None:
    var = tmp_path / "var"
    first = Demo(var)
    demos.append(first)
    first_url = first.wait_for(RUNNING)
    first_data = Path(first.wait_for(DATA))
    assert first_data == var / "demo"
    wait_healthy(first_url)
    token = (first_data / "api.token").read_bytes()
    db_inode = (first_data / "sealwatch.db").stat().st_ino

    second = Demo(var)
    demos.append(second)
    second_url = second.wait_for(RUNNING)
    second_data = Path(second.wait_for(DATA))
    assert second_data == var / "demo-2"
    assert second_url != first_url
    wait_healthy(second_url)

    # the first demo was not touched: same files, still serving, still connected
    assert (first_data / "api.token").read_bytes() == token
    assert (first_data / "sealwatch.db").stat().st_ino == db_inode
    assert healthz(first_url)["mqtt_connected"] is True
    assert first.proc.poll() is None

    assert second.stop() == 0
    assert first.stop() == 0


@contextlib.contextmanager
def held_by_another_process(data_dir: Path, name: str) -> Iterator[None]:
    """The lock `data_dir/name`, held by another process for the block."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from daemon.datadir import DataDirLock\n"
            "with DataDirLock(Path(sys.argv[1]), sys.argv[2]):\n"
            "    print('locked', flush=True); sys.stdin.read()\n",
            str(data_dir),
            name,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)


@pytest.mark.parametrize(
    "lock", ["sealwatch.lock", "demo.lock"], ids=["a-daemon-left-behind", "another-demo"]
)
def test_a_data_dir_in_use_is_skipped_not_wiped(tmp_path: Path, lock: str) -> None:
    """Another demo holds demo.lock; a demo killed with -9 leaves its daemon holding
    sealwatch.lock. Either way the next demo takes demo-2 and deletes nothing."""
    demo = load_demo()
    held = tmp_path / "demo"
    held.mkdir()
    (held / "sealwatch.db").write_text("the running daemon's store")
    with held_by_another_process(held, lock):
        data, claimed = demo.claim_data_dir(tmp_path)
        claimed.release()
        assert data == tmp_path / "demo-2"
        assert (held / "sealwatch.db").read_text() == "the running daemon's store"
    # once nobody holds it, the first dir is the demo's again, emptied
    data, claimed = demo.claim_data_dir(tmp_path)
    claimed.release()
    assert data == held and not (held / "sealwatch.db").exists()
