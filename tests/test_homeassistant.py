"""Home Assistant MQTT discovery, against a real Mosquitto and the whole daemon: every
discovery payload passes Home Assistant's documented schema (tests/support/ha_schema.py, from
home-assistant/core's homeassistant/components/mqtt/), and the states it points to follow the
site (doors, jammer bands, seals, critical alerts); availability is the daemon's last will."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest
import voluptuous as vol

from daemon.config import ConfigError, load_settings
from policies.site import load_site
from tests.support.daemon import NODELAY, Gateway, now_ts, running_daemon, wait_until, write_site
from tests.support.ha_schema import validate
from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.slow
_ids = itertools.count()


class Retained:
    """The last payload seen on each topic under some filters (retained ones included)."""

    def __init__(self, broker: Mosquitto, filters: list[str]) -> None:
        self.client = aiomqtt.Client("127.0.0.1", broker.port, socket_options=NODELAY)
        self.filters = filters
        self.last: dict[str, bytes] = {}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Retained:
        await self.client.__aenter__()
        await self.client.subscribe([(f, 1) for f in self.filters])
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._task
        with contextlib.suppress(aiomqtt.MqttError):
            await self.client.__aexit__(None, None, None)

    async def _run(self) -> None:
        async for msg in self.client.messages:
            self.last[msg.topic.value] = msg.payload if isinstance(msg.payload, bytes) else b""

    async def value(self, topic: str, want: bytes, what: str = "") -> None:
        await wait_until(lambda: self.last.get(topic) == want, what=what or f"{topic} = {want!r}")


def configs(seen: Retained, prefix: str) -> dict[str, dict[str, Any]]:
    return {
        t: orjson.loads(p)
        for t, p in seen.last.items()
        if t.startswith(prefix + "/") and t.endswith("/config") and p
    }


async def test_discovery_entities_states_and_availability(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    sid = f"t-ha-{next(_ids)}"
    prefix = f"ha-{sid}"
    path = write_site(tmp_path, sid, daemon={"homeassistant": {"discovery_prefix": prefix}})
    site = load_site(path)
    expected = 2 + 2 * sum(len(j.bands) for j in site.jammers.values()) + len(site.doors)
    base = f"sealwatch/{sid}"
    state = f"{base}/ha/"
    async with Retained(
        mosquitto_session, [f"{prefix}/#", f"{base}/ha/#", f"{base}/daemon"]
    ) as seen:
        async with (
            running_daemon(path, mosquitto_session, tmp_path / "data"),
            Gateway(mosquitto_session, sid) as gw,
        ):
            await wait_until(
                lambda: len(configs(seen, prefix)) == expected, what=f"{expected} configs"
            )
            components = {t: validate(t, prefix, c) for t, c in configs(seen, prefix).items()}
            assert sorted(set(components.values())) == ["binary_sensor", "sensor"]
            for c in configs(seen, prefix).values():
                assert c["availability_topic"] == f"{base}/daemon"
                assert c["state_topic"].startswith(state)
                assert c["device"]["identifiers"] == [f"sealwatch_{sid}"]
            door = configs(seen, prefix)[
                f"{prefix}/binary_sensor/sealwatch_{sid}/door_fire-exit-north/config"
            ]
            assert door["device_class"] == "door"
            await seen.value(f"{base}/daemon", b"online")
            await seen.value(state + "sealed", b"OFF")
            await seen.value(state + "critical_alerts", b"0")

            # a door opens; a jammer band drops below its floor (30 dBm for gsm900)
            await gw.event("fire-exit-north", "door.opened", ts=now_ts())
            await seen.value(state + "door_fire-exit-north", b"ON")
            bands = {b.id: b.min_dbm + 3 for b in site.jammers["jam-work"].bands}
            bands["gsm900"] = 12.5
            await gw.event("jam-work", "jammer.status", output=True, bands=bands)
            await seen.value(state + "jammer_jam-work_gsm900_power", b"12.5")
            await seen.value(state + "jammer_jam-work_gsm900_below_floor", b"ON")
            await seen.value(state + "jammer_jam-work_lte2100_below_floor", b"OFF")

            # a critical alert counts while its condition is present
            await gw.event("gate-outer", "door.forced")
            await seen.value(state + "critical_alerts", b"1")
            await gw.event("gate-outer", "door.closed")
            await seen.value(state + "critical_alerts", b"0")

            # a seal started at run time gets its own entity
            await gw.event(
                "console-1",
                "seal.start",
                seal="s-ha",
                badge="S2001",
                name="HA seal",
                classification="secret",
            )
            await seen.value(state + "sealed", b"ON")
            await seen.value(state + "seal_s-ha", b"active")
            seal_topic = f"{prefix}/sensor/sealwatch_{sid}/seal_s-ha/config"
            await wait_until(lambda: seal_topic in seen.last, what="the seal's config")
            validate(seal_topic, prefix, orjson.loads(seen.last[seal_topic]))
        # the daemon stopped: Home Assistant shows every entity unavailable
        await seen.value(f"{base}/daemon", b"offline")


@pytest.mark.parametrize(
    ("section", "error"),
    [
        ({"discovery_prefix": "home/+"}, "daemon.homeassistant.discovery_prefix: expected"),
        ({"node_id": "a/b"}, "daemon.homeassistant.node_id: expected"),
        ({"prefix": "x"}, "daemon.homeassistant.prefix: unknown key"),
    ],
)
def test_homeassistant_settings_are_checked(
    tmp_path: Path, section: dict[str, Any], error: str
) -> None:
    path = write_site(tmp_path, "t-ha-cfg", daemon={"homeassistant": section})
    with pytest.raises(ConfigError) as exc:
        load_settings(load_site(path), {})
    assert any(e.startswith(error) for e in exc.value.errors), exc.value.errors


def test_homeassistant_is_off_unless_the_section_is_there(tmp_path: Path) -> None:
    site = load_site(write_site(tmp_path, "t-ha-off"))
    assert load_settings(site, {}).homeassistant is None
    site = load_site(write_site(tmp_path, "t-ha-on", daemon={"homeassistant": None}))
    on = load_settings(site, {}).homeassistant
    assert on is not None and on.discovery_prefix == "homeassistant"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"state_topic": None}, "state_topic"),
        ({"device_class": "doorway"}, "device_class"),
        ({"availability": [{"topic": "x"}]}, "availability"),  # with availability_topic
        ({"device": {"name": "no identifiers"}}, "identif"),
        ({"stat_topic": "x"}, "extra keys"),
    ],
)
def test_the_schema_refuses_what_home_assistant_would(change: dict[str, Any], why: str) -> None:
    """The test-side schema is not a rubber stamp."""
    good: dict[str, Any] = {
        "name": "Door",
        "state_topic": "sealwatch/s/ha/door_a",
        "availability_topic": "sealwatch/s/daemon",
        "device_class": "door",
        "device": {"identifiers": ["sealwatch_s"]},
    }
    validate("homeassistant/binary_sensor/sealwatch_s/door_a/config", "homeassistant", good)
    bad = {k: v for k, v in {**good, **change}.items() if v is not None}
    with pytest.raises(vol.Invalid) as exc:
        validate("homeassistant/binary_sensor/sealwatch_s/door_a/config", "homeassistant", bad)
    assert why in str(exc.value)
    with pytest.raises(AssertionError):
        validate("homeassistant/binary_sensor/sealwatch/s/door_a/config", "homeassistant", good)
