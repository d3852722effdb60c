"""`sealwatch archive SEAL --config SITE --format html|pdf|csv|json [--lang zh|en] -o FILE`.

Reads the store directly on a read-only connection (the daemon may be stopped) and writes the
seal's archive (daemon/archive/): a self-contained printable HTML page (inline SVG charts), a
PDF made from it, JSON (`sealwatch-archive/1`, keys sorted, indented), or CSV, one file per
table, into a directory or, for an `-o` ending in `.zip`, a zip. `--lang` (Chinese by default)
changes the labels of HTML, PDF and CSV; JSON keys stay English. For a closed seal the same
command gives the same bytes (HTML, CSV, JSON). `--http HOST:PORT`
asks the running daemon's API instead (JSON on stdout)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from daemon.cli.common import fail, load_site_or_exit, settings_or_exit


def cmd_archive(args: argparse.Namespace) -> int:
    if args.http:
        from daemon.cli.daemon_api import call

        return call(args, "GET", f"/api/seals/{args.seal_id}/archive")
    if not args.config:
        return fail("archive: --config is required (or --http to ask the running daemon)")
    from daemon.archive import build_archive, dumps
    from daemon.archive.tables import write_csv
    from daemon.view import _open_ro

    site = load_site_or_exit(args.config)
    settings = settings_or_exit(site, args)
    if not settings.db_path.exists():
        return fail(f"no store at {settings.db_path}")
    conn = _open_ro(settings.db_path)
    try:
        doc = build_archive(conn, site, args.seal_id)
    finally:
        conn.close()
    if doc is None:
        return fail(f"no archive for seal '{args.seal_id}': no such seal has started")
    if args.format == "csv":
        if args.output in (None, "-"):
            return fail("archive --format csv needs -o DIR or -o FILE.zip")
        write_csv(doc, Path(args.output), args.lang)
        return 0
    if args.format == "html":
        from daemon.archive.render import render_html

        data = render_html(doc, args.lang).encode("utf-8")
    elif args.format == "pdf":
        from daemon.archive.render import render_pdf

        if args.output in (None, "-"):
            return fail("archive --format pdf needs -o FILE")
        data = render_pdf(doc, args.lang)
    else:
        data = dumps(doc)
    if args.output in (None, "-"):
        sys.stdout.buffer.write(data)
    else:
        Path(args.output).write_bytes(data)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "archive",
        help="a seal's archive from the store (the daemon may be stopped): HTML, PDF, CSV, JSON",
    )
    p.add_argument("seal_id")
    p.add_argument("--config", help="site file")
    p.add_argument("--data-dir")
    p.add_argument("--format", choices=("html", "pdf", "csv", "json"), default="json")
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="labels (HTML, PDF, CSV)")
    p.add_argument(
        "-o", "--output", help="file (JSON; default stdout), or a directory or .zip (CSV)"
    )
    p.add_argument("--http", help="ask the running daemon at host:port instead (JSON)")
    p.set_defaults(func=cmd_archive)
