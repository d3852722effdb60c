"""Home Assistant MQTT discovery: sealwatch's seals, jammer bands, doors and critical alerts as
Home Assistant entities, and their states, on the daemon's own broker session.

Each entity has a retained discovery config on `PREFIX/COMPONENT/NODE_ID/OBJECT_ID/config`
(Home Assistant's documented layout) and a retained state on `sealwatch/SITE/ha/OBJECT_ID`;
its availability is the daemon's own retained `online`/`offline` on `sealwatch/SITE/daemon`
(its last will, daemon/pipeline/mqtt.py), so Home Assistant greys everything out when the
daemon or its connection dies.

Entities: `binary_sensor` sealed (a seal in force) and, per seal, a `sensor` with its state
(pending/active/ended); per jammer band a `sensor` of its power (dBm) and a `binary_sensor`
(`problem`) that is on while the band is below its floor or the jammer's output is off; per
door a `binary_sensor` (`door`); a `sensor` of the critical alerts whose condition is present.

A session task like the alert publisher, and a sink: `note()` (from the pipeline's state tap
and from each committed batch of transitions) marks the states dirty; `run(client)` publishes
what changed, at most every `min_interval_s`, so a burst of events costs one round of
publishes. On each new connection every config and state is published again (the broker may
have lost its retained messages). Failure policy: while the broker is away nothing is sent;
states are read from the engine when they are sent, so the first round after a reconnection
has the latest ones. The states are a view of the engine (like the dashboard's), not records:
nothing here is stored.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
import orjson

from daemon.aio import wait_event
from daemon.config import HomeAssistantOptions
from daemon.pipeline.items import Row
from daemon.view import ReadView
from policies.site import Site

UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
VERSION = "0.1.0"


def topic_id(text: str) -> str:
    """An id Home Assistant accepts as node_id / object_id ([a-zA-Z0-9_-])."""
    return UNSAFE.sub("_", text)


@dataclass(frozen=True, slots=True)
class Entity:
    component: str  # binary_sensor | sensor
    object_id: str
    name: str
    state: Callable[[], str | None]  # None: not known yet (nothing published)
    extra: dict[str, Any] = field(default_factory=dict)  # device_class, unit, icon …


class HomeAssistant:
    """`note()` when something may have changed; `run(client)` for each connection."""

    name = "homeassistant"

    def __init__(
        self,
        site: Site,
        options: HomeAssistantOptions,
        view: ReadView,
        *,
        min_interval_s: float = 0.25,
    ) -> None:
        self.site = site
        self.view = view
        self.prefix = options.discovery_prefix
        self.node_id = options.node_id or topic_id(f"sealwatch_{site.id}")
        self.base = f"sealwatch/{site.id}"
        self.availability_topic = f"{self.base}/daemon"
        self.min_interval_s = min_interval_s
        self.ready = asyncio.Event()
        self.ready.set()
        self.published = 0  # messages the broker acknowledged

    # -- what the pipeline calls ---------------------------------------------------------------

    def note(self, _events: list[tuple[Any, ...]], _rows: list[Row]) -> None:
        """A tap of the fan-out: after every released commit (the engine's state may have
        changed: a door, a band, a seal coming into force)."""
        self.ready.set()

    def deliver(self, rows: list[Row]) -> None:
        """A sink of the fan-out: alert transitions change the critical-alert count."""
        self.ready.set()

    # -- the entities ----------------------------------------------------------------------------

    def state_topic(self, object_id: str) -> str:
        return f"{self.base}/ha/{object_id}"

    def config_topic(self, e: Entity) -> str:
        return f"{self.prefix}/{e.component}/{self.node_id}/{e.object_id}/config"

    def entities(self) -> list[Entity]:
        """Every entity the site has now (seals started at run time appear when they do)."""
        view, site = self.view, self.site
        out = [
            Entity(
                "binary_sensor",
                "sealed",
                "Seal in force",
                lambda: on_off(any(s.status == "active" for s in view.seals())),
                {"icon": "mdi:lock"},
            ),
            Entity(
                "sensor",
                "critical_alerts",
                "Active critical alerts",
                lambda: str(
                    sum(
                        1
                        for a in view.open_alerts()
                        if a.severity == "critical" and a.active and not a.closed
                    )
                ),
                {"state_class": "measurement", "icon": "mdi:alarm-light"},
            ),
        ]
        for seal in sorted(view.seals(), key=lambda s: s.id):
            out.append(
                Entity(
                    "sensor",
                    topic_id(f"seal_{seal.id}"),
                    f"Seal {seal.name or seal.id}",
                    _seal_state(view, seal.id),
                    {"icon": "mdi:file-lock"},
                )
            )
        for jammer in site.jammers.values():
            for band in jammer.bands:
                oid = topic_id(f"jammer_{jammer.id}_{band.id}")
                out.append(
                    Entity(
                        "sensor",
                        f"{oid}_power",
                        f"{jammer.id} {band.id} power",
                        _band_power(view, jammer.id, band.id),
                        {
                            "device_class": "signal_strength",
                            "unit_of_measurement": "dBm",
                            "state_class": "measurement",
                        },
                    )
                )
                out.append(
                    Entity(
                        "binary_sensor",
                        f"{oid}_below_floor",
                        f"{jammer.id} {band.id} below floor",
                        _band_low(view, jammer.id, band.id, band.min_dbm),
                        {"device_class": "problem"},
                    )
                )
        for door in site.doors.values():
            out.append(
                Entity(
                    "binary_sensor",
                    topic_id(f"door_{door.id}"),
                    f"Door {door.id}",
                    _door_open(view, door.id),
                    {"device_class": "door"},
                )
            )
        return out

    def discovery_config(self, e: Entity) -> dict[str, Any]:
        """The discovery payload of one entity (full key names, no abbreviations)."""
        return {
            "name": e.name,
            "unique_id": f"{self.node_id}_{e.object_id}",
            "object_id": f"{self.node_id}_{e.object_id}",
            "state_topic": self.state_topic(e.object_id),
            "availability_topic": self.availability_topic,
            "payload_available": "online",
            "payload_not_available": "offline",
            "qos": 1,
            **e.extra,
            "device": {
                "identifiers": [self.node_id],
                "name": f"sealwatch {self.site.name}",
                "manufacturer": "sealwatch",
                "model": "sealwatch daemon",
                "sw_version": VERSION,
            },
            "origin": {"name": "sealwatch", "sw_version": VERSION},
        }

    # -- the session task ------------------------------------------------------------------------

    async def run(self, client: aiomqtt.Client) -> None:
        announced: set[str] = set()
        sent: dict[str, str] = {}
        self.ready.set()  # a new connection: everything again
        while True:
            await wait_event(self.ready, None)
            self.ready.clear()
            sends = []
            for e in self.entities():
                topic = self.config_topic(e)
                if topic not in announced:
                    payload = orjson.dumps(self.discovery_config(e))
                    sends.append(client.publish(topic, payload, qos=1, retain=True))
                    announced.add(topic)
                state = e.state()
                st = self.state_topic(e.object_id)
                if state is not None and sent.get(st) != state:
                    sends.append(client.publish(st, state.encode(), qos=1, retain=True))
                    sent[st] = state
            if sends:
                # paho sends them in call order (each config before its first state)
                await asyncio.gather(*sends)
                self.published += len(sends)
            await asyncio.sleep(self.min_interval_s)


def on_off(b: bool) -> str:
    return "ON" if b else "OFF"


def _seal_state(view: ReadView, seal_id: str) -> Callable[[], str | None]:
    def read() -> str | None:
        return next((s.status for s in view.seals() if s.id == seal_id), None)

    return read


def _band_power(view: ReadView, jammer: str, band: str) -> Callable[[], str | None]:
    def read() -> str | None:
        facts = view.device(jammer).jammer
        if facts is None or band not in facts.bands:
            return None
        return f"{facts.bands[band]:g}"

    return read


def _band_low(view: ReadView, jammer: str, band: str, floor: float) -> Callable[[], str | None]:
    def read() -> str | None:
        facts = view.device(jammer).jammer
        if facts is None:
            return None
        power = facts.bands.get(band)
        return on_off(not facts.output or power is None or power < floor)

    return read


def _door_open(view: ReadView, door: str) -> Callable[[], str | None]:
    def read() -> str | None:
        facts = view.device(door)
        if facts.last_seen_us is None and not facts.door_open:
            return None  # never heard of: unknown, not "closed"
        return on_off(facts.door_open)

    return read
