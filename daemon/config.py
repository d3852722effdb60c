"""Runtime settings: the site file's `daemon:` section and the environment, in one schema.

Every key is checked (type, range, unknown keys with a did-you-mean) and every key accepted
here is read by the daemon; a section that lives elsewhere (`webhooks`, `central`) is refused with a
message, never ignored. The environment wins over the YAML (docs/interfaces.md §8). Secrets
are never taken from the YAML itself: the section names a file (`mqtt.password_file`), or
SEALWATCH_MQTT_PASSWORD_FILE does. Every problem is reported with its path, like the site
loader does. docs/daemon.md lists every setting with its default.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from adapters.mqtt_mapping import MappingError, MappingRule, parse_mapping_config
from daemon.notify.config import Notifications, parse_notifications
from daemon.telemetry import options as influx
from policies.schema import ConfigErrors, suggest, tname
from policies.schema import boolean as _bool
from policies.schema import enum as _enum
from policies.schema import int_range as _int_range
from policies.schema import number_range as _range
from policies.schema import position as _position
from policies.schema import text as _text
from policies.site import Site

DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"
DEFAULT_HTTP = "127.0.0.1:8080"
DEFAULT_DATA_DIR = "./var"
# EXAM-2.6.7: ledgers are kept at least 3 years (366 days covers the leap year).
MIN_RETENTION_DAYS = 3 * 365 + 1

# The environment variables the daemon reads (each wins over its site-file key).
ENV = {
    "SEALWATCH_MQTT_URL": "daemon.mqtt.url",
    "SEALWATCH_MQTT_PASSWORD_FILE": "daemon.mqtt.password_file",
    "SEALWATCH_DATA_DIR": "daemon.data_dir",
    "SEALWATCH_HTTP": "daemon.http",
    # the site's ledger key from elsewhere (systemd: a credential, %d/audit-key)
    "SEALWATCH_AUDIT_KEY_FILE": "daemon.audit.key_file",
}
# SEALWATCH_* variables that belong to other tools of the project (simulators, setup, tests).
OTHER_TOOLS_ENV = frozenset(
    {
        "SEALWATCH_MQTT_USERNAME",
        "SEALWATCH_SKIP_APT",
        "SEALWATCH_SKIP_BROWSER",
        "SEALWATCH_CHROMIUM",
        "SEALWATCH_TAMPER_CLIPS",
    }
)

# Sections that moved: refused with where they are now.
MOVED = {
    "central": "the centre is a program of its own with its own file: `sealwatch central "
    "--config CENTRAL.yaml` (docs/central.md); a site only bridges its broker to it "
    "(deploy/mosquitto/bridge/)",
    "webhooks": "webhooks are a channel of daemon.notifications (type: webhook; see "
    "docs/notifications.md)",
}


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
class DeviceOptions:
    """`daemon.devices`: which device adapters the daemon runs (all on by default)."""

    jammers: bool = True  # poll Modbus jammers (site `jammers[].modbus`)
    cameras: bool = True  # watch camera snapshots/streams for health and tamper
    camera_interval_s: float = 1.0
    recordings: bool = True  # scan recording folders for retention (EXAM-2.7.9)
    recordings_interval_s: float = 60.0
    duty_phone: bool = True  # turn duty-phone recorder files into call.recorded
    base_dir: Path | None = None  # where relative recording folders are (default: data dir)


@dataclass(frozen=True, slots=True)
class DashboardOptions:
    """`daemon.dashboard` (the page) and `daemon.auth` (its sessions and logins)."""

    idle_timeout_s: float = 900.0
    guard_idle_timeout_s: float = 12 * 3600.0
    max_session_s: float = 12 * 3600.0
    login_per_user: int = 5  # password checks per (user, address) before delays start
    login_per_ip: int = 20  # … per address across users
    login_per_account: int = 20  # … per user across addresses (its delay is capped lower)
    login_window_s: float = 300.0  # counts are forgotten after this long without a check
    login_max_delay_s: float = 900.0  # the longest delay for a (user, address) or address
    login_account_max_delay_s: float = 30.0  # the longest delay for a user from anywhere
    cookie_secure: str = "auto"  # auto (when the request came over TLS) | always | never
    trust_proxy: bool = False  # believe X-Forwarded-Proto/-For from a local TLS proxy
    tick_s: float = 0.25
    floor_plan: str | None = None  # an image file shown under the devices' positions
    floor_plan_size: tuple[float, float] | None = None
    positions: dict[str, tuple[float, float]] | None = None
    # the muster lists who has not been seen (no badge or other event) for this long
    muster_unseen_min: float = 60.0
    # a site's own response procedure per policy: {policy: {"zh": …, "en": …}}
    procedures: dict[str, dict[str, str]] | None = None


@dataclass(frozen=True, slots=True)
class HomeAssistantOptions:
    """`daemon.homeassistant`: MQTT discovery (daemon/integrations/homeassistant.py)."""

    discovery_prefix: str = "homeassistant"
    node_id: str = ""  # default sealwatch_SITE


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
    # accepted items held in memory while the store is failing; beyond it they are refused
    store_queue_max: int = 100_000
    store_retry_s: float = 1.0  # how often a failing store is tried again
    # how late events buffered during a broker outage may be and still be accepted
    outage_lateness_max_s: float = 3600.0
    reconnect_max_s: float = 0.25  # the broker reconnect backoff's cap (a local broker: cheap)
    devices: DeviceOptions = field(default_factory=DeviceOptions)
    dashboard: DashboardOptions = field(default_factory=DashboardOptions)
    mqtt_mappings: tuple[MappingRule, ...] = ()  # third-party payloads → events
    homeassistant: HomeAssistantOptions | None = None  # absent: no discovery published
    audit_key_file: Path | None = None  # default DATA_DIR/audit-ed25519.key (created 0600)
    notifications: Notifications | None = None  # webhook, mail, SMS (docs/notifications.md)
    influxdb: influx.InfluxOptions | None = None  # telemetry (daemon/telemetry/), off if None
    warnings: tuple[str, ...] = ()  # worth logging, not worth refusing (unknown env vars)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "sealwatch.db"

    @property
    def audit_key_path(self) -> Path:
        return self.audit_key_file or self.data_dir / "audit-ed25519.key"


Converter = Callable[[str, Any], Any]


def _retention(p: str, v: Any) -> float:
    x = _range(1.0, 100_000.0)(p, v)
    if x < MIN_RETENTION_DAYS:
        raise ValueError(
            f"{v!r} is below the {MIN_RETENTION_DAYS} days EXAM-2.6.7 requires "
            "(ledgers are kept at least 3 years)"
        )
    return x


def _path(_p: str, v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ValueError(f"expected a path, got {v!r}")
    return v


def _section(_p: str, v: Any) -> Any:
    """A section, checked against its own table by load_settings."""
    return v


def _topic_part(_p: str, v: Any, also: str) -> str:
    """Letters, digits, `_` and `-` (and `also`): a level of an MQTT topic, no wildcards."""
    ok = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-" + also)
    if not isinstance(v, str) or not v or not set(v) <= ok or v.startswith("/") or v.endswith("/"):
        levels = " (and / between levels)" if also else ""
        raise ValueError(f"expected letters, digits, _ or -{levels}, got {v!r}")
    return v


def _moved(what: str) -> Converter:
    def conv(_p: str, _v: Any) -> Any:
        raise ValueError(what)

    return conv


# The scalar settings of `daemon:`; each is a Settings field of the same name.
KNOBS: dict[str, Converter] = {
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
    "sqlite_synchronous": _enum(("normal", "full")),
    "store_queue_max": _int_range(1, 10_000_000),
    "store_retry_s": _range(0.01, 3600.0),
    "outage_lateness_max_s": _range(0.0, 7 * 86_400.0),
    "reconnect_max_s": _range(0.05, 300.0),
}
# Everything else `daemon:` takes; the sections are checked by their own tables below.
OTHER_KEYS: dict[str, Converter] = {
    "http": _text,
    "data_dir": _path,
    "max_payload_kib": _int_range(1, 16_384),
    "mqtt": _section,
    "devices": _section,
    "dashboard": _section,
    "auth": _section,
    "audit": _section,
    "mqtt_mappings": _section,
    "homeassistant": _section,
    "notifications": _section,
    "influxdb": _section,
}
# `daemon.audit`: the site's Ed25519 key that signs the ledger's head (a file, never the key).
AUDIT_KEYS: dict[str, Converter] = {"key_file": _path}
DAEMON_KEYS: dict[str, Converter] = {
    **OTHER_KEYS,
    **KNOBS,
    **{k: _moved(what) for k, what in MOVED.items()},
}
MQTT_KEYS: dict[str, Converter] = {
    "url": _text,
    "username": _text,
    "password_file": _path,
    "client_id": _text,
    "keepalive_s": _int_range(5, 3600),
    "tls": _section,
}
TLS_KEYS: dict[str, Converter] = {
    "ca_file": _path,
    "cert_file": _path,
    "key_file": _path,
    "insecure": _bool,
}
DEVICE_KEYS: dict[str, Converter] = {
    "jammers": _bool,
    "cameras": _bool,
    "camera_interval_s": _range(0.05, 3600.0),
    "recordings": _bool,
    "recordings_interval_s": _range(0.05, 86_400.0),
    "duty_phone": _bool,
    "base_dir": _path,
}
AUTH_KEYS: dict[str, Converter] = {
    "idle_timeout_s": _range(1.0, 7 * 86_400.0),
    "guard_idle_timeout_s": _range(1.0, 7 * 86_400.0),
    "max_session_s": _range(1.0, 30 * 86_400.0),
    "login_per_user": _int_range(1, 10_000),
    "login_per_ip": _int_range(1, 1_000_000),
    "login_per_account": _int_range(1, 1_000_000),
    "login_window_s": _range(1.0, 86_400.0),
    "login_max_delay_s": _range(1.0, 86_400.0),
    "login_account_max_delay_s": _range(1.0, 3_600.0),
    "cookie_secure": _enum(("auto", "always", "never")),
    "trust_proxy": _bool,
}
DASHBOARD_KEYS: dict[str, Converter] = {
    "tick_s": _range(0.02, 10.0),
    "floor_plan": _section,
    "positions": _section,
    "muster_unseen_min": _range(1.0, 7 * 24 * 60.0),
    "procedures": _section,
}
HOMEASSISTANT_KEYS: dict[str, Converter] = {
    "discovery_prefix": lambda p, v: _topic_part(p, v, "/"),
    "node_id": lambda p, v: _topic_part(p, v, ""),
}
PROCEDURE_LANGS = ("zh", "en")
FLOOR_PLAN_KEYS: dict[str, Converter] = {
    "image": _path,
    "width": _range(1.0, 100_000.0),
    "height": _range(1.0, 100_000.0),
}


def load_settings(site: Site, env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from `site.daemon` and `env` (default: os.environ)."""
    env = os.environ if env is None else env
    v = _Validator()
    d = v.mapping("daemon", dict(site.daemon), DAEMON_KEYS)

    mqtt = _mqtt(v, d.get("mqtt"), env, site.id)
    http = env.get("SEALWATCH_HTTP") or d.get("http") or DEFAULT_HTTP
    http_where = "SEALWATCH_HTTP" if env.get("SEALWATCH_HTTP") else "daemon.http"
    http_host, http_port = _host_port(v, http_where, http)
    data_dir = Path(env.get("SEALWATCH_DATA_DIR") or d.get("data_dir") or DEFAULT_DATA_DIR)
    devices = _devices(v, d.get("devices"))
    dashboard = _dashboard(v, d.get("dashboard"), d.get("auth"), site)
    audit_opts = v.mapping("daemon.audit", d.get("audit"), AUDIT_KEYS)
    key_file = env.get("SEALWATCH_AUDIT_KEY_FILE") or audit_opts.get("key_file")
    audit_key_file = Path(key_file) if key_file else None
    ha: HomeAssistantOptions | None = None
    if "homeassistant" in site.daemon:  # `homeassistant:` alone turns it on with defaults
        ha = HomeAssistantOptions(
            **v.mapping("daemon.homeassistant", d.get("homeassistant"), HOMEASSISTANT_KEYS)
        )
    influxdb = None
    if "influxdb" in site.daemon:
        raw = influx.refuse_token(site.daemon["influxdb"], v.err, "daemon.influxdb")
        checked = v.mapping("daemon.influxdb", raw, influx.KEYS)
        influxdb = influx.build("daemon.influxdb", raw, checked, env, v.err)
    mappings: list[MappingRule] = []
    try:
        mappings = parse_mapping_config(d.get("mqtt_mappings"))
    except MappingError as exc:
        v.errors.extend(exc.errors)
    notifications = parse_notifications(v, d.get("notifications"), env, site)
    if v.errors:
        raise ConfigError(v.errors)

    knobs: dict[str, Any] = {k: d[k] for k in KNOBS if k in d}
    if "max_payload_kib" in d:
        knobs["max_payload_bytes"] = d["max_payload_kib"] * 1024
    return Settings(
        mqtt=mqtt,
        http_host=http_host,
        http_port=http_port,
        data_dir=data_dir,
        devices=devices,
        dashboard=dashboard,
        mqtt_mappings=tuple(mappings),
        homeassistant=ha,
        audit_key_file=audit_key_file,
        notifications=notifications,
        influxdb=influxdb,
        warnings=_env_warnings(env, notifications.env_names if notifications else frozenset()),
        **knobs,
    )


def _mqtt(v: _Validator, raw: Any, env: Mapping[str, str], site_id: str) -> Mqtt:
    if isinstance(raw, dict) and "password" in raw:
        v.err(
            "daemon.mqtt.password",
            "secrets are not kept in the site file; "
            "write it to a file and name it in password_file",
        )
        raw = {k: x for k, x in raw.items() if k != "password"}
    m = v.mapping("daemon.mqtt", raw, MQTT_KEYS)
    url = env.get("SEALWATCH_MQTT_URL") or m.get("url") or DEFAULT_MQTT_URL
    where = "SEALWATCH_MQTT_URL" if env.get("SEALWATCH_MQTT_URL") else "daemon.mqtt.url"
    host, port, use_tls, user = _mqtt_url(v, where, url)
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
        t = v.mapping("daemon.mqtt.tls", m.get("tls"), TLS_KEYS)
        for key in ("ca_file", "cert_file", "key_file"):
            if key in t and not Path(t[key]).is_file():
                v.err(f"daemon.mqtt.tls.{key}", f"no such file: {t[key]}")
        if ("cert_file" in t) != ("key_file" in t):
            v.err("daemon.mqtt.tls", "cert_file and key_file go together")
        files = {k: Path(t[k]) for k in ("ca_file", "cert_file", "key_file") if k in t}
        tls = Tls(**files, insecure=t.get("insecure", False))
    return Mqtt(
        host=host,
        port=port,
        tls=tls,
        username=user or m.get("username"),
        password=password,
        client_id=m.get("client_id") or f"sealwatch-{site_id}",
        keepalive_s=m.get("keepalive_s", 30),
    )


def _devices(v: _Validator, raw: Any) -> DeviceOptions:
    c = v.mapping("daemon.devices", raw, DEVICE_KEYS)
    if "base_dir" in c:
        c["base_dir"] = Path(c["base_dir"])
    return DeviceOptions(**c)


def _dashboard(v: _Validator, raw: Any, auth_raw: Any, site: Site) -> DashboardOptions:
    kw: dict[str, Any] = v.mapping("daemon.auth", auth_raw, AUTH_KEYS)
    dash = v.mapping("daemon.dashboard", raw, DASHBOARD_KEYS)
    if "tick_s" in dash:
        kw["tick_s"] = dash["tick_s"]
    if "floor_plan" in dash:
        plan = v.mapping("daemon.dashboard.floor_plan", dash["floor_plan"], FLOOR_PLAN_KEYS)
        missing = [k for k in FLOOR_PLAN_KEYS if k not in plan]
        if isinstance(dash["floor_plan"], dict) and missing:
            v.err("daemon.dashboard.floor_plan", f"needs {', '.join(missing)}")
        elif "image" in plan and not Path(plan["image"]).is_file():
            v.err("daemon.dashboard.floor_plan.image", f"no such file: {plan['image']}")
        elif not missing:
            kw["floor_plan"] = plan["image"]
            kw["floor_plan_size"] = (plan["width"], plan["height"])
    if "positions" in dash:
        known = {*site.device_kind, *site.doors, *site.zones, *site.alarm_inputs}
        positions: dict[str, tuple[float, float]] = {}
        raw_positions = dash["positions"]
        if not isinstance(raw_positions, dict):
            v.err("daemon.dashboard.positions", f"expected a mapping, got {tname(raw_positions)}")
            raw_positions = {}
        for key, xy in raw_positions.items():
            p = f"daemon.dashboard.positions.{key}"
            if key not in known:
                v.err(p, f"no device, door or zone '{key}' in the site{suggest(str(key), known)}")
                continue
            try:
                positions[str(key)] = _position(p, xy)
            except ValueError as exc:
                v.err(p, str(exc))
        if positions:
            kw["positions"] = positions
    if "muster_unseen_min" in dash:
        kw["muster_unseen_min"] = dash["muster_unseen_min"]
    if "procedures" in dash:
        kw["procedures"] = _procedures(v, dash["procedures"]) or None
    return DashboardOptions(**kw)


def _procedures(v: _Validator, raw: Any) -> dict[str, dict[str, str]]:
    """`daemon.dashboard.procedures`: {POLICY: {zh: text, en: text}}, known policies only."""
    from policies.engine import RULES  # the policy ids (imported late: the engine is big)

    where = "daemon.dashboard.procedures"
    if not isinstance(raw, dict):
        v.err(where, f"expected a mapping, got {tname(raw)}")
        return {}
    policies = {r.policy for r in RULES}
    out: dict[str, dict[str, str]] = {}
    for policy, texts in raw.items():
        p = f"{where}.{policy}"
        if policy not in policies:
            v.err(p, f"no policy '{policy}'{suggest(str(policy), policies)}")
            continue
        spec = {lang: _text for lang in PROCEDURE_LANGS}
        got = v.mapping(p, texts, spec)
        if isinstance(texts, dict) and not got and not texts:
            v.err(p, "give the procedure in zh and/or en")
        if got:
            out[str(policy)] = {k: str(t) for k, t in got.items()}
    return out


def _env_warnings(env: Mapping[str, str], named: frozenset[str]) -> tuple[str, ...]:
    known = {*ENV, *OTHER_TOOLS_ENV, *named}  # named: secrets the site file points at
    return tuple(
        f"{name}: unknown environment variable, ignored{suggest(name, ENV)}"
        for name in sorted(env)
        if name.startswith("SEALWATCH_") and name not in known
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

    def mapping(self, path: str, value: Any, spec: Mapping[str, Converter]) -> dict[str, Any]:
        """The keys of `value` that passed their converter; every problem noted by path."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.err(path, f"expected a mapping, got {tname(value)}")
            return {}
        out: dict[str, Any] = {}
        for key, item in value.items():
            sub = f"{path}.{key}"
            if key not in spec:
                self.err(sub, f"unknown key{suggest(str(key), spec)}")
                continue
            try:
                if item is not None or key in MOVED:
                    out[key] = spec[key](sub, item)
            except ValueError as exc:
                self.err(sub, str(exc))
        return out
