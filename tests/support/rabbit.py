"""A real RabbitMQ cluster (Debian's rabbitmq-server 3.10 with the MQTT plugin) on this machine,
for the federation tests and the central benchmark (installed by scripts/setup).

Each node has its own Erlang node name (`swNNNNnI@localhost`, unique per cluster so two runs
on one machine do not meet in epmd), its own AMQP, distribution and MQTT ports, and its own
data and log folders under the test's temporary directory; the nodes share one Erlang cookie
through `HOME`. Node 1 starts the cluster; the others `join_cluster` it. QoS 1 subscriptions
of persistent sessions are quorum queues (`mqtt.durable_queue_type = quorum`), replicated on
every node, so a node killed with SIGKILL loses nothing it acknowledged.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.support.mosquitto import free_port, wait_port

BIN = Path("/usr/lib/rabbitmq/bin")
SERVER = BIN / "rabbitmq-server"
CTL = BIN / "rabbitmqctl"


def available() -> str | None:
    """None when a cluster can run here, else why not (for a skip reason)."""
    if not SERVER.exists() or not CTL.exists():
        return (
            "rabbitmq-server is not installed "
            "(scripts/setup installs it: apt-get install rabbitmq-server)"
        )
    if shutil.which("erl") is None:
        return "Erlang (erl) is not on PATH"
    return None


class RabbitNode:
    def __init__(self, root: Path, prefix: str, index: int, cookie: str) -> None:
        self.index = index
        self.name = f"{prefix}n{index}@localhost"
        self.base = root / f"node{index}"
        self.home = self.base / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        cookie_file = self.home / ".erlang.cookie"
        cookie_file.write_text(cookie)
        cookie_file.chmod(0o400)
        self.amqp_port = free_port()
        self.dist_port = free_port()
        self.mqtt_port = free_port()
        self.pid_file = self.base / "beam.pid"
        (self.base / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
        (self.base / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = {self.amqp_port}\n"
            f"mqtt.listeners.tcp.default = {self.mqtt_port}\n"
            "mqtt.durable_queue_type = quorum\n"
            "mqtt.allow_anonymous = true\n"
            "disk_free_limit.absolute = 50MB\n"
            "log.console = false\n"
        )
        self.log = self.base / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        b = self.base
        return {
            **os.environ,
            "HOME": str(self.home),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(b / "rabbitmq.conf"),
            "RABBITMQ_MNESIA_BASE": str(b / "mnesia"),
            "RABBITMQ_LOG_BASE": str(b / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(b / "enabled_plugins"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(b / "plugins-expand"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
        }

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.mqtt_port}"

    def start(self) -> RabbitNode:
        self.pid_file.unlink(missing_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(SERVER)], env=self.env, stdout=out, stderr=out, start_new_session=True
            )
        return self

    def ctl(self, *args: str, timeout_s: float = 120) -> str:
        done = subprocess.run(
            [str(CTL), "-n", self.name, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"rabbitmqctl {' '.join(args)} on {self.name}: {done.stderr.strip()[-2000:]}"
            )
        return done.stdout

    def await_started(self, timeout_s: float = 120) -> None:
        try:
            # `wait PIDFILE`: until the VM has written its pid and the broker app is running
            self.ctl(
                "wait",
                str(self.pid_file),
                "--timeout",
                str(int(timeout_s)),
                timeout_s=timeout_s + 10,
            )
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\nserver log: {self.log.read_text()[-2000:]}") from None
        wait_port("127.0.0.1", self.mqtt_port, timeout_s)

    def beam_pid(self) -> int:
        return int(self.pid_file.read_text().strip())

    def kill9(self) -> None:
        """SIGKILL the node's Erlang VM (beam.smp): no goodbye to the cluster."""
        os.kill(self.beam_pid(), signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)
            self.proc = None

    def stop(self) -> None:
        """A clean stop (`rabbitmqctl stop`); SIGKILL if it does not go."""
        if self.proc is None:
            return
        try:
            self.ctl("stop", timeout_s=60)
            self.proc.wait(timeout=60)
        except (RuntimeError, subprocess.TimeoutExpired):
            if self.pid_file.exists():
                try:
                    os.kill(self.beam_pid(), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        """Start again on the same data: it rejoins its cluster by itself."""
        self.start()
        self.await_started()


class RabbitCluster:
    """`size` nodes on this machine, clustered (node 1 first)."""

    def __init__(self, root: Path, size: int = 3) -> None:
        prefix = f"sw{os.getpid() % 10000}{random.randrange(1000)}"
        cookie = f"sealwatch-test-{random.getrandbits(64):016x}"
        self.nodes = [RabbitNode(root, prefix, i + 1, cookie) for i in range(size)]

    def start(self) -> RabbitCluster:
        started = time.monotonic()
        for node in self.nodes:
            node.start()
        try:
            for node in self.nodes:
                node.await_started()
            first = self.nodes[0]
            for node in self.nodes[1:]:
                node.ctl("stop_app")
                node.ctl("join_cluster", first.name)
                node.ctl("start_app")
                node.await_started()
        except BaseException:
            self.stop()
            raise
        self.started_in_s = time.monotonic() - started
        return self

    def running_nodes(self) -> str:
        return self.nodes[0].ctl("cluster_status", "--formatter", "json")

    def queues(self, node: RabbitNode | None = None) -> str:
        n = node or next(n for n in self.nodes if n.proc is not None)
        return n.ctl("list_queues", "name", "type", "messages", "members", "--formatter", "json")

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]
