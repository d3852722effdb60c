"""The ledger's head, signed with the site key, retained on `sealwatch/SITE/audit/head`.

Someone who can rewrite the database cannot rewrite what the broker (and every subscriber that
kept it) holds: `sealwatch audit verify --anchor FILE` checks a store against a head saved from
here, which catches a cut-off tail. A session task like the alert publisher: QoS 1, retained,
at most once per `min_interval_s` and always the latest written head. Failure policy: while the
broker is away nothing is sent; on the next connection the latest head is.
"""

from __future__ import annotations

import asyncio
import time

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from daemon.aio import wait_event
from daemon.audit import SignedHead, sign_head


class HeadPublisher:
    """`note(seq, hash)` once a commit is written; `run(client)` for each connection."""

    name = "mqtt-audit-head"

    def __init__(self, site_id: str, key: Ed25519PrivateKey, min_interval_s: float = 1.0) -> None:
        self.site_id = site_id
        self.topic = f"sealwatch/{site_id}/audit/head"
        self.key = key
        self.min_interval_s = min_interval_s
        self.latest: tuple[int, str] | None = None
        self.sent: tuple[int, str] | None = None
        self.ready = asyncio.Event()
        self.published = 0

    def note(self, seq: int, digest: str) -> None:
        if self.latest is None or seq >= self.latest[0]:
            self.latest = (seq, digest)
            self.ready.set()

    def signed(self) -> SignedHead | None:
        """The newest written head, signed now (for the seal archive and `audit head`)."""
        if self.latest is None:
            return None
        return sign_head(self.key, self.site_id, *self.latest, time.time_ns() // 1000)

    async def run(self, client: aiomqtt.Client) -> None:
        self.sent = None  # a new connection: send the latest again
        while True:
            if self.latest is None or self.latest == self.sent:
                self.ready.clear()
                await wait_event(self.ready, None)
                continue
            head = self.signed()
            assert head is not None
            await client.publish(self.topic, head.to_json(), qos=1, retain=True)
            self.sent = (head.seq, head.hash)
            self.published += 1
            await asyncio.sleep(self.min_interval_s)
