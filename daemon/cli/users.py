"""The `sealwatch user` command (dashboard accounts).

`register_cli(sub)` adds `sealwatch user add|passwd|list|disable|enable|unlock` to a parser;
`unlock` asks the running daemon (daemon/cli/daemon_api.py), where login delays live.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from daemon.cli.daemon_api import call
from daemon.http.auth import ROLES, USERS_FILE, AuthError, UserStore


def users_path(args: argparse.Namespace) -> Path:
    """The users file from --data-dir, or from the site file's settings and environment."""
    if args.data_dir:
        return Path(args.data_dir) / USERS_FILE
    if args.config:
        from daemon.config import ConfigError, load_settings
        from policies.site import SiteError, load_site

        try:
            return load_settings(load_site(args.config)).data_dir / USERS_FILE
        except (SiteError, ConfigError) as exc:
            raise AuthError(f"{args.config}: {exc}") from exc
    import os

    return Path(os.environ.get("SEALWATCH_DATA_DIR", "./var")) / USERS_FILE


def _read_password(args: argparse.Namespace, name: str) -> str:
    if args.password_file:
        lines = Path(args.password_file).read_text(encoding="utf-8").splitlines()
        return lines[0] if lines else ""
    if not sys.stdin.isatty():
        raise AuthError("no terminal to ask for the password: use --password-file FILE")
    first = getpass.getpass(f"password for {name}: ")
    if first != getpass.getpass("again: "):
        raise AuthError("the two passwords differ")
    return first


def _unlock(args: argparse.Namespace) -> int:
    """Lift the login delays of a user in the running daemon (they live in its memory)."""
    from urllib.parse import quote

    return call(args, "POST", f"/api/users/{quote(args.name, safe='')}/unlock", {})


def cmd_user(args: argparse.Namespace) -> int:
    if args.action == "unlock":
        if not args.name:
            print("sealwatch user: 'user unlock' needs a user name", file=sys.stderr)
            return 1
        return _unlock(args)
    try:
        store = UserStore(users_path(args))
        if args.action == "list":
            for u in store.list():
                flag = "  (disabled)" if u.disabled else ""
                print(f"{u.name}\t{u.role}\t{u.badge or '-'}{flag}")
            return 0
        if not args.name:
            raise AuthError(f"'user {args.action}' needs a user name")
        if args.action == "add":
            if not args.role:
                raise AuthError(f"--role is required ({', '.join(ROLES)})")
            store.add(args.name, args.role, _read_password(args, args.name), args.badge)
            print(f"user {args.name} added as {args.role} in {store.path}")
        elif args.action == "passwd":
            store.set_password(args.name, _read_password(args, args.name))
            print(f"password of {args.name} changed (the daemon logs their sessions out)")
        elif args.action in ("disable", "enable"):
            store.set_disabled(args.name, args.action == "disable")
            print(f"user {args.name} {args.action}d")
    except (AuthError, OSError) as exc:
        print(f"sealwatch user: {exc}", file=sys.stderr)
        return 1
    return 0


def register_cli(sub: Any) -> None:
    """Add `sealwatch user add|passwd|list|disable|enable|unlock` to the CLI."""
    u = sub.add_parser("user", help="dashboard users: add, change a password, list, unlock logins")
    u.add_argument("action", choices=("add", "passwd", "list", "disable", "enable", "unlock"))
    u.add_argument("name", nargs="?", help="the user name")
    u.add_argument("--role", choices=ROLES, help="for add: what the user may do")
    u.add_argument(
        "--badge", help="for add: the person's badge in the site file (recorded as who acted)"
    )
    u.add_argument(
        "--password-file",
        help="read the password from this file instead of asking (its first line)",
    )
    u.add_argument("--config", help="the site file (for its data dir)")
    u.add_argument(
        "--data-dir", help="the daemon's data dir (default: SEALWATCH_DATA_DIR or ./var)"
    )
    u.add_argument(
        "--http", help="for unlock: the daemon's HOST:PORT (default: from the site file)"
    )
    u.set_defaults(func=cmd_user)
