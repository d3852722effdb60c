"""CENTRAL.yaml: the centre's own configuration file (not a site file).

    brokers: [mqtt://central-1:1883, mqtt://central-2:1883, mqtt://central-3:1883]
    mqtt: {client_id: sealwatch-central, username: central, password_file: …, tls: {ca_file: …}}
    http: 127.0.0.1:8090
    offline_after_s: 90
    sites:
      - {id: works-a, name: 第一印刷厂, lon: 116.40, lat: 39.90}
    data_dir: /var/lib/sealwatch-central   # the notification outbox (with notifications:)
    timezone: Asia/Shanghai                # times in mails and SMS
    notifications: {channels: …, recipients: …, routes: …, escalation: …}

`notifications:` has a site's `daemon.notifications` schema (daemon/notify/config.py parses
it), with `sites:` instead of `zone:` in routes and recipients by name as the supervisors.
Every mistake is reported with its path; every key accepted does something.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from daemon.config import _Validator
from daemon.notify.config import Notifications, parse_notifications
from daemon.secrets import read_secret
from policies.schema import tzname

SITE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TOP = {
    "brokers",
    "mqtt",
    "http",
    "offline_after_s",
    "sites",
    "name",
    "notifications",
    "data_dir",
    "timezone",
    "access",
}
ACCESS_KEYS = {"username", "password_file", "password_env"}
MQTT_KEYS = {"client_id", "username", "password_file", "tls"}
TLS_KEYS = {"ca_file", "cert_file", "key_file"}
SITE_KEYS = {"id", "name", "lon", "lat"}


class CentralConfigError(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Broker:
    host: str
    port: int
    tls: bool

    @property
    def label(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class SiteRef:
    id: str
    name: str
    lon: float
    lat: float


@dataclass(frozen=True, slots=True)
class CentralConfig:
    name: str
    brokers: tuple[Broker, ...]
    client_id: str
    username: str | None
    password: str | None
    ca_file: Path | None
    cert_file: Path | None
    key_file: Path | None
    http_host: str
    http_port: int
    offline_after_s: float
    sites: tuple[SiteRef, ...]
    data_dir: Path | None = None
    timezone: str = "Asia/Shanghai"
    notifications: Notifications | None = None
    # HTTP Basic login for every route but /healthz; None: loopback only
    access: tuple[str, str] | None = field(default=None, repr=False)


class _CentreValidator(_Validator):
    """daemon/config.py's validator, with the centre's paths (`notifications.…`)."""

    def err(self, path: str, msg: str) -> None:
        super().err(path.replace("daemon.notifications", "notifications", 1), msg)


def load_central(path: Path) -> CentralConfig:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CentralConfigError([f"{path}: {exc}"]) from None
    return parse_central(raw, base=path.parent)


def parse_central(raw: Any, base: Path = Path(".")) -> CentralConfig:
    errors: list[str] = []
    if not isinstance(raw, dict):
        raise CentralConfigError(["the file must be a mapping (brokers:, sites:, …)"])
    for key in raw:
        if key not in TOP:
            errors.append(f"{key}: unknown key (known: {', '.join(sorted(TOP))})")
    brokers = []
    urls = raw.get("brokers")
    if not isinstance(urls, list) or not urls:
        errors.append("brokers: a list of mqtt://host:port (or mqtts://) URLs, one per node")
        urls = []
    for i, url in enumerate(urls):
        b = _broker(f"brokers[{i}]", url, errors)
        if b is not None:
            brokers.append(b)
    mqtt = raw.get("mqtt") or {}
    if not isinstance(mqtt, dict):
        errors.append("mqtt: a mapping")
        mqtt = {}
    _unknown("mqtt", mqtt, MQTT_KEYS, errors)
    tls = mqtt.get("tls") or {}
    if not isinstance(tls, dict):
        errors.append("mqtt.tls: a mapping")
        tls = {}
    _unknown("mqtt.tls", tls, TLS_KEYS, errors)
    client_id = str(mqtt.get("client_id", "sealwatch-central"))
    password = None
    if mqtt.get("password_file") is not None:
        try:
            password = (base / str(mqtt["password_file"])).read_text().strip()
        except OSError as exc:
            errors.append(f"mqtt.password_file: {exc}")
    http = str(raw.get("http", "127.0.0.1:8090"))
    host, sep, port = http.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        errors.append(f"http: '{http}' is not host:port")
        host, port = "127.0.0.1", "8090"
    offline = raw.get("offline_after_s", 90)
    if isinstance(offline, bool) or not isinstance(offline, int | float) or not 1 <= offline:
        errors.append(f"offline_after_s: a number of seconds ≥ 1, got {offline!r}")
        offline = 90
    sites = _sites(raw.get("sites"), errors)
    timezone = str(raw.get("timezone", "Asia/Shanghai"))
    try:
        tzname("timezone", timezone)
    except ValueError as exc:
        errors.append(f"timezone: {exc}")
    notifications = None
    if raw.get("notifications") is not None:
        v = _CentreValidator()
        ids = frozenset(s.id for s in sites)
        notifications = parse_notifications(v, raw["notifications"], os.environ, None, ids)
        errors += v.errors
    data_dir = base / str(raw["data_dir"]) if raw.get("data_dir") else None
    if notifications is not None and data_dir is None:
        errors.append("data_dir: needed with notifications (the outbox is kept there)")
    if notifications is None and data_dir is not None:
        errors.append("data_dir: only the notification outbox is kept there: add notifications")
    access = _access(raw.get("access"), base, host.strip("[]") or "127.0.0.1", errors)
    if errors:
        raise CentralConfigError(errors)

    def path(key: str) -> Path | None:
        return base / str(tls[key]) if tls.get(key) else None

    return CentralConfig(
        name=str(raw.get("name", "sealwatch central")),
        brokers=tuple(brokers),
        client_id=client_id,
        username=str(mqtt["username"]) if mqtt.get("username") else None,
        password=password,
        ca_file=path("ca_file"),
        cert_file=path("cert_file"),
        key_file=path("key_file"),
        http_host=host.strip("[]") or "127.0.0.1",
        http_port=int(port),
        offline_after_s=float(offline),
        sites=sites,
        data_dir=data_dir,
        timezone=timezone,
        notifications=notifications,
        access=access,
    )


def _unknown(where: str, got: Mapping[str, Any], known: set[str], errors: list[str]) -> None:
    for key in got:
        if key not in known:
            errors.append(f"{where}.{key}: unknown key (known: {', '.join(sorted(known))})")


def _broker(where: str, url: Any, errors: list[str]) -> Broker | None:
    parts = urlsplit(str(url))
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        errors.append(f"{where}: '{url}' is not mqtt://host:port or mqtts://host:port")
        return None
    if parts.username or parts.password:
        errors.append(f"{where}: no logins in the URL; use mqtt.username and mqtt.password_file")
    try:
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    except ValueError:
        errors.append(f"{where}: bad port in '{url}'")
        return None
    return Broker(parts.hostname, port, parts.scheme == "mqtts")


def _sites(raw: Any, errors: list[str]) -> tuple[SiteRef, ...]:
    if not isinstance(raw, list) or not raw:
        errors.append("sites: a list of {id, name, lon, lat}")
        return ()
    out: list[SiteRef] = []
    seen: set[str] = set()
    for i, s in enumerate(raw):
        where = f"sites[{i}]"
        if not isinstance(s, dict):
            errors.append(f"{where}: a mapping {{id, name, lon, lat}}")
            continue
        _unknown(where, s, SITE_KEYS, errors)
        sid = s.get("id")
        if not isinstance(sid, str) or not SITE_ID.match(sid):
            errors.append(f"{where}.id: letters, digits, _ or - (the site file's site.id)")
            continue
        if sid in seen:
            errors.append(f"{where}.id: '{sid}' is listed twice")
        seen.add(sid)
        coords = []
        for key, lo, hi in (("lon", -180.0, 180.0), ("lat", -90.0, 90.0)):
            v = s.get(key)
            if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
                errors.append(f"{where}.{key}: degrees between {lo:g} and {hi:g}, got {v!r}")
                v = 0.0
            coords.append(float(v))
        out.append(SiteRef(sid, str(s.get("name") or sid), coords[0], coords[1]))
    return tuple(out)


def _access(raw: Any, base: Path, host: str, errors: list[str]) -> tuple[str, str] | None:
    """`access: {username, password_file | password_env}`: the login the page and the API ask
    for. Without it the centre answers on a loopback address only: its view names every site's
    alerts."""
    if raw is None:
        if not _loopback(host):
            errors.append(
                f"http: {host} is reachable from other machines: add access (username and "
                "password_file) or keep http on 127.0.0.1"
            )
        return None
    if not isinstance(raw, dict):
        errors.append("access: a mapping {username, password_file | password_env}")
        return None
    _unknown("access", raw, ACCESS_KEYS, errors)
    user = raw.get("username")
    if not isinstance(user, str) or not user or ":" in user:
        errors.append("access.username: a name without ':'")
        user = ""
    if isinstance(raw.get("password_file"), str):  # relative to this file, like every path
        raw = {**raw, "password_file": str(base / raw["password_file"])}
    password = read_secret(
        lambda where, msg: errors.append(f"{where}: {msg}"),
        "access",
        raw,
        os.environ,
        "password",
        required=True,
    )
    if password is not None and password and len(password) < 12:
        errors.append("access.password: at least 12 characters")
    return (user, password) if user and password else None


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
