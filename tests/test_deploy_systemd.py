"""deploy/sealwatch.service (docs/deploy.md, "systemd"): the unit passes `systemd-analyze
verify`, is hardened, hands the secrets over as credentials, and the real daemon speaks the
notify protocol to a real datagram socket (READY=1, WATCHDOG=1, STOPPING=1) and takes its
ledger key and MQTT password from the credentials directory. systemd itself does not start
the daemon here (no systemd as PID 1 in this container): the socket stands in for it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from daemon import audit
from daemon.config import load_settings
from policies.site import load_site
from tests.support.daemon import EXAMPLE_SITE, DaemonProcess, wait_until, write_site
from tests.support.mosquitto import Mosquitto

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "sealwatch.service"


def _directives() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_the_unit_is_notify_watchdog_restart_on_failure_and_hardened() -> None:
    d = _directives()
    one = {k: v[-1] for k, v in d.items()}
    assert one["Type"] == "notify" and one["NotifyAccess"] == "main"
    assert int(one["WatchdogSec"]) > 0 and one["Restart"] == "on-failure"
    assert one["User"] == one["Group"] == "sealwatch" and one["DynamicUser"] == "no"
    for key, value in {
        "ProtectSystem": "strict",
        "NoNewPrivileges": "true",
        "PrivateTmp": "true",
        "ProtectKernelTunables": "true",
        "ProtectControlGroups": "true",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "CapabilityBoundingSet": "",
        "UMask": "0077",
    }.items():
        assert one[key] == value, key
    assert "@system-service" in d["SystemCallFilter"]
    # the secrets are credentials, and the daemon is pointed at them
    creds = dict(c.split(":", 1) for c in d["LoadCredential"])
    env = dict(e.split("=", 1) for e in d["Environment"])
    assert env["SEALWATCH_MQTT_PASSWORD_FILE"] == "%d/mqtt-password" and "mqtt-password" in creds
    assert env["SEALWATCH_AUDIT_KEY_FILE"] == "%d/audit-key" and "audit-key" in creds
    assert not any("PASSWORD=" in e and "%d" not in e for e in d["Environment"])


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed; the unit's directives are checked above")
    # The shipped ExecStart names the server's virtualenv; here it names this one.
    sealwatch = ROOT / ".venv" / "bin" / "sealwatch"
    assert sealwatch.exists()
    text = UNIT.read_text().replace("/opt/sealwatch/venv/bin/sealwatch", str(sealwatch))
    assert text != UNIT.read_text()
    unit = tmp_path / "sealwatch.service"
    unit.write_text(text)
    out = subprocess.run(
        [tool, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    problems = [
        ln
        for ln in (out.stdout + out.stderr).splitlines()
        # the host's own units, which `verify` also loads, are not ours to judge
        if "sealwatch.service" in ln
    ]
    assert out.returncode == 0 and not problems, out.stdout + out.stderr


def test_the_settings_read_the_password_and_the_key_from_the_credentials_directory(
    tmp_path: Path,
) -> None:
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "mqtt-password").write_text("s3cret\n")
    (creds / "audit-key").write_bytes(b"")
    settings = load_settings(
        load_site(EXAMPLE_SITE),
        {
            "SEALWATCH_MQTT_PASSWORD_FILE": str(creds / "mqtt-password"),
            "SEALWATCH_AUDIT_KEY_FILE": str(creds / "audit-key"),
            "SEALWATCH_DATA_DIR": str(tmp_path / "data"),
        },
    )
    assert settings.mqtt.password == "s3cret"
    assert settings.audit_key_path == creds / "audit-key"
    assert not settings.warnings


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    # a short path: AF_UNIX addresses stop at 108 bytes, pytest's tmp_path can be longer
    directory = tempfile.mkdtemp(prefix="sw-notify-", dir="/tmp")
    path = os.path.join(directory, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    yield sock, path
    sock.close()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.slow
async def test_the_real_daemon_notifies_ready_watchdog_and_stopping_and_uses_the_credentials(
    tmp_path: Path, mosquitto_session: Mosquitto, notify_socket: tuple[socket.socket, str]
) -> None:
    sock, path = notify_socket
    creds = tmp_path / "credentials"
    creds.mkdir(mode=0o700)
    key = Ed25519PrivateKey.generate()
    key_file = creds / "audit-key"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o400)
    data = tmp_path / "data"
    proc = DaemonProcess(write_site(tmp_path, "notify-site"), mosquitto_session, data)
    proc.env.update(
        {
            "NOTIFY_SOCKET": path,
            "WATCHDOG_USEC": "1000000",  # a ping every half second
            "CREDENTIALS_DIRECTORY": str(creds),
            "SEALWATCH_AUDIT_KEY_FILE": str(key_file),
        }
    )
    got: list[str] = []

    def drain() -> list[str]:
        while True:
            try:
                got.extend(sock.recv(4096).decode().split("\n"))
            except BlockingIOError:
                return got

    proc.start()
    try:
        await proc.ready()
        await wait_until(lambda: "READY=1" in drain(), 30, "READY=1")
        ready_at = got.index("READY=1")
        await wait_until(lambda: "WATCHDOG=1" in drain()[ready_at:], 30, "WATCHDOG=1 after READY=1")
    finally:
        assert proc.terminate() == 0
    await wait_until(lambda: "STOPPING=1" in drain(), 10, "STOPPING=1")
    # The ledger key came from the credentials directory: none was created in the data dir,
    # and the head the store holds verifies with the credential's public key.
    assert not (data / "audit-ed25519.key").exists()
    assert key_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert audit.load_public_key(key_file) is not None
    assert "signing key" not in proc.log.read_text()
