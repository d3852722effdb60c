"""Real receivers for notification tests: an HTTP server (aiohttp) that can be stopped and
started again on its port, and an SMTP server (aiosmtpd) with optional STARTTLS on a
self-signed certificate made here (cryptography)."""

from __future__ import annotations

import datetime
import email
import email.policy
import ipaddress
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.mosquitto import free_port


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


class HttpReceiver:
    """Records every request; answers `status` (settable). `stop()` closes the port (the
    receiver is down), `start()` opens it again on the same port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.requests: list[Received] = []
        self.status = 200
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(
            Received(request.method, request.path, dict(request.query), dict(request.headers), body)
        )
        return web.Response(status=self.status, text="ok" if self.status < 300 else "no")

    async def start(self) -> HttpReceiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 / localhost and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sealwatch test smtp")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    tls: bool  # the session was encrypted (STARTTLS) when the mail was sent
    message: EmailMessage


@dataclass
class _Handler:
    mails: list[Mail] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        msg = email.message_from_bytes(
            raw if isinstance(raw, bytes) else raw.encode(), policy=email.policy.default
        )
        assert isinstance(msg, EmailMessage)
        self.mails.append(
            Mail(
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                session.ssl is not None,
                msg,
            )
        )
        return "250 OK"


class SmtpServer:
    """aiosmtpd on a free port (its own thread); `tls=(cert, key)` offers and requires
    STARTTLS."""

    def __init__(self, tls: tuple[Path, Path] | None = None, port: int | None = None) -> None:
        import ssl

        self.handler = _Handler()
        self.port = port or free_port()
        kwargs: dict[str, Any] = {}
        if tls is not None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            kwargs = {"tls_context": ctx, "require_starttls": True}
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)

    @property
    def mails(self) -> list[Mail]:
        return self.handler.mails

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
