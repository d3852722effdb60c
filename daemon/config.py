"""Runtime settings: the site file's `daemon:` section, the environment and credential files.

The environment wins over the YAML (CONTRACT §8). Secrets are never taken from the YAML
itself: the section names a file (`mqtt.password_file`), or SEALWATCH_MQTT_PASSWORD_FILE does.
Every problem is reported with its path, like the site loader does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from policies.schema import ConfigErrors, suggest
from policies.schema import any_ as _any
from policies.schema import boolean as _bool
from policies.schema import enum as _enum
from policies.schema import int_range as _int_range
from policies.schema import number_range as _range
from policies.schema import text as _text
from policies.site import Site

DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"
DEFAULT_HTTP = "127.0.0.1:8080"
DEFAULT_DATA_DIR = "./var"
# EXAM-2.6.7: ledgers are kept at least 3 years (366 days covers the leap year).
MIN_RETENTION_DAYS = 3 * 365 + 1


class ConfigError(ConfigErrors):
    """The runtime settings are invalid."""


@dataclass(frozen=True, slots=True)
class Tls:
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False  # skip host name verification (lab brokers with IP certificates)


@dataclass(frozen=True, slots=True)
class Mqtt:
    host: str = "127.0.0.1"
    port: int = 1883
    tls: Tls | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str = ""  # fixed, so the broker keeps the session while the daemon restarts
    keepalive_s: int = 30


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the daemon needs at run time besides the site model."""

    mqtt: Mqtt
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    timer_lag_s: float = 1.0
    reorder_tolerance_s: float = 5.0
    future_tolerance_s: float = 5.0
    tick_s: float = 0.25
    ingest_hold_max_s: float = 10.0
    batch_max: int = 500
    snapshot_interval_s: float = 60.0
    snapshot_every_events: int = 50_000
    retention_days: float = float(MIN_RETENTION_DAYS)
    size_budget_mb: float = 20_480.0
    size_warning_pct: float = 80.0
    max_payload_bytes: int = 64 * 1024
    sqlite_synchronous: str = "normal"
    store_queue_max: int = 100_000
    store_retry_s: float = 1.0
    outage_lateness_max_s: float = 3600.0
    reconnect_max_s: float = 1.0
    extra: Mapping[str, Any] = field(default_factory=dict)  # sections owned by other modules

    @property
    def db_path(self) -> Path:
        return self.data_dir / "sealwatch.db"


# Sections other parts of the daemon validate themselves (telemetry, dashboard, webhooks).
PASSTHROUGH = ("influxdb", "dashboard", "webhooks", "auth", "devices", "mqtt_mappings")


def load_settings(site: Site, env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from `site.daemon` and `env` (default: os.environ)."""
    env = os.environ if env is None else env
    v = _Validator()
    raw = dict(site.daemon)
    spec: dict[str, Callable[[str, Any], Any]] = {
        "mqtt": _any,
        "http": _text,
        "data_dir": _text,
        "timer_lag_s": _range(0.0, 60.0),
        "reorder_tolerance_s": _range(0.0, 3600.0),
        "future_tolerance_s": _range(0.0, 3600.0),
        "tick_s": _range(0.01, 10.0),
        "ingest_hold_max_s": _range(0.0, 3600.0),
        "batch_max": _int_range(1, 100_000),
        "snapshot_interval_s": _range(1.0, 86_400.0),
        "snapshot_every_events": _int_range(100, 100_000_000),
        "retention_days": _retention,
        "size_budget_mb": _range(1.0, 1e9),
        "size_warning_pct": _range(1.0, 100.0),
        "max_payload_kib": _int_range(1, 16_384),
        "sqlite_synchronous": _enum(("normal", "full")),
        **{k: _any for k in PASSTHROUGH},
    }
    d = v.mapping("daemon", raw, spec)

    mqtt_raw = d.get("mqtt", {})
    m = v.mapping(
        "daemon.mqtt",
        mqtt_raw,
        {
            "url": _text,
            "username": _text,
            "password_file": _text,
            "client_id": _text,
            "keepalive_s": _int_range(5, 3600),
            "tls": _any,
        },
    )
    if "password" in (mqtt_raw if isinstance(mqtt_raw, dict) else {}):
        v.errors = [e for e in v.errors if not e.startswith("daemon.mqtt.password:")]
        v.err(
            "daemon.mqtt.password",
            "secrets are not kept in the site file; "
            "write it to a file and name it in password_file",
        )
    url = env.get("SEALWATCH_MQTT_URL") or m.get("url") or DEFAULT_MQTT_URL
    where = "SEALWATCH_MQTT_URL" if env.get("SEALWATCH_MQTT_URL") else "daemon.mqtt.url"
    host, port, use_tls, user = _mqtt_url(v, where, url)
    username = user or m.get("username")
    pw_file = env.get("SEALWATCH_MQTT_PASSWORD_FILE") or m.get("password_file")
    password = None
    if pw_file:
        try:
            password = Path(pw_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            pw_where = (
                "SEALWATCH_MQTT_PASSWORD_FILE"
                if env.get("SEALWATCH_MQTT_PASSWORD_FILE")
                else "daemon.mqtt.password_file"
            )
            v.err(pw_where, f"cannot read {pw_file}: {exc.strerror}")
    tls = None
    if "tls" in m or use_tls:
        t = v.mapping(
            "daemon.mqtt.tls",
            m.get("tls", {}),
            {"ca_file": _text, "cert_file": _text, "key_file": _text, "insecure": _bool},
        )
        for key in ("ca_file", "cert_file", "key_file"):
            if key in t and not Path(t[key]).is_file():
                v.err(f"daemon.mqtt.tls.{key}", f"no such file: {t[key]}")
        if ("cert_file" in t) != ("key_file" in t):
            v.err("daemon.mqtt.tls", "cert_file and key_file go together")
        tls = Tls(
            *(Path(t[k]) if k in t else None for k in ("ca_file", "cert_file", "key_file")),
            insecure=t.get("insecure", False),
        )

    http = env.get("SEALWATCH_HTTP") or d.get("http") or DEFAULT_HTTP
    http_where = "SEALWATCH_HTTP" if env.get("SEALWATCH_HTTP") else "daemon.http"
    http_host, http_port = _host_port(v, http_where, http)
    data_dir = Path(env.get("SEALWATCH_DATA_DIR") or d.get("data_dir") or DEFAULT_DATA_DIR)
    if "devices" in d:
        from daemon.devices import devices_config

        try:
            devices_config(d["devices"])
        except ConfigError as exc:
            v.errors.extend(exc.errors)
    if v.errors:
        raise ConfigError(v.errors)

    knobs = {
        k: d[k]
        for k in (
            "timer_lag_s",
            "reorder_tolerance_s",
            "future_tolerance_s",
            "tick_s",
            "ingest_hold_max_s",
            "batch_max",
            "snapshot_interval_s",
            "snapshot_every_events",
            "retention_days",
            "size_budget_mb",
            "size_warning_pct",
            "sqlite_synchronous",
        )
        if k in d
    }
    if "max_payload_kib" in d:
        knobs["max_payload_bytes"] = d["max_payload_kib"] * 1024
    return Settings(
        mqtt=Mqtt(
            host=host,
            port=port,
            tls=tls,
            username=username,
            password=password,
            client_id=m.get("client_id") or f"sealwatch-{site.id}",
            keepalive_s=m.get("keepalive_s", 30),
        ),
        http_host=http_host,
        http_port=http_port,
        data_dir=data_dir,
        extra={k: d[k] for k in PASSTHROUGH if k in d},
        **knobs,
    )


def _mqtt_url(v: _Validator, where: str, url: str) -> tuple[str, int, bool, str | None]:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        v.err(where, f"'{url}' is not mqtt://[user@]host:port or mqtts://…")
        return "127.0.0.1", 1883, False, None
    if parts.password:
        v.err(where, "no passwords in the URL; use SEALWATCH_MQTT_PASSWORD_FILE")
    try:
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    except ValueError:
        v.err(where, f"bad port in '{url}'")
        port = 1883
    return parts.hostname or "127.0.0.1", port, parts.scheme == "mqtts", parts.username


def _host_port(v: _Validator, where: str, text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        v.err(where, f"'{text}' is not host:port")
        return "127.0.0.1", 8080
    return host.strip("[]") or "127.0.0.1", int(port)


class _Validator:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def err(self, path: str, msg: str) -> None:
        self.errors.append(f"{path}: {msg}")

    def mapping(
        self, path: str, value: Any, spec: Mapping[str, Callable[[str, Any], Any]]
    ) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.err(path, f"expected a mapping, got {type(value).__name__}")
            return {}
        out: dict[str, Any] = {}
        for key, item in value.items():
            sub = f"{path}.{key}"
            if key not in spec:
                self.err(sub, f"unknown key{suggest(str(key), spec)}")
            elif item is not None:
                try:
                    out[key] = spec[key](sub, item)
                except ValueError as exc:
                    self.err(sub, str(exc))
        return out


def _retention(p: str, v: Any) -> float:
    x = _range(1.0, 100_000.0)(p, v)
    if x < MIN_RETENTION_DAYS:
        raise ValueError(
            f"{v!r} is below the {MIN_RETENTION_DAYS} days EXAM-2.6.7 requires "
            "(ledgers are kept at least 3 years)"
        )
    return x
