"""A sink: every alert transition on `sealwatch/SITE/alerts`, and each alert's current state
retained on `…/alerts/active/ID` (an empty retained payload once it is closed).

At least once: a transition stays in the outbox until the broker acknowledged both of its
messages; then the store marks it published. Transitions not published when the daemon stopped
are loaded from the store on start. Failure policy: while the broker is away the outbox grows
(the rows are in the store; the outbox holds references); a batch interrupted by a lost
connection is sent again, whole, on the next connection.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

import aiomqtt

from daemon.aio import wait_event
from daemon.pipeline.items import Row

PUBLISH_BATCH = 200
Entry = tuple[int, str, str, str]  # transition id, alert id, line, retained


class AlertPublisher:
    """`deliver(rows)` from the fan-out; `run(client)` for each connection of the session."""

    name = "mqtt-alerts"

    def __init__(self, site_id: str, published: Callable[[list[int]], None]) -> None:
        self.alerts_topic = f"sealwatch/{site_id}/alerts"
        self.active_prefix = f"sealwatch/{site_id}/alerts/active/"
        self.published = published  # ids acked by the broker, to be marked in the store
        self.outbox: deque[Entry] = deque()
        self.ready = asyncio.Event()
        self.sent = 0

    def load(self, unpublished: list[Entry]) -> None:
        """What the store holds as not yet published (on start)."""
        self.outbox.extend(unpublished)
        if self.outbox:
            self.ready.set()

    def deliver(self, rows: list[Row]) -> None:
        self.outbox.extend((r.id, r.alert_id, r.text, r.retained) for r in rows)
        self.ready.set()

    async def run(self, client: aiomqtt.Client) -> None:
        while True:
            if not self.outbox:
                self.ready.clear()
                await wait_event(self.ready, None)
                continue
            batch = [self.outbox.popleft() for _ in range(min(PUBLISH_BATCH, len(self.outbox)))]
            try:
                sends = []
                for _tid, alert_id, line, retained in batch:
                    sends.append(client.publish(self.alerts_topic, line.encode(), qos=1))
                    sends.append(
                        client.publish(
                            self.active_prefix + alert_id, retained.encode(), qos=1, retain=True
                        )
                    )
                # paho sends them in call order; gather waits for every PUBACK.
                await asyncio.gather(*sends)
            except BaseException:
                self.outbox.extendleft(reversed(batch))  # again, whole, next time
                raise
            self.sent += len(batch)
            self.published([b[0] for b in batch])
