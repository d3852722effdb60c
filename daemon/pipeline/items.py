"""What travels between the stages: an item into the pipeline, its outcome, and a refusal."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class Kind(enum.StrEnum):
    """What an ingest item is."""

    EVENT = "event"  # a normalized event (bytes from MQTT, or a dict from an adapter/operator)
    STATUS = "status"  # a gateway's retained online/offline
    FOREIGN = "foreign"  # a third-party topic, for the MQTT mapping
    WRONG_TOPIC = "wrong_topic"
    REJECT = "reject"  # an adapter could not make an event of what a device sent
    SYNC = "sync"  # the broker's backlog for this session has been delivered


@dataclass(slots=True)
class Incoming:
    """One thing for the engine stage: an MQTT payload, an adapter's event, a command."""

    kind: Kind
    payload: bytes | dict[str, Any]
    origin: str  # mqtt, http, cli, daemon, or an adapter's name
    received: int  # wall clock, µs
    topic: str | None = None
    device: str | None = None  # the default device (the topic's last level)
    actor: str | None = None
    retained: bool = False
    reason: str | None = None  # for Kind.REJECT
    ack: Callable[[], None] | None = None  # MQTT PUBACK, sent once the item is accepted
    reply: asyncio.Future[Outcome] | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    accepted: bool
    reason: str | None = None
    seq: int | None = None
    transitions: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "reason": self.reason,
            "seq": self.seq,
            "transitions": self.transitions,
        }


class Reject(Exception):
    """This payload is refused for `reason` (class `kind` for the counter)."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind, self.reason = kind, reason


class Skip(Exception):
    """Nothing to do for this item (it is acked and counted as accepted)."""


class Ignored(Skip):
    """The MQTT mapping's configuration leaves this message alone (counted, not stored)."""


@dataclass(frozen=True, slots=True)
class Row:
    """One stored alert transition, as the sinks get it."""

    id: int
    alert_id: str
    line: dict[str, Any]  # the §3 line (plus acked_by, comment, suppressed where set)
    text: str  # `line` as JSON, published on sealwatch/SITE/alerts
    retained: str  # the alert's current state for …/alerts/active/ID ("" once closed)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, **self.line}
