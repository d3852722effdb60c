"""`sealwatch archive SEAL --config SITE --format html|pdf|csv|json [--lang zh|en] -o FILE`.

Reads the store directly on a read-only connection (the daemon may be stopped) and writes the
seal's archive (daemon/archive/): a self-contained printable HTML page (inline SVG charts), a
PDF made from it, JSON (`sealwatch-archive/1`, keys sorted, indented), or CSV, one file per
table, into a directory or, for an `-o` ending in `.zip`, a zip. `--lang` (Chinese by default)
changes the labels of HTML, PDF and CSV; JSON keys stay English. For a closed seal the same
command gives the same bytes (HTML, CSV, JSON). `--http HOST:PORT`
asks the running daemon's API instead (JSON on stdout).

The archive is signed with the site key (daemon/archive/sign.py);
`sealwatch archive verify FILE.json [--public-key PUB | --config SITE]` checks it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from daemon.cli.common import fail, load_site_or_exit, settings_or_exit


def cmd_archive(args: argparse.Namespace) -> int:
    if args.seal_id == "verify" and args.file:
        return cmd_archive_verify(args)
    if args.file:
        return fail("archive: one seal at a time (`archive verify FILE` checks an archive)")
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
        used: dict[str, set[Any]] = {}
        doc = build_archive(conn, site, args.seal_id, used)
        if doc is None:
            return fail(f"no archive for seal '{args.seal_id}': no such seal has started")
        doc = _signed(doc, settings.audit_key_path)
        if args.format == "json" and not args.no_proofs:
            from daemon.archive import proofs

            site_text = Path(args.config).read_text(encoding="utf-8")
            doc["proofs"] = proofs.build(conn, used, doc["ledger"], site_text)
    finally:
        conn.close()
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


def _signed(doc: dict[str, Any], key_path: Path) -> dict[str, Any]:
    """Signed with the site key when this machine holds it (the daemon creates it on start)."""
    from daemon.archive.sign import sign
    from daemon.audit import load_or_create_key

    if not key_path.exists():
        print(f"archive: not signed: no site key at {key_path}", file=sys.stderr)
        return doc
    return sign(doc, load_or_create_key(key_path))


def cmd_archive_verify(args: argparse.Namespace) -> int:
    """`sealwatch archive verify FILE.json|FILE.html`: the signature; the inclusion proofs a JSON
    archive carries; an HTML page against the document it embeds; with --config the store."""
    import orjson

    from daemon.archive import build_archive
    from daemon.archive.sign import check
    from daemon.audit import load_public_key
    from daemon.view import _open_ro

    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        return fail(f"archive verify: cannot read {args.file}: {exc}")
    page_problem = None
    if data.lstrip().startswith(b"<"):  # an HTML archive: the document it embeds
        from daemon.archive.render import embedded_archive, render_html

        page = data.decode("utf-8", errors="replace")
        found = embedded_archive(page)
        if found is None:
            return fail(f"archive verify: {args.file} is no HTML archive (no signed document)")
        doc, lang = found
        if render_html(doc, lang) != page:
            page_problem = "the page is not what its signed document renders to (edited)"
    else:
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            return fail(f"archive verify: cannot read {args.file} as a JSON archive: {exc}")
    if not isinstance(doc, dict) or not isinstance(doc.get("seal"), dict):
        return fail(f"archive verify: {args.file} is not a sealwatch archive")
    rebuilt = None
    key_path = Path(args.public_key) if args.public_key else None
    if args.config:
        site = load_site_or_exit(args.config)
        settings = settings_or_exit(site, args)
        key_path = key_path or settings.audit_key_path
        if settings.db_path.exists():
            conn = _open_ro(settings.db_path)
            try:
                rebuilt = build_archive(conn, site, str(doc["seal"].get("id")))
            finally:
                conn.close()
    if key_path is None:
        return fail("archive verify: give --public-key FILE or --config SITE (its site key)")
    try:
        public = load_public_key(key_path)
    except (OSError, ValueError) as exc:
        return fail(f"archive verify: cannot read the site key {key_path}: {exc}")
    problems = check(doc, public, rebuilt)
    if page_problem:
        problems.append(page_problem)
    proven = False
    if "proofs" in doc:
        from daemon.archive import proofs

        more, notes = proofs.check(doc)
        problems += more
        proven = not more
        for note in notes:
            print(f"archive verify: {note}", file=sys.stderr)
    for p in problems:
        print(f"archive verify: {p}", file=sys.stderr)
    if problems:
        return 1
    said = ["archive genuine"]
    if proven:
        said.append("every record in it proven in the ledger up to the signed head")
    if rebuilt is not None:
        said.append("matching the store")
    print(", ".join(said))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "archive",
        help="a seal's archive from the store (the daemon may be stopped): HTML, PDF, CSV, JSON",
    )
    p.add_argument("seal_id", help="the seal's id, or `verify` to check an archive FILE")
    p.add_argument("file", nargs="?", help="with `verify`: a JSON archive to check")
    p.add_argument(
        "--public-key", help="with `verify`: the site's public key (audit-ed25519.key.pub)"
    )
    p.add_argument("--config", help="site file")
    p.add_argument("--data-dir")
    p.add_argument("--format", choices=("html", "pdf", "csv", "json"), default="json")
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="labels (HTML, PDF, CSV)")
    p.add_argument(
        "-o", "--output", help="file (JSON; default stdout), or a directory or .zip (CSV)"
    )
    p.add_argument("--http", help="ask the running daemon at host:port instead (JSON)")
    p.add_argument(
        "--no-proofs",
        action="store_true",
        help="JSON without the inclusion proofs (rows and ledger records it was built from)",
    )
    p.set_defaults(func=cmd_archive)
