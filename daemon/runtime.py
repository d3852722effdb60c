"""The supervisor: one TaskGroup owning every task of the running daemon.

Order on start: open the store, start the pipeline (recovery, the writer thread), the MQTT
session, the HTTP server, the periodic tasks and the device adapters; then READY=1. SIGTERM and
SIGINT stop it: tasks are cancelled, a final snapshot is written and the store is closed.
SIGHUP re-reads the site file: an invalid file leaves the daemon running on the old one and
says why; a valid, changed one restarts the pipeline in-process on the new one.
"""

from __future__ import annotations

import asyncio
import enum
import faulthandler
import gc
import io
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from adapters.base import RateLimitedLog
from daemon import audit
from daemon.config import ConfigError, Settings, load_settings
from daemon.datadir import DataDirLock
from daemon.devices import DeviceAdapters
from daemon.http.app import build_app, mount_dashboard
from daemon.integrations.homeassistant import HomeAssistant
from daemon.integrations.summary import SiteSummary
from daemon.notify.sink import NotificationSink
from daemon.pipeline.flow import Pipeline, new_metrics
from daemon.pipeline.mqtt import MqttSession
from daemon.pipeline.mqtt_head import HeadPublisher
from daemon.snapshot import site_fingerprint
from daemon.store import Store
from daemon.systemd import Notifier
from daemon.telemetry.options import InfluxOptions
from daemon.view import Actions, ReadView
from policies.site import Site, SiteError, load_site

if TYPE_CHECKING:
    from daemon.telemetry.sink import Telemetry

log = logging.getLogger("sealwatch")
HOUSEKEEPING_S = 3600.0
STOP_STACKS_AFTER_S = 10.0  # a stop slower than this dumps every thread's stack
CHECKPOINT_S = 5.0


class State(enum.StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


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
        self.state = State.STOPPED
        self.store: Store | None = None
        self.pipeline: Pipeline | None = None
        self.link: MqttSession | None = None
        self.devices: DeviceAdapters | None = None
        self.telemetry: Telemetry | None = None  # with daemon.influxdb
        self.http_port: int | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._runner: web.AppRunner | None = None
        self._rlog = RateLimitedLog(log)
        self._lock: DataDirLock | None = None

    async def __aenter__(self) -> Daemon:
        self.state = State.STARTING
        try:
            await self._start()
        except BaseException:
            # A half-started daemon (port taken, bad device config …) leaves no server, task
            # or open store behind; nor a snapshot of an engine that may be half recovered.
            await self._stop(snapshot=False)
            raise
        self.state = State.RUNNING
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stop(snapshot=True)

    async def _start(self) -> None:
        s = self.settings
        # One daemon per data dir (`sealwatch run` takes it first; taking it again nests).
        self._lock = DataDirLock(s.data_dir)
        self._lock.acquire()
        self.store = Store(s.db_path, s.sqlite_synchronous)
        mappings = list(s.mqtt_mappings)
        self.pipeline = pipeline = Pipeline(
            self.site, s, self.store, metrics=new_metrics(), mappings=mappings
        )
        notify = NotificationSink(s.notifications, pipeline) if s.notifications else None
        if notify is not None:
            pipeline.fanout.add(notify)  # routes what recovery releases too
        if s.influxdb is not None:
            self.telemetry = _telemetry(self.site, s.influxdb, s.data_dir, pipeline)
            self.telemetry.start()
        pipeline.start()
        # What recovery built lives as long as the daemon: move it out of the cyclic
        # collector's reach, so a full collection does not walk it while events wait.
        gc.collect()
        gc.freeze()
        self.link = link = MqttSession(
            self.site.id, s.mqtt, pipeline, reconnect_max_s=s.reconnect_max_s, mappings=mappings
        )
        link.session_tasks.append(pipeline.publisher)
        try:
            key = audit.load_or_create_key(s.audit_key_path)
        except (OSError, ValueError) as exc:
            log.error(
                "the ledger's signing key %s cannot be used (%s): the audit head is not "
                "signed or published",
                s.audit_key_path,
                exc,
            )
        else:
            pipeline.head = HeadPublisher(self.site.id, key)
            link.session_tasks.append(pipeline.head)
        pipeline.attach(link)
        if notify is not None:
            link.session_tasks.append(notify.feed)
        await self._serve_http()
        if s.homeassistant is not None:  # MQTT discovery and states (docs/integrations.md)
            ha = HomeAssistant(self.site, s.homeassistant, self.view)
            link.session_tasks.append(ha)
            pipeline.fanout.add(ha)
            pipeline.fanout.taps.append(ha.note)
        summary = SiteSummary(self.view)  # for a centre, through the bridge (docs/central.md)
        link.session_tasks.append(summary)
        pipeline.fanout.taps.append(summary.note)
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        tg = self._tg
        self._tasks = [
            tg.create_task(pipeline.run_engine(), name="engine"),
            tg.create_task(pipeline.run_ticks(), name="tick"),
            tg.create_task(link.run(), name="mqtt-session"),
            tg.create_task(self._every(HOUSEKEEPING_S, self.housekeeping), name="housekeeping"),
            tg.create_task(
                self._every(CHECKPOINT_S, self._checkpoint, first=CHECKPOINT_S),
                name="wal-checkpoint",
            ),
            tg.create_task(self._watchdog(), name="watchdog"),
        ]
        if notify is not None:
            self._tasks.append(tg.create_task(notify.run(), name="notifications"))
        if self.telemetry is not None:
            self._tasks.append(tg.create_task(self.telemetry.run(), name="telemetry"))
        # Device adapters feed the pipeline like MQTT gateways do.
        self.devices = DeviceAdapters(self.site, pipeline, s.data_dir, s.devices)
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

    async def _serve_http(self) -> None:
        assert self.pipeline is not None and self.link is not None
        s = self.settings
        self.view = ReadView(self.pipeline, self.link)
        self.actions = Actions(self.pipeline)
        self.app = build_app(self.view, self.actions, middlewares=self.middlewares)
        # the web dashboard: its page, logins, roles and CSRF checks in front of /api/
        self.dashboard = mount_dashboard(self.app, self.view, self.actions, s)
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=5.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, s.http_host, s.http_port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self.http_port = sockets[0].getsockname()[1] if sockets else s.http_port

    async def _stop(self, *, snapshot: bool) -> None:
        self.state = State.STOPPING
        self.notifier.stopping()
        # A stop that takes this long is a bug: every thread's stack goes to stderr (the log)
        # so that it can be found; systemd's TimeoutStopSec still ends the process.
        _dump_stacks_later()
        slow = asyncio.get_running_loop().call_later(STOP_STACKS_AFTER_S, _log_tasks)
        try:
            if self.devices is not None:
                await self.devices.__aexit__(None, None, None)
            if self.link is not None:
                self.link.close()
            for task in self._tasks:
                task.cancel()
            if self._tg is not None:
                await self._tg.__aexit__(None, None, None)
        finally:
            if self._runner is not None:
                await self._runner.cleanup()
            if self.pipeline is not None:
                await self.pipeline.stop(snapshot=snapshot)
            if self.telemetry is not None:
                await self.telemetry.stop()
            if self.store is not None:
                self.store.close()
            if self._lock is not None:
                self._lock.release()
                self._lock = None
            faulthandler.cancel_dump_traceback_later()
            slow.cancel()
            self.state = State.STOPPED

    async def _every(
        self, interval_s: float, job: Callable[[], Awaitable[None]], first: float = 0.0
    ) -> None:
        """Run `job` every `interval_s`; a failure is logged (rate-limited), never fatal."""
        await asyncio.sleep(first)
        while True:
            try:
                await job()
            except Exception:
                self._rlog.log(
                    logging.ERROR, f"job:{job.__name__}", "%s failed", job.__name__, exc_info=True
                )
            await asyncio.sleep(interval_s)

    async def _watchdog(self) -> None:
        interval = self.notifier.watchdog_interval_s
        if interval is None:
            return
        assert self.pipeline is not None
        while True:
            # Only while the tick is alive: a wedged engine must not be kept alive by pings.
            if time.monotonic() - self.pipeline.last_tick < max(2.0, interval * 2):
                self.notifier.watchdog()
            await asyncio.sleep(interval)

    async def _checkpoint(self) -> None:
        assert self.store is not None
        await asyncio.to_thread(self.store.checkpoint)

    async def housekeeping(self) -> None:
        """Retention (EXAM-2.6.7: at least 3 years) and the size budget's early warning."""
        assert self.pipeline is not None and self.store is not None
        pipeline, s = self.pipeline, self.settings
        cutoff = pipeline.clock() - int(s.retention_days * 86_400e6)
        pruned: dict[str, int] = {}
        if self.store.writable:  # else the persist stage is already saying why, loudly
            pruned = await pipeline.persister.call(lambda store: store.prune(cutoff))
        if any(pruned.values()):
            log.info("retention (%.0f days): pruned %s", s.retention_days, pruned)
        # Maintenance windows that have ended no longer suppress anything: stop scanning them.
        pipeline.stage.drop_ended_suppressions()
        size_mb = self.store.size_bytes() / 1e6
        budget = s.size_budget_mb
        pipeline.problems.pop("size", None)
        if size_mb >= budget:
            pipeline.problems["size"] = f"store {size_mb:.0f} MB is over its {budget:.0f} MB budget"
            log.error(
                "%s: give the data disk more room or raise daemon.size_budget_mb; "
                "nothing younger than the retention period is deleted",
                pipeline.problems["size"],
            )
        elif size_mb >= budget * s.size_warning_pct / 100:
            pipeline.problems["size"] = (
                f"store {size_mb:.0f} MB has reached {s.size_warning_pct:.0f}% of its "
                f"{budget:.0f} MB budget"
            )
            log.warning(pipeline.problems["size"])


def _log_tasks() -> None:
    """What every asyncio task of a slow stop is waiting for (thread stacks do not show it)."""
    for task in asyncio.all_tasks():
        out = io.StringIO()
        task.print_stack(file=out)
        log.error("stop is slow: task %s still running:\n%s", task.get_name(), out.getvalue())


def _dump_stacks_later() -> None:
    """Every thread's stack to the process's own stderr (the log) if the stop is slow."""
    err = sys.__stderr__
    try:
        if err is not None:
            faulthandler.dump_traceback_later(STOP_STACKS_AFTER_S, exit=False, file=err)
    except (OSError, ValueError):  # no file descriptor behind stderr: nothing to dump to
        pass


def _telemetry(site: Site, opts: InfluxOptions, data_dir: Path, pipeline: Pipeline) -> Telemetry:
    from daemon.telemetry.sink import Telemetry  # influxdb-client only when it is used

    return Telemetry(site, opts, data_dir, pipeline)


def reload_site(path: Path, env: Mapping[str, str] | None) -> tuple[Site, Settings] | str:
    """The site file and settings read again, or why they cannot be used."""
    try:
        site = load_site(path)
        settings = load_settings(site, env)
    except (SiteError, ConfigError) as exc:
        return "; ".join(exc.errors[:10]) + (" …" if len(exc.errors) > 10 else "")
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    return site, settings


async def run_daemon(
    site: Site,
    settings: Settings,
    *,
    site_path: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run until SIGTERM or SIGINT; SIGHUP re-reads `site_path`. The exit status."""
    loop = asyncio.get_running_loop()
    stop, hup = asyncio.Event(), asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, hup.set)
    notifier = Notifier()
    previous: tuple[Site, Settings] | None = None
    while True:
        try:
            daemon = Daemon(site, settings, notifier=notifier)
            await daemon.__aenter__()
        except OSError:
            if previous is None:
                raise
            log.error("the reloaded settings do not start (see above); back to the previous ones")
            site, settings = previous
            previous = None
            continue
        try:
            assert daemon.pipeline is not None
            notifier.ready(f"recovered in {daemon.pipeline.stage.recovery_s:.3f} s")
            while True:
                waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(hup.wait())]
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                for w in waiters:
                    w.cancel()
                if stop.is_set():
                    log.info("stopping")
                    return 0
                hup.clear()
                if site_path is None:
                    log.warning("SIGHUP: no site file to re-read; carrying on")
                    continue
                got = reload_site(site_path, env)
                if isinstance(got, str):
                    log.error(
                        "SIGHUP: %s is not valid, still running on the previous one: %s",
                        site_path,
                        got,
                    )
                    continue
                new_site, new_settings = got
                if new_settings.data_dir != settings.data_dir:
                    log.error(
                        "SIGHUP: the data dir cannot change while running (%s → %s); still "
                        "running on the previous site file — restart the daemon instead",
                        settings.data_dir,
                        new_settings.data_dir,
                    )
                    continue
                if (
                    site_fingerprint(new_site) == site_fingerprint(site)
                    and new_settings == settings
                ):
                    log.info("SIGHUP: %s unchanged; carrying on", site_path)
                    continue
                log.warning("SIGHUP: %s changed; restarting the pipeline on it", site_path)
                previous = (site, settings)
                site, settings = new_site, new_settings
                break
        finally:
            await daemon.__aexit__(None, None, None)
