"""A stop always ends: SIGTERM right after the start (a stop once hung for good there, waiting
on the broker's side of the MQTT disconnect), and SIGTERM while the broker is frozen (SIGSTOP:
connected, answering nothing). Both against a real Mosquitto and `sealwatch run` processes."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemon import DaemonProcess, write_site
from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.asyncio


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    (tmp_path / "broker").mkdir()
    b = Mosquitto(tmp_path / "broker").start()
    yield b
    if b.proc is not None:
        os.kill(b.proc.pid, signal.SIGCONT)
    b.stop()


@pytest.mark.parametrize("round_", range(5))
async def test_a_stop_right_after_the_start_ends(
    tmp_path: Path, broker: Mosquitto, round_: int
) -> None:
    path = write_site(tmp_path, f"stop-early-{os.getpid()}-{round_}")
    d = DaemonProcess(path, broker, tmp_path / "data").start()
    try:
        await d.ready()
    finally:
        code = d.terminate()
    assert code == 0, d.log.read_text()[-3000:]


async def test_a_stop_while_the_broker_is_frozen_ends(tmp_path: Path, broker: Mosquitto) -> None:
    path = write_site(tmp_path, f"stop-frozen-{os.getpid()}")
    d = DaemonProcess(path, broker, tmp_path / "data").start()
    await d.ready()
    assert broker.proc is not None
    os.kill(broker.proc.pid, signal.SIGSTOP)
    try:
        code = d.terminate(timeout_s=30.0)
    finally:
        os.kill(broker.proc.pid, signal.SIGCONT)
    assert code == 0, d.log.read_text()[-3000:]
