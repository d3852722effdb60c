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


@pytest.mark.parametrize("round_", range(10))
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


async def test_a_cancel_is_not_lost_when_a_session_task_fails_meanwhile(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    """The MQTT session's tasks run in a TaskGroup: one that fails with an MQTT error while
    the session is being cancelled turns the cancellation into an error group, which the
    reconnect loop caught — and reconnected, so the daemon's stop waited for ever."""
    import asyncio

    import aiomqtt

    from daemon.config import load_settings
    from daemon.pipeline.flow import Pipeline, new_metrics
    from daemon.pipeline.mqtt import MqttSession
    from daemon.store import Store
    from policies.site import load_site

    path = write_site(tmp_path, f"stop-cancel-{os.getpid()}")
    site = load_site(path)
    env = {
        "SEALWATCH_DATA_DIR": str(tmp_path / "data"),
        "SEALWATCH_MQTT_URL": mosquitto_session.url,
    }
    (tmp_path / "data").mkdir()
    settings = load_settings(site, env)
    store = Store(settings.db_path)
    link = MqttSession(
        site.id, settings.mqtt, Pipeline(site, settings, store, metrics=new_metrics())
    )

    class FailsWhenCancelled:
        async def run(self, client: aiomqtt.Client) -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                raise aiomqtt.MqttError("the connection went away meanwhile") from None

    link.session_tasks.append(FailsWhenCancelled())
    task = asyncio.create_task(link.run())
    try:
        await asyncio.wait_for(link.connected.wait(), 20)
        link.close()  # what the daemon's stop does before it cancels its tasks
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=20)
        assert task in done, "the session reconnected instead of ending"
        assert task.cancelled()
    finally:
        task.cancel()
        store.close()
