"""Sending one delivery: a webhook POST, a mail over SMTP, a request to an SMS gateway.

Each `send` returns when the receiver took it and raises `SendError` (with a short reason that
never contains a secret) when it did not; the sink retries. A webhook body is the message
model as JSON, signed: `X-Sealwatch-Signature: sha256=HEX` is HMAC-SHA256 of the exact body
bytes with the channel's secret; `Idempotency-Key` and the body's `delivery_id` are the same
on every retry. Mail goes through stdlib smtplib in a worker thread (STARTTLS, implicit TLS,
or plain where configured so), as a UTF-8 message whose subject is RFC 2047 encoded.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import orjson

from daemon.notify import render
from daemon.notify.config import Channel, Email, Sms, Webhook
from daemon.notify.outbox import Pending

USER_AGENT = "sealwatch-notify/1"


class SendError(Exception):
    """The receiver did not take the delivery; `str()` says why (no secrets)."""


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(item: Pending) -> bytes:
    return orjson.dumps({**item.message, "recipients": list(item.recipients)})


async def send(channel: Channel, item: Pending, http: aiohttp.ClientSession) -> None:
    if isinstance(channel, Webhook):
        await _webhook(channel, item, http)
    elif isinstance(channel, Email):
        await asyncio.to_thread(_mail, channel, item)
    else:
        await _sms(channel, item, http)


async def _request(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    timeout_s: float,
    *,
    data: bytes | str | None = None,
    headers: dict[str, str],
) -> None:
    try:
        async with http.request(
            method,
            url,
            data=data,
            headers={"User-Agent": USER_AGENT, **headers},
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            allow_redirects=False,
        ) as resp:
            await resp.read()
            if not 200 <= resp.status < 300:
                raise SendError(f"HTTP {resp.status} {resp.reason or ''}".strip())
    except TimeoutError:
        raise SendError(f"no answer in {timeout_s:g} s") from None
    except aiohttp.ClientError as exc:
        raise SendError(_short(exc)) from None


async def _webhook(ch: Webhook, item: Pending, http: aiohttp.ClientSession) -> None:
    body = webhook_body(item)
    await _request(
        http,
        "POST",
        ch.url,
        ch.timeout_s,
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Sealwatch-Signature": signature(ch.secret, body),
            "X-Sealwatch-Delivery": item.delivery_id,
            "Idempotency-Key": item.delivery_id,
        },
    )


def mail_message(ch: Email, item: Pending) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = render.subject_line(ch.lang, item.message)
    msg["From"] = ch.sender
    msg["To"] = item.address
    msg["Date"] = formatdate(localtime=False)
    # the same on every retry: a mail client shows a repeated delivery once
    domain = ch.sender.rpartition("@")[2] or "sealwatch"
    msg["Message-ID"] = f"<{item.delivery_id}@{domain}>"
    msg["X-Sealwatch-Delivery"] = item.delivery_id
    msg.set_content(render.body_text(ch.lang, item.message), charset="utf-8")
    return msg


def _mail(ch: Email, item: Pending) -> None:
    msg = mail_message(ch, item)
    context = ssl.create_default_context(cafile=str(ch.ca_file) if ch.ca_file else None)
    try:
        if ch.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                ch.host, ch.port, timeout=ch.timeout_s, context=context
            )
        else:
            client = smtplib.SMTP(ch.host, ch.port, timeout=ch.timeout_s)
        with client:
            if ch.security == "starttls":
                client.starttls(context=context)
            if ch.username is not None and ch.password is not None:
                client.login(ch.username, ch.password)
            refused = client.send_message(msg)
            if refused:
                raise SendError(f"refused recipients: {', '.join(refused)}")
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else ""
        raise SendError(f"SMTP {exc.smtp_code} {text[:200]}".strip()) from None
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise SendError(_short(exc)) from None


def sms_request(ch: Sms, item: Pending) -> tuple[str, dict[str, str], bytes | str | None]:
    """The gateway request for one SMS: (url, headers, body), the templates filled in."""
    fields = {
        "phone": item.address,
        "text": render.sms_text(ch.lang, item.message, ch.max_chars),
        "secret": ch.secret or "",
        "alert_id": item.alert_id,
        "delivery_id": item.delivery_id,
    }
    url = ch.url.format_map({k: quote(v, safe="") for k, v in fields.items()})
    headers = {k: v.format_map(fields) for k, v in ch.headers}
    body: bytes | str | None = None
    if ch.json is not None:
        body = json.dumps(_fill(ch.json, fields), ensure_ascii=False).encode()
        headers.setdefault("Content-Type", "application/json; charset=utf-8")
    elif ch.form is not None:
        body = urlencode([(k, v.format_map(fields)) for k, v in ch.form])
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
    elif ch.body is not None:
        body = ch.body.format_map(fields).encode()
    return url, headers, body


def _fill(value: Any, fields: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format_map(fields)
    if isinstance(value, dict):
        return {k: _fill(v, fields) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, fields) for v in value]
    return value


async def _sms(ch: Sms, item: Pending, http: aiohttp.ClientSession) -> None:
    url, headers, body = sms_request(ch, item)
    await _request(http, ch.method, url, ch.timeout_s, data=body, headers=headers)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]
