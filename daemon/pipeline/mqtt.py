"""Stage 1a, MQTT ingest: the daemon's one broker session, and what arrives on it.

One persistent session (fixed client id, clean_session=False, QoS 1) so the broker queues what
gateways publish while the daemon restarts. Incoming messages are acknowledged only once the
pipeline has accepted them (written, or held while the store fails), so a crash before that
makes the broker deliver them again instead of losing them. The same session carries the alert
publisher (daemon/pipeline/mqtt_alerts.py), a sink.

Failure policy: a lost connection is retried at once and then every second at most (capped,
jittered), so the daemon is back ahead of the gateways; while it is down the engine's timers
hold, and when it is back events the gateways buffered are accepted late (a window as long as
the outage). A broker that comes back without our session (`session present` false: it lost
what it queued for us) is logged and raised as a `daemon-health` alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import aiomqtt
import paho.mqtt.client as mqtt

from adapters.base import RateLimitedLog
from adapters.mqtt_mapping import MappingRule, topic_filters
from daemon.aio import within
from daemon.config import Mqtt
from daemon.metrics import Metrics
from daemon.pipeline.items import Incoming, Kind

log = logging.getLogger("sealwatch.mqtt")
READ_BURST = 512  # MQTT packets read per wake-up of the event loop


class Ingest(Protocol):
    """What the session hands its messages and its state changes to (the pipeline)."""

    metrics: Metrics

    def offer(self, item: Incoming) -> None: ...

    def clock(self) -> int: ...

    def broker_lost(self, since_us: int) -> None: ...

    def broker_back(self, session_present: bool) -> None: ...


class SessionTask(Protocol):
    """A task that runs for the life of one connection (the alert publisher)."""

    async def run(self, client: aiomqtt.Client) -> None: ...


class MqttSession:
    """`run()` is a task of the daemon's TaskGroup; it owns the per-connection tasks."""

    def __init__(
        self,
        site_id: str,
        settings: Mqtt,
        ingest: Ingest,
        *,
        reconnect_max_s: float = 1.0,
        mappings: list[MappingRule] | None = None,
    ) -> None:
        self.site_id = site_id
        self.settings = settings
        self.ingest = ingest
        self.reconnect_max_s = reconnect_max_s
        self.mappings = mappings or []
        base = f"sealwatch/{site_id}"
        self.events_prefix = f"{base}/events/"
        self.status_prefix = f"{base}/status/"
        self.daemon_topic = f"{base}/daemon"
        self.sync_topic = f"{base}/daemon/sync/{settings.client_id}"
        self.connected = asyncio.Event()
        self.closing = False  # set by close(): the daemon is stopping, never reconnect
        self.session_tasks: list[SessionTask] = []
        self.client: aiomqtt.Client | None = None
        self._generation = 0
        self._sync_nonce = ""
        self._attempt = 0  # failed connections since the last session that came up
        self._session_present = False
        self._rlog = RateLimitedLog(log)
        ingest.metrics.gauge(
            "sealwatch_mqtt_connected",
            "1 while the daemon's broker session is up",
            read=lambda: float(self.connected.is_set()),
        )

    def close(self) -> None:
        """The daemon is stopping: the session ends with the cancellation that follows."""
        self.closing = True

    def _client(self) -> aiomqtt.Client:
        s = self.settings
        tls_context = None
        if s.tls is not None:
            tls_context = ssl.create_default_context(
                cafile=str(s.tls.ca_file) if s.tls.ca_file else None
            )
            if s.tls.cert_file and s.tls.key_file:
                tls_context.load_cert_chain(str(s.tls.cert_file), str(s.tls.key_file))
            if s.tls.insecure:
                tls_context.check_hostname = False
        client = aiomqtt.Client(
            s.host,
            s.port,
            username=s.username,
            password=s.password,
            identifier=s.client_id,
            clean_session=False,
            keepalive=s.keepalive_s,
            will=aiomqtt.Will(self.daemon_topic, b"offline", qos=1, retain=True),
            tls_context=tls_context,
            max_inflight_messages=1000,
            # Without TCP_NODELAY a QoS 1 round trip stalls on delayed ACKs (~40 ms).
            socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        )
        paho = client._client
        # Acknowledge only what the pipeline accepted (aiomqtt does not expose manual ack).
        paho.manual_ack_set(True)
        client.pending_calls_threshold = 100_000  # publishing in batches is intended
        on_connect: Any = paho.on_connect

        def note_session(c: Any, userdata: Any, flags: Any, *rest: Any) -> None:
            self._session_present = bool(getattr(flags, "session_present", False))
            on_connect(c, userdata, flags, *rest)

        paho.on_connect = note_session
        return client

    async def run(self) -> None:
        """Keep a session up: reconnect with capped jittered backoff, log changes of state."""
        while True:
            failure: BaseException | None = None
            try:
                async with self._client() as client:
                    try:
                        await self._session(client)
                    except asyncio.CancelledError:
                        _bound_disconnect(client)
                        raise
            except* (aiomqtt.MqttError, OSError) as group:
                failure = group.exceptions[0]
            # A session task that failed while the session was being cancelled turns the
            # cancellation into this error group (TaskGroup: "other errors have priority"):
            # when the daemon is stopping, stop — never reconnect. (Python 3.11's
            # Task.cancelling() cannot tell: a TaskGroup may leave it raised after a
            # connection is lost, so the daemon says so itself.)
            if self.closing:
                raise asyncio.CancelledError
            was_up = self.connected.is_set()
            self.connected.clear()
            self.client = None
            if was_up:
                self.ingest.broker_lost(self.ingest.clock())
            self.ingest.metrics.inc("sealwatch_mqtt_reconnects_total")
            self._attempt = 1 if was_up else self._attempt + 1
            if self._attempt == 1:
                self._rlog.warning(
                    "down",
                    "MQTT broker %s:%d %s (%s); retrying",
                    self.settings.host,
                    self.settings.port,
                    "connection lost" if was_up else "unreachable",
                    failure,
                )
            # The first retry is immediate, then a few tens of milliseconds, doubling up to
            # `reconnect_max_s` (jittered under it): a broker that comes back finds the daemon
            # back within that, ahead of gateways that back off for longer.
            if self._attempt > 1:
                step = min(self.reconnect_max_s, 0.025 * 2 ** min(self._attempt, 16))
                await asyncio.sleep(random.uniform(step / 2, step))

    async def _session(self, client: aiomqtt.Client) -> None:
        self._generation += 1
        generation = self._generation
        subs = [
            (f"sealwatch/{self.site_id}/events/#", 1),
            (f"sealwatch/{self.site_id}/status/#", 1),
            (self.sync_topic, 1),
        ]
        subs += [(f, 1) for f in topic_filters(self.mappings)]
        await client.subscribe(subs)
        await client.publish(self.daemon_topic, b"online", qos=1, retain=True)
        # The broker delivers what it queued for us before this marker: once the engine
        # stage has processed it, the backlog is in and the timer clock may run again.
        self._sync_nonce = uuid.uuid4().hex
        await client.publish(self.sync_topic, self._sync_nonce.encode(), qos=1)
        self._read_in_bursts(client)
        self.client = client
        self.connected.set()
        self.ingest.broker_back(self._session_present)
        if self._attempt:
            self._rlog.log(
                logging.INFO,
                "up",
                "MQTT broker %s:%d reachable again (session %s)",
                self.settings.host,
                self.settings.port,
                "kept" if self._session_present else "new",
            )
            self._attempt = 0
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._receive(client, generation), name="mqtt-receive")
                for task in self.session_tasks:
                    tg.create_task(task.run(client), name=f"mqtt-{type(task).__name__}")
        except asyncio.CancelledError:
            # Shutting down: say so on the availability topic (a clean disconnect sends no
            # last will), then let the cancellation through.
            try:
                await within(client.publish(self.daemon_topic, b"offline", qos=1, retain=True), 2.0)
            except (aiomqtt.MqttError, TimeoutError):
                pass
            raise

    @staticmethod
    def _read_in_bursts(client: aiomqtt.Client) -> None:
        """Read every packet the socket holds on each wake-up, not one.

        aiomqtt's reader calls paho's `loop_read()`, which reads one packet (it ignores its
        `max_packets`); under a backlog the engine stage then gets batches of one or two
        events. Same error handling as aiomqtt's reader.
        """
        paho = client._client
        sock = paho.socket()
        if sock is None:
            return
        fd = sock.fileno()
        disconnected = client._disconnected
        again = mqtt.MQTT_ERR_AGAIN

        def read_burst() -> None:
            try:
                for _ in range(READ_BURST):
                    if paho._sock is None:
                        return
                    rc = paho._packet_read()
                    if rc == again:
                        return
                    if rc > 0:
                        paho._loop_rc_handle(rc)
                        return
            except Exception as exc:  # a broken connection: let aiomqtt see it
                if not disconnected.done():
                    disconnected.set_exception(exc)

        loop = asyncio.get_running_loop()
        loop.remove_reader(fd)
        loop.add_reader(fd, read_burst)

    def ack_many(self, acks: list[Callable[[], None]]) -> None:
        """Send a batch's PUBACKs as one TCP segment (with TCP_NODELAY each 4-byte PUBACK
        would otherwise be its own packet, and sending them was most of the ingest cost)."""
        client = self.client
        sock = client._client.socket() if client is not None else None
        cork: int | None = getattr(socket, "TCP_CORK", None)
        corked = False
        if cork is not None and isinstance(sock, socket.socket) and len(acks) > 1:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, cork, 1)
                corked = True
            except OSError:
                pass
        try:
            for ack in acks:
                ack()
        finally:
            if corked and cork is not None and isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, cork, 0)

    def _acker(
        self, client: aiomqtt.Client, generation: int, mid: int, qos: int
    ) -> Callable[[], None] | None:
        if qos == 0:
            return None
        paho = client._client

        def ack() -> None:
            # A PUBACK belongs to the connection the message came on; after a reconnect the
            # broker redelivers it anyway.
            if generation == self._generation and paho.is_connected():
                paho.ack(mid, qos)

        return ack

    async def _receive(self, client: aiomqtt.Client, generation: int) -> None:
        queued = client._queue  # aiomqtt's own queue of received messages
        async for msg in client.messages:
            self._offer(client, generation, msg)
            # Take what else has arrived without a task and a loop turn per message, so that
            # the engine stage gets a burst in one batch.
            while not queued.empty():
                self._offer(client, generation, queued.get_nowait())

    def _offer(self, client: aiomqtt.Client, generation: int, msg: aiomqtt.Message) -> None:
        ingest = self.ingest
        topic = msg.topic.value
        payload = msg.payload
        raw = (
            bytes(payload)
            if isinstance(payload, bytes | bytearray)
            else (b"" if payload is None else str(payload).encode())
        )
        ack = self._acker(client, generation, msg.mid, msg.qos)
        kind, device = Kind.WRONG_TOPIC, None
        if topic.startswith(self.events_prefix):
            device = topic[len(self.events_prefix) :]
            kind = Kind.EVENT
        elif topic.startswith(self.status_prefix):
            device = topic[len(self.status_prefix) :]
            kind = Kind.STATUS
        elif topic == self.sync_topic:
            if raw.decode(errors="replace") == self._sync_nonce:
                ingest.offer(Incoming(Kind.SYNC, b"", "mqtt", ingest.clock(), topic=topic, ack=ack))
            elif ack is not None:
                ack()  # a marker from an earlier connection
            return
        elif self.mappings:
            kind = Kind.FOREIGN
        if device is not None and (not device or "/" in device):
            kind, device = Kind.WRONG_TOPIC, None
        ingest.offer(
            Incoming(
                kind,
                raw,
                "mqtt",
                ingest.clock(),
                topic=topic,
                device=device,
                retained=bool(msg.retain),
                ack=ack,
            )
        )


def wall_us() -> int:
    return time.time_ns() // 1000


def _bound_disconnect(client: aiomqtt.Client, timeout_s: float = 2.0) -> None:
    """aiomqtt's exit waits for the broker's side of the disconnect without a time limit (a
    stop once hung there for good): give up on it after `timeout_s`."""
    disconnected = client._disconnected

    def give_up() -> None:
        if not disconnected.done():
            disconnected.set_result(None)

    asyncio.get_running_loop().call_later(timeout_s, give_up)
