"""Commands that need neither a running daemon nor its store: `check` and `replay`."""

from __future__ import annotations

import argparse
import sys

from daemon.cli.common import load_site_or_exit
from daemon.config import ConfigError, load_settings
from policies.site import SiteError, load_site
from policies.timefmt import parse_ts


def cmd_check(args: argparse.Namespace) -> int:
    """Validate a site file, its `daemon:` section too; "ok" and a summary, or every error."""
    try:
        site = load_site(args.config)
        load_settings(site)
    except (SiteError, ConfigError) as exc:
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


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = sub.add_parser("check", help="validate a site file and summarise it")
    c.add_argument("--config", required=True, help="the site file (YAML)")
    c.set_defaults(func=cmd_check)

    r = sub.add_parser("replay", help="run the engine over recorded events, alerts to stdout")
    r.add_argument("--config", required=True)
    r.add_argument("events", help="JSON lines file, or - for stdin")
    r.add_argument("--until", help="run the clock on to this RFC 3339 time at the end")
    r.add_argument("--strict", action="store_true", help="exit 1 if any line was rejected")
    r.set_defaults(func=cmd_replay)
