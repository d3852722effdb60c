"""Commands that read the store directly (they work with the daemon stopped):
`audit verify` and `export-events`."""

from __future__ import annotations

import argparse
import sqlite3
import sys

from daemon.cli.common import load_site_or_exit, settings_or_exit


def _open_db(args: argparse.Namespace) -> sqlite3.Connection:
    settings = settings_or_exit(load_site_or_exit(args.config), args)
    if not settings.db_path.exists():
        print(f"no store at {settings.db_path}", file=sys.stderr)
        raise SystemExit(1)
    return sqlite3.connect(f"file:{settings.db_path}?mode=ro", uri=True)


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from daemon.audit import verify

    verdict = verify(_open_db(args))
    print(verdict.describe())
    return 0 if verdict.ok else 1


def cmd_export_events(args: argparse.Namespace) -> int:
    conn = _open_db(args)
    out = sys.stdout.buffer if args.output in (None, "-") else open(args.output, "wb")
    try:
        for (source,) in conn.execute(
            "SELECT source FROM events WHERE seq > ? ORDER BY seq", (args.after,)
        ):
            out.write(source.encode() if isinstance(source, str) else source)
            out.write(b"\n")
    finally:
        if out is not sys.stdout.buffer:
            out.close()
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    a = sub.add_parser("audit", help="the tamper-evident audit log")
    asub = a.add_subparsers(dest="audit_command", required=True)
    v = asub.add_parser("verify", help="check the hash chain; name the first broken record")
    v.add_argument("--config", required=True)
    v.add_argument("--data-dir")
    v.set_defaults(func=cmd_audit_verify)

    e = sub.add_parser(
        "export-events", help="write what the daemon accepted as JSONL (feed it to replay)"
    )
    e.add_argument("--config", required=True)
    e.add_argument("--data-dir")
    e.add_argument("--after", type=int, default=0, help="only events after this sequence")
    e.add_argument("-o", "--output", help="file (default stdout)")
    e.set_defaults(func=cmd_export_events)
