"""The device adapters a running daemon owns: jammers, cameras, recording folders, duty phone.

Each adapter only produces events into the daemon's sink (the same path as MQTT ingest), so a
device's data is validated, stored and fed to the engine exactly like a gateway's.
Which adapters run is set in the site file's `daemon.devices` section (all on by default;
`daemon.config.DeviceOptions` checks it and lists its keys).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Self

from adapters.base import EventSink
from adapters.camera import CameraHub
from adapters.duty_phone import DutyPhoneWatcher
from adapters.modbus_jammer import JammerHub
from adapters.recordings import RecordingsWatcher
from daemon.config import DeviceOptions
from policies.site import Site

log = logging.getLogger("sealwatch.devices")


class DeviceAdapters:
    """`async with DeviceAdapters(site, sink, data_dir, options)`: run the enabled adapters."""

    def __init__(
        self, site: Site, sink: EventSink, data_dir: Path, options: DeviceOptions | None = None
    ) -> None:
        self.site = site
        self.sink = sink
        self.options = options or DeviceOptions()
        self.base_dir = self.options.base_dir or data_dir
        self.data_dir = data_dir
        self.jammers: JammerHub | None = None
        self.cameras: CameraHub | None = None
        self.recordings: RecordingsWatcher | None = None
        self.duty_phone: DutyPhoneWatcher | None = None
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Self:
        o, site, sink = self.options, self.site, self.sink
        await self._stack.__aenter__()
        try:
            if o.jammers and any(j.modbus for j in site.jammers.values()):
                self.jammers = await self._stack.enter_async_context(
                    JammerHub(site.jammers.values(), sink)
                )
            if o.cameras and site.cameras:
                self.cameras = await self._stack.enter_async_context(
                    CameraHub(site, sink, interval_s=o.camera_interval_s)
                )
            if o.recordings and any(cam.recordings for cam in site.cameras.values()):
                self.recordings = await self._stack.enter_async_context(
                    RecordingsWatcher(site, sink, self.base_dir, interval_s=o.recordings_interval_s)
                )
            if o.duty_phone and any(p.recordings for p in site.duty_phones.values()):
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
