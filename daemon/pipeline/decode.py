"""Stage 1b, decoding: an ingest item's bytes → JSON objects for the engine stage.

Pure and total: any bytes give objects or a `Reject` with a reason, never another exception.
Third-party topics go through the configured MQTT mapping (adapters/mqtt_mapping.py).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from adapters.mqtt_mapping import Ignored as LeftAlone
from adapters.mqtt_mapping import MappingRule, map_message
from daemon.pipeline.items import Ignored, Incoming, Kind, Reject, Skip
from policies.events import Rejection


def reason_class(reason: str) -> str:
    """A short, bounded label for a rejection reason (metrics must not explode)."""
    head = re.split(r"['\":(\d]", reason, maxsplit=1)[0].strip().lower()
    return re.sub(r"[^a-z]+", "_", head).strip("_")[:40] or "invalid"


class Decoder:
    """Turns ingest items into event objects; remembers gateway statuses it has seen."""

    def __init__(
        self, site_id: str, max_payload_bytes: int, mappings: list[MappingRule] | None = None
    ) -> None:
        self.site_id = site_id
        self.max_payload_bytes = max_payload_bytes
        self.mappings = mappings or []
        self.status: dict[str, str] = {}  # device → last online/offline accepted

    def decode(self, item: Incoming) -> list[dict[str, Any]]:
        """The item's event objects (raises Reject or Skip)."""
        if item.kind == Kind.REJECT:
            raise Reject("adapter", item.reason or "rejected by adapter")
        if isinstance(item.payload, dict):
            return [item.payload]
        size = len(item.payload)
        if size > self.max_payload_bytes:
            raise Reject(
                "too_large",
                f"payload of {size} bytes is over the {self.max_payload_bytes} byte limit",
            )
        if item.kind == Kind.WRONG_TOPIC:
            raise Reject(
                "wrong_topic",
                f"wrong topic {_short(item.topic)} (expected sealwatch/{self.site_id}/events/"
                "DEVICE or …/status/DEVICE)",
            )
        if item.kind == Kind.FOREIGN:
            mapped = map_message(self.mappings, item.topic or "", item.payload)
            if isinstance(mapped, Rejection):
                raise Reject("mapping", mapped.reason)
            if isinstance(mapped, LeftAlone):
                raise Ignored(mapped.reason)
            if not mapped:
                raise Reject("unmapped", f"no mapping rule covers topic {_short(item.topic)}")
            return mapped
        if item.kind == Kind.STATUS:
            state = item.payload.decode("utf-8", "replace").strip()
            if state not in ("online", "offline"):
                raise Reject(
                    "bad_status", f"status payload must be online or offline, got {state[:40]!r}"
                )
            if item.retained and self.status.get(item.device or "") == state:
                raise Skip  # a retained status we already know, redelivered on resubscribe
            return [{"type": "device.status", "device": item.device, "state": state}]
        try:
            obj = orjson.loads(item.payload)
        except orjson.JSONDecodeError as exc:
            raise Reject("not_json", f"not valid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise Reject("not_object", f"expected a JSON object, got {type(obj).__name__}")
        return [obj]


def _short(topic: str | None) -> str:
    t = topic or ""
    return repr(t if len(t) <= 120 else t[:120] + "…")
