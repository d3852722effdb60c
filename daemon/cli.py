"""The `sealwatch` command line. Each subcommand lives in its own function or module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from policies.site import Site, SiteError, load_site
from policies.timefmt import parse_ts

Command = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, Command] = {}


def load_site_or_exit(path: str) -> Site:
    """The site, or every error on stderr and exit status 1."""
    try:
        return load_site(path)
    except SiteError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        raise SystemExit(1) from None


def cmd_check(args: argparse.Namespace) -> int:
    """Validate a site file; print "ok" and a summary, or every error."""
    try:
        site = load_site(args.config)
    except SiteError as exc:
        for line in exc.errors:
            print(line)
        print(f"{len(exc.errors)} error(s) in {args.config}")
        return 1
    from daemon.summary import site_summary

    print("ok")
    print(site_summary(site))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from daemon.replay import run_replay

    site = load_site_or_exit(args.config)
    until = None
    if args.until:
        try:
            until = parse_ts(args.until)
        except ValueError:
            print(f"--until: not an RFC 3339 time with an offset: {args.until!r}", file=sys.stderr)
            return 2
    return run_replay(site, args.events, until=until, strict=args.strict)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sealwatch",
        description="Physical-security monitoring for sealed exam-printing areas and secure rooms.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("check", help="validate a site file and summarise it")
    c.add_argument("--config", required=True, help="the site file (YAML)")
    c.set_defaults(func=cmd_check)

    r = sub.add_parser("replay", help="run the engine over recorded events (CONTRACT §3)")
    r.add_argument("--config", required=True)
    r.add_argument("events", help="JSON lines file, or - for stdin")
    r.add_argument("--until", help="run the clock on to this RFC 3339 time at the end")
    r.add_argument("--strict", action="store_true", help="exit 1 if any line was rejected")
    r.set_defaults(func=cmd_replay)

    for register in _extensions():
        register(sub)
    return p


def _extensions() -> list[Callable[[argparse._SubParsersAction], None]]:  # type: ignore[type-arg]
    """Subcommands defined by other daemon modules (run, audit, export-events, …)."""
    from daemon.auth import register_cli  # sealwatch user add|passwd|list

    found = [register_cli]
    try:
        from daemon import commands
    except ImportError:
        return found
    found.append(commands.register)
    return found


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
