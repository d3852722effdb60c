"""The centre's MQTT session: one persistent session (`clean_session` false, a fixed client id)
on whichever cluster node answers, failing over to the next when the node goes.

With RabbitMQ's `mqtt.durable_queue_type = quorum` the session's QoS 1 subscription is a quorum
queue replicated across the nodes: what the cluster acknowledged to a site's bridge waits there
while the centre is away or moves to another node, and is delivered when it is back (at least
once; `state.Centre` drops repeats). MQTT 3.1.1, the version RabbitMQ 3.10 speaks.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

import aiomqtt

from adapters.base import RateLimitedLog
from daemon.central.config import Broker, CentralConfig

log = logging.getLogger("sealwatch.central")
FILTERS = (
    "sealwatch/+/alerts",
    "sealwatch/+/alerts/active/#",
    "sealwatch/+/summary",
    "sealwatch/+/daemon",
    "sealwatch/+/bridge",
    "sealwatch/+/audit/head",
)
RETRY_MIN_S = 0.2
RETRY_MAX_S = 5.0
KEEPALIVE_S = 15


class ClusterLink:
    """`run()` keeps the session up; each message goes to `handle(topic, payload)`."""

    def __init__(self, config: CentralConfig, handle: Callable[[str, bytes], None]) -> None:
        self.config = config
        self.handle = handle
        self.connected: Broker | None = None
        self.connections = 0  # sessions opened (1 + fail-overs and reconnections)
        self.up = asyncio.Event()
        self._rlog = RateLimitedLog(log)

    def _client(self, broker: Broker) -> aiomqtt.Client:
        c = self.config
        tls: ssl.SSLContext | None = None
        if broker.tls:
            tls = ssl.create_default_context(cafile=str(c.ca_file) if c.ca_file else None)
            if c.cert_file:
                tls.load_cert_chain(str(c.cert_file), str(c.key_file) if c.key_file else None)
        return aiomqtt.Client(
            broker.host,
            broker.port,
            identifier=c.client_id,
            username=c.username,
            password=c.password,
            clean_session=False,
            protocol=aiomqtt.ProtocolVersion.V311,
            keepalive=KEEPALIVE_S,
            tls_context=tls,
        )

    async def run(self) -> None:
        brokers = self.config.brokers
        index, delay = 0, RETRY_MIN_S
        while True:
            broker = brokers[index % len(brokers)]
            try:
                async with self._client(broker) as client:
                    await client.subscribe([(f, 1) for f in FILTERS])
                    self.connected = broker
                    self.connections += 1
                    self.up.set()
                    delay = RETRY_MIN_S
                    log.info("central: following the sites through %s", broker.label)
                    async for msg in client.messages:
                        payload = msg.payload if isinstance(msg.payload, bytes) else b""
                        self.handle(msg.topic.value, payload)
            except (aiomqtt.MqttError, OSError) as exc:
                self._rlog.warning(
                    f"down:{broker.label}",
                    "central: cluster node %s %s (%s); trying the next",
                    broker.label,
                    "lost" if self.connected is broker else "unreachable",
                    exc,
                )
            self.connected = None
            self.up.clear()
            index += 1
            if index % len(brokers) == 0:  # every node tried: wait a little, then again
                await asyncio.sleep(delay)
                delay = min(RETRY_MAX_S, delay * 2)
