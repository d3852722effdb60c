"""Each channel against a real receiver: a webhook and an SMS gateway on a real aiohttp server,
mail on a real aiosmtpd server (plain, and STARTTLS with a certificate made in the test)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest

from daemon.notify import channels
from daemon.notify.chain import Step
from daemon.notify.config import Email, Sms, Webhook
from daemon.notify.outbox import Pending
from daemon.notify.routing import message, zone_map, zones_of
from tests.support.engine import reference_site
from tests.support.receivers import HttpReceiver, SmtpServer, self_signed

LINE: dict[str, Any] = {
    "id": 42,
    "ts": "2027-05-25T14:00:00+08:00",
    "alert_id": "0123456789abcdef",
    "policy": "door-forced",
    "subject": "fire-exit-north",
    "severity": "critical",
    "state": "raised",
    "clause": "EXAM-2.7.5",
    "message": "door fire-exit-north forced open",
}


def pending(address: str = "", step: Step | None = None) -> Pending:
    site = reference_site()
    zones = zones_of(zone_map(site), "fire-exit-north")
    msg = message(site, LINE, zones, ["gk2027-a"], "0123456789abcdef-42", step)
    return Pending(1, "0123456789abcdef-42", "ch", address, LINE["alert_id"], ("r1",), msg, 0)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def receiver() -> AsyncIterator[HttpReceiver]:
    r = await HttpReceiver().start()
    yield r
    await r.stop()


# -- webhook ---------------------------------------------------------------------------------------


async def test_webhook_posts_signed_json_with_a_stable_delivery_id(
    receiver: HttpReceiver, http: aiohttp.ClientSession
) -> None:
    ch = Webhook("hook", receiver.url, "s3cret")
    await channels.send(ch, pending(), http)
    await channels.send(ch, pending(), http)  # a retry: same bytes, same id
    first, second = receiver.requests
    assert first.body == second.body
    expected = hmac.new(b"s3cret", first.body, hashlib.sha256).hexdigest()
    assert first.headers["X-Sealwatch-Signature"] == f"sha256={expected}"
    assert first.headers["Idempotency-Key"] == "0123456789abcdef-42"
    body = json.loads(first.body)
    assert body["delivery_id"] == "0123456789abcdef-42"
    assert body["alert"] == LINE
    assert body["site"]["id"] == "jb-print" and body["seals"] == ["gk2027-a"]
    assert set(body["zones"]) == {"work", "belt"}  # a door is in both of its zones


async def test_webhook_failure_is_a_send_error_without_the_secret(
    receiver: HttpReceiver, http: aiohttp.ClientSession
) -> None:
    receiver.status = 503
    with pytest.raises(channels.SendError, match="HTTP 503") as err:
        await channels.send(Webhook("hook", receiver.url, "s3cret"), pending(), http)
    assert "s3cret" not in str(err.value)
    await receiver.stop()
    with pytest.raises(channels.SendError, match=r"Client\w*Error"):
        await channels.send(Webhook("hook", receiver.url, "s3cret"), pending(), http)


# -- SMS gateway --------------------------------------------------------------------------------


async def test_sms_gateway_json_template(
    receiver: HttpReceiver, http: aiohttp.ClientSession
) -> None:
    ch = Sms(
        "sms",
        receiver.url + "?to={phone}",
        headers=(("Authorization", "Bearer {secret}"),),
        json={"to": "{phone}", "content": "{text}", "ref": "{delivery_id}", "n": 1},
        secret="tok",
        max_chars=120,
    )
    await channels.send(ch, pending("+8613800000000"), http)
    (req,) = receiver.requests
    assert req.method == "POST" and req.query == {"to": "+8613800000000"}
    assert req.headers["Authorization"] == "Bearer tok"
    body = json.loads(req.body)
    assert body["to"] == "+8613800000000" and body["ref"] == "0123456789abcdef-42"
    assert body["n"] == 1
    text = body["content"]
    assert len(text) <= 120
    assert text.startswith("[Jiangbei exam printing works] 严重触发")
    assert "门 fire-exit-north 未经授权被强行打开" in text


async def test_sms_gateway_form_template_in_english(
    receiver: HttpReceiver, http: aiohttp.ClientSession
) -> None:
    ch = Sms("sms", receiver.url, form=(("dest", "{phone}"), ("msg", "{text}")), lang="en")
    await channels.send(ch, pending("13800000000"), http)
    (req,) = receiver.requests
    form = parse_qs(req.body.decode())
    assert form["dest"] == ["13800000000"]
    assert form["msg"][0].startswith("[Jiangbei exam printing works] Critical raised")
    receiver.status = 500
    with pytest.raises(channels.SendError, match="HTTP 500"):
        await channels.send(ch, pending("13800000000"), http)


# -- e-mail ---------------------------------------------------------------------------------------


def email_channel(port: int, **kw: Any) -> Email:
    return Email(
        "mail", "127.0.0.1", port, kw.pop("security", "plain"), "sealwatch@jb.example", **kw
    )


async def test_mail_in_chinese_over_plain_smtp(http: aiohttp.ClientSession) -> None:
    step = Step("0123456789abcdef", 1, 0, ("chen",), 42, "escalated")
    with SmtpServer() as smtp:
        await channels.send(email_channel(smtp.port), pending("chen@jb.example", step), http)
        (mail,) = smtp.mails
    assert mail.rcpt_tos == ["chen@jb.example"] and not mail.tls
    subject = str(mail.message["Subject"])
    assert (
        subject == "【严重·触发·升级1级】Jiangbei exam printing works：door-forced fire-exit-north"
    )
    assert mail.message["Message-ID"] == "<0123456789abcdef-42@jb.example>"
    body = mail.message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "门 fire-exit-north 未经授权被强行打开" in text
    assert "时间：2027-05-25 14:00:00 (Asia/Shanghai)" in text
    assert "条款：EXAM-2.7.5" in text and "区域：belt，work" in text
    assert "升级第 1 级：值班主管" in text


async def test_mail_over_starttls_with_the_sites_own_ca(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    cert, key = self_signed(tmp_path)
    with SmtpServer(tls=(cert, key)) as smtp:
        ch = email_channel(smtp.port, security="starttls", ca_file=cert, lang="en")
        await channels.send(ch, pending("chen@jb.example"), http)
        (mail,) = smtp.mails
        assert mail.tls
        # (a long ASCII subject is folded onto a continuation line: unfolded, it starts
        # with the fold's blank, which mail readers drop)
        assert str(mail.message["Subject"]).strip().startswith("[Critical raised] Jiangbei")
        # A server whose certificate the channel does not trust is refused, not used.
        untrusted = email_channel(smtp.port, security="starttls")
        with pytest.raises(channels.SendError, match="CERTIFICATE_VERIFY_FAILED"):
            await channels.send(untrusted, pending("chen@jb.example"), http)
    with SmtpServer() as plain_only:
        # starttls configured, server without it: refused rather than sent in clear text
        ch = email_channel(plain_only.port, security="starttls", ca_file=cert)
        with pytest.raises(channels.SendError, match="STARTTLS"):
            await channels.send(ch, pending("chen@jb.example"), http)
        assert plain_only.mails == []
