"""A seal's archive as one plain dict (format `sealwatch-archive/1`), built from the store.

Pure functions over rows read on a read-only SQLite connection, and the site model: nothing
here reads the clock, the engine or the current audit head. Everything is bounded by the seal's
end (rows with `ts <= end`), so a closed seal's archive is the same whenever it is built. An
open seal is archived up to the newest stored event (its `end` stays null).

Times are RFC 3339 in the site's time zone, durations whole seconds (rounded half up), lists
sorted. `docs/archive.md` describes every field.
"""

from __future__ import annotations

import bisect
import itertools
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta, tzinfo
from typing import Any

import orjson

from daemon.audit import SEAL_COLUMNS, SEAL_KEYS
from daemon.snapshot import site_fingerprint
from daemon.view import format_time
from policies.site import Site
from policies.timefmt import from_us, parse_ts, to_us

FORMAT = "sealwatch-archive/1"
US = 1_000_000
TEN_MIN_US = 600 * US
FLOOD_PER_OPERATOR = 10  # ISA-18.2: more than 10 alarms in 10 minutes per operator
CHATTER_COUNT, CHATTER_WINDOW_US = 3, 60 * US  # the same alert raised >= 3 times in 1 min
STALE_US = 24 * 3600 * US  # active for more than 24 h

Json = dict[str, Any]


def find_chattering(raises: list[Json]) -> list[Json]:
    """Alarms raised CHATTER_COUNT times or more within CHATTER_WINDOW_US for one (policy,
    subject): each with the first alert id of its busiest minute, that count and how many
    raises it had in all. `raises` are transition rows (ts µs, alert_id, policy, subject) in
    time order."""
    by_subject: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
    for t in raises:
        by_subject[(t["policy"], t["subject"])].append((t["ts"], t["alert_id"]))
    out = []
    for (policy, subject), seen in by_subject.items():
        best, best_id, j = 0, "", 0
        for i in range(len(seen)):
            while seen[i][0] - seen[j][0] > CHATTER_WINDOW_US:
                j += 1
            if i - j + 1 > best:
                best, best_id = i - j + 1, seen[j][1]
        if best >= CHATTER_COUNT:
            out.append(
                {
                    "alert_id": best_id,
                    "policy": policy,
                    "subject": subject,
                    "count": best,
                    "raised": len(seen),
                }
            )
    return out


def whole_s(us: int) -> int:
    """µs → whole seconds, rounded half up (so 4.9999995 s of clock jitter reads 5)."""
    return (us + US // 2) // US


def _loads(text: Any) -> Json:
    try:
        value = orjson.loads(text)
    except (orjson.JSONDecodeError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


def _ts_field(value: Any, tz: tzinfo) -> str | None:
    """A time field of an event's source (RFC 3339 in any offset) in the site's zone."""
    if not isinstance(value, str):
        return None
    try:
        return format_time(parse_ts(value), tz)
    except (ValueError, TypeError, OverflowError):
        return value


class Rows:
    """The queries the archive needs, on a read-only connection. Every row it returns is noted
    in `used` (table → ids): the archive's inclusion proofs carry exactly those rows, and the
    archive rebuilt from them alone is the same document (daemon/archive/proofs.py)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.used: dict[str, set[Any]] = {
            "events": set(),
            "transitions": set(),
            "actions": set(),
            "seals": set(),
        }

    def seal(self, seal_id: str) -> Json | None:
        row = self.conn.execute(
            f"SELECT {SEAL_COLUMNS} FROM seals WHERE id = ?", (seal_id,)
        ).fetchone()
        if row is None:
            return None
        self.used["seals"].add(row[0])
        return dict(zip(SEAL_KEYS, row, strict=True))

    def last_event_ts(self) -> int | None:
        row = self.conn.execute(
            "SELECT seq, ts FROM events ORDER BY ts DESC, seq DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        self.used["events"].add(int(row[0]))
        return int(row[1])

    def events(self, types: Iterable[str], lo: int | None, hi: int) -> list[tuple[int, int, Json]]:
        """(seq, ts, source) of events of `types` with lo <= ts <= hi (lo None: from the
        beginning), in feed order."""
        sql = (
            "SELECT seq, ts, source FROM events WHERE ts <= ? "
            "AND type IN (SELECT value FROM json_each(?))"
        )
        args: list[Any] = [hi, orjson.dumps(list(types)).decode()]
        if lo is not None:
            sql += " AND ts >= ?"
            args.append(lo)
        rows = self.conn.execute(sql + " ORDER BY seq", args).fetchall()
        self.used["events"].update(int(r[0]) for r in rows)
        return [(int(r[0]), int(r[1]), _loads(r[2])) for r in rows]

    def carried(
        self, types: Iterable[str], key: str | None, lo: int, hi: int, *, since_off: bool = False
    ) -> list[tuple[int, int, Json]]:
        """Events of `types` with lo <= ts <= hi, after the state they carry into the window:
        per `key` field (None: one state in all) the latest event before `lo` — or, with
        `since_off`, every event since the last `state: off` before `lo`. The window's figures
        are the same as from every event before it (and the proofs stay short)."""
        before: dict[Any, list[tuple[int, int, Json]]] = defaultdict(list)
        inside: list[tuple[int, int, Json]] = []
        sql = (
            "SELECT seq, ts, source FROM events WHERE ts <= ? "
            "AND type IN (SELECT value FROM json_each(?)) ORDER BY seq"
        )
        for r in self.conn.execute(sql, (hi, orjson.dumps(list(types)).decode())):
            row = (int(r[0]), int(r[1]), _loads(r[2]))
            if row[1] >= lo:
                inside.append(row)
                continue
            k = None if key is None else str(row[2].get(key))
            if since_off:
                if row[2].get("state") == "off":
                    before[k] = []
                else:
                    before[k].append(row)
            else:
                before[k] = [row]
        out = sorted([r for rows in before.values() for r in rows] + inside)
        self.used["events"].update(r[0] for r in out)
        return out

    def transitions(self, lo: int, hi: int, *, policy: str | None = None) -> list[Json]:
        """Every transition with ts <= hi (of one policy), in id order, with its columns, of
        the alerts that have a transition in [lo, hi] or were not cleared before `lo`."""
        sql = (
            "SELECT id, event_seq, ts, alert_id, policy, subject, severity, state, clause, "
            "message, acked_by, comment, suppressed FROM transitions WHERE ts <= ?"
        )
        args: list[Any] = [hi]
        if policy is not None:
            sql += " AND policy = ?"
            args.append(policy)
        keys = (
            "id",
            "event_seq",
            "ts",
            "alert_id",
            "policy",
            "subject",
            "severity",
            "state",
            "clause",
            "message",
            "acked_by",
            "comment",
            "suppressed",
        )
        rows = [
            dict(zip(keys, r, strict=True))
            for r in self.conn.execute(sql + " ORDER BY id", args).fetchall()
        ]
        closed_before = {r["alert_id"] for r in rows if r["ts"] < lo and r["state"] == "cleared"}
        inside = {r["alert_id"] for r in rows if r["ts"] >= lo}
        kept = [r for r in rows if r["alert_id"] in inside or r["alert_id"] not in closed_before]
        self.used["transitions"].update(r["id"] for r in kept)
        return kept

    def actions(self, lo: int, hi: int) -> list[Json]:
        """Operator actions with lo <= ts <= hi."""
        keys = ("id", "ts", "kind", "actor", "alert_id", "event_seq", "body")
        rows = self.conn.execute(
            "SELECT id, ts, kind, actor, alert_id, event_seq, body FROM actions "
            "WHERE ts >= ? AND ts <= ? ORDER BY id",
            (lo, hi),
        ).fetchall()
        self.used["actions"].update(int(r[0]) for r in rows)
        return [{**dict(zip(keys[:6], r[:6], strict=True)), "body": _loads(r[6])} for r in rows]

    def ledger(self, lo: int, hi: int) -> Json:
        head = self.conn.execute(
            "SELECT seq, hash FROM audit WHERE ts <= ? ORDER BY seq DESC LIMIT 1", (hi,)
        ).fetchone()
        span = self.conn.execute(
            "SELECT MIN(seq), MAX(seq) FROM audit WHERE ts >= ? AND ts <= ?", (lo, hi)
        ).fetchone()
        return {
            "head_seq": None if head is None else int(head[0]),
            "head_hash": None if head is None else str(head[1]),
            "first_seq": None if span is None or span[0] is None else int(span[0]),
            "last_seq": None if span is None or span[1] is None else int(span[1]),
        }

    def config_fingerprint(self, hi: int) -> str | None:
        """The site fingerprint the daemon recorded in the chain last before `hi`."""
        for (body,) in self.conn.execute(
            "SELECT body FROM audit WHERE kind = 'config' AND ts <= ? ORDER BY seq DESC", (hi,)
        ):
            fp = _loads(body).get("site_fingerprint")
            if isinstance(fp, str):
                return fp
        return None


# -- the sections ---------------------------------------------------------------------------


class Builder:
    def __init__(self, rows: Rows, site: Site, seal: Json, start: int, end: int) -> None:
        self.rows, self.site, self.seal = rows, site, seal
        self.start, self.end = start, end
        self.tz: tzinfo = site.tz

    def t(self, us: int | None) -> str | None:
        return None if us is None else format_time(us, self.tz)

    # site, seal, ledger

    def site_section(self) -> Json:
        return {
            "id": self.site.id,
            "name": self.site.name,
            "timezone": self.site.timezone,
            "fingerprint": site_fingerprint(self.site),
            # what the daemon recorded in the ledger when it last (re)started before the end
            "fingerprint_in_ledger": self.rows.config_fingerprint(self.end),
        }

    def seal_section(self) -> Json:
        s = self.seal
        spec = next((x for x in self.site.seals if x.id == s["id"]), None)
        planned_start = to_us(spec.start) if spec is not None and spec.start else None
        planned_end = s["planned_end"]
        if planned_end is None and spec is not None and spec.end is not None:
            planned_end = to_us(spec.end)
        return {
            "id": s["id"],
            "name": s["name"],
            "classification": s["classification"],
            "planned_start": self.t(planned_start),
            "planned_end": self.t(planned_end),
            "start": self.t(s["start"]),
            "end": self.t(s["end"]),
            "status": s["status"],
            "started_by": s["started_by"],
            "ended_by": s["ended_by"],
            # the last written pre-seal record when the seal came into force
            "precheck": s["precheck"] or "none",
            "duration_s": whole_s(self.end - self.start),
        }

    # people

    def personnel(self) -> list[Json]:
        site = self.site
        duty: dict[str, list[list[int | None]]] = defaultdict(list)
        for _seq, ts, src in self.rows.carried(
            ("operator.duty",), "badge", self.start, self.end, since_off=True
        ):
            badge = str(src.get("badge"))
            spans = duty[badge]
            if src.get("state", "on") == "on":
                if not spans or spans[-1][1] is not None:
                    spans.append([ts, None])
            elif spans and spans[-1][1] is None:
                spans[-1][1] = ts
        badged = {
            str(src.get("badge"))
            for _s, _t, src in self.rows.events(("badge.granted",), self.start, self.end)
        }
        out = []
        on_duty: dict[str, list[list[str | None]]] = {}
        for badge, spans in duty.items():
            kept = [
                [self.t(on), self.t(off)]
                for on, off in spans
                if on is not None and on <= self.end and (off is None or off >= self.start)
            ]
            if kept:
                on_duty[badge] = kept
        for badge in sorted(badged | set(on_duty)):
            person = site.people.get(badge)
            out.append(
                {
                    "badge": badge,
                    "name": person.name if person else None,
                    "role": person.role if person else None,
                    "zones": sorted(person.zones) if person else [],
                    "on_duty": on_duty.get(badge, []),
                    "badged": badge in badged,
                }
            )
        return out

    def _entering(self, door_id: str, direction: str) -> bool:
        """Towards the sealed area: into it through a boundary door (the inner entrance door
        is one), or into the airlock through the outer entrance door."""
        door = self.site.doors[door_id]
        if not self.site.is_boundary(door):
            return direction == "in"
        zone = self.site.zones.get(door.zone_entered(direction))
        return zone is not None and zone.sealed

    def movements(self) -> list[Json]:
        site = self.site
        doors = {d.id for d in site.boundary_doors}
        if site.entrance is not None:
            doors |= {site.entrance.outer, site.entrance.inner}
        out = []
        for seq, ts, src in self.rows.events(("badge.granted",), self.start, self.end):
            door = src.get("device")
            if door not in doors:
                continue
            badge = str(src.get("badge"))
            person = site.people.get(badge)
            direction = str(src.get("direction", "in"))
            out.append(
                (
                    ts,
                    seq,
                    {
                        "ts": self.t(ts),
                        "badge": badge,
                        "name": person.name if person else None,
                        "door": door,
                        "direction": direction,
                        "kind": "entry" if self._entering(str(door), direction) else "exit",
                    },
                )
            )
        return [m for _ts, _seq, m in sorted(out, key=lambda x: (x[0], x[1]))]

    def headcount(self) -> list[Json]:
        """The most people in each zone at once during the seal, from granted badges."""
        where: dict[str, str] = {}
        count: dict[str, int] = defaultdict(int)
        peak: dict[str, int] = defaultdict(int)
        started = False
        for _seq, ts, src in self.rows.carried(("badge.granted",), "badge", self.start, self.end):
            door = self.site.doors.get(str(src.get("device")))
            if door is None:
                continue
            if not started and ts >= self.start:
                started = True
                for z, n in count.items():
                    peak[z] = max(peak[z], n)
            badge = str(src.get("badge"))
            old = where.get(badge)
            if old is not None:
                count[old] -= 1
            new = door.zone_entered(str(src.get("direction", "in")))
            where[badge] = new
            count[new] += 1
            if started:
                peak[new] = max(peak[new], count[new])
        if not started:
            for z, n in count.items():
                peak[z] = max(peak[z], n)
        return [{"zone": z, "max": peak.get(z, 0)} for z in sorted(self.site.zones)]

    # alerts

    def alert_histories(self) -> tuple[list[Json], list[Json]]:
        """(alerts raised in the window with their history, every raise in the window)."""
        trs = self.rows.transitions(self.start, self.end)
        raised_in = {t["alert_id"] for t in trs if t["state"] == "raised" and t["ts"] >= self.start}
        actions = [a for a in self.rows.actions(self.start, self.end)]
        actor_of_event = {a["event_seq"]: a["actor"] for a in actions if a["event_seq"] is not None}
        hist: dict[str, list[tuple[int, int, Json]]] = defaultdict(list)
        first: dict[str, Json] = {}
        for t in trs:
            aid = t["alert_id"]
            if aid not in raised_in:
                continue
            first.setdefault(aid, t)
            by = t["acked_by"] or actor_of_event.get(t["event_seq"])
            hist[aid].append(
                (
                    t["ts"],
                    0,
                    {
                        "ts": self.t(t["ts"]),
                        "state": t["state"],
                        "by": by,
                        "comment": t["comment"],
                        "_us": t["ts"],
                    },
                )
            )
        for a in actions:
            if a["kind"] == "alert.comment" and a["alert_id"] in raised_in:
                body = a["body"]
                hist[a["alert_id"]].append(
                    (
                        a["ts"],
                        1,
                        {
                            "ts": self.t(a["ts"]),
                            "state": "comment",
                            "by": a["actor"] or body.get("badge"),
                            "comment": body.get("comment"),
                            "_us": a["ts"],
                        },
                    )
                )
        out = []
        for aid, items in hist.items():
            items.sort(key=lambda x: (x[0], x[1]))
            h = [x[2] for x in items]
            f = first[aid]
            raised = next(x["_us"] for x in h if x["state"] == "raised")
            acked = next((x["_us"] for x in h if x["state"] == "acknowledged"), None)
            cleared = next((x["_us"] for x in h if x["state"] == "cleared"), None)
            for x in h:
                del x["_us"]
            out.append(
                {
                    "alert_id": aid,
                    "policy": f["policy"],
                    "subject": f["subject"],
                    "severity": f["severity"],
                    "clause": f["clause"],
                    "message": f["message"],
                    "raised": self.t(raised),
                    "cleared": self.t(cleared),
                    "acknowledged": self.t(acked),
                    "time_to_ack_s": None if acked is None else whole_s(acked - raised),
                    "suppressed": bool(f["suppressed"]),
                    "history": h,
                    "_raised_us": raised,
                    "_cleared_us": cleared,
                }
            )
        out.sort(key=lambda a: (a["_raised_us"], a["alert_id"]))
        raises = [t for t in trs if t["state"] == "raised" and t["ts"] >= self.start]
        return out, raises

    def alerts_per_hour(self, raises: list[Json]) -> list[Json]:
        first = from_us(self.start, self.tz).replace(minute=0, second=0, microsecond=0)
        hours: list[datetime] = []
        h = first
        end_dt = from_us(self.end, self.tz)
        while h <= end_dt:
            hours.append(h)
            # step in UTC so that a DST change neither repeats nor skips an hour
            h = (h + timedelta(hours=1)).astimezone(self.tz)
        counts = [0] * len(hours)
        bounds = [to_us(x) for x in hours]
        for t in raises:
            i = max(0, bisect.bisect_right(bounds, t["ts"]) - 1)
            counts[i] += 1
        return [{"hour": self.t(b), "count": c} for b, c in zip(bounds, counts, strict=True)]

    def alarm_load(self, alerts: list[Json], raises: list[Json], personnel: list[Json]) -> Json:
        operators = max(
            1,
            sum(
                1
                for p in personnel
                if p["on_duty"] and p["role"] in ("operator", "supervisor", "secrecy_officer")
            ),
        )
        annunciated = sorted(t["ts"] for t in raises if not t["suppressed"])
        n_buckets = max(1, -(-(self.end - self.start) // TEN_MIN_US))
        buckets = [0] * n_buckets
        for ts in annunciated:
            buckets[min(n_buckets - 1, (ts - self.start) // TEN_MIN_US)] += 1
        floods: list[Json] = []
        limit = FLOOD_PER_OPERATOR * operators
        run: list[int] | None = None  # [first bucket, last bucket, count]
        for i, c in enumerate([*buckets, 0]):
            if c > limit:
                if run is None:
                    run = [i, i, c]
                else:
                    run[1], run[2] = i, run[2] + c
            elif run is not None:
                lo = self.start + run[0] * TEN_MIN_US
                hi = min(self.end, self.start + (run[1] + 1) * TEN_MIN_US)
                floods.append({"start": self.t(lo), "end": self.t(hi), "count": run[2]})
                run = None
        chattering = [
            {
                **{k: c[k] for k in ("alert_id", "policy", "subject", "count")},
                "raised_in_seal": c["raised"],
            }
            for c in find_chattering(raises)
        ]
        stale = []
        for a in alerts:
            until = a["_cleared_us"] if a["_cleared_us"] is not None else self.end
            if until - a["_raised_us"] > STALE_US:
                stale.append(
                    {"alert_id": a["alert_id"], "open_s": whole_s(until - a["_raised_us"])}
                )
        per_op = [c / operators for c in buckets]
        return {
            "operators": operators,
            "alarms": len(annunciated),
            "per_10min_per_operator_avg": round(sum(per_op) / len(per_op), 2),
            "per_10min_per_operator_max": round(max(per_op), 2),
            "floods": floods,
            "chattering": sorted(chattering, key=lambda c: (c["policy"], c["subject"])),
            "stale": sorted(stale, key=lambda s: str(s["alert_id"])),
        }

    # jammers

    def jammers(self) -> list[Json]:
        trs = self.rows.transitions(self.start, self.end, policy="jammer-uptime")
        # each alert occurrence: subject, raised, cleared, first ack
        occ: dict[str, Json] = {}
        for t in trs:
            aid = t["alert_id"]
            if t["state"] == "raised":
                occ[aid] = {
                    "subject": t["subject"],
                    "raised": t["ts"],
                    "cleared": None,
                    "acked_by": None,
                    "acked_at": None,
                }
            elif aid in occ:
                o = occ[aid]
                if t["state"] == "cleared" and o["cleared"] is None:
                    o["cleared"] = t["ts"]
                elif t["state"] == "acknowledged" and o["acked_at"] is None:
                    o["acked_by"], o["acked_at"] = t["acked_by"], t["ts"]
        seal_us = self.end - self.start
        out = []
        for jid in sorted(self.site.jammers):
            jammer = self.site.jammers[jid]
            for band in sorted(jammer.bands, key=lambda b: b.index):
                subjects = {jid, f"{jid}/{band.id}"}
                spans = []
                for aid, o in occ.items():
                    if o["subject"] not in subjects:
                        continue
                    lo = max(self.start, o["raised"])
                    hi = min(self.end, o["cleared"] if o["cleared"] is not None else self.end)
                    if hi < lo or (hi == lo and o["raised"] < self.start):
                        continue
                    spans.append((lo, hi, aid, o))
                spans.sort(key=lambda s: (s[0], s[1], s[2]))
                down = _union_us([(lo, hi) for lo, hi, _a, _o in spans])
                up_us = seal_us - down
                out.append(
                    {
                        "jammer": jid,
                        "band": band.id,
                        "min_dbm": band.min_dbm,
                        "seal_s": whole_s(seal_us),
                        "uptime_s": whole_s(up_us),
                        "downtime_s": whole_s(down),
                        "uptime_pct": round(100.0 * up_us / seal_us, 4) if seal_us else 100.0,
                        "interruptions": [
                            {
                                "start": self.t(lo),
                                "end": self.t(o["cleared"]) if o["cleared"] is not None else None,
                                "duration_s": whole_s(hi - lo),
                                "alert_id": aid,
                                "subject": o["subject"],
                                "acked_by": o["acked_by"],
                                "acked_at": self.t(o["acked_at"]),
                            }
                            for lo, hi, aid, o in spans
                        ],
                    }
                )
        return out

    # patrols, calls, cameras, inspections

    def patrol(self) -> Json:
        interval_min = self.site.policies.patrol_interval_min
        limit = int(interval_min * 60 * US)
        visits = []
        seen: dict[str, list[int]] = defaultdict(list)
        for seq, ts, src in self.rows.events(("patrol.checkpoint",), self.start, self.end):
            cp = str(src.get("device"))
            visits.append(
                (ts, seq, {"ts": self.t(ts), "checkpoint": cp, "badge": src.get("badge")})
            )
            seen[cp].append(ts)
        gaps = []
        for cp in sorted(self.site.checkpoints):
            marks = [self.start, *seen.get(cp, []), self.end]
            for a, b in itertools.pairwise(marks):
                if b - a > limit:
                    gaps.append(
                        {
                            "checkpoint": cp,
                            "start": self.t(a),
                            "end": self.t(b),
                            "duration_s": whole_s(b - a),
                        }
                    )
        return {
            "interval_min": interval_min,
            "visits": [v for _t, _s, v in sorted(visits, key=lambda x: (x[0], x[1]))],
            "gaps": gaps,
        }

    def duty_phone(self) -> list[Json]:
        out = []
        for seq, ts, src in self.rows.events(("call.recorded",), self.start, self.end):
            sups = src.get("supervisors")
            out.append(
                (
                    ts,
                    seq,
                    {
                        "phone": src.get("device"),
                        "start": _ts_field(src.get("start"), self.tz),
                        "end": _ts_field(src.get("end"), self.tz),
                        "recording": src.get("recording"),
                        "supervisors": sorted(str(s) for s in sups)
                        if isinstance(sups, list)
                        else [],
                    },
                )
            )
        return [c for _t, _s, c in sorted(out, key=lambda x: (x[0], x[1]))]

    def video_retention(self) -> list[Json]:
        latest_start: dict[str, Json] = {}
        latest_end: dict[str, Json] = {}
        for _seq, ts, src in self.rows.carried(
            ("recording.inventory",), "device", self.start, self.end
        ):
            cam = str(src.get("device"))
            inv = self._inventory(ts, src)
            if ts <= self.start:
                latest_start[cam] = inv
            latest_end[cam] = inv
        return [
            {"camera": c, "at_start": latest_start.get(c), "at_end": latest_end.get(c)}
            for c in sorted(self.site.cameras)
        ]

    def _inventory(self, ts: int, src: Json) -> Json:
        gaps = src.get("gaps")
        return {
            "ts": self.t(ts),
            "oldest": _ts_field(src.get("oldest"), self.tz),
            "newest": _ts_field(src.get("newest"), self.tz),
            "gaps": [
                [_ts_field(g[0], self.tz), _ts_field(g[1], self.tz)]
                for g in (gaps if isinstance(gaps, list) else [])
                if isinstance(g, list) and len(g) == 2
            ],
        }

    def inspections(self) -> tuple[list[Json], list[Json]]:
        ins, rev = [], []
        for _seq, ts, src in self.rows.events(
            ("inspection.done", "review.done"), self.start, self.end
        ):
            if src.get("type") == "inspection.done":
                ins.append({"ts": self.t(ts), "zone": src.get("zone"), "badge": src.get("badge")})
            else:
                rev.append(
                    {
                        "ts": self.t(ts),
                        "camera": src.get("camera"),
                        "zone": src.get("zone"),
                        "badge": src.get("badge"),
                    }
                )
        return ins, rev

    def preseal(self, alerts: list[Json]) -> Json:
        """The written pre-seal record (the last `precheck.recorded` at or before the start:
        inspector, every item with its result, problems and evidence, remediation) and the
        engine's own check when the seal started: its pre-seal alert (subject: the seal) lists
        every failure; no such alert at the start means every check passed."""
        records = self.rows.carried(("precheck.recorded",), None, self.start + 1, self.start)
        record = self._precheck(*records[-1][1:]) if records else None
        a = next(
            (
                x
                for x in alerts
                if x["policy"] == "pre-seal"
                and x["subject"] == self.seal["id"]
                and x["_raised_us"] == self.start
            ),
            None,
        )
        if a is None:
            return {
                "ts": self.t(self.start),
                "passed": True,
                "problems": [],
                "message": None,
                "record": record,
            }
        message = str(a["message"] or "")
        _head, sep, tail = message.partition("failure(s): ")
        return {
            "ts": a["raised"],
            "passed": False,
            "problems": tail.split("; ") if sep and tail else [],
            "message": message,
            "alert_id": a["alert_id"],
            "record": record,
        }

    def _precheck(self, ts: int, src: Json) -> Json:
        items = src.get("items")
        badge = src.get("badge")
        person = self.site.people.get(badge) if isinstance(badge, str) else None
        return {
            "ts": self.t(ts),
            "inspector": badge,
            "inspector_name": None if person is None else person.name,
            "passed": src.get("passed") is True,
            "items": [
                {
                    "item": i.get("item"),
                    "passed": i.get("passed") is True,
                    "problems": list(i.get("problems") or []),
                    "evidence": list(i.get("evidence") or []),
                }
                for i in (items if isinstance(items, list) else [])
                if isinstance(i, dict)
            ],
            "remediation": src.get("remediation"),
        }


def _union_us(spans: list[tuple[int, int]]) -> int:
    total, cur_lo, cur_hi = 0, None, None
    for lo, hi in sorted(spans):
        if cur_hi is None or lo > cur_hi:
            if cur_hi is not None and cur_lo is not None:
                total += cur_hi - cur_lo
            cur_lo, cur_hi = lo, hi
        else:
            cur_hi = max(cur_hi, hi)
    if cur_hi is not None and cur_lo is not None:
        total += cur_hi - cur_lo
    return total


def build_archive(
    conn: sqlite3.Connection, site: Site, seal_id: str, used: dict[str, set[Any]] | None = None
) -> Json | None:
    """The seal's archive, or None if the store has no such seal, or it never started. `used`
    gets the ids of every row it was built from (for the proofs)."""
    rows = Rows(conn)
    if used is not None:
        used.update(rows.used)  # the same sets: filled as the archive is built
    seal = rows.seal(seal_id)
    if seal is None or seal["start"] is None:
        return None
    start = int(seal["start"])
    if seal["end"] is not None:
        end = int(seal["end"])
    else:  # open: up to the newest stored event, never the clock
        end = max(start, rows.last_event_ts() or start)
    b = Builder(rows, site, seal, start, end)
    personnel = b.personnel()
    alerts, raises = b.alert_histories()
    inspections, reviews = b.inspections()
    doc: Json = {
        "format": FORMAT,
        "site": b.site_section(),
        "seal": b.seal_section(),
        "ledger": rows.ledger(start, end),
        "personnel": personnel,
        "movements": b.movements(),
        "jammers": b.jammers(),
        "alerts": alerts,
        "alerts_per_hour": b.alerts_per_hour(raises),
        "patrol": b.patrol(),
        "duty_phone": b.duty_phone(),
        "video_retention": b.video_retention(),
        "inspections": inspections,
        "reviews": reviews,
        "preseal": b.preseal(alerts),
        "alarm_load": b.alarm_load(alerts, raises, personnel),
        "headcount": b.headcount(),
    }
    doc["ledger"]["covered_until"] = b.t(end)
    for a in alerts:
        del a["_raised_us"], a["_cleared_us"]
    return doc


def dumps(doc: Json) -> bytes:
    """The archive's JSON bytes: the same document gives the same bytes."""
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"
