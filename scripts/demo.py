"""The demo: embedded broker, simulated site with a seal in progress, daemon and dashboard.

Run through `scripts/demo`. Everything lives under var/demo/ and is started afresh each time.
Demos run side by side: while var/demo/ is in use (by a demo, or by a daemon a killed demo
left behind), the next demo takes var/demo-2/, var/demo-3/, … and free ports of its own.
A data dir is only wiped while its locks are held, so no demo deletes another's data.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the daemon's modules, also when run without the venv's install

from daemon.datadir import LOCK_FILE, DataDirInUse, DataDirLock  # noqa: E402

DEMO_LOCK = "demo.lock"  # held by the demo; the daemon holds sealwatch.lock in the same dir
SITE = ROOT / "deploy" / "examples" / "site.yaml"
SCENARIO = ROOT / "deploy" / "examples" / "scenarios" / "demo.yaml"


def free_port(preferred: int) -> int:
    """`preferred` if it is free, else any free port (0: any free port)."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError("no free port")


def claim_data_dir(root: Path) -> tuple[Path, DataDirLock]:
    """The first of root/demo, root/demo-2, … that nobody uses, emptied; its demo lock held.

    A dir is skipped while another demo holds its demo lock or a daemon its data-dir lock (a
    daemon outlives a demo killed with -9). It is emptied only while both locks are held."""
    for n in range(1, 100):
        data = root / ("demo" if n == 1 else f"demo-{n}")
        demo_lock = DataDirLock(data, DEMO_LOCK)
        try:
            demo_lock.acquire()
        except DataDirInUse:
            continue
        try:
            with DataDirLock(data):
                for child in data.iterdir():
                    if child.name in (DEMO_LOCK, LOCK_FILE):
                        continue
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
        except DataDirInUse:
            demo_lock.release()
            continue
        return data, demo_lock
    raise RuntimeError(f"no free demo data dir under {root}")


SEAL = {
    "id": "demo-seal",
    "name": "Demo: national exam paper set A (drill)",
    "classification": "top_secret",
}
SUPERVISOR = "S2001"  # who records the pre-seal check and starts the seal
OPERATOR = ("console-1", "O4001")  # who is on duty in the monitoring room


def demo_site(data: Path, any_port: bool, *, mqtt_port: int, http_port: int) -> Path:
    """The reference site with its jammers and cameras on ports that are free (any free port
    if `any_port`), and a `daemon:` section naming the demo's data dir, HTTP address and
    broker, so that `sealwatch … --config var/demo/site.yaml` finds the running demo.

    Its seal is not in the file: the demo starts it once an operator is on duty (a seal in
    force before anyone is on duty would rightly raise `monitoring-staffed`). The next
    seals of the calendar are scheduled in the file: tomorrow's and the day after's."""
    raw = yaml.safe_load(SITE.read_text(encoding="utf-8"))
    now = datetime.now(UTC).replace(microsecond=0)
    raw["seals"] = [
        {
            "id": f"demo-next-{day}",
            "name": f"Demo: exam paper set {'BC'[day - 1]} (drill)",
            "classification": "secret",
            "start": (now + timedelta(days=day)).isoformat(),
            "end": (now + timedelta(days=day, hours=10)).isoformat(),
        }
        for day in (1, 2)
    ]
    raw["daemon"] = {
        **(raw.get("daemon") or {}),
        "data_dir": str(data),
        "http": f"127.0.0.1:{http_port}",
        "mqtt": {
            **((raw.get("daemon") or {}).get("mqtt") or {}),
            "url": f"mqtt://127.0.0.1:{mqtt_port}",
        },
    }
    moved: dict[int, int] = {}

    def port(p: int) -> int:
        if p not in moved:
            moved[p] = free_port(0 if any_port else p)
        return moved[p]

    for jammer in raw.get("jammers", []):
        if jammer.get("modbus"):
            jammer["modbus"]["port"] = port(int(jammer["modbus"].get("port", 502)))
    for camera in raw.get("cameras", []):
        url = urlsplit(camera["url"])
        if url.port:
            netloc = f"{url.hostname}:{port(url.port)}"
            camera["url"] = urlunsplit(url._replace(netloc=netloc))
    path = data / "site.yaml"
    path.write_text(
        "# generated by scripts/demo from deploy/examples/site.yaml\n"
        + yaml.safe_dump(raw, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    return path


class EmbeddedBroker:
    """amqtt in a thread of its own: the demo needs no Mosquitto installed."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.started = False
        self.thread = threading.Thread(target=self._run, name="mqtt-broker", daemon=True)

    def _run(self) -> None:
        from amqtt.broker import Broker

        asyncio.set_event_loop(self.loop)
        try:
            self.broker = Broker(
                {
                    "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
                    "plugins": {
                        "amqtt.plugins.authentication.AnonymousAuthPlugin": {
                            "allow_anonymous": True
                        }
                    },
                },
                loop=self.loop,
            )
            self.loop.run_until_complete(self.broker.start())
            self.started = True
        finally:
            self.ready.set()  # start() looks at whether it is running
        self.loop.run_forever()

    def start(self) -> None:
        self.thread.start()
        self.ready.wait(30)
        if not self.started:
            raise RuntimeError("the embedded MQTT broker did not start (see above)")

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.broker.shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def wait_http(url: str, procs: list[subprocess.Popen[bytes]], timeout_s: float = 60.0) -> bool:
    """Whether `url` answered before the deadline and while every process was running."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status < 500:
                    return True
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return True
        except OSError:
            pass
        time.sleep(0.25)
    return False


def wait_backfill(
    site_path: Path, data: Path, sim: subprocess.Popen[bytes], timeout_s: float = 60.0
) -> None:
    """Until every camera's recordings folder has more than 90 day folders (or the timeout)."""
    from policies.site import load_site

    site = load_site(site_path)
    folders = [data / c.recordings for c in site.cameras.values() if c.recordings]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and sim.poll() is None:
        if all(f.is_dir() and sum(1 for _ in f.iterdir()) > 90 for f in folders):
            return
        time.sleep(0.1)


def _request(url: str, body: object = None, token: str | None = None) -> tuple[int, object]:
    """(status, decoded JSON) of one local request; (0, reason) when nothing answered."""
    import json

    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
    except (OSError, ValueError) as exc:
        return 0, str(exc)


def start_seal(
    base: str, control: str, data: Path, procs: list[subprocess.Popen[bytes]], timeout_s: float = 90
) -> None:
    """Put the operator on duty, wait until the pre-seal check passes (or the deadline), record
    it as the supervisor, then start the seal: no transient `monitoring-staffed`."""
    console, badge = OPERATOR
    _request(f"{control}/actions", {"do": "operator.on", "console": console, "badge": badge})
    token = (data / "api.token").read_text(encoding="utf-8").strip()
    deadline = time.monotonic() + timeout_s
    check: object = None
    while time.monotonic() < deadline and all(p.poll() is None for p in procs):
        status, check = _request(f"{base}/api/precheck?badge={SUPERVISOR}", token=token)
        if status == 200 and isinstance(check, dict) and check.get("passed"):
            break
        time.sleep(0.5)
    else:
        failing = (
            [i["item"] for i in check.get("items", []) if not i["passed"]]
            if isinstance(check, dict)
            else check
        )
        print(f"demo: the pre-seal check did not pass in time ({failing}); sealing anyway")
    _request(
        f"{base}/api/precheck",
        {"badge": SUPERVISOR, "remediation": "demo: recorded by the demo script"},
        token,
    )
    end = (datetime.now(UTC) + timedelta(hours=12)).replace(microsecond=0).isoformat()
    status, outcome = _request(
        f"{base}/api/seals/{SEAL['id']}/start",
        {
            "badge": SUPERVISOR,
            "name": SEAL["name"],
            "classification": SEAL["classification"],
            "end": end,
        },
        token,
    )
    if status != 200:
        print(f"demo: the seal did not start ({status}): {outcome}", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description="Run the sealwatch demo.")
    ap.add_argument("--http-port", type=int, default=8080, help="if free (else any free port)")
    ap.add_argument("--mqtt-port", type=int, default=1883, help="if free (else any free port)")
    ap.add_argument(
        "--var", type=Path, default=ROOT / "var", help="where the demo's data dirs go (var/)"
    )
    ap.add_argument(
        "--any-ports",
        action="store_true",
        help="take any free ports, also for the simulated jammers and cameras",
    )
    args = ap.parse_args()

    data, demo_lock = claim_data_dir(args.var.resolve())
    # The first demo gets the usual ports where free; a demo beside it takes any free ports,
    # so that two demos started at the same moment do not both pick the same "free" port.
    any_port = args.any_ports or data.name != "demo"
    mqtt_port = free_port(0 if any_port else args.mqtt_port)
    http_port = free_port(0 if any_port else args.http_port)
    control_port = free_port(0)
    site = demo_site(data, any_port=any_port, mqtt_port=mqtt_port, http_port=http_port)
    broker = EmbeddedBroker(mqtt_port)
    broker.start()

    env = {
        **os.environ,
        "SEALWATCH_MQTT_URL": f"mqtt://127.0.0.1:{mqtt_port}",
        "SEALWATCH_DATA_DIR": str(data),
        "SEALWATCH_HTTP": f"127.0.0.1:{http_port}",
        "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))),
        "PYTHONUNBUFFERED": "1",
    }
    password = secrets.token_urlsafe(9)
    pw_file = data / "demo-password"
    pw_file.write_text(password + "\n", encoding="utf-8")
    pw_file.chmod(0o600)
    users = []
    for user, role in (("demo", "supervisor"), ("guard", "guard")):
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "daemon",
                "user",
                "add",
                user,
                "--role",
                role,
                "--password-file",
                str(pw_file),
            ],
            env=env,
            cwd=data,
            capture_output=True,
            text=True,
        )
        if r.returncode == 0:
            users.append((user, role))
        else:
            print(f"demo: could not create user {user}: {r.stderr.strip()}", file=sys.stderr)

    logs = data / "logs"
    logs.mkdir()
    procs: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "simulators",
                    "--config",
                    str(site),
                    "--mqtt",
                    f"127.0.0.1:{mqtt_port}",
                    "--scenario",
                    str(SCENARIO),
                    "--loop",
                    "--data-dir",
                    str(data),
                    "--backfill-days",
                    "95",
                    "--backfill-segment-s",
                    "3600",
                    "--control",
                    str(control_port),
                ],  # 95 days of hour-long files: seconds
                cwd=ROOT,
                env=env,
                stdout=(logs / "simulators.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
        )
        # The daemon starts once the simulated recorders hold their 95 days of footage: a
        # first scan of an empty folder would (rightly) raise video-retention for each camera.
        wait_backfill(site, data, procs[0])
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "daemon", "run", "--config", str(site)],
                cwd=data,
                env=env,
                stdout=(logs / "daemon.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
        )
        names = dict(zip((p.pid for p in procs), ("the simulators", "the daemon"), strict=True))
        if not wait_http(f"http://127.0.0.1:{http_port}/healthz", procs):
            tail = (logs / "daemon.log").read_text(errors="replace").strip().splitlines()[-3:]
            print(
                "demo: the daemon did not come up:",
                *tail,
                f"(logs in {logs})",
                sep="\n  ",
                file=sys.stderr,
            )
            return 1
        base = f"http://127.0.0.1:{http_port}"
        start_seal(base, f"http://127.0.0.1:{control_port}", data, procs)
        print(f"\nsealwatch demo is running: {base}/")
        for user, role in users:
            print(f"  log in as {user!r} ({role}) with password {password!r}")
        print(f"  MQTT broker (embedded): 127.0.0.1:{mqtt_port}; data in {data}; logs in {logs}")
        print("  alerts appear within seconds; the incident scenario loops every ~3 minutes")
        print("  the command line finds this demo with --config, or after these two lines:")
        print(f"    export SEALWATCH_DATA_DIR={data}")
        print(f"    export SEALWATCH_HTTP=127.0.0.1:{http_port}")
        print(f"  e.g. .venv/bin/sealwatch alerts --config {site}")
        print("  Ctrl-C to stop\n", flush=True)
        while not stop.wait(1.0):
            for p in procs:
                if p.poll() is not None:
                    print(
                        f"demo: {names[p.pid]} exited with {p.returncode}; see {logs}",
                        file=sys.stderr,
                    )
                    stop.set()
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        broker.stop()
        demo_lock.release()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
