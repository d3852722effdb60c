"""A field gateway as real ones behave, for fault tests and benchmarks: its own persistent MQTT
session, QoS 1, and paho's unbounded local queue of what it could not send while the broker
was away. It counts the PUBACKs it got (what the broker took responsibility for)."""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.daemon import now_ts
from tests.support.mosquitto import Mosquitto


class BufferingGateway:
    """A field gateway: its own persistent session, QoS 1, paho's unbounded local queue of what
    it could not send while the broker was away. Counts PUBACKs and notes each connect."""

    def __init__(self, broker: Mosquitto, site_id: str, device: str) -> None:
        self.device = device
        self.topic = f"sealwatch/{site_id}/events/{device}"
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"gw-{site_id}-{device}", clean_session=False
        )
        self.client.max_queued_messages_set(0)
        # paho's stubs say int; its backoff takes seconds as floats
        self.client.reconnect_delay_set(0.05, 0.5)  # type: ignore[arg-type]
        self.acked: set[int] = set()
        self.sent = 0
        self.connects: list[float] = []  # time.monotonic() of each CONNACK
        self._mids: dict[int, int] = {}
        self._early: set[int] = set()
        self._lock = threading.Lock()
        self.client.on_publish = self._on_publish
        self.client.on_connect = self._on_connect
        self.broker = broker

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, *rest: Any) -> None:
        if not reason.is_failure:
            self.connects.append(time.monotonic())

    def _on_publish(self, client: Any, userdata: Any, mid: int, *rest: Any) -> None:
        with self._lock:
            n = self._mids.pop(mid, None)
            if n is None:
                self._early.add(mid)  # acked before publish() returned its mid
            else:
                self.acked.add(n)

    def start(self) -> None:
        self.client.connect("127.0.0.1", self.broker.port, keepalive=5)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def publish(self) -> None:
        n = self.sent
        self.sent += 1
        body = {"type": "door.opened" if n % 2 == 0 else "door.closed", "ts": now_ts(), "n": n}
        # paho's own lock is held around on_publish: never call it while holding ours.
        info = self.client.publish(self.topic, orjson.dumps(body), qos=1)
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
                self.acked.add(n)
            else:
                self._mids[info.mid] = n

    @property
    def n_acked(self) -> int:
        with self._lock:
            return len(self.acked)
