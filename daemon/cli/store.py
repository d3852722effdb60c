"""Commands that read the store directly (they work with the daemon stopped):
`audit verify` and `export-events`."""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from pathlib import Path

from daemon.cli.common import load_site_or_exit, settings_or_exit


def _open_db(args: argparse.Namespace) -> sqlite3.Connection:
    settings = settings_or_exit(load_site_or_exit(args.config), args)
    if not settings.db_path.exists():
        print(f"no store at {settings.db_path}", file=sys.stderr)
        raise SystemExit(1)
    return sqlite3.connect(f"file:{settings.db_path}?mode=ro", uri=True)


def _key_path(args: argparse.Namespace) -> Path:
    return settings_or_exit(load_site_or_exit(args.config), args).audit_key_path


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from daemon import audit

    anchor = public_key = None
    if args.anchor:
        try:
            anchor = audit.SignedHead.from_json(Path(args.anchor).read_bytes())
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"cannot read the anchor {args.anchor}: {exc}", file=sys.stderr)
            return 2
        # The site's own key, never the one the anchor names (a forger would name theirs).
        key_file = Path(args.public_key) if args.public_key else _key_path(args)
        pub_file = Path(str(key_file) + ".pub") if not args.public_key else key_file
        try:
            public_key = audit.load_public_key(pub_file if pub_file.exists() else key_file)
        except (OSError, ValueError) as exc:
            print(f"cannot read the site's public key ({key_file}): {exc}", file=sys.stderr)
            return 2
    verdict = audit.verify(_open_db(args), anchor, public_key)
    print(verdict.describe())
    return 0 if verdict.ok else 1


def cmd_audit_head(args: argparse.Namespace) -> int:
    """The store's newest head, signed with the site key: keep it elsewhere (an anchor)."""
    from daemon import audit

    site = load_site_or_exit(args.config)
    conn = _open_db(args)
    row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    if row is None:
        print("the audit chain is empty", file=sys.stderr)
        return 1
    try:
        key = audit.load_or_create_key(_key_path(args))
    except (OSError, ValueError) as exc:
        print(f"cannot use the site key: {exc}", file=sys.stderr)
        return 2
    head = audit.sign_head(key, site.id, int(row[0]), str(row[1]), time.time_ns() // 1000)
    data = head.to_json() + b"\n"
    if args.output in (None, "-"):
        sys.stdout.buffer.write(data)
    else:
        Path(args.output).write_bytes(data)
    return 0


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
    v = asub.add_parser(
        "verify", help="check the ledger (chain and every covered row); name the first bad one"
    )
    v.add_argument("--config", required=True)
    v.add_argument("--data-dir")
    v.add_argument("--anchor", help="a signed head saved elsewhere (audit head -o, MQTT, archive)")
    v.add_argument("--public-key", help="the site's public key file (default: the key file's .pub)")
    v.set_defaults(func=cmd_audit_verify)
    h = asub.add_parser("head", help="print or save the store's head, signed with the site key")
    h.add_argument("--config", required=True)
    h.add_argument("--data-dir")
    h.add_argument("-o", "--output", help="file (default stdout)")
    h.set_defaults(func=cmd_audit_head)

    e = sub.add_parser(
        "export-events", help="write what the daemon accepted as JSONL (feed it to replay)"
    )
    e.add_argument("--config", required=True)
    e.add_argument("--data-dir")
    e.add_argument("--after", type=int, default=0, help="only events after this sequence")
    e.add_argument("-o", "--output", help="file (default stdout)")
    e.set_defaults(func=cmd_export_events)
