"""`daemon.notifications` (daemon/notify/config.py): every key checked with its path and a
did-you-mean, secrets only from files or the environment, and a full example loads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from daemon.notify.config import Email, Sms, Webhook
from tests.test_config import errors, settings


def full(tmp_path: Path) -> dict[str, Any]:
    secret = tmp_path / "hook.secret"
    secret.write_text("s3cret\n")
    return {
        "notifications": {
            "lang": "zh",
            "retry_initial_s": 1,
            "retry_max_s": 60,
            "channels": {
                "ops-hook": {
                    "type": "webhook",
                    "url": "http://10.0.0.5:9000/h",
                    "secret_file": str(secret),
                },
                "mail": {"type": "email", "host": "mail.jb.example", "from": "sw@jb.example"},
                "sms": {
                    "type": "sms",
                    "url": "http://sms.jb.example/send",
                    "headers": {"Authorization": "Bearer {secret}"},
                    "json": {"to": "{phone}", "text": "{text}"},
                    "secret_env": "SW_SMS_TOKEN",
                },
            },
            "recipients": {
                "ops-room": {"channel": "ops-hook"},
                "chen-mail": {"channel": "mail", "to": "chen@jb.example", "badge": "S2001"},
                "chen-sms": {"channel": "sms", "to": "+8613800000000", "badge": "S2001"},
                "director": {"channel": "mail", "to": "dir@jb.example"},
            },
            "routes": [
                {"severity": ["critical", "major"], "notify": ["ops-room"]},
                {
                    "policy": "door-forced",
                    "zone": "work",
                    "notify": "chen-mail",
                    "states": ["raised"],
                },
            ],
            "escalation": {
                "operators": ["ops-room"],
                "levels": [{"after_s": 300, "notify": ["director"]}],
            },
        }
    }


def test_a_full_configuration_loads(tmp_path: Path) -> None:
    s = settings(full(tmp_path), {"SW_SMS_TOKEN": "tok"})
    n = s.notifications
    assert n is not None
    hook, mail, sms = n.channels["ops-hook"], n.channels["mail"], n.channels["sms"]
    assert isinstance(hook, Webhook) and hook.secret == "s3cret"
    assert "s3cret" not in repr(hook)
    assert isinstance(mail, Email) and (mail.port, mail.security) == (587, "starttls")
    assert isinstance(sms, Sms) and sms.secret == "tok"
    assert n.escalation is not None
    # the supervisor on duty: every recipient whose badge is a supervisor's
    assert n.escalation.supervisors == ("chen-mail", "chen-sms")
    assert n.routes[1].zone == frozenset({"work"}) and n.routes[1].states == {"raised"}
    assert s.warnings == ()  # SW_SMS_TOKEN is named by the site file: not "unknown"


def test_no_section_no_notifications() -> None:
    assert settings({}).notifications is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda n: n.update(retries=3), "daemon.notifications.retries: unknown key"),
        (
            lambda n: n["channels"]["mail"].update(securty="tls"),
            "daemon.notifications.channels.mail.securty: unknown key (did you mean 'security'?)",
        ),
        (
            lambda n: n["channels"]["mail"].update(type="mial"),
            "daemon.notifications.channels.mail.type: 'mial' is not one of webhook, email, sms "
            "(did you mean 'email'?)",
        ),
        (
            lambda n: n["recipients"]["director"].update(channel="mali"),
            "daemon.notifications.recipients.director.channel: no channel 'mali' "
            "(did you mean 'mail'?)",
        ),
        (
            lambda n: n["routes"][1].update(policy="door-forcd"),
            "daemon.notifications.routes[1].policy: no policy 'door-forcd' "
            "(did you mean 'door-forced'?)",
        ),
        (
            lambda n: n["routes"][1].update(zone=["wrok"]),
            "daemon.notifications.routes[1].zone[0]: no zone 'wrok' (did you mean 'work'?)",
        ),
        (
            lambda n: n["routes"][0].update(notify=["ops-rom"]),
            "daemon.notifications.routes[0].notify[0]: no recipient 'ops-rom' "
            "(did you mean 'ops-room'?)",
        ),
        (
            lambda n: n["recipients"]["chen-mail"].update(badge="S2010"),
            "daemon.notifications.recipients.chen-mail.badge: no person with badge 'S2010'",
        ),
        (
            lambda n: n["escalation"]["levels"][0].update(after_s=0),
            "daemon.notifications.escalation.levels[0].after_s: expected a number from 1 to "
            "604800, got 0",
        ),
        (
            lambda n: n["escalation"].update(supervisors=["O4001"]),
            "daemon.notifications.escalation.supervisors[0]: no supervisor with badge 'O4001'",
        ),
        (
            lambda n: n["channels"]["ops-hook"].update(secret="inline"),
            "daemon.notifications.channels.ops-hook.secret: unknown key (did you mean "
            "'secret_env'?)",
        ),
        (
            lambda n: n["channels"]["sms"]["json"].update(to="{phnoe}"),
            "daemon.notifications.channels.sms.json.to: unknown placeholder {phnoe} (did you "
            "mean 'phone'?)",
        ),
        (
            lambda n: n["recipients"]["chen-sms"].update(to="chen@jb.example"),
            "daemon.notifications.recipients.chen-sms.to: expected a phone number",
        ),
        (
            lambda n: n["routes"][0].update(sites=["works-a"]),
            "daemon.notifications.routes[0].sites: only at the centre",
        ),
    ],
)
def test_bad_keys_are_refused_with_their_path(tmp_path: Path, change: Any, expected: str) -> None:
    cfg = full(tmp_path)
    change(cfg["notifications"])
    got = errors(cfg, {"SW_SMS_TOKEN": "tok"})
    assert any(e.startswith(expected) for e in got), got


def test_secrets_come_from_a_file_or_the_environment(tmp_path: Path) -> None:
    cfg = full(tmp_path)
    got = errors(cfg, {})
    assert got == [
        "daemon.notifications.channels.sms.secret_env: the environment variable SW_SMS_TOKEN "
        "is not set"
    ]
    del cfg["notifications"]["channels"]["ops-hook"]["secret_file"]
    assert (
        "daemon.notifications.channels.ops-hook: needs secret_file or secret_env (the secret "
        "is never kept in the site file)"
    ) in errors(cfg, {"SW_SMS_TOKEN": "tok"})


def test_a_chain_needs_a_supervisor_and_plain_smtp_no_password(tmp_path: Path) -> None:
    cfg = full(tmp_path)
    n = cfg["notifications"]
    for r in n["recipients"].values():
        r.pop("badge", None)
    pw = tmp_path / "pw"
    pw.write_text("x")
    n["channels"]["mail"].update(security="plain", username="sw", password_file=str(pw))
    got = errors(cfg, {"SW_SMS_TOKEN": "tok"})
    assert any(
        e.startswith("daemon.notifications.escalation.supervisors: no recipient") for e in got
    )
    assert (
        "daemon.notifications.channels.mail.security: plain would send the password "
        "unencrypted: use starttls or tls"
    ) in got
