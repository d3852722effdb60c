"""MQTT device gateways: doors, badge readers, alarm panels and inputs, phone detectors,
patrol checkpoints, consoles and the duty phone (CONTRACT §2 events, §5 topics).

One MQTT client per device, so that each device's last will marks exactly that device
offline (a will names one topic). Each client publishes `online` retained to
`sealwatch/SITE/status/DEVICE` when it connects, `offline` when it shuts down cleanly, and
its events to `sealwatch/SITE/events/DEVICE` with QoS 1; `publish` returns once the broker
has acknowledged. Panels (`alarm.panel`) and phone detectors (`device.heartbeat`) report
every `heartbeat_s`. A silenced device (device.silence) stays connected but publishes
nothing, as a hung controller would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any

import aiomqtt
import orjson

from policies.site import Site

from .clock import now_utc, parse_when, rfc3339

log = logging.getLogger("sealwatch.simulators.gateways")

MQTT_KINDS = (
    "door",
    "alarm_panel",
    "alarm_input",
    "phone_detector",
    "checkpoint",
    "console",
    "duty_phone",
)
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


class GatewayError(RuntimeError):
    """An event could not be delivered (no broker connection in time)."""


def backoff_delay(attempt: int, cap_s: float = 30.0) -> float:
    """Capped, jittered reconnect delay (a device maker's own, not the adapters')."""
    return min(cap_s, random.uniform(0, 1.5 ** min(10, attempt)))


@dataclass(frozen=True, slots=True)
class Broker:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 15


@dataclass
class PanelState:
    armed: bool = True
    mains: str = "ok"
    battery: str = "ok"
    tamper: bool = False


@dataclass
class MqttDevice:
    """One device's MQTT connection: status, last will, QoS 1 events, optional heartbeat."""

    id: str
    kind: str
    topic_prefix: str
    broker: Broker
    heartbeat_s: float | None = None
    heartbeat: Callable[[], dict[str, Any]] | None = None
    silenced: bool = False
    published: int = 0
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    _client: aiomqtt.Client | None = None

    @property
    def events_topic(self) -> str:
        return f"{self.topic_prefix}/events/{self.id}"

    @property
    def status_topic(self) -> str:
        return f"{self.topic_prefix}/status/{self.id}"

    async def run(self) -> None:
        """Stay connected for the simulator's life, reconnecting with backoff."""
        attempt = 0
        was_up = False
        while True:
            try:
                async with aiomqtt.Client(
                    self.broker.host,
                    self.broker.port,
                    identifier=f"sim-{self.id}-{uuid.uuid4().hex[:8]}",
                    username=self.broker.username,
                    password=self.broker.password,
                    keepalive=self.broker.keepalive_s,
                    socket_options=NODELAY,
                    will=aiomqtt.Will(self.status_topic, "offline", qos=1, retain=True),
                ) as client:
                    await client.publish(self.status_topic, "online", qos=1, retain=True)
                    self._client = client
                    self.connected.set()
                    attempt = 0
                    if not was_up:
                        log.debug(
                            "%s connected to %s:%d", self.id, self.broker.host, self.broker.port
                        )
                    was_up = True
                    await self._heartbeats()
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                self._client = None
                if was_up:
                    log.warning("%s lost the broker: %s", self.id, exc)
                was_up = False
                attempt += 1
                await asyncio.sleep(backoff_delay(attempt))

    async def _heartbeats(self) -> None:
        if self.heartbeat_s is None or self.heartbeat is None:
            await asyncio.Future()  # nothing periodic: just hold the connection
            return
        while True:
            if not self.silenced:
                event = {"ts": rfc3339(now_utc()), "device": self.id, **self.heartbeat()}
                await self._send(event)
            await asyncio.sleep(self.heartbeat_s)

    async def publish(self, event: dict[str, Any], timeout_s: float = 10.0) -> bool:
        """Publish one event and wait for the broker's PUBACK; False if silenced."""
        if self.silenced:
            return False
        try:
            await asyncio.wait_for(self.connected.wait(), timeout_s)
        except TimeoutError:
            raise GatewayError(
                f"{self.id}: no connection to the MQTT broker at "
                f"{self.broker.host}:{self.broker.port}"
            ) from None
        await self._send(event)
        return True

    async def _send(self, event: dict[str, Any]) -> None:
        client = self._client
        if client is None:
            raise GatewayError(f"{self.id}: not connected to the MQTT broker")
        try:
            await client.publish(self.events_topic, orjson.dumps(event), qos=1)
        except aiomqtt.MqttError as exc:
            raise GatewayError(f"{self.id}: publish failed: {exc}") from exc
        self.published += 1

    async def goodbye(self) -> None:
        """A clean shutdown: mark the device offline ourselves (the will fires only on loss)."""
        client = self._client
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await asyncio.wait_for(
                    client.publish(self.status_topic, "offline", qos=1, retain=True), 3.0
                )


class Gateways:
    """Every MQTT device of a site; `perform` turns an action into its device's event."""

    def __init__(
        self,
        site: Site,
        broker: Broker,
        *,
        topic_site: str | None = None,
        heartbeat_s: float = 10.0,
    ) -> None:
        self.site = site
        prefix = f"sealwatch/{topic_site or site.id}"
        self.panels = {pid: PanelState() for pid in site.alarm_panels}
        self.doors_open = {did: False for did in site.doors}
        self.inputs = {iid: "normal" for iid in site.alarm_inputs}
        self.on_duty: dict[str, set[str]] = {cid: set() for cid in site.consoles}
        self.devices: dict[str, MqttDevice] = {}
        for dev, kind in site.device_kind.items():
            if kind not in MQTT_KINDS:
                continue
            mqtt_dev = MqttDevice(dev, kind, prefix, broker)
            if kind == "alarm_panel":
                mqtt_dev.heartbeat_s = heartbeat_s
                mqtt_dev.heartbeat = self._panel_report(dev)
            elif kind == "phone_detector":
                mqtt_dev.heartbeat_s = heartbeat_s
                mqtt_dev.heartbeat = _device_heartbeat
            self.devices[dev] = mqtt_dev
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Gateways:
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        self._tasks = [
            self._tg.create_task(d.run(), name=f"mqtt-{d.id}") for d in self.devices.values()
        ]
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.gather(*(d.goodbye() for d in self.devices.values()))
        for task in self._tasks:
            task.cancel()
        assert self._tg is not None
        await self._tg.__aexit__(et, exc, tb)

    async def wait_connected(self, timeout_s: float) -> bool:
        """True once every device is connected and has said `online`."""
        try:
            await asyncio.wait_for(
                asyncio.gather(*(d.connected.wait() for d in self.devices.values())), timeout_s
            )
        except TimeoutError:
            return False
        return True

    def _panel_report(self, panel_id: str) -> Callable[[], dict[str, Any]]:
        def report() -> dict[str, Any]:
            p = self.panels[panel_id]
            return {
                "type": "alarm.panel",
                "armed": p.armed,
                "mains": p.mains,
                "battery": p.battery,
                "tamper": p.tamper,
            }

        return report

    # -- actions -------------------------------------------------------------------------------

    def event_for(self, step: Mapping[str, Any], ts: datetime) -> tuple[str, dict[str, Any]]:
        """The device and event an action produces, updating the simulated state."""
        do = step["do"]
        stamp = rfc3339(ts)
        site = self.site

        def ev(device: str, type_: str, **fields: Any) -> tuple[str, dict[str, Any]]:
            return device, {"ts": stamp, "device": device, "type": type_, **fields}

        if do.startswith("door."):
            door = step["door"]
            self.doors_open[door] = do != "door.close"
            return ev(
                door,
                {
                    "door.open": "door.opened",
                    "door.close": "door.closed",
                    "door.force": "door.forced",
                }[do],
            )
        if do == "badge":
            door = site.doors[step["door"]]
            person = site.people.get(step["badge"])
            zone = door.zone_entered(step["direction"])
            base = {"badge": step["badge"], "direction": step["direction"]}
            if person is None:
                return ev(door.id, "badge.denied", **base, reason="unknown badge")
            if zone not in person.zones:
                return ev(
                    door.id, "badge.denied", **base, reason=f"not authorised for zone '{zone}'"
                )
            return ev(door.id, "badge.granted", **base)
        if do.startswith("alarm."):
            state = {
                "alarm.trigger": "alarm",
                "alarm.restore": "normal",
                "alarm.tamper": "tamper",
                "alarm.fault": "fault",
            }[do]
            self.inputs[step["input"]] = state
            return ev(step["input"], "alarm.input", state=state)
        if do.startswith("panel."):
            panel = self.panels[step["panel"]]
            what = do.removeprefix("panel.")
            if what in ("arm", "disarm"):
                panel.armed = what == "arm"
            elif what in ("mains_lost", "mains_ok"):
                panel.mains = "lost" if what == "mains_lost" else "ok"
            elif what in ("battery_low", "battery_ok"):
                panel.battery = "low" if what == "battery_low" else "ok"
            else:
                panel.tamper = what == "tamper"
            return ev(
                step["panel"],
                "alarm.panel",
                armed=panel.armed,
                mains=panel.mains,
                battery=panel.battery,
                tamper=panel.tamper,
            )
        if do == "phone.detect":
            extra = {k: step[k] for k in ("band", "rssi_dbm") if k in step}
            return ev(step["detector"], "phone.detected", **extra)
        if do == "patrol.visit":
            return ev(step["checkpoint"], "patrol.checkpoint", badge=step["badge"])
        if do in ("operator.on", "operator.off"):
            state = do.removeprefix("operator.")
            duty = self.on_duty[step["console"]]
            (duty.add if state == "on" else duty.discard)(step["badge"])
            return ev(step["console"], "operator.duty", badge=step["badge"], state=state)
        if do == "seal.start":
            extra = {k: step[k] for k in ("name", "classification", "badge") if k in step}
            if "end" in step:
                extra["end"] = rfc3339(parse_when(step["end"], ts))
            return ev(step["console"], "seal.start", seal=step["seal"], **extra)
        if do == "seal.end":
            extra = {"badge": step["badge"]} if "badge" in step else {}
            return ev(step["console"], "seal.end", seal=step["seal"], **extra)
        if do == "approval":
            extra = {"granted_by": step["granted_by"]} if "granted_by" in step else {}
            return ev(
                step["console"],
                "approval.granted",
                badge=step["badge"],
                valid_s=step["valid_s"],
                **extra,
            )
        if do == "inspection":
            return ev(step["console"], "inspection.done", zone=step["zone"], badge=step["badge"])
        if do == "review":
            target = {k: step[k] for k in ("camera", "zone") if k in step}
            return ev(step["console"], "review.done", **target, badge=step["badge"])
        if do == "alert.ack":
            extra = {"comment": step["comment"]} if "comment" in step else {}
            return ev(
                step["console"],
                "alert.ack",
                alert_id=step["alert_id"],
                badge=step["badge"],
                **extra,
            )
        if do == "alert.shelve":
            return ev(
                step["console"],
                "alert.shelve",
                alert_id=step["alert_id"],
                badge=step["badge"],
                until=rfc3339(parse_when(step["until"], ts)),
                reason=step["reason"],
            )
        if do == "alert.unshelve":
            return ev(
                step["console"], "alert.unshelve", alert_id=step["alert_id"], badge=step["badge"]
            )
        raise ValueError(f"no MQTT gateway performs '{do}'")

    async def perform(
        self, step: Mapping[str, Any], ts: datetime | None = None
    ) -> dict[str, Any] | None:
        """Perform an MQTT action; the event once acknowledged, None if the device is silent."""
        device, event = self.event_for(step, ts or now_utc())
        return event if await self.devices[device].publish(event) else None

    async def publish(self, device: str, event: dict[str, Any]) -> bool:
        return await self.devices[device].publish(event)

    def silence(self, device: str, silenced: bool) -> None:
        self.devices[device].silenced = silenced

    def describe(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for dev_id, dev in self.devices.items():
            info: dict[str, Any] = {
                "kind": dev.kind,
                "connected": dev.connected.is_set(),
                "silenced": dev.silenced,
                "published": dev.published,
            }
            if dev.kind == "door":
                info["open"] = self.doors_open[dev_id]
            elif dev.kind == "alarm_input":
                info["state"] = self.inputs[dev_id]
            elif dev.kind == "alarm_panel":
                p = self.panels[dev_id]
                info.update(armed=p.armed, mains=p.mains, battery=p.battery, tamper=p.tamper)
            elif dev.kind == "console":
                info["on_duty"] = sorted(self.on_duty[dev_id])
            out[dev_id] = info
        return out


def _device_heartbeat() -> dict[str, Any]:
    return {"type": "device.heartbeat"}
