"""`sealwatch central --config CENTRAL.yaml`: the centre's state, its MQTT session on the
cluster and its HTTP server, run until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from aiohttp import web

from daemon.central.config import CentralConfig, CentralConfigError, load_central
from daemon.central.link import ClusterLink
from daemon.central.notify import CentralNotifications
from daemon.central.state import Centre
from daemon.central.web import build_app

log = logging.getLogger("sealwatch.central")


class Central:
    """The running centre (also used in-process by the benchmark)."""

    def __init__(self, config: CentralConfig) -> None:
        self.config = config
        self.centre = Centre(config)
        self.link = ClusterLink(config, self.centre.handle)
        self.notify: CentralNotifications | None = None
        if config.notifications is not None:
            c = self.centre
            self.notify = CentralNotifications(config, c.metrics, c.problems, c.seals_of)
            c.on_transition.append(self.notify.take)
        self.http_port = config.http_port
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Central:
        app = build_app(self.centre, self.link, self.notify, self.config.access)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.http_host, self.config.http_port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        if sockets:
            self.http_port = sockets[0].getsockname()[1]
        if self.notify is not None:
            self._tasks.append(asyncio.create_task(self.notify.run(), name="central-notify"))
        self._tasks.append(asyncio.create_task(self.link.run(), name="central-link"))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in reversed(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._runner is not None:
            await self._runner.cleanup()


async def _serve(config: CentralConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Central(config) as central:
        log.info(
            "sealwatch central: %d sites, HTTP %s:%d, cluster %s",
            len(config.sites),
            config.http_host,
            central.http_port,
            ", ".join(b.label for b in config.brokers),
        )
        await stop.wait()


def cmd_central(args: argparse.Namespace) -> int:
    try:
        config = load_central(Path(args.config))
    except CentralConfigError as exc:
        for line in exc.errors:
            print(f"{args.config}: {line}", file=sys.stderr)
        return 1
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        asyncio.run(_serve(config))
    except OSError as exc:
        print(f"sealwatch central: {exc} — set http in {args.config}", file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("central", help="follow many sites from one centre (docs/central.md)")
    p.add_argument("--config", required=True, help="the centre's CENTRAL.yaml")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=cmd_central)
