"""The running daemon's HTTP API as the CLI uses it: where it listens, the CLI's API token,
and one call that prints the answer (operator commands, `user unlock`)."""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from daemon.cli.common import load_site_or_exit, settings_or_exit
from daemon.config import DEFAULT_HTTP
from daemon.http.auth import API_TOKEN_FILE


def _base_url(args: argparse.Namespace) -> str:
    bind = args.http or os.environ.get("SEALWATCH_HTTP")
    if not bind and args.config:
        s = settings_or_exit(load_site_or_exit(args.config), args)
        bind = f"{s.http_host}:{s.http_port}"
    return "http://" + (bind or DEFAULT_HTTP)


def fetch(
    args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    """(status, decoded JSON or text) of one request; status 0 when the daemon is unreachable.
    `body` (None values left out) is sent as JSON."""
    url = _base_url(args) + path
    headers = cli_headers(args.config, getattr(args, "data_dir", None))
    data = None
    if body is not None:
        data = orjson.dumps({k: v for k, v in body.items() if v is not None})
        headers = {"Content-Type": "application/json", **headers}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            payload, status = resp.read(), resp.status
    except urllib.error.HTTPError as exc:
        payload, status = exc.read(), exc.code
    except urllib.error.URLError as exc:
        return 0, f"cannot reach the daemon at {url}: {exc.reason}"
    try:
        return status, orjson.loads(payload)
    except orjson.JSONDecodeError:
        return status, payload.decode(errors="replace")


def call(
    args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None
) -> int:
    url = _base_url(args) + path
    data = None if body is None else orjson.dumps({k: v for k, v in body.items() if v is not None})
    req = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={
            "Content-Type": "application/json",
            **cli_headers(args.config, getattr(args, "data_dir", None)),
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            payload, status = resp.read(), resp.status
    except urllib.error.HTTPError as exc:
        payload, status = exc.read(), exc.code
    except urllib.error.URLError as exc:
        print(f"cannot reach the daemon at {url}: {exc.reason}", file=sys.stderr)
        return 2
    try:
        result = orjson.loads(payload)
    except orjson.JSONDecodeError:
        print(payload.decode(errors="replace"), file=sys.stderr if status >= 400 else sys.stdout)
        return 0 if status < 400 else 1
    if isinstance(result, dict) and result.get("accepted") is False:
        print(f"refused: {result.get('reason')}", file=sys.stderr)
        return 1
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0 if status < 400 else 1


def cli_headers(config: str | None, data_dir: str | None = None) -> dict[str, str]:
    """The local CLI's Authorization header: the daemon's token from its data dir.

    Whoever can read the data dir can read the whole store anyway; the dashboard's users
    log in with passwords instead."""
    base: Path | None = Path(data_dir) if data_dir else None
    if base is None and os.environ.get("SEALWATCH_DATA_DIR"):
        base = Path(os.environ["SEALWATCH_DATA_DIR"])
    if base is None and config:
        try:
            from daemon.config import load_settings
            from policies.site import load_site

            base = load_settings(load_site(config)).data_dir
        except Exception:  # the caller reports a bad site file on its own
            base = None
    try:
        token = ((base or Path("./var")) / API_TOKEN_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return {}
    return {"Authorization": f"Bearer {token}"} if token else {}
