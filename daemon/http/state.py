"""What the dashboard shows, built from the read-only view: alerts (explained), device states,
people inside, the seal panel with jammer downtime, the timeline, and the whole snapshot.

Pure builders: no HTTP, no sockets. Every stored time is formatted with
`daemon.view.format_time`, which never raises (a shelve until year 9999 still shows).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson

from daemon.http import WEB
from daemon.http.auth import User
from daemon.http.plan import zone_index
from daemon.view import AlertView, EventRow, ReadView, SealFacts, format_time
from policies.timefmt import parse_ts

# Device telemetry that would drown the timeline; shown only when asked for.
TELEMETRY = frozenset({"device.heartbeat", "jammer.status", "camera.status", "recording.inventory"})
SEVERITY_RANK = {"minor": 0, "major": 1, "critical": 2}
SEVERITIES = frozenset(SEVERITY_RANK)
# A latched alert closes the moment it is acknowledged (docs/policies.md); the page keeps it,
# greyed, this long, so the operator sees what their acknowledgement did.
CLOSED_LINGER_S = 600
Thumbnails = Callable[[str, int], bytes | None]


def _ms(us: int | None) -> int | None:
    return us // 1000 if us else None


class StateBuilder:
    """Builds the snapshot and its parts from a `ReadView` and the static site plan."""

    def __init__(self, view: ReadView, plan: dict[str, Any]) -> None:
        self.view = view
        self.site = view.site
        self.plan = plan
        self.text: dict[str, Any] = orjson.loads((WEB / "i18n.json").read_bytes())
        self.zone_of = zone_index(self.site)
        self.thumbnails: Thumbnails | None = None  # set by whoever runs the camera adapter

    # -- alerts, explained ------------------------------------------------------------------------

    def explain(self, policy: str, subject: str) -> dict[str, str]:
        texts = self.text.get("explain", {}).get(policy) or {}
        out = {}
        for lang in ("zh-CN", "en"):
            t = texts.get(lang) or self.text["explain"]["_"][lang]
            out[lang] = t.replace("{subject}", subject)
        return out

    def alert_json(self, v: AlertView) -> dict[str, Any]:
        tz = self.view.tz
        device = v.subject.split("/", 1)[0]
        return {
            "id": v.alert_id,
            "policy": v.policy,
            "subject": v.subject,
            "severity": v.severity,
            "clause": v.clause,
            "message": v.message,
            "raised": format_time(v.raised_ts, tz),
            "raised_ms": v.raised_ts // 1000,
            "last_ms": v.last_ts // 1000,
            "state": v.isa_state,
            "active": v.active,
            "acked": v.acked,
            "acked_by": v.acked_by,
            "shelved_by": v.shelved_by,
            "closed": v.closed,
            "linger_until_ms": (v.last_ts // 1000 + CLOSED_LINGER_S * 1000 if v.closed else None),
            "shelved_until": (
                format_time(v.shelved_until, tz) if v.shelved_until is not None else None
            ),
            "suppressed": v.suppressed,
            "device": device,
            "zone": self.zone_of.get(device),
            "explain": self.explain(v.policy, v.subject),
        }

    def recently_closed(self) -> list[AlertView]:
        """Latched alerts closed by their acknowledgement in the last CLOSED_LINGER_S."""
        return self.view.closed_on_ack(self.view.clock() - CLOSED_LINGER_S * 1_000_000)

    # -- device state -----------------------------------------------------------------------------

    def _alert_marks(self) -> tuple[dict[str, str], set[str], set[str]]:
        """Per device: the worst active alert severity; doors forced; devices offline."""
        worst: dict[str, str] = {}
        forced: set[str] = set()
        offline: set[str] = set()
        for v in self.view.open_alerts():
            if not v.active:
                continue
            device = v.subject.split("/", 1)[0]
            if SEVERITY_RANK.get(v.severity, 0) >= SEVERITY_RANK.get(worst.get(device, ""), -1):
                worst[device] = v.severity
            if v.policy == "door-forced":
                forced.add(device)
            elif v.policy == "device-offline":
                offline.add(device)
        return worst, forced, offline

    def device_states(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        worst, forced, offline = self._alert_marks()
        kinds = self.site.device_kind
        out = []
        for d in ids:
            kind = kinds.get(d)
            if kind is None:
                continue
            f = self.view.device(d)
            seen = f.last_seen_us
            st: dict[str, Any] = {
                "id": d,
                "seen_ms": seen // 1000 if seen else None,
                "online": None if seen is None else not (f.reported_offline or d in offline),
                "sev": worst.get(d),
            }
            if kind == "door":
                st["open"] = f.door_open
                st["forced"] = d in forced
            elif kind == "alarm_input":
                st["state"] = f.input_state
            elif kind == "alarm_panel":
                st["armed"] = f.panel_armed
                st["mains"], st["battery"] = f.mains, f.battery
            elif kind == "jammer":
                if f.jammer is not None:
                    st.update(
                        output=f.jammer.output,
                        bands=f.jammer.bands,
                        faults=list(f.jammer.faults),
                        temp=f.jammer.temperature_c,
                    )
            elif kind == "camera" and f.camera is not None:
                st.update(stream=f.camera.stream, tamper=f.camera.tamper, fps=f.camera.fps)
            out.append(st)
        return out

    # -- the seal -------------------------------------------------------------------------------

    def seal_panel(self) -> list[dict[str, Any]]:
        """The seals in force (else the last ended or the next planned) with jammer uptime."""
        seals = self.view.seals()
        shown: list[SealFacts] = [s for s in seals if s.status == "active"]
        if not shown:
            ended = [s for s in seals if s.status == "ended" and s.end is not None]
            pending = [s for s in seals if s.status == "pending"]
            if ended:
                shown = [max(ended, key=lambda s: s.end or 0)]
            elif pending:
                shown = [min(pending, key=lambda s: s.planned_start or 0)]
        now = self.view.clock()
        started = [s.start for s in shown if s.start is not None]
        intervals: dict[str, list[tuple[int, int | None]]] = {}
        raises: list[tuple[int, str]] = []
        if started:
            opened: dict[str, tuple[str, int]] = {}
            for ts, subject, state, alert_id in self.view.policy_transitions(
                "jammer-uptime", min(started)
            ):
                if state == "raised":
                    opened[alert_id] = (subject, ts)
                    raises.append((ts, subject))
                elif state == "cleared" and alert_id in opened:
                    subj, t0 = opened.pop(alert_id)
                    intervals.setdefault(subj, []).append((t0, ts))
            for subj, t0 in opened.values():
                intervals.setdefault(subj, []).append((t0, None))
        out = []
        tz = self.view.tz
        for s in shown:
            item: dict[str, Any] = {
                "id": s.id,
                "name": s.name,
                "classification": s.classification,
                "status": s.status,
                "start_ms": _ms(s.start),
                "end_ms": _ms(s.end),
                "planned_start_ms": _ms(s.planned_start),
                "planned_end_ms": _ms(s.planned_end),
                "start": format_time(s.start, tz) if s.start else None,
                "planned_end": format_time(s.planned_end, tz) if s.planned_end else None,
                "bands": [],
                "interruptions": 0,
            }
            if s.start is not None:
                lo, hi = s.start, s.end if s.end is not None else now
                item["interruptions"] = sum(1 for ts, _ in raises if lo <= ts <= hi)
                for jid, jam in self.site.jammers.items():
                    for band in jam.bands:
                        spans = intervals.get(f"{jid}/{band.id}", []) + intervals.get(jid, [])
                        down, down_now = union_length(spans, lo, hi)
                        item["bands"].append(
                            {
                                "jammer": jid,
                                "band": band.id,
                                "down_ms": down // 1000,
                                "down_now": down_now,
                            }
                        )
            out.append(item)
        return out

    def seal_calendar(self) -> list[dict[str, Any]]:
        """Every seal the engine knows (scheduled in the site file or started at run time):
        upcoming, running and past, with who started and ended it, the pre-seal record in
        force when it started, and the alerts raised during it by severity."""
        stored = {r["id"]: r for r in self.view.seal_records()}
        now = self.view.clock()
        tz = self.view.tz
        out = []
        for s in self.view.seals():
            rec = stored.get(s.id, {})
            item: dict[str, Any] = {
                "id": s.id,
                "name": s.name,
                "classification": s.classification,
                "status": s.status,
                "planned_start_ms": _ms(s.planned_start),
                "planned_end_ms": _ms(s.planned_end),
                "start_ms": _ms(s.start),
                "end_ms": _ms(s.end),
                "started_by": rec.get("started_by"),
                "ended_by": rec.get("ended_by"),
                "precheck": rec.get("precheck"),
                "alerts": (
                    self.view.raised_counts(s.start, s.end if s.end is not None else now)
                    if s.start is not None
                    else {}
                ),
            }
            for key in ("planned_start", "planned_end", "start", "end"):
                us = getattr(s, key)
                item[key] = format_time(us, tz) if us is not None else None
            out.append(item)
        order = {"active": 0, "pending": 1, "ended": 2}
        out.sort(
            key=lambda i: (
                order.get(i["status"], 3),
                (i["start_ms"] or i["planned_start_ms"] or 0)
                * (-1 if i["status"] == "ended" else 1),
            )
        )
        return out

    def seal_signature(self) -> Any:
        return tuple((s.id, s.status, s.start, s.end, s.planned_end) for s in self.view.seals())

    # -- the snapshot -----------------------------------------------------------------------------

    def snapshot(self, user: User | None) -> dict[str, Any]:
        return {
            "t": "snapshot",
            "now_ms": self.view.clock() // 1000,
            "site": self.plan,
            "user": ({"name": user.name, "role": user.role, "badge": user.badge} if user else None),
            "alerts": [self.alert_json(v) for v in self.view.open_alerts()]
            + [self.alert_json(v) for v in self.recently_closed()],
            "devices": self.device_states(self.site.device_kind),
            "people": self.view.people_inside(),
            "seals": self.seal_panel(),
            "timeline": self.timeline(limit=100),
            "thumbnails": self.thumbnails is not None,
            "health": self.health(),
        }

    def health(self) -> dict[str, Any]:
        """The daemon's own state for the page's banner: ok, or degraded with the reasons."""
        h = self.view.health()
        return {"status": h.status, "problems": h.problems}

    # -- the timeline -----------------------------------------------------------------------------

    def timeline(
        self,
        *,
        kinds: set[str] | None = None,
        devices: set[str] | None = None,
        severities: set[str] | None = None,
        before_ms: int | None = None,
        limit: int = 200,
        telemetry: bool = False,
    ) -> list[dict[str, Any]]:
        """Events and alert transitions, newest first, filtered."""
        before = before_ms * 1000 if before_ms is not None else None
        items: list[dict[str, Any]] = []
        want_events = kinds is None or bool(kinds - {"alert"})
        want_alerts = kinds is None or "alert" in kinds
        if want_events:
            rows = self.view.recent_events(
                before_us=before,
                devices=devices,
                exclude_types=frozenset() if telemetry else TELEMETRY,
                # fetch extra rows when filtering by kind in Python (kinds are type prefixes)
                limit=limit * (4 if kinds else 1),
            )
            for row in rows:
                item = self.event_item(row)
                if kinds is None or item["cat"] in kinds:
                    items.append(item)
        if want_alerts:
            for tr in self.view.recent_transitions(
                before_us=before, severities=severities, limit=limit * (4 if devices else 1)
            ):
                item = self.transition_item(tr.id, tr.ts, tr.line)
                if devices is None or item["device"] in devices:
                    items.append(item)
        items.sort(key=lambda i: (i["ms"], i["k"] == "alert", i["n"]), reverse=True)
        return items[:limit]

    def event_item(self, row: EventRow) -> dict[str, Any]:
        detail = {k: v for k, v in row.source.items() if k not in ("ts", "device", "type")}
        return {
            "k": "event",
            "n": row.seq,
            "ms": row.ts // 1000,
            "time": format_time(row.ts, self.view.tz),
            "device": row.device,
            "type": row.type,
            "cat": row.type.split(".", 1)[0],
            "zone": self.zone_of.get(row.device),
            "actor": row.actor,
            "detail": detail,
        }

    def transition_item(self, tid: int, ts: int, line: dict[str, Any]) -> dict[str, Any]:
        device = str(line.get("subject", "")).split("/", 1)[0]
        return {
            "k": "alert",
            "n": tid,
            "ms": ts // 1000,
            "time": line.get("ts"),
            "device": device,
            "type": f"alert.{line.get('state')}",
            "cat": "alert",
            "zone": self.zone_of.get(device),
            "actor": line.get("acked_by") or line.get("shelved_by") or line.get("unshelved_by"),
            "detail": {
                k: line.get(k)
                for k in ("alert_id", "policy", "subject", "severity", "state", "clause", "comment")
            },
            "explain": self.explain(str(line.get("policy")), str(line.get("subject"))),
        }


# -- helpers ------------------------------------------------------------------------------------


def iso_ms(text: str) -> int:
    """Milliseconds of an RFC 3339 time; 0 for anything else."""
    try:
        return parse_ts(text) // 1000
    except (ValueError, OverflowError):
        return 0


def union_length(spans: list[tuple[int, int | None]], lo: int, hi: int) -> tuple[int, bool]:
    """Total time covered by the spans inside [lo, hi] (open spans run to hi); still open?"""
    clipped = sorted((max(a, lo), min(b if b is not None else hi, hi)) for a, b in spans)
    total, cur_a, cur_b = 0, None, None
    for a, b in clipped:
        if b <= a:
            continue
        if cur_b is None or a > cur_b:
            if cur_b is not None and cur_a is not None:
                total += cur_b - cur_a
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    if cur_a is not None and cur_b is not None:
        total += cur_b - cur_a
    return total, any(b is None for _, b in spans)
