"""`daemon.influxdb`: where telemetry goes and how it is batched and spooled.

The table `KEYS` is checked like every other section of daemon/config.py (path, type, range,
unknown keys with a did-you-mean); `build` turns the checked mapping into `InfluxOptions`.
Secrets are never taken from the site file: the token comes from a file (`token_file`) or an
environment variable the section names (`token_env`); `token` itself is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from daemon.secrets import read_secret
from policies.schema import int_range, number_range, text

Converter = Callable[[str, Any], Any]
MIB = 1024 * 1024


def _path(_p: str, v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ValueError(f"expected a path, got {v!r}")
    return v


def _url(_p: str, v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"expected http://host:port or https://…, got {v!r}")
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"'{v}' is not http://host:port or https://host:port")
    if parts.password:
        raise ValueError("no passwords in the URL; use token_file or token_env")
    try:
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise ValueError(f"bad port in '{v}'") from None
    return v.rstrip("/")


def _env_name(_p: str, v: Any) -> str:
    if not isinstance(v, str) or not v or not all(c.isalnum() or c == "_" for c in v):
        raise ValueError(f"expected the name of an environment variable, got {v!r}")
    return v


KEYS: dict[str, Converter] = {
    "url": _url,
    "org": text,
    "bucket": text,
    "token_file": _path,
    "token_env": _env_name,
    "ca_file": _path,
    "batch_size": int_range(1, 50_000),
    "flush_interval_s": number_range(0.05, 3600.0),
    "timeout_s": number_range(0.5, 300.0),
    "retry_min_s": number_range(0.05, 3600.0),
    "retry_max_s": number_range(0.05, 3600.0),
    "spool_max_bytes": int_range(64 * 1024, 1 << 40),
    "spool_warning_pct": number_range(1.0, 99.0),
    "stats_interval_s": number_range(0.1, 3600.0),
}
REQUIRED = ("url", "org", "bucket")
RETRY_MIN_S, RETRY_MAX_S = 1.0, 30.0


@dataclass(frozen=True, slots=True)
class InfluxOptions:
    """Telemetry to an InfluxDB v2 write API (docs/telemetry.md has every key)."""

    url: str
    org: str
    bucket: str
    token: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    batch_size: int = 1000  # points per write at most
    flush_interval_s: float = 1.0  # points are spooled (and sent) at least this often
    timeout_s: float = 10.0  # one write's HTTP timeout
    retry_min_s: float = RETRY_MIN_S  # first wait after a failed write, doubling…
    retry_max_s: float = RETRY_MAX_S  # …up to this
    spool_max_bytes: int = 256 * MIB  # points waiting on disk; beyond it the oldest go
    spool_warning_pct: float = 80.0  # warn (log, metric, /healthz) from this share on
    stats_interval_s: float = 10.0  # the daemon's own lag and queue depths, this often


def build(
    path: str,
    raw: Any,
    checked: dict[str, Any],
    env: Mapping[str, str],
    err: Callable[[str, str], None],
) -> InfluxOptions | None:
    """`checked` is `raw` after the KEYS table; the cross-key rules and the token here."""
    if not isinstance(raw, dict):
        if raw is not None:
            return None  # the table check already said it is not a mapping
        err(path, f"needs {', '.join(REQUIRED)} (or remove the section)")
        return None
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        err(path, f"needs {', '.join(missing)}")
    token = read_secret(err, path, checked, env, "token", required=False)
    if "ca_file" in checked and not Path(checked["ca_file"]).is_file():
        err(f"{path}.ca_file", f"no such file: {checked['ca_file']}")
    lo = checked.get("retry_min_s", RETRY_MIN_S)
    hi = checked.get("retry_max_s", RETRY_MAX_S)
    if lo > hi:
        err(f"{path}.retry_min_s", f"{lo:g} is above retry_max_s ({hi:g})")
    if missing or any(k not in checked for k in REQUIRED):
        return None
    kw = {k: checked[k] for k in KEYS if k in checked and k not in ("token_file", "token_env")}
    if "ca_file" in kw:
        kw["ca_file"] = Path(kw["ca_file"])
    return InfluxOptions(token=token or None, **kw)


def refuse_token(raw: Any, err: Callable[[str, str], None], path: str) -> Any:
    """The section without `token` (a secret in the site file is refused, by name)."""
    if isinstance(raw, dict) and "token" in raw:
        err(
            f"{path}.token",
            "secrets are not kept in the site file; write it to a file and name it in "
            "token_file, or name an environment variable in token_env",
        )
        return {k: v for k, v in raw.items() if k != "token"}
    return raw
