"""The `sealwatch` command line: the parser and `main`; each group of subcommands is a module.

    offline   check, replay             (no daemon, no store)
    users     user add|passwd|list|…    (the dashboard's users)
    run       run                       (the daemon itself)
    store     audit verify, export-events (read the store; the daemon may be stopped)
    backup    backup (online), restore (daemon stopped)
    actions   alerts, ack, shelve, seal, …  (over the running daemon's HTTP API)
    central   central                   (many sites' view: daemon/central/app.py)

Those modules import `daemon.cli.common` and the daemon's modules, never this package.
"""

from __future__ import annotations

import argparse

from daemon.central import app as central
from daemon.cli import actions, archive, backup, offline, run, store, users


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sealwatch",
        description="Physical-security monitoring for sealed exam-printing areas and secure rooms.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    offline.register(sub)
    users.register_cli(sub)
    run.register(sub)
    store.register(sub)
    backup.register(sub)
    actions.register(sub)
    archive.register(sub)
    central.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
