"""The daemon's MQTT session: event ingest, alert publishing and its own availability.

One persistent session (fixed client id, clean_session=False, QoS 1) so the broker queues what
gateways publish while the daemon restarts. Incoming messages are acknowledged only after the
engine task has stored them (paho's manual ack), so a crash between receiving and storing makes
the broker deliver again instead of losing the event. Alerts are published at least once: a
stored transition is marked published only after the broker acknowledged both its messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import uuid
from collections.abc import Callable
from typing import Any

import aiomqtt
import paho.mqtt.client as mqtt

from adapters.base import RateLimitedLog, backoff_delay
from daemon.config import Mqtt
from daemon.monitor import Incoming, Monitor

log = logging.getLogger("sealwatch.mqtt")
PUBLISH_BATCH = 200
READ_BURST = 512  # MQTT packets read per wake-up of the event loop


class MqttLink:
    """The session; `run()` is a task of the daemon's TaskGroup (it owns the per-session ones)."""

    def __init__(self, site_id: str, settings: Mqtt, monitor: Monitor) -> None:
        self.site_id = site_id
        self.settings = settings
        self.monitor = monitor
        base = f"sealwatch/{site_id}"
        self.events_prefix = f"{base}/events/"
        self.status_prefix = f"{base}/status/"
        self.alerts_topic = f"{base}/alerts"
        self.active_prefix = f"{base}/alerts/active/"
        self.daemon_topic = f"{base}/daemon"
        self.sync_topic = f"{base}/daemon/sync/{settings.client_id}"
        self.connected = asyncio.Event()
        self._generation = 0
        self._sync_nonce = ""
        self._attempt = 0  # failed connections since the last session that came up
        self._rlog = RateLimitedLog(log)

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
        # Acknowledge only what the engine task has stored (see the module docstring).
        client._client.manual_ack_set(True)  # aiomqtt does not expose paho's manual ack
        client.pending_calls_threshold = 100_000  # publishing in batches is intended
        return client

    async def run(self) -> None:
        """Keep a session up: reconnect with capped jittered backoff, log changes of state."""
        while True:
            failure: BaseException | None = None
            try:
                async with self._client() as client:
                    await self._session(client)
            except* (aiomqtt.MqttError, OSError) as group:
                failure = group.exceptions[0]
            was_up = self.connected.is_set()
            self.connected.clear()
            self.monitor.hold()
            self.monitor.metrics.inc("sealwatch_mqtt_reconnects_total")
            # Attempts count from the last session that came up, not from the last TCP
            # connect: a broker that accepts and then refuses the subscription must still
            # see us back off. A session that flaps (another daemon on our client id) is
            # logged at most once per interval.
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
            await asyncio.sleep(backoff_delay(self._attempt, cap_s=10.0))

    async def _session(self, client: aiomqtt.Client) -> None:
        self._generation += 1
        generation = self._generation
        self.monitor.hold()
        await client.subscribe(
            [
                (f"sealwatch/{self.site_id}/events/#", 1),
                (f"sealwatch/{self.site_id}/status/#", 1),
                (self.sync_topic, 1),
            ]
        )
        await client.publish(self.daemon_topic, b"online", qos=1, retain=True)
        # The broker delivers what it queued for us before this marker: once the engine
        # task has processed it, the backlog is in and the timer clock may run again.
        self._sync_nonce = uuid.uuid4().hex
        await client.publish(self.sync_topic, self._sync_nonce.encode(), qos=1)
        self.monitor.ack_many = self._corked_acks(client)
        self._read_in_bursts(client)
        self.connected.set()
        if self._attempt:
            self._rlog.log(
                logging.INFO,
                "up",
                "MQTT broker %s:%d reachable again",
                self.settings.host,
                self.settings.port,
            )
            self._attempt = 0
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._receive(client, generation), name="mqtt-receive")
                tg.create_task(self._publish(client), name="mqtt-publish")
        except asyncio.CancelledError:
            # Shutting down: say so on the availability topic (a clean disconnect sends no
            # last will), then let the cancellation through.
            try:
                await asyncio.wait_for(
                    client.publish(self.daemon_topic, b"offline", qos=1, retain=True), 2.0
                )
            except (aiomqtt.MqttError, TimeoutError):
                pass
            raise

    @staticmethod
    def _read_in_bursts(client: aiomqtt.Client) -> None:
        """Read every packet the socket holds on each wake-up, not one.

        aiomqtt's reader calls paho's `loop_read()`, which reads one packet (it ignores its
        `max_packets`); under a backlog the engine task then stores batches of one or two
        events and the commits and acks cap ingest. Same error handling as aiomqtt's reader.
        """
        paho = client._client
        sock = paho.socket()
        if sock is None:
            return
        fd = sock.fileno()
        disconnected = client._disconnected
        again = mqtt.MQTTErrorCode.MQTT_ERR_AGAIN

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

    def _corked_acks(self, client: aiomqtt.Client) -> Callable[[list[Callable[[], None]]], None]:
        """Send a batch's PUBACKs as one TCP segment: with TCP_NODELAY each 4-byte PUBACK
        would otherwise be its own packet, and sending them was most of the ingest cost."""
        sock = client._client.socket()
        cork = getattr(socket, "TCP_CORK", None)

        def ack_many(acks: list[Callable[[], None]]) -> None:
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
                if corked:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.IPPROTO_TCP, cork, 0)

        return ack_many

    def _acker(
        self, client: aiomqtt.Client, generation: int, mid: int, qos: int
    ) -> Callable[[], None] | None:
        if qos == 0:
            return None
        paho = client._client

        def ack() -> None:
            # A PUBACK belongs to the connection the message came on; after a reconnect the
            # broker redelivers it anyway.
            if generation == self._generation:
                paho.ack(mid, qos)

        return ack

    async def _receive(self, client: aiomqtt.Client, generation: int) -> None:
        queued = client._queue  # aiomqtt's own queue of received messages
        async for msg in client.messages:
            self._offer(client, generation, msg)
            # Take what else has arrived without a task and a loop turn per message (what
            # `client.messages` costs), so that the engine task stores a burst in one batch.
            while not queued.empty():
                self._offer(client, generation, queued.get_nowait())

    def _offer(self, client: aiomqtt.Client, generation: int, msg: aiomqtt.Message) -> None:
        monitor = self.monitor
        topic = msg.topic.value
        payload = msg.payload
        raw = (
            payload
            if isinstance(payload, bytes | bytearray)
            else (b"" if payload is None else str(payload).encode())
        )
        ack = self._acker(client, generation, msg.mid, msg.qos)
        kind, device = "wrong_topic", None
        if topic.startswith(self.events_prefix):
            device = topic[len(self.events_prefix) :]
            kind = "event"
        elif topic.startswith(self.status_prefix):
            device = topic[len(self.status_prefix) :]
            kind = "status"
        elif topic == self.sync_topic:
            if bytes(raw).decode(errors="replace") == self._sync_nonce:
                monitor.offer(Incoming("sync", b"", "mqtt", monitor.clock(), topic=topic, ack=ack))
            elif ack is not None:
                ack()  # a marker from an earlier connection
            return
        if device is not None and (not device or "/" in device):
            kind, device = "wrong_topic", None
        monitor.offer(
            Incoming(
                kind,
                bytes(raw),
                "mqtt",
                monitor.clock(),
                topic=topic,
                device=device,
                retained=bool(msg.retain),
                ack=ack,
            )
        )

    async def _publish(self, client: aiomqtt.Client) -> None:
        monitor = self.monitor
        monitor.reload_outbox()
        while True:
            if not monitor.outbox:
                monitor.outbox_ready.clear()
                await monitor.outbox_ready.wait()
                continue
            batch = [
                monitor.outbox.popleft() for _ in range(min(PUBLISH_BATCH, len(monitor.outbox)))
            ]
            sends: list[Any] = []
            for _tid, alert_id, line, retained in batch:
                sends.append(client.publish(self.alerts_topic, line.encode(), qos=1))
                sends.append(
                    client.publish(
                        self.active_prefix + alert_id, retained.encode(), qos=1, retain=True
                    )
                )
            # paho sends them in call order; gather waits for every PUBACK.
            await asyncio.gather(*sends)
            monitor.store.mark_published([b[0] for b in batch])
            monitor.metrics.inc("sealwatch_published_total", by=len(batch))
