"""Every device of one site, started together, driven by actions (CONTRACT §7).

    async with SiteSimulator(site, "127.0.0.1", 1883, data_dir) as sim:
        await sim.perform({"do": "door.open", "door": "gate-inner"})

Jammer and camera ports default to the site file's; tests pass `port_map`
({configured port: actual port}) or `port_offset` so that parallel runs do not collide, and
`topic_site` to publish under another `sealwatch/SITE/` prefix on a shared broker.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import AsyncExitStack
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from policies.site import Site

from .actions import StepError, check_step
from .camera import CameraOptions, CameraServers
from .clock import now_utc, parse_when, rfc3339
from .gateways import Broker, Gateways
from .jammer import JammerSim
from .recordings import Recordings

log = logging.getLogger("sealwatch.simulators")


class SiteSimulator:
    """Modbus jammers, MJPEG cameras, MQTT gateways and recording folders of one site."""

    def __init__(
        self,
        site: Site,
        mqtt_host: str = "127.0.0.1",
        mqtt_port: int = 1883,
        data_dir: str | Path = ".",
        *,
        port_map: Mapping[int, int] | None = None,
        port_offset: int = 0,
        topic_site: str | None = None,
        mqtt_username: str | None = None,
        mqtt_password: str | None = None,
        camera_options: CameraOptions | None = None,
        heartbeat_s: float = 10.0,
        segment_s: int = 60,
        backfill_days: float = 0.0,
        backfill_segment_s: int = 600,
        call_events: bool = True,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.site = site
        self.data_dir = Path(data_dir)
        self.call_events = call_events
        self.connect_timeout_s = connect_timeout_s
        self._port_map = dict(port_map or {})
        self._port_offset = port_offset
        self.jammers: dict[str, JammerSim] = {}
        for jid, jam in site.jammers.items():
            if jam.modbus is None:
                log.warning("jammer %s has no modbus address in the site file: not simulated", jid)
                continue
            self.jammers[jid] = JammerSim(
                jam,
                jam.modbus.host,
                self.port_of(jam.modbus.port),
                jam.modbus.unit,
                jam.modbus.map.function,
            )
        self.cameras = CameraServers(
            site.cameras, site.tz, camera_options or CameraOptions(), self.port_of
        )
        self.gateways = Gateways(
            site,
            Broker(mqtt_host, mqtt_port, mqtt_username, mqtt_password),
            topic_site=topic_site,
            heartbeat_s=heartbeat_s,
        )
        self.recordings = Recordings(
            site,
            self.data_dir,
            self._camera_up,
            segment_s=segment_s,
            backfill_days=backfill_days,
            backfill_segment_s=backfill_segment_s,
        )
        self.performed = 0
        self._stack: AsyncExitStack | None = None

    def port_of(self, port: int) -> int:
        return self._port_map.get(port, port + self._port_offset)

    def _camera_up(self, camera_id: str) -> bool:
        return self.cameras.cams[camera_id].up

    def camera_url(self, camera_id: str) -> str:
        return self.cameras.urls[camera_id]

    def jammer_address(self, jammer_id: str) -> tuple[str, int, int]:
        j = self.jammers[jammer_id]
        return j.host, j.port, j.unit

    async def __aenter__(self) -> SiteSimulator:
        async with AsyncExitStack() as stack:
            for jam in self.jammers.values():
                await stack.enter_async_context(jam)
            await stack.enter_async_context(self.cameras)
            await stack.enter_async_context(self.gateways)
            await stack.enter_async_context(self.recordings)
            if not await self.gateways.wait_connected(self.connect_timeout_s):
                log.warning(
                    "not every MQTT gateway reached the broker within %.0f s; they keep retrying",
                    self.connect_timeout_s,
                )
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._stack is not None
        await self._stack.__aexit__(et, exc, tb)

    # -- actions -------------------------------------------------------------------------------

    async def perform(self, step: Mapping[str, Any], ts: datetime | None = None) -> dict[str, Any]:
        """Validate and perform one action; events carry `ts` (default: now).

        Raises StepError for an invalid step, GatewayError when an event cannot be delivered.
        """
        checked = check_step(self.site, dict(step))
        ts = ts or now_utc()
        do = checked["do"]
        result: dict[str, Any] = {"ok": True, "do": do, "ts": rfc3339(ts)}
        family, _, verb = do.partition(".")
        if family == "jammer":
            await self._jammer(checked["jammer"]).perform(verb, checked)
        elif family == "camera":
            await self.cameras.cams[checked["camera"]].perform(verb, checked)
        elif do == "recording.prune":
            result["removed"] = await self.recordings.prune(
                checked["camera"], checked["keep_days"], ts
            )
        elif do == "recording.gap":
            start, end = parse_when(checked["start"], ts), parse_when(checked["end"], ts)
            if end < start:
                raise StepError(
                    f"recording.gap: end {rfc3339(end)} is before start {rfc3339(start)}"
                )
            result["removed"] = await self.recordings.gap(checked["camera"], start, end)
        elif do == "call":
            result["event"] = await self._call(checked, ts)
        elif family == "device":
            await self._silence(checked["device"], verb == "silence")
        else:
            result["event"] = await self.gateways.perform(checked, ts)
        self.performed += 1
        return result

    def _jammer(self, jammer_id: str) -> JammerSim:
        jam = self.jammers.get(jammer_id)
        if jam is None:
            raise StepError(
                f"jammer '{jammer_id}' has no modbus address in the site file, "
                "so it is not simulated"
            )
        return jam

    async def _call(self, step: Mapping[str, Any], ts: datetime) -> dict[str, Any] | None:
        record = await self.recordings.record_call(
            step["phone"], ts, step["supervisors"], step["recorded"], step.get("duration_s", 120.0)
        )
        if not self.call_events:
            return None
        event = {
            "ts": rfc3339(ts),
            "device": step["phone"],
            "type": "call.recorded",
            "start": record["start"],
            "end": record["end"],
            "recording": record["recording"],
            "supervisors": record["supervisors"],
        }
        return event if await self.gateways.publish(step["phone"], event) else None

    async def _silence(self, device: str, silent: bool) -> None:
        verb = "silence" if silent else "resume"
        if device in self.jammers:
            await self.jammers[device].perform(verb, {})
        elif device in self.cameras.cams:
            await self.cameras.cams[device].perform(verb, {})
        elif device in self.gateways.devices:
            self.gateways.silence(device, silent)
        else:
            raise StepError(f"device '{device}' is not simulated")

    def describe(self) -> dict[str, dict[str, Any]]:
        """The state of every simulated device, for GET /devices."""
        out: dict[str, dict[str, Any]] = {}
        for jid, jam in self.jammers.items():
            out[jid] = jam.describe()
        for cid, cam in self.cameras.cams.items():
            out[cid] = {
                **cam.describe(),
                "url": self.cameras.urls.get(cid),
                **self.recordings.describe(cid),
            }
        out.update(self.gateways.describe())
        return out
