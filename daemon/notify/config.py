"""`daemon.notifications`: channels, recipients, routes and the escalation chain, checked.

Called by daemon/config.py with its validator (so every error reads `path: message`, with a
did-you-mean for near misses). Secrets — a webhook's HMAC key, an SMTP password, an SMS
gateway's token — never sit in the site file: `*_file` names a file, `*_env` an environment
variable. Every key accepted here is used by the sink; docs/notifications.md lists them.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from daemon.secrets import read_secret
from policies.engine import RULES
from policies.schema import enum as _enum
from policies.schema import ident as _ident
from policies.schema import int_range as _int_range
from policies.schema import number_range as _range
from policies.schema import suggest, tname
from policies.schema import text as _text
from policies.site import Site

Converter = Any  # (path, value) -> value, as in daemon/config.py

CHANNEL_TYPES = ("webhook", "email", "sms")
LANGS = ("zh", "en")
SEVERITIES = ("critical", "major", "minor")
STATES = ("raised", "escalated", "acknowledged", "cleared", "shelved", "unshelved")
DEFAULT_ROUTE_STATES = frozenset({"raised", "escalated"})
SECURITY = ("starttls", "tls", "plain")
SMS_FIELDS = ("phone", "text", "secret", "alert_id", "delivery_id")
POLICY_IDS = frozenset(r.policy for r in RULES)


class Validator(Protocol):
    """What daemon/config.py's validator offers (see `_Validator` there)."""

    errors: list[str]

    def err(self, path: str, msg: str) -> None: ...

    def mapping(self, path: str, value: Any, spec: Mapping[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Webhook:
    name: str
    url: str
    secret: str = field(repr=False)
    timeout_s: float = 10.0
    type: str = "webhook"


@dataclass(frozen=True, slots=True)
class Email:
    name: str
    host: str
    port: int
    security: str  # starttls | tls | plain (plain only where said so: a local relay, tests)
    sender: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None  # trust this CA (e.g. the site's own) instead of the system's
    lang: str = "zh"
    timeout_s: float = 10.0
    type: str = "email"


@dataclass(frozen=True, slots=True)
class Sms:
    """An HTTP SMS gateway: every provider differs, so the request is a template."""

    name: str
    url: str
    method: str = "POST"
    headers: tuple[tuple[str, str], ...] = ()
    json: Any = None  # a JSON body: strings in it are templates
    form: tuple[tuple[str, str], ...] | None = None  # a form body of templates
    body: str | None = None  # a raw body template
    secret: str | None = field(default=None, repr=False)
    lang: str = "zh"
    max_chars: int = 300
    timeout_s: float = 10.0
    type: str = "sms"


Channel = Webhook | Email | Sms


@dataclass(frozen=True, slots=True)
class Recipient:
    name: str
    channel: str
    to: str = ""  # the mail address or phone number; a webhook needs none
    badge: str | None = None  # the site person this is, for "the supervisor on duty"


@dataclass(frozen=True, slots=True)
class Route:
    notify: tuple[str, ...]
    severity: frozenset[str] | None = None  # None: any
    policy: frozenset[str] | None = None
    zone: frozenset[str] | None = None
    seal: frozenset[str] | None = None
    sites: frozenset[str] | None = None  # at the centre only: the sites it came from
    subject: frozenset[str] | None = None
    states: frozenset[str] = DEFAULT_ROUTE_STATES


@dataclass(frozen=True, slots=True)
class Level:
    after_s: float
    notify: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Escalation:
    """Step 0: `operators` when a critical alert is raised; step 1: `supervisors` when the
    engine escalates it (ack_escalation_s); steps 2…: `levels`, each `after_s` after the step
    before, while nobody acknowledged it."""

    operators: tuple[str, ...]
    supervisors: tuple[str, ...]
    levels: tuple[Level, ...] = ()

    def recipients(self, level: int) -> tuple[str, ...]:
        if level == 0:
            return self.operators
        if level == 1:
            return self.supervisors
        return self.levels[level - 2].notify


@dataclass(frozen=True, slots=True)
class Notifications:
    channels: Mapping[str, Channel]
    recipients: Mapping[str, Recipient]
    routes: tuple[Route, ...] = ()
    escalation: Escalation | None = None
    lang: str = "zh"
    retry_initial_s: float = 2.0
    retry_max_s: float = 300.0
    keep_sent_days: float = 30.0
    env_names: frozenset[str] = frozenset()  # the variables it reads secrets from


TOP_KEYS: dict[str, Converter] = {
    "lang": _enum(LANGS),
    "retry_initial_s": _range(0.01, 3600.0),
    "retry_max_s": _range(0.1, 86_400.0),
    "keep_sent_days": _range(1.0, 3650.0),
    "channels": lambda _p, v: v,
    "recipients": lambda _p, v: v,
    "routes": lambda _p, v: v,
    "escalation": lambda _p, v: v,
}
_COMMON = {"type": _enum(CHANNEL_TYPES), "timeout_s": _range(0.1, 300.0)}
_SECRET = {"secret_file": _text, "secret_env": _text}
WEBHOOK_KEYS: dict[str, Converter] = {**_COMMON, **_SECRET, "url": _text}
EMAIL_KEYS: dict[str, Converter] = {
    **_COMMON,
    "host": _text,
    "port": _int_range(1, 65535),
    "security": _enum(SECURITY),
    "from": _text,
    "username": _text,
    "password_file": _text,
    "password_env": _text,
    "ca_file": _text,
    "lang": _enum(LANGS),
}
SMS_KEYS: dict[str, Converter] = {
    **_COMMON,
    **_SECRET,
    "url": _text,
    "method": _enum(("POST", "GET", "PUT")),
    "headers": lambda _p, v: v,
    "json": lambda _p, v: v,
    "form": lambda _p, v: v,
    "body": _text,
    "lang": _enum(LANGS),
    "max_chars": _int_range(20, 2000),
}
KEYS_BY_TYPE = {"webhook": WEBHOOK_KEYS, "email": EMAIL_KEYS, "sms": SMS_KEYS}
RECIPIENT_KEYS: dict[str, Converter] = {"channel": _text, "to": _text, "badge": _text}
ROUTE_KEYS: dict[str, Converter] = {
    k: (lambda _p, v: v)
    for k in ("severity", "policy", "zone", "seal", "subject", "states", "notify", "sites")
}
ESCALATION_KEYS: dict[str, Converter] = {
    "operators": lambda _p, v: v,
    "supervisors": lambda _p, v: v,
    "levels": lambda _p, v: v,
}
LEVEL_KEYS: dict[str, Converter] = {"after_s": _range(1.0, 7 * 86_400.0), "notify": lambda _p, v: v}


def parse_notifications(
    v: Validator,
    raw: Any,
    env: Mapping[str, str],
    site: Site | None,
    sites: frozenset[str] = frozenset(),
) -> Notifications | None:
    """The `daemon.notifications` section, or None when it is absent; problems go to `v`.

    `site` None: the centre's `notifications:` (CENTRAL.yaml, docs/central.md), where there is
    no site file: routes filter by `sites` (ids among `sites`) instead of `zone`, and
    `escalation.supervisors` names recipients, as there are no badges."""
    if raw is None:
        return None
    top = v.mapping("daemon.notifications", raw, TOP_KEYS)
    if not isinstance(raw, dict):
        return None
    p = "daemon.notifications"
    env_names: set[str] = set()
    channels = _channels(v, top.get("channels"), env, env_names, top.get("lang", "zh"))
    recipients = _recipients(v, top.get("recipients"), channels, site)
    routes = tuple(_routes(v, top.get("routes"), recipients, site, sites))
    escalation = _escalation(v, top.get("escalation"), recipients, site)
    if not channels and "channels" not in top:
        v.err(f"{p}.channels", "at least one channel is needed (webhook, email or sms)")
    if recipients and not routes and escalation is None:
        v.err(p, "no routes and no escalation: nothing would ever be sent")
    if top.get("retry_initial_s", 2.0) > top.get("retry_max_s", 300.0):
        v.err(f"{p}.retry_initial_s", "must not exceed retry_max_s")
    return Notifications(
        channels=channels,
        recipients=recipients,
        routes=routes,
        escalation=escalation,
        lang=top.get("lang", "zh"),
        retry_initial_s=top.get("retry_initial_s", 2.0),
        retry_max_s=top.get("retry_max_s", 300.0),
        keep_sent_days=top.get("keep_sent_days", 30.0),
        env_names=frozenset(env_names),
    )


# -- channels ------------------------------------------------------------------------------------


def _channels(
    v: Validator, raw: Any, env: Mapping[str, str], env_names: set[str], lang: str
) -> dict[str, Channel]:
    p = "daemon.notifications.channels"
    out: dict[str, Channel] = {}
    if raw is None:
        return out
    if not isinstance(raw, dict) or not raw:
        v.err(p, f"expected a mapping of channel names, got {tname(raw) if raw else 'nothing'}")
        return out
    for name, item in raw.items():
        cp = f"{p}.{name}"
        if not _name_ok(v, cp, name):
            continue
        kind = item.get("type") if isinstance(item, dict) else None
        if kind not in CHANNEL_TYPES:
            if not isinstance(item, dict):
                v.err(cp, f"expected a mapping, got {tname(item)}")
            elif kind is None:
                v.err(f"{cp}.type", f"missing: one of {', '.join(CHANNEL_TYPES)}")
            else:
                v.err(
                    f"{cp}.type",
                    f"'{kind}' is not one of {', '.join(CHANNEL_TYPES)}"
                    f"{suggest(str(kind), CHANNEL_TYPES)}",
                )
            continue
        # (kept even with errors — none of it is used then — so that recipients naming it
        # are not reported as well)
        c = v.mapping(cp, item, KEYS_BY_TYPE[kind])
        if kind == "webhook":
            url = _url(v, cp, c)
            secret = read_secret(v.err, cp, c, env, "secret", required=True, env_names=env_names)
            out[name] = Webhook(name, url, secret or "", c.get("timeout_s", 10.0))
        elif kind == "email":
            email = _email(v, cp, c, env, env_names, lang, name)
            if email is not None:
                out[name] = email
        else:
            sms = _sms(v, cp, c, env, env_names, lang, name)
            out[name] = sms
    return out


def _url(v: Validator, cp: str, c: dict[str, Any]) -> str:
    url = c.get("url")
    if url is None:
        v.err(f"{cp}.url", "missing")
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        v.err(f"{cp}.url", f"'{url}' is not an http:// or https:// URL")
    return str(url)


def _email(
    v: Validator,
    cp: str,
    c: dict[str, Any],
    env: Mapping[str, str],
    env_names: set[str],
    lang: str,
    name: str,
) -> Email | None:
    for key in ("host", "from"):
        if key not in c:
            v.err(f"{cp}.{key}", "missing")
    security = c.get("security", "starttls")
    if "username" in c and "password_file" not in c and "password_env" not in c:
        v.err(cp, "username needs password_file or password_env")
    password = read_secret(v.err, cp, c, env, "password", required=False, env_names=env_names)
    if password is not None and "username" not in c:
        v.err(cp, "a password needs a username")
    if password is not None and security == "plain":
        v.err(f"{cp}.security", "plain would send the password unencrypted: use starttls or tls")
    ca = c.get("ca_file")
    if ca is not None and not Path(ca).is_file():
        v.err(f"{cp}.ca_file", f"no such file: {ca}")
    if ca is not None and security == "plain":
        v.err(f"{cp}.ca_file", "unused with security: plain")
    if "host" not in c or "from" not in c:
        return None
    return Email(
        name=name,
        host=c["host"],
        port=c.get("port", {"starttls": 587, "tls": 465, "plain": 25}[security]),
        security=security,
        sender=c["from"],
        username=c.get("username"),
        password=password,
        ca_file=Path(ca) if ca is not None else None,
        lang=c.get("lang", lang),
        timeout_s=c.get("timeout_s", 10.0),
    )


def _sms(
    v: Validator,
    cp: str,
    c: dict[str, Any],
    env: Mapping[str, str],
    env_names: set[str],
    lang: str,
    name: str,
) -> Sms:
    url = _url(v, cp, c)
    _template(v, f"{cp}.url", url)
    secret = read_secret(v.err, cp, c, env, "secret", required=False, env_names=env_names)
    headers: list[tuple[str, str]] = []
    raw_headers = c.get("headers", {})
    if not isinstance(raw_headers, dict):
        v.err(f"{cp}.headers", f"expected a mapping, got {tname(raw_headers)}")
        raw_headers = {}
    for k, val in raw_headers.items():
        if not isinstance(val, str):
            v.err(f"{cp}.headers.{k}", f"expected text, got {tname(val)}")
            continue
        _template(v, f"{cp}.headers.{k}", val)
        headers.append((str(k), val))
    bodies = [k for k in ("json", "form", "body") if k in c]
    if len(bodies) > 1:
        v.err(cp, f"give one body: {' or '.join(bodies)}")
    if not bodies and c.get("method", "POST") != "GET":
        v.err(cp, "needs a body template: json, form or body (or method: GET with the url)")
    if "json" in c:
        _walk_json(v, f"{cp}.json", c["json"])
    form: tuple[tuple[str, str], ...] | None = None
    if "form" in c:
        if not isinstance(c["form"], dict):
            v.err(f"{cp}.form", f"expected a mapping, got {tname(c['form'])}")
        else:
            for k, val in c["form"].items():
                if not isinstance(val, str):
                    v.err(f"{cp}.form.{k}", f"expected text, got {tname(val)}")
                else:
                    _template(v, f"{cp}.form.{k}", val)
            form = tuple((str(k), str(val)) for k, val in c["form"].items())
    if "body" in c:
        _template(v, f"{cp}.body", c["body"])
    uses = " ".join([url, c.get("body") or "", repr(c.get("json")), repr(form), repr(headers)])
    if "{secret}" in uses and secret is None:
        v.err(cp, "the template uses {secret}: give secret_file or secret_env")
    if "{phone}" not in uses or "{text}" not in uses:
        v.err(cp, "the request must carry {phone} and {text} somewhere (url, headers or body)")
    return Sms(
        name=name,
        url=url,
        method=c.get("method", "POST"),
        headers=tuple(headers),
        json=c.get("json"),
        form=form,
        body=c.get("body"),
        secret=secret,
        lang=c.get("lang", lang),
        max_chars=c.get("max_chars", 300),
        timeout_s=c.get("timeout_s", 10.0),
    )


def _template(v: Validator, path: str, text: str) -> None:
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        v.err(path, f"bad template ({exc}); write {{{{ and }}}} for literal braces")
        return
    for f in fields:
        if f not in SMS_FIELDS:
            v.err(
                path,
                f"unknown placeholder {{{f}}}{suggest(f, SMS_FIELDS)}; "
                f"known: {', '.join('{' + x + '}' for x in SMS_FIELDS)}",
            )


def _walk_json(v: Validator, path: str, value: Any) -> None:
    if isinstance(value, str):
        _template(v, path, value)
    elif isinstance(value, dict):
        for k, x in value.items():
            _walk_json(v, f"{path}.{k}", x)
    elif isinstance(value, list):
        for i, x in enumerate(value):
            _walk_json(v, f"{path}[{i}]", x)


# -- recipients, routes, escalation --------------------------------------------------------------


def _recipients(
    v: Validator, raw: Any, channels: Mapping[str, Channel], site: Site | None
) -> dict[str, Recipient]:
    p = "daemon.notifications.recipients"
    out: dict[str, Recipient] = {}
    if raw is None:
        return out
    if not isinstance(raw, dict):
        v.err(p, f"expected a mapping of recipient names, got {tname(raw)}")
        return out
    for name, item in raw.items():
        rp = f"{p}.{name}"
        if not _name_ok(v, rp, name):
            continue
        r = v.mapping(rp, item, RECIPIENT_KEYS)
        if not isinstance(item, dict):
            continue
        ch = r.get("channel")
        if ch is None:
            v.err(f"{rp}.channel", "missing")
            continue
        channel = channels.get(ch)
        if channel is None:
            v.err(f"{rp}.channel", f"no channel '{ch}'{suggest(ch, channels)}")
            continue
        to = r.get("to", "")
        if channel.type == "webhook" and to:
            v.err(f"{rp}.to", "a webhook recipient has no address (the channel's url is it)")
        elif channel.type == "email" and "@" not in to:
            v.err(f"{rp}.to", f"expected a mail address, got {to or 'nothing'!r}")
        elif channel.type == "sms" and not to.lstrip("+").isdigit():
            v.err(f"{rp}.to", f"expected a phone number (digits, optional +), got {to!r}")
        badge = r.get("badge")
        if badge is not None and site is None:
            v.err(
                f"{rp}.badge",
                "no badges at the centre: name the supervisors' recipients in "
                "escalation.supervisors",
            )
        elif badge is not None and site is not None and badge not in site.people:
            v.err(f"{rp}.badge", f"no person with badge '{badge}'{suggest(badge, site.people)}")
        out[name] = Recipient(name, ch, to, badge)
    return out


def _choices(
    v: Validator, path: str, value: Any, known: Mapping[str, Any] | frozenset[str] | None, what: str
) -> frozenset[str] | None:
    """One name or a list of names; each must be known (when `known` is given)."""
    items = value if isinstance(value, list) else [value]
    out = set()
    for i, x in enumerate(items):
        ip = f"{path}[{i}]" if isinstance(value, list) else path
        try:
            name = _ident(ip, x)
        except ValueError as exc:
            v.err(ip, str(exc))
            continue
        if known is not None and name not in known:
            v.err(ip, f"no {what} '{name}'{suggest(name, known)}")
            continue
        out.add(name)
    if isinstance(value, list) and not value:
        v.err(path, "an empty list matches nothing: leave the key out to match any")
    return frozenset(out)


def _notify(
    v: Validator, path: str, value: Any, recipients: Mapping[str, Recipient]
) -> tuple[str, ...]:
    if value is None:
        v.err(path, "missing: the recipients to notify")
        return ()
    names = _choices(v, path, value, recipients, "recipient") or frozenset()
    items = value if isinstance(value, list) else [value]
    return tuple(dict.fromkeys(str(x) for x in items if str(x) in names))


def _routes(
    v: Validator,
    raw: Any,
    recipients: Mapping[str, Recipient],
    site: Site | None,
    sites: frozenset[str],
) -> list[Route]:
    p = "daemon.notifications.routes"
    out: list[Route] = []
    if raw is None:
        return out
    if not isinstance(raw, list):
        v.err(p, f"expected a list of routes, got {tname(raw)}")
        return out
    for i, item in enumerate(raw):
        rp = f"{p}[{i}]"
        r = v.mapping(rp, item, ROUTE_KEYS)
        if not isinstance(item, dict):
            continue
        if site is None and "zone" in r:
            v.err(f"{rp}.zone", "no zones at the centre (it has no site file): route by sites")
        if site is not None and "sites" in r:
            v.err(f"{rp}.sites", "only at the centre (CENTRAL.yaml): a site routes its own")
        known: dict[str, Any] = {
            "severity": frozenset(SEVERITIES),
            "policy": POLICY_IDS,
            "zone": site.zones if site is not None else None,
            "sites": sites if site is None else None,
            "seal": None,  # seals may also be started at run time
            "subject": None,
            "states": frozenset(STATES),
        }
        what = {"states": "state", "subject": "subject", "seal": "seal", "sites": "site"}
        got: dict[str, frozenset[str] | None] = {}
        for key, names in known.items():
            if key in r:
                got[key] = _choices(v, f"{rp}.{key}", r[key], names, what.get(key, key))
        out.append(
            Route(
                notify=_notify(v, f"{rp}.notify", r.get("notify"), recipients),
                severity=got.get("severity"),
                policy=got.get("policy"),
                zone=got.get("zone"),
                seal=got.get("seal"),
                sites=got.get("sites"),
                subject=got.get("subject"),
                states=got.get("states") or DEFAULT_ROUTE_STATES,
            )
        )
    return out


def _escalation(
    v: Validator, raw: Any, recipients: Mapping[str, Recipient], site: Site | None
) -> Escalation | None:
    p = "daemon.notifications.escalation"
    if raw is None:
        return None
    e = v.mapping(p, raw, ESCALATION_KEYS)
    if not isinstance(raw, dict):
        return None
    operators = _notify(v, f"{p}.operators", e.get("operators"), recipients)
    if site is None:  # the centre: no badges, the supervisors are recipients by name
        supervisors = _notify(v, f"{p}.supervisors", e.get("supervisors"), recipients)
    else:
        supervisors = _supervisors(v, p, e.get("supervisors"), recipients, site)
    levels: list[Level] = []
    raw_levels = e.get("levels", [])
    if not isinstance(raw_levels, list):
        v.err(f"{p}.levels", f"expected a list, got {tname(raw_levels)}")
        raw_levels = []
    for i, item in enumerate(raw_levels):
        lp = f"{p}.levels[{i}]"
        lv = v.mapping(lp, item, LEVEL_KEYS)
        if not isinstance(item, dict):
            continue
        if "after_s" not in lv and "after_s" not in item:
            v.err(f"{lp}.after_s", "missing: seconds after the step before")
        levels.append(
            Level(lv.get("after_s", 0.0), _notify(v, f"{lp}.notify", lv.get("notify"), recipients))
        )
    return Escalation(operators, supervisors, tuple(levels))


def _supervisors(
    v: Validator, p: str, raw: Any, recipients: Mapping[str, Recipient], site: Site
) -> tuple[str, ...]:
    """The recipients of "the supervisor on duty": every recipient whose badge is a person of
    role `supervisor`, or only those of the badges listed in `supervisors`."""
    supervisors = frozenset(b for b, person in site.people.items() if person.role == "supervisor")
    chosen: frozenset[str]
    if raw is not None:
        chosen = (
            _choices(v, f"{p}.supervisors", raw, supervisors, "supervisor with badge")
            or frozenset()
        )
    else:
        chosen = supervisors
    names = tuple(r.name for r in recipients.values() if r.badge in chosen)
    if not names:
        v.err(
            f"{p}.supervisors",
            "no recipient has the badge of a supervisor (a person of role supervisor): give "
            "a supervisor's recipient `badge:` so the chain can reach the supervisor on duty",
        )
    return names


def _name_ok(v: Validator, path: str, name: Any) -> bool:
    try:
        _ident(path, name)
    except ValueError as exc:
        v.err(path, str(exc))
        return False
    return True
