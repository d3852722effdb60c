"""The supervisor: one TaskGroup owning every task of the running daemon.

Order on start: open the store, rebuild the engine (recovery), start the engine and tick tasks,
the MQTT session, the HTTP server, housekeeping and the systemd watchdog; then READY=1. On
SIGTERM/SIGINT everything is cancelled, a final snapshot is written and the store is closed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any

from aiohttp import web

from daemon.config import Settings
from daemon.devices import DeviceAdapters
from daemon.http.app import build_app, mount_dashboard
from daemon.monitor import Monitor, new_metrics
from daemon.mqtt_link import MqttLink
from daemon.store import Store
from daemon.systemd import Notifier
from daemon.view import Actions, ReadView
from policies.site import Site

log = logging.getLogger("sealwatch")
HOUSEKEEPING_S = 3600.0
CHECKPOINT_S = 5.0


class Daemon:
    """`async with Daemon(site, settings) as d:` runs the whole daemon until the block ends."""

    def __init__(
        self,
        site: Site,
        settings: Settings,
        *,
        notifier: Notifier | None = None,
        middlewares: tuple[Any, ...] = (),
    ) -> None:
        self.site = site
        self.settings = settings
        self.notifier = notifier or Notifier()
        self.middlewares = middlewares
        self.status: dict[str, Any] = {"problems": []}
        self.store: Store | None = None
        self.monitor: Monitor | None = None
        self.link: MqttLink | None = None
        self.devices: DeviceAdapters | None = None
        self.http_port: int | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Daemon:
        try:
            await self._start()
        except BaseException:
            # A half-started daemon (port taken, bad device config …) leaves no server, task
            # or open store behind; nor a snapshot of an engine that may be half recovered.
            await self._stop(snapshot=False)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stop(snapshot=True)

    async def _start(self) -> None:
        s = self.settings
        self.store = Store(s.db_path, s.sqlite_synchronous)
        self.monitor = Monitor(self.site, s, self.store, metrics=new_metrics())
        self.monitor.recover()
        self.link = MqttLink(self.site.id, s.mqtt, self.monitor)
        self.status["mqtt"] = self.link
        view, actions = ReadView(self.monitor, self.status), Actions(self.monitor)
        app = build_app(view, actions, middlewares=self.middlewares)
        # the web dashboard: its page, logins, roles and CSRF checks in front of /api/
        self.dashboard = mount_dashboard(app, view, actions, s)
        self.app = app
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, s.http_host, s.http_port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self.http_port = sockets[0].getsockname()[1] if sockets else s.http_port
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        tg = self._tg
        self._tasks = [
            tg.create_task(self.monitor.run_engine(), name="engine"),
            tg.create_task(self.monitor.run_ticks(), name="tick"),
            tg.create_task(self.link.run(), name="mqtt-session"),
            tg.create_task(self._housekeeping(), name="housekeeping"),
            tg.create_task(self._checkpoints(), name="wal-checkpoint"),
            tg.create_task(self._watchdog(), name="watchdog"),
        ]
        # Device adapters feed the monitor like MQTT gateways do.
        self.devices = DeviceAdapters(self.site, self.monitor, s.data_dir, s.extra.get("devices"))
        await self.devices.__aenter__()
        self.dashboard.thumbnails = self.devices.thumbnail_jpeg
        log.info(
            "sealwatch running for site %s: MQTT %s:%d, HTTP %s:%d, data %s",
            self.site.id,
            s.mqtt.host,
            s.mqtt.port,
            s.http_host,
            self.http_port,
            s.data_dir,
        )

    async def _stop(self, *, snapshot: bool) -> None:
        self.notifier.stopping()
        try:
            if self.devices is not None:
                await self.devices.__aexit__(None, None, None)
            for task in self._tasks:
                task.cancel()
            if self._tg is not None:
                await self._tg.__aexit__(None, None, None)
        finally:
            if self._runner is not None:
                await self._runner.cleanup()
            if self.store is not None:
                if snapshot and self.monitor is not None:
                    self.monitor.snapshot()
                self.store.close()

    async def _watchdog(self) -> None:
        interval = self.notifier.watchdog_interval_s
        if interval is None:
            return
        assert self.monitor is not None
        while True:
            # Only while the tick is alive: a wedged engine must not be kept alive by pings.
            if time.monotonic() - self.monitor.last_tick < max(2.0, interval * 2):
                self.notifier.watchdog()
            await asyncio.sleep(interval)

    async def _checkpoints(self) -> None:
        assert self.store is not None
        while True:
            await asyncio.sleep(CHECKPOINT_S)
            await asyncio.to_thread(self.store.checkpoint)

    async def _housekeeping(self) -> None:
        assert self.monitor is not None and self.store is not None
        while True:
            self.housekeeping()
            await asyncio.sleep(HOUSEKEEPING_S)

    def housekeeping(self) -> None:
        """Retention (EXAM-2.6.7: at least 3 years) and the size budget's early warning."""
        assert self.monitor is not None and self.store is not None
        s = self.settings
        cutoff = self.monitor.clock() - int(s.retention_days * 86_400e6)
        pruned = self.store.prune(cutoff)
        if any(pruned.values()):
            log.info("retention (%.0f days): pruned %s", s.retention_days, pruned)
        # Maintenance windows that have ended no longer suppress anything: stop scanning them.
        self.monitor.suppressions = self.store.suppressions(ending_after=self.monitor.clock())
        size_mb = self.store.size_bytes() / 1e6
        budget = s.size_budget_mb
        problems = [p for p in self.status["problems"] if not p.startswith("store ")]
        if size_mb >= budget:
            problems.append(f"store {size_mb:.0f} MB is over its {budget:.0f} MB budget")
            log.error(
                "%s: give the data disk more room or raise daemon.size_budget_mb; "
                "nothing younger than the retention period is deleted",
                problems[-1],
            )
        elif size_mb >= budget * s.size_warning_pct / 100:
            problems.append(
                f"store {size_mb:.0f} MB has reached {s.size_warning_pct:.0f}% "
                f"of its {budget:.0f} MB budget"
            )
            log.warning(problems[-1])
        self.status["problems"] = problems


async def run_daemon(site: Site, settings: Settings) -> int:
    """Run until SIGTERM or SIGINT; the exit status."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    notifier = Notifier()
    async with Daemon(site, settings, notifier=notifier) as daemon:
        assert daemon.monitor is not None
        notifier.ready(f"recovered in {daemon.monitor.recovery_s:.3f} s")
        await stop.wait()
        log.info("stopping")
    return 0
