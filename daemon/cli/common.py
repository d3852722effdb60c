"""What every subcommand needs: the site file and the settings, or a clean exit naming why."""

from __future__ import annotations

import argparse
import os
import sys

from daemon.config import ConfigError, Settings, load_settings
from policies.site import Site, SiteError, load_site

PROG = "sealwatch"


def load_site_or_exit(path: str) -> Site:
    """The site, or every error on stderr and exit status 1."""
    try:
        return load_site(path)
    except SiteError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        raise SystemExit(1) from None


def settings_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment settings are read from (`--data-dir` wins over SEALWATCH_DATA_DIR)."""
    env = dict(os.environ)
    if getattr(args, "data_dir", None):
        env["SEALWATCH_DATA_DIR"] = args.data_dir
    return env


def settings_or_exit(site: Site, args: argparse.Namespace) -> Settings:
    """The settings (`--data-dir` wins over the environment), or every error and exit status 1."""
    env = settings_env(args)
    try:
        return load_settings(site, env)
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        raise SystemExit(1) from None


def fail(message: str) -> int:
    """One line on stderr, exit status 1: for problems an operator fixes in the settings."""
    print(f"{PROG}: {message}", file=sys.stderr)
    return 1
