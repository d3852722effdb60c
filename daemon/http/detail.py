"""One alert in full, for the console's detail view (`GET /api/dashboard/alerts/{id}`).

- its history: every transition with who, when and the comment, the comments added later,
  and each shelve's reason and expiry (from the operator action that caused it);
- the events around it, from the store on the view's read-only connection: for a badge's
  alert the badge's own events and the events of the doors it used, for a door the door's
  and its neighbours', for a jammer its status readings (the band powers), else the subject
  device's (and an alarm input's panel's); from 5 minutes before the alert was raised to 2
  minutes after (a jammer's: until it cleared, at most 10 minutes), at most 200, oldest first;
- the clause it enforces in Chinese and English, and "what to do": the site's own procedure
  (`daemon.dashboard.procedures`) or the shipped default (`alert_help.json`);
- the camera snapshot at the moment it was raised: the camera adapter keeps only each
  camera's latest frame in memory and stores none, so the answer names the cameras that
  cover the subject and says that no snapshot is stored. Nothing is made up.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import orjson

from daemon.view import EventRow, ReadView, format_time

HELP_FILE = Path(__file__).with_name("alert_help.json")
BEFORE_US = 5 * 60 * 1_000_000
AFTER_US = 2 * 60 * 1_000_000
JAMMER_MAX_US = 10 * 60 * 1_000_000
CONTEXT_LIMIT = 200
BADGE_POLICIES = frozenset({"zone-authorization", "badge-denied-burst", "escorted-exit"})
NO_SNAPSHOT = "no snapshot stored (the camera adapter keeps only each camera's latest frame)"

Json = dict[str, Any]


@functools.cache
def shipped_help() -> Json:
    """The shipped clause texts and default procedures ({"clauses": …, "procedures": …})."""
    data: Json = orjson.loads(HELP_FILE.read_bytes())
    return data


class AlertDetails:
    """Builds an alert's detail from the view, the device → zone index and the site's own
    procedures (which replace the shipped ones per policy and language)."""

    def __init__(
        self,
        view: ReadView,
        zone_of: dict[str, str],
        procedures: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.view = view
        self.site = view.site
        self.zone_of = zone_of
        self.own = procedures or {}

    # -- texts ------------------------------------------------------------------------------------

    def procedure(self, policy: str) -> Json:
        shipped = shipped_help()["procedures"]
        default = shipped.get(policy) or shipped["_"]
        own = self.own.get(policy, {})
        return {
            "zh": own.get("zh") or default["zh"],
            "en": own.get("en") or default["en"],
            "source": "site" if own else "default",
        }

    def clause_text(self, clause: str) -> Json | None:
        text: Json | None = shipped_help()["clauses"].get(clause)
        return text

    # -- history ----------------------------------------------------------------------------------

    def history(self, alert_id: str) -> list[Json]:
        tz = self.view.tz
        actions = self.view.actions(alert_id)
        shelves = [a for a in actions if a["kind"] == "alert.shelve"]
        out: list[tuple[int, int, Json]] = []
        for tr in self.view.transitions(alert_id):
            ts = self._us(tr.get("ts"))
            row: Json = {
                "ts": tr.get("ts"),
                "ms": ts // 1000,
                "what": tr.get("state"),
                "by": tr.get("acked_by") or tr.get("shelved_by") or tr.get("unshelved_by"),
                "comment": tr.get("comment"),
            }
            # a shelve's reason and expiry: the shelve command that caused it (the newest one
            # at or before the transition)
            act = next((a for a in reversed(shelves) if a["ts"] <= ts), None)
            if act is not None and tr.get("state") == "shelved":
                body = act["body"]
                row["reason"] = body.get("reason")
                row["until"] = body.get("until")
                row["by"] = row["by"] or act["actor"]
            out.append((ts, 0, row))
        for a in actions:
            if a["kind"] != "alert.comment":
                continue
            body = a["body"]
            out.append(
                (
                    a["ts"],
                    1,
                    {
                        "ts": format_time(a["ts"], tz),
                        "ms": a["ts"] // 1000,
                        "what": "comment",
                        "by": a["actor"] or body.get("badge"),
                        "comment": body.get("comment"),
                    },
                )
            )
        out.sort(key=lambda x: (x[0], x[1]))
        return [r for _ts, _k, r in out]

    @staticmethod
    def _us(text: Any) -> int:
        from policies.timefmt import parse_ts

        try:
            return parse_ts(str(text))
        except (ValueError, OverflowError):
            return 0

    # -- the events around it ---------------------------------------------------------------------

    def _neighbour_doors(self, zones: set[str]) -> set[str]:
        return {d.id for d in self.site.doors.values() if d.a in zones or d.b in zones}

    def context(self, policy: str, subject: str, raised: int, cleared: int | None) -> list[Json]:
        site = self.site
        device = subject.split("/", 1)[0]
        lo, hi = raised - BEFORE_US, raised + AFTER_US
        devices: set[str] = {device}
        actors: set[str] = set()
        if policy in BADGE_POLICIES or device in site.people:
            actors = {device}
            devices = set()
            first = self.view.events_around(lo, hi, devices=set(), actors=actors, limit=50)
            used = {r.device for r in first if r.device in site.doors}
            zones = {z for d in used for z in (site.doors[d].a, site.doors[d].b)}
            devices = used | self._neighbour_doors(zones - {"outside"})
        elif device in site.doors:
            door = site.doors[device]
            devices |= self._neighbour_doors({door.a, door.b} - {"outside"})
        elif device in site.jammers:
            end = cleared if cleared is not None else self.view.clock()
            hi = max(hi, min(end, raised + JAMMER_MAX_US))
        elif device in site.alarm_inputs:
            devices.add(site.alarm_inputs[device].panel)
        rows = self.view.events_around(lo, hi, devices=devices, actors=actors, limit=CONTEXT_LIMIT)
        return [self._event(r, raised) for r in rows]

    def _event(self, r: EventRow, raised: int) -> Json:
        detail = {k: v for k, v in r.source.items() if k not in ("ts", "device", "type")}
        return {
            "seq": r.seq,
            "ts": format_time(r.ts, self.view.tz),
            "ms": r.ts // 1000,
            "offset_s": round((r.ts - raised) / 1e6, 1),
            "device": r.device,
            "type": r.type,
            "zone": self.zone_of.get(r.device),
            "detail": detail,
        }

    # -- cameras ----------------------------------------------------------------------------------

    def cameras_for(self, policy: str, subject: str) -> list[str]:
        """The cameras that show the subject: the camera itself, or a camera in a zone on
        either side of a door (the site file says which zone a camera watches)."""
        site = self.site
        device = subject.split("/", 1)[0]
        if device in site.cameras:
            return [device]
        if device in site.doors:
            door = site.doors[device]
            return sorted(c.id for c in site.cameras.values() if c.zone in (door.a, door.b))
        return []

    # -- all of it --------------------------------------------------------------------------------

    def build(self, alert_id: str) -> Json | None:
        record = self.view.alert_record(alert_id)
        if record is None:
            return None
        policy, subject = str(record.get("policy")), str(record.get("subject"))
        history = self.history(alert_id)
        raised_row = next((h for h in history if h["what"] == "raised"), None)
        raised = raised_row["ms"] * 1000 if raised_row else self._us(record.get("raised"))
        cleared_row = next((h for h in history if h["what"] == "cleared"), None)
        cleared = cleared_row["ms"] * 1000 if cleared_row else None
        cams = self.cameras_for(policy, subject)
        clause = str(record.get("clause"))
        return {
            **record,
            "raised_ms": raised // 1000,
            "zone": self.zone_of.get(subject.split("/", 1)[0]),
            "history": history,
            "context": self.context(policy, subject, raised, cleared),
            "context_window_s": [-BEFORE_US // 1_000_000, AFTER_US // 1_000_000],
            "clause_text": self.clause_text(clause),
            "procedure": self.procedure(policy),
            "snapshot": ({"stored": False, "cameras": cams, "note": NO_SNAPSHOT} if cams else None),
        }
