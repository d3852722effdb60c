"""The device adapters a running daemon owns: jammers, cameras, recording folders, duty phone.

Each adapter only produces events into the daemon's sink (the same path as MQTT ingest), so a
device's data is validated, stored and fed to the engine exactly like a gateway's.
Which adapters run is set in the site file's `daemon.devices` section (all on by default):

    daemon:
      devices:
        jammers: true        # poll Modbus jammers (site `jammers[].modbus`)
        cameras: true        # watch camera snapshots/streams for health and tamper
        camera_interval_s: 1.0
        recordings: true     # scan recording folders for retention (EXAM-2.7.9)
        recordings_interval_s: 60
        duty_phone: true     # turn duty-phone recorder files into call.recorded
        base_dir: null       # where relative recording folders are (default: the data dir)
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from adapters.base import EventSink
from adapters.camera import CameraHub
from adapters.duty_phone import DutyPhoneWatcher
from adapters.modbus_jammer import JammerHub
from adapters.recordings import RecordingsWatcher
from daemon.config import ConfigError
from policies.site import Site, suggest

log = logging.getLogger("sealwatch.devices")

DEFAULTS: dict[str, Any] = {
    "jammers": True,
    "cameras": True,
    "camera_interval_s": 1.0,
    "recordings": True,
    "recordings_interval_s": 60.0,
    "duty_phone": True,
    "base_dir": None,
}


def devices_config(raw: Any) -> dict[str, Any]:
    """Validate `daemon.devices`; errors name the path."""
    if raw is None:
        return dict(DEFAULTS)
    if not isinstance(raw, Mapping):
        raise ConfigError(["daemon.devices: expected a mapping"])
    errors = []
    out = dict(DEFAULTS)
    for key, value in raw.items():
        if key not in DEFAULTS:
            errors.append(f"daemon.devices.{key}: unknown key{suggest(str(key), DEFAULTS)}")
        elif key.endswith("_s"):
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                errors.append(f"daemon.devices.{key}: expected a number of seconds > 0")
            else:
                out[key] = float(value)
        elif key == "base_dir":
            if value is not None and not isinstance(value, str):
                errors.append("daemon.devices.base_dir: expected a path")
            else:
                out[key] = value
        elif not isinstance(value, bool):
            errors.append(f"daemon.devices.{key}: expected true or false")
        else:
            out[key] = value
    if errors:
        raise ConfigError(errors)
    return out


class DeviceAdapters:
    """`async with DeviceAdapters(site, sink, data_dir, config)`: run the enabled adapters."""

    def __init__(
        self, site: Site, sink: EventSink, data_dir: Path, config: Mapping[str, Any] | None = None
    ) -> None:
        self.site = site
        self.sink = sink
        self.config = devices_config(config)
        base = self.config["base_dir"]
        self.base_dir = Path(base) if base else data_dir
        self.data_dir = data_dir
        self.jammers: JammerHub | None = None
        self.cameras: CameraHub | None = None
        self.recordings: RecordingsWatcher | None = None
        self.duty_phone: DutyPhoneWatcher | None = None
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Self:
        c, site, sink = self.config, self.site, self.sink
        await self._stack.__aenter__()
        try:
            if c["jammers"] and any(j.modbus for j in site.jammers.values()):
                self.jammers = await self._stack.enter_async_context(
                    JammerHub(site.jammers.values(), sink)
                )
            if c["cameras"] and site.cameras:
                self.cameras = await self._stack.enter_async_context(
                    CameraHub(site, sink, interval_s=c["camera_interval_s"])
                )
            if c["recordings"] and any(cam.recordings for cam in site.cameras.values()):
                self.recordings = await self._stack.enter_async_context(
                    RecordingsWatcher(
                        site, sink, self.base_dir, interval_s=c["recordings_interval_s"]
                    )
                )
            if c["duty_phone"] and any(p.recordings for p in site.duty_phones.values()):
                self.duty_phone = await self._stack.enter_async_context(
                    DutyPhoneWatcher(
                        site,
                        sink,
                        self.base_dir,
                        state_path=self.data_dir / "duty_phone_calls.json",
                    )
                )
        except BaseException:
            await self._stack.aclose()
            raise
        running = [
            n
            for n in ("jammers", "cameras", "recordings", "duty_phone")
            if getattr(self, n) is not None
        ]
        log.info("device adapters running: %s", ", ".join(running) or "none")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    def thumbnail_jpeg(self, camera: str, width: int = 320) -> bytes | None:
        """A JPEG of the camera's latest frame at most `width` wide, for the dashboard."""
        if self.cameras is None:
            return None
        return self.cameras.thumbnail_jpeg(camera, width)
