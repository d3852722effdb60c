#!/usr/bin/env python3
"""Issue and revoke the MQTT credentials of one sealwatch site (deploy/mosquitto/README.md).

    credentials.py init   --site SITE.yaml [--gateways GATEWAYS.yaml] [--host NAME ...]
    credentials.py issue  LOGIN --site SITE.yaml --devices DEV[,DEV…] [--reader] [--broker H:P]
    credentials.py reader LOGIN [--broker H:P]
    credentials.py revoke LOGIN [--broker H:P]

Every login has exactly one client id (the dynamic-security plugin refuses a CONNECT whose
client id differs), so no login can take over the daemon's session or another device's.
`init` creates the site CA, the broker's certificate, the plugin's state file with the admin,
the daemon, one `operator` reader and one login per gateway, and a password file per login
in `DIR/secrets/`. `issue`, `reader` and `revoke` edit the state file while the broker is
stopped, or, with `--broker`, change the running broker through `mosquitto_ctrl` (the plugin
saves the change itself; a revoked client is disconnected at once).

Uses the standard library, openssl and mosquitto_ctrl; the site file is read with sealwatch's
own loader (run it with sealwatch's Python: `.venv/bin/python deploy/mosquitto/credentials.py`).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_DIR = Path("/etc/mosquitto/sealwatch")
DEFAULT_STATE = Path("/var/lib/mosquitto/dynamic-security.json")
ADMIN = "sealwatch-admin"
DAEMON = "sealwatch"
RESERVED = {ADMIN, DAEMON, "admin"}
ITERATIONS = 101_000  # PBKDF2-SHA512 rounds for stored passwords (mosquitto_ctrl uses 101)
# Devices the daemon itself reads (Modbus, HTTP, files): no login unless a gateways file
# names them (a site that bridges them to MQTT).
POLLED_KINDS = {"jammer", "camera", "duty_phone"}
CA_DAYS, CERT_DAYS = 3650, 825


class Refused(Exception):
    """A request this script will not carry out; the message says why."""


# ---------------------------------------------------------------------------------------
# The plugin's state file


def _hash(password: str) -> dict[str, Any]:
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS)
    return {
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": ITERATIONS,
    }


def _acl(kind: str, topic: str) -> dict[str, Any]:
    return {"acltype": kind, "topic": topic, "allow": True}


def _send(topic: str) -> list[dict[str, Any]]:
    return [_acl("publishClientSend", topic)]


def _read(topic: str) -> list[dict[str, Any]]:
    kind = "subscribePattern" if ("#" in topic or "+" in topic) else "subscribeLiteral"
    return [_acl(kind, topic), _acl("publishClientReceive", topic)]


def daemon_acls(site_id: str, client_id: str) -> list[dict[str, Any]]:
    """The daemon reads events, statuses and its own sync topic; it writes alerts, its
    availability and the ledger's anchor (`audit/#`)."""
    b = f"sealwatch/{site_id}"
    return [
        *_read(f"{b}/events/#"),
        *_read(f"{b}/status/#"),
        *_read(f"{b}/daemon/sync/{client_id}"),
        *_send(f"{b}/daemon/sync/{client_id}"),
        *_send(f"{b}/daemon"),
        *_send(f"{b}/alerts"),
        *_send(f"{b}/alerts/active/#"),
        *_send(f"{b}/audit/#"),
        *_send(f"{b}/summary"),
    ]


def reader_acls(site_id: str) -> list[dict[str, Any]]:
    """Operators' consoles and dashboards: alerts, the daemon's availability, the anchor."""
    b = f"sealwatch/{site_id}"
    return [
        *_read(f"{b}/alerts"),
        *_read(f"{b}/alerts/active/#"),
        *_read(f"{b}/daemon"),
        *_read(f"{b}/audit/#"),
        *_read(f"{b}/summary"),
    ]


def gateway_acls(site_id: str, devices: list[str]) -> list[dict[str, Any]]:
    """A gateway publishes its own devices' events and statuses, nothing else."""
    b = f"sealwatch/{site_id}"
    out: list[dict[str, Any]] = []
    for dev in devices:
        out += _send(f"{b}/events/{dev}") + _send(f"{b}/status/{dev}")
    return out


def _role(name: str, acls: list[dict[str, Any]]) -> dict[str, Any]:
    return {"rolename": name, "acls": acls}


def _client(login: str, password: str, roles: list[str], text: str) -> dict[str, Any]:
    return {
        "username": login,
        "clientid": login,  # the binding: this login connects with this client id only
        "textName": text,
        **_hash(password),
        "roles": [{"rolename": r} for r in roles],
    }


def new_state(site_id: str, daemon_client_id: str) -> dict[str, Any]:
    return {
        "clients": [],
        "groups": [],
        "roles": [
            _role(
                "admin",
                _read("$CONTROL/dynamic-security/#")
                + _send("$CONTROL/dynamic-security/#")
                + [_acl("unsubscribePattern", "#")],
            ),
            _role("sealwatch-daemon", daemon_acls(site_id, daemon_client_id)),
            _role("sealwatch-reader", reader_acls(site_id)),
        ],
        # Nothing is allowed unless a role says so, receiving included.
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        },
    }


# ---------------------------------------------------------------------------------------
# Files


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)


def _for_broker(path: Path, mode: int) -> None:
    """Files the broker reads (or, for the state file, rewrites) after dropping to the
    `mosquitto` user."""
    os.chmod(path, mode)
    if os.geteuid() == 0:
        try:
            shutil.chown(path, user="mosquitto" if mode & 0o200 else None, group="mosquitto")
        except (LookupError, OSError):
            pass


def load_state(path: Path) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise Refused(f"{path}: no state file (run `init` first)") from None
    return state


def save_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".new")
    tmp.write_text(json.dumps(state, indent=1) + "\n")
    _for_broker(tmp, 0o600)
    tmp.replace(path)


def new_password(directory: Path, login: str) -> str:
    password = secrets.token_urlsafe(24)
    _write_secret(directory / "secrets" / f"{login}.password", password)
    return password


# ---------------------------------------------------------------------------------------
# Certificates


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca_and_broker(directory: Path, site_id: str, hosts: list[str]) -> None:
    ca_dir = directory / "ca"
    ca_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(ca_dir, 0o700)
    ca_key, ca_crt = ca_dir / "ca.key", directory / "ca.crt"
    _openssl(
        "req", "-x509", "-newkey", "rsa:3072", "-nodes", "-days", str(CA_DAYS),
        "-subj", f"/CN=sealwatch {site_id} site CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout", str(ca_key), "-out", str(ca_crt),
    )  # fmt: skip
    os.chmod(ca_key, 0o600)
    key, csr, crt = directory / "broker.key", directory / "broker.csr", directory / "broker.crt"
    _openssl(
        "req", "-newkey", "rsa:3072", "-nodes", "-subj", f"/CN={hosts[0]}",
        "-keyout", str(key), "-out", str(csr),
    )  # fmt: skip
    san = ",".join(
        (f"IP:{h}" if h.replace(".", "").isdigit() or ":" in h else f"DNS:{h}") for h in hosts
    )
    with tempfile.NamedTemporaryFile("w", suffix=".ext", delete=False) as ext:
        ext.write(
            f"subjectAltName={san}\nbasicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        )
    try:
        _openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
            "-CAcreateserial", "-CAserial", str(ca_dir / "ca.srl"), "-days", str(CERT_DAYS),
            "-extfile", ext.name, "-out", str(crt),
        )  # fmt: skip
    finally:
        os.unlink(ext.name)
    csr.unlink()
    os.chmod(ca_crt, 0o644)
    os.chmod(crt, 0o644)
    _for_broker(key, 0o640)


# ---------------------------------------------------------------------------------------
# Gateways: which login publishes for which devices


def site_devices(site_path: Path) -> tuple[str, dict[str, str], dict[str, str]]:
    """(site id, device -> kind, alarm input -> its panel)."""
    from policies.site import load_site

    site = load_site(site_path)
    panel_of = {i: p.id for p in site.alarm_panels.values() for i in (x.id for x in p.inputs)}
    return site.id, dict(site.device_kind), panel_of


def plan_gateways(site_path: Path, gateways_path: Path | None) -> tuple[str, dict[str, list[str]]]:
    """The gateways file's `gateways: {LOGIN: [DEVICE, …]}`; every device it does not name
    gets a login of its own, named after it (an alarm input goes with its panel), except
    the devices the daemon polls itself (jammers, cameras, duty phones)."""
    site_id, kinds, panel_of = site_devices(site_path)
    plan: dict[str, list[str]] = {}
    if gateways_path is not None:
        import yaml

        raw = yaml.safe_load(gateways_path.read_text()) or {}
        for login, devices in (raw.get("gateways") or {}).items():
            plan[str(login)] = [str(d) for d in devices]
    taken = {d for devs in plan.values() for d in devs}
    for dev, kind in kinds.items():
        if dev in taken or kind in POLLED_KINDS:
            continue
        owner = panel_of.get(dev, dev)
        plan.setdefault(owner, [])
        if dev not in plan[owner]:
            plan[owner].append(dev)
        taken.add(dev)
    for login, devices in plan.items():
        check_gateway(login, devices, kinds)
    return site_id, plan


def check_gateway(login: str, devices: list[str], kinds: dict[str, str]) -> None:
    if login in RESERVED or not login or any(c in login for c in "/#+ "):
        raise Refused(f"gateway login {login!r} is reserved or not a plain name")
    for dev in devices:
        if dev not in kinds:
            raise Refused(f"gateway {login}: {dev!r} is not a device of the site")


# ---------------------------------------------------------------------------------------
# A running broker


def ctrl(directory: Path, broker: str, *command: str) -> None:
    """One `mosquitto_ctrl dynsec` command as the admin login, over TLS. The connection
    options, with the admin's password, go in a private options file (mosquitto_ctrl 2.0.11
    reads `$XDG_CONFIG_HOME/mosquitto_ctrl`; its `-o FILE` does not work), not in argv."""
    host, _, port = broker.rpartition(":")
    password = (directory / "secrets" / f"{ADMIN}.password").read_text().strip()
    with tempfile.TemporaryDirectory() as tmp:
        _write_secret(
            Path(tmp) / "mosquitto_ctrl",
            f"-h {host}\n-p {port}\n--cafile {directory / 'ca.crt'}\n"
            f"-u {ADMIN}\n-P {password}\n-i {ADMIN}",
        )
        done = subprocess.run(
            ["mosquitto_ctrl", "dynsec", *command],
            capture_output=True,
            text=True,
            env={**os.environ, "XDG_CONFIG_HOME": tmp},
        )
    out = (done.stdout + done.stderr).strip()
    if done.returncode != 0 or "Error" in out:
        raise Refused(f"mosquitto_ctrl dynsec {command[0]}: {out}")


def add_login(
    args: argparse.Namespace, login: str, role: str, acls: list[dict[str, Any]], extra: list[str]
) -> None:
    """A new login with its own role (`acls`) plus the named shared roles."""
    password = new_password(args.dir, login)
    roles = ([role] if acls else []) + extra
    if args.broker:
        ctrl(args.dir, args.broker, "createClient", login, "-c", login, "-p", password)
        if acls:
            ctrl(args.dir, args.broker, "createRole", role)
            for a in acls:
                ctrl(args.dir, args.broker, "addRoleACL", role, a["acltype"], a["topic"], "allow")
        for r in roles:
            ctrl(args.dir, args.broker, "addClientRole", login, r)
        return
    state = load_state(args.state)
    if any(c["username"] == login for c in state["clients"]):
        raise Refused(f"login {login!r} exists; revoke it first")
    if acls:
        state["roles"] = [r for r in state["roles"] if r["rolename"] != role]
        state["roles"].append(_role(role, acls))
    state["clients"].append(_client(login, password, roles, login))
    save_state(args.state, state)


# ---------------------------------------------------------------------------------------
# Commands


def cmd_init(args: argparse.Namespace) -> None:
    if args.state.exists() and not args.force:
        raise Refused(f"{args.state} exists (--force replaces every credential)")
    site_id, plan = plan_gateways(args.site, args.gateways)
    daemon_client_id = args.daemon_client_id or f"sealwatch-{site_id}"
    args.dir.mkdir(parents=True, exist_ok=True)
    make_ca_and_broker(args.dir, site_id, args.host)
    state = new_state(site_id, daemon_client_id)
    state["clients"].append(
        _client(ADMIN, new_password(args.dir, ADMIN), ["admin"], "credentials.py (revoke, issue)")
    )
    daemon = _client(DAEMON, new_password(args.dir, DAEMON), ["sealwatch-daemon"], "the daemon")
    daemon["clientid"] = daemon_client_id  # daemon.mqtt.client_id (default sealwatch-SITE)
    state["clients"].append(daemon)
    state["clients"].append(
        _client("operator", new_password(args.dir, "operator"), ["sealwatch-reader"], "alerts")
    )
    _, kinds, _ = site_devices(args.site)
    for login, devices in sorted(plan.items()):
        role = f"gateway-{login}"
        state["roles"].append(_role(role, gateway_acls(site_id, devices)))
        roles = [role] + (
            ["sealwatch-reader"] if any(kinds[d] == "console" for d in devices) else []
        )
        state["clients"].append(
            _client(login, new_password(args.dir, login), roles, "devices: " + ",".join(devices))
        )
    save_state(args.state, state)
    (args.dir / "gateways.json").write_text(json.dumps(plan, indent=1, sort_keys=True) + "\n")
    print(f"site {site_id}: CA, broker certificate, {len(plan)} gateway logins; secrets in")
    print(f"  {args.dir / 'secrets'} (move {args.dir / 'ca' / 'ca.key'} offline)")


def cmd_issue(args: argparse.Namespace) -> None:
    site_id, kinds, _ = site_devices(args.site)
    devices = [d for d in args.devices.split(",") if d]
    check_gateway(args.login, devices, kinds)
    extra = ["sealwatch-reader"] if args.reader else []
    add_login(args, args.login, f"gateway-{args.login}", gateway_acls(site_id, devices), extra)
    print(f"issued {args.login}: {args.dir / 'secrets' / (args.login + '.password')}")


def cmd_reader(args: argparse.Namespace) -> None:
    if args.login in RESERVED:
        raise Refused(f"login {args.login!r} is reserved")
    add_login(args, args.login, "", [], ["sealwatch-reader"])
    print(f"issued {args.login}: {args.dir / 'secrets' / (args.login + '.password')}")


def cmd_revoke(args: argparse.Namespace) -> None:
    if args.login in (ADMIN,):
        raise Refused("the admin login is not revoked this way")
    if args.broker:
        ctrl(args.dir, args.broker, "deleteClient", args.login)
        try:  # its own role, if it had one (a reader has none)
            ctrl(args.dir, args.broker, "deleteRole", f"gateway-{args.login}")
        except Refused:
            pass
    else:
        state = load_state(args.state)
        before = len(state["clients"])
        state["clients"] = [c for c in state["clients"] if c["username"] != args.login]
        if len(state["clients"]) == before:
            raise Refused(f"no login {args.login!r}")
        state["roles"] = [r for r in state["roles"] if r["rolename"] != f"gateway-{args.login}"]
        save_state(args.state, state)
    secret = args.dir / "secrets" / f"{args.login}.password"
    secret.unlink(missing_ok=True)
    print(f"revoked {args.login}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="certificates and secrets")
    p.add_argument("--state", type=Path, default=DEFAULT_STATE, help="the plugin's state file")
    sub = p.add_subparsers(dest="command", required=True)
    i = sub.add_parser("init", help="CA, broker certificate, every login")
    i.add_argument("--site", type=Path, required=True)
    i.add_argument("--gateways", type=Path, help="YAML: gateways: {LOGIN: [DEVICE, …]}")
    i.add_argument("--host", action="append", help="broker host names/IPs (first is the CN)")
    i.add_argument("--daemon-client-id", help="daemon.mqtt.client_id (default sealwatch-SITE)")
    i.add_argument("--force", action="store_true")
    s = sub.add_parser("issue", help="a new gateway login")
    s.add_argument("login")
    s.add_argument("--site", type=Path, required=True)
    s.add_argument("--devices", required=True, help="comma-separated device ids")
    s.add_argument("--reader", action="store_true", help="may also read alerts (a console)")
    s.add_argument("--broker", help="HOST:PORT of the running broker")
    r = sub.add_parser("reader", help="a new read-only login for alerts")
    r.add_argument("login")
    r.add_argument("--broker", help="HOST:PORT of the running broker")
    v = sub.add_parser("revoke", help="delete a login (and disconnect it)")
    v.add_argument("login")
    v.add_argument("--broker", help="HOST:PORT of the running broker")
    args = p.parse_args(argv)
    if args.command == "init" and not args.host:
        args.host = ["localhost", "127.0.0.1"]
    try:
        {"init": cmd_init, "issue": cmd_issue, "reader": cmd_reader, "revoke": cmd_revoke}[
            args.command
        ](args)
    except Refused as exc:
        print(f"credentials.py: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"credentials.py: {exc.cmd[0]} failed: {exc.stderr!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
