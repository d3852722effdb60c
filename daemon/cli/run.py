"""`sealwatch run`: the daemon, after the checks that turn a bad start into one clear line.

Before anything starts, the data dir is locked (one daemon per data dir), the HTTP address is
tried and the broker's host name is resolved. Each problem is one line on stderr that names
the setting to change, and exit status 1 — not a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import socket
from pathlib import Path

from daemon.cli.common import fail, load_site_or_exit, settings_env, settings_or_exit
from daemon.config import Settings
from daemon.datadir import DataDirInUse, DataDirLock

HTTP_HINT = "set daemon.http in the site file or SEALWATCH_HTTP"
MQTT_HINT = "set daemon.mqtt.url in the site file or SEALWATCH_MQTT_URL"
DATA_DIR_HINT = "set daemon.data_dir in the site file, SEALWATCH_DATA_DIR or --data-dir"
# What only binding the HTTP address fails with (EACCES, a privileged port, is caught by the
# check before the start; from the running daemon it could mean a file).
LISTEN_ERRNOS = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL})
# getaddrinfo's "this name does not exist" (a temporary DNS failure is not refused)
NO_SUCH_NAME = frozenset(
    {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME), socket.EAI_SERVICE}
)

log = logging.getLogger("sealwatch")


def cmd_run(args: argparse.Namespace) -> int:
    site = load_site_or_exit(args.config)
    settings = settings_or_exit(site, args)
    lock = DataDirLock(settings.data_dir)
    try:
        lock.acquire()
    except DataDirInUse as exc:
        return fail(f"{exc} — stop it, or give this one its own data dir: {DATA_DIR_HINT}")
    except OSError as exc:
        return fail(f"cannot use data dir {settings.data_dir}: {_reason(exc)} — {DATA_DIR_HINT}")
    try:
        notes: list[str] = []
        problem = (
            _data_dir_problem(settings)
            or _listen_problem(settings)
            or _broker_problem(settings, notes)
        )
        if problem:
            return fail(problem)
        logging.basicConfig(
            level=getattr(logging, args.log_level.upper()),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        for warning in site.warnings:
            log.warning("site: %s", warning)
        for warning in (*settings.warnings, *notes):
            log.warning("%s", warning)
        from daemon.runtime import run_daemon

        try:
            return asyncio.run(
                run_daemon(site, settings, site_path=Path(args.config), env=settings_env(args))
            )
        except OSError as exc:
            # The address was free a moment ago: someone took it in between.
            if exc.errno in LISTEN_ERRNOS:
                return fail(_listen_message(settings, exc))
            raise
    finally:
        lock.release()


def _data_dir_problem(s: Settings) -> str | None:
    # An existing store on a file system that went read-only (or full) still starts: the
    # daemon alerts and holds what it accepts until it can write (docs/pipeline.md).
    if not os.access(s.data_dir, os.W_OK | os.X_OK) and not s.db_path.exists():
        return f"cannot write data dir {s.data_dir}: permission denied — {DATA_DIR_HINT}"
    return None


def _listen_problem(s: Settings) -> str | None:
    """Why the daemon could not listen on its HTTP address, tried the way aiohttp binds."""
    if s.http_port == 0:
        return None  # any free port
    try:
        infos = socket.getaddrinfo(
            s.http_host, s.http_port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        return _listen_message(s, exc)
    for family, kind, proto, _name, addr in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(addr)
            except OSError as exc:
                return _listen_message(s, exc)
    return None


def _listen_message(s: Settings, exc: OSError) -> str:
    return f"cannot listen on {s.http_host}:{s.http_port}: {_reason(exc)} — {HTTP_HINT}"


def _broker_problem(s: Settings, notes: list[str]) -> str | None:
    """A broker host name that does not exist; a broker that is down is only retried."""
    host = s.mqtt.host
    try:
        socket.getaddrinfo(host, s.mqtt.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno in NO_SUCH_NAME:
            return f"cannot resolve the MQTT broker's host {host!r}: {_reason(exc)} — {MQTT_HINT}"
        notes.append(f"MQTT broker host {host!r}: {_reason(exc)}; retrying once running")
    return None


def _reason(exc: OSError) -> str:
    """`address already in use`: the system's words for the errno, without asyncio's wrapping."""
    if isinstance(exc.errno, int) and exc.errno > 0 and not isinstance(exc, socket.gaierror):
        text = os.strerror(exc.errno)
    else:
        text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    r = sub.add_parser("run", help="run the daemon (docs/daemon.md)")
    r.add_argument("--config", required=True)
    r.add_argument("--data-dir", help="overrides SEALWATCH_DATA_DIR")
    r.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    r.set_defaults(func=cmd_run)
