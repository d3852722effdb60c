"""What the centre knows of each site, from the topics its bridge forwards (docs/central.md).

`Centre.handle(topic, payload)` takes one MQTT message of `sealwatch/SITE/…`:

- `alerts`: a transition; counted once per (alert id, state, ts) — the bridge and the
  cluster deliver at least once, so a repeat is dropped, not counted twice;
- `alerts/active/ID`: the alert's current state, empty once closed (the drill-down);
- `summary`: the site's summary (seals with jammer uptime, active alerts); it also replaces the
  active-alert list, so a centre that missed messages is whole again after one summary;
- `daemon` (`online`/`offline`, the daemon's last will), `bridge` (`1`/`0`, the bridge's
  notification and last will), `audit/head` (the signed ledger head).

Bad input (an unknown site, a payload that is not the JSON expected) is counted, logged at
most once a minute per reason and kept in `rejections`; it never raises.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from adapters.base import RateLimitedLog
from daemon.central.config import CentralConfig, SiteRef
from daemon.metrics import Metrics

log = logging.getLogger("sealwatch.central")
SEVERITY_RANK = {"minor": 0, "major": 1, "critical": 2}
RECENT_MAX = 20_000  # transitions kept per site for the API (deduplication keeps more)
SEEN_MAX = 200_000
REJECTIONS_MAX = 200
Key = tuple[str, str, str]


@dataclass
class SiteState:
    ref: SiteRef
    summary: dict[str, Any] | None = None
    summary_at: float | None = None
    daemon: str | None = None
    bridge: str | None = None
    head: dict[str, Any] | None = None
    last_seen: float | None = None
    active: dict[str, dict[str, Any]] = field(default_factory=dict)
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_MAX))
    seen: set[Key] = field(default_factory=set)
    seen_order: deque[Key] = field(default_factory=deque)
    transitions: int = 0
    duplicates: int = 0

    def availability(self, now: float, offline_after_s: float) -> str:
        if self.last_seen is None:
            return "unknown"
        if self.bridge == "0":
            return "link-down"
        if self.daemon == "offline":
            return "offline"
        if now - self.last_seen > offline_after_s:
            return "silent"
        return "online"

    def worst(self) -> dict[str, Any] | None:
        if not self.active:
            return None
        return max(
            self.active.values(),
            key=lambda a: (
                SEVERITY_RANK.get(str(a.get("severity")), -1),
                a.get("state") != "cleared",
                str(a.get("ts", "")),
            ),
        )


class Centre:
    def __init__(self, config: CentralConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.sites = {s.id: SiteState(s) for s in config.sites}
        self.rejected: Counter[str] = Counter()
        self.rejections: deque[dict[str, Any]] = deque(maxlen=REJECTIONS_MAX)
        self.messages = 0
        # called with (site id, transition) for each new transition (the benchmark's probe)
        self.on_transition: list[Callable[[str, dict[str, Any]], None]] = []
        self._rlog = RateLimitedLog(log)
        self.problems: dict[str, str] = {}  # component → what is wrong (for /healthz)
        self.metrics = Metrics()
        m = self.metrics
        m.counter(
            "sealwatch_central_messages_total",
            "Messages received from the cluster",
            read=lambda: float(self.messages),
        )
        m.counter(
            "sealwatch_central_transitions_total",
            "Alert transitions received (each counted once), by site",
            ("site",),
            read=lambda: {(k,): float(s.transitions) for k, s in self.sites.items()},
        )
        m.counter(
            "sealwatch_central_rejected_total",
            "Messages rejected, by reason",
            ("reason",),
            read=lambda: {(k,): float(n) for k, n in self.rejected.items()},
        )

    def seals_of(self, site_id: str) -> frozenset[str]:
        """The seals in force at a site, by its latest summary."""
        site = self.sites.get(site_id)
        seals = (site.summary or {}).get("seals") if site is not None else None
        if not isinstance(seals, list):
            return frozenset()
        return frozenset(
            str(s["id"])
            for s in seals
            if isinstance(s, dict) and "id" in s and s.get("status") == "active"
        )

    def handle(self, topic: str, payload: bytes) -> None:
        self.messages += 1
        parts = topic.split("/", 2)
        if len(parts) < 3 or parts[0] != "sealwatch":
            return self._reject(topic, "not a sealwatch/SITE/… topic")
        site = self.sites.get(parts[1])
        if site is None:
            return self._reject(topic, "a site that is not in the centre's sites list")
        rest = parts[2]
        now = self.clock()
        try:
            if rest == "alerts":
                self._transition(site, _obj(payload))
            elif rest.startswith("alerts/active/"):
                alert_id = rest[len("alerts/active/") :]
                if payload:
                    site.active[alert_id] = _obj(payload)
                else:
                    site.active.pop(alert_id, None)
            elif rest == "summary":
                summary = _obj(payload)
                site.summary, site.summary_at = summary, now
                alerts = summary.get("alerts")
                if isinstance(alerts, list) and not summary.get("alerts_truncated"):
                    site.active = {
                        str(a["alert_id"]): a
                        for a in alerts
                        if isinstance(a, dict) and "alert_id" in a
                    }
            elif rest == "daemon":
                site.daemon = _word(payload, ("online", "offline"))
            elif rest == "bridge":
                site.bridge = _word(payload, ("0", "1"))
            elif rest == "audit/head":
                site.head = _obj(payload)
            else:
                return self._reject(topic, "a topic the centre does not follow")
        except ValueError as exc:
            return self._reject(topic, str(exc))
        site.last_seen = now

    def _transition(self, site: SiteState, tr: dict[str, Any]) -> None:
        try:
            key = (str(tr["alert_id"]), str(tr["state"]), str(tr["ts"]))
        except KeyError as exc:
            raise ValueError(f"a transition without {exc.args[0]}") from None
        if key in site.seen:
            site.duplicates += 1
            return
        site.seen.add(key)
        site.seen_order.append(key)
        if len(site.seen_order) > SEEN_MAX:
            site.seen.discard(site.seen_order.popleft())
        site.transitions += 1
        site.recent.append(tr)
        for cb in self.on_transition:
            cb(site.ref.id, tr)

    def _reject(self, topic: str, reason: str) -> None:
        self.rejected[reason] += 1
        self.rejections.append({"at": self.clock(), "topic": topic[:200], "reason": reason})
        self._rlog.log(logging.WARNING, reason, "rejected a message on %s: %s", topic, reason)

    # -- what the API shows ----------------------------------------------------------------------

    def site_row(self, site: SiteState) -> dict[str, Any]:
        now = self.clock()
        summary = site.summary or {}
        counts: Counter[str] = Counter(str(a.get("severity")) for a in site.active.values())
        return {
            "id": site.ref.id,
            "name": site.ref.name,
            "lon": site.ref.lon,
            "lat": site.ref.lat,
            "availability": site.availability(now, self.config.offline_after_s),
            "daemon": site.daemon,
            "bridge": {"1": "up", "0": "down"}.get(site.bridge or "", None),
            "last_seen": site.last_seen,
            "last_seen_s_ago": None if site.last_seen is None else round(now - site.last_seen, 1),
            "summary_at": site.summary_at,
            "worst": site.worst(),
            "alerts": {s: counts.get(s, 0) for s in SEVERITY_RANK},
            "seals": summary.get("seals", []),
            "transitions_seen": site.transitions,
            "duplicates_dropped": site.duplicates,
            "audit_head": site.head,
        }

    def overview(self) -> dict[str, Any]:
        rows = [self.site_row(s) for s in self.sites.values()]
        by = Counter(r["availability"] for r in rows)
        return {
            "name": self.config.name,
            "sites": rows,
            "availability": dict(by),
            "rejected": sum(self.rejected.values()),
        }


def _obj(payload: bytes) -> dict[str, Any]:
    try:
        got = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise ValueError("the payload is not JSON") from None
    if not isinstance(got, dict):
        raise ValueError("the payload is not a JSON object")
    return got


def _word(payload: bytes, allowed: tuple[str, ...]) -> str:
    text = payload.decode(errors="replace").strip()
    if text not in allowed:
        raise ValueError(f"expected one of {', '.join(allowed)}")
    return text
