"""ISA-18.2 alarm-load figures now (`GET /api/alarm-load`), with the archive's own definitions
(daemon/archive/model.py: FLOOD_PER_OPERATOR, chattering, STALE_US):

- alarms raised (annunciated: not suppressed) in the last 10 minutes, per operator on duty
  (the engine's `on_duty`, at least 1); a **flood** while that is FLOOD_PER_OPERATOR (10) or more;
- chattering: the same (policy, subject) raised 3 times within a minute, in the last hour;
- stale: alarms still active after 24 h;
- the top 5 subjects by alarms raised in the last hour;
- groups: consequential alarms under their cause (first-out: the cause first). A jammer whose
  RF output is off or that fell silent (`jammer-uptime` or `device-offline` on the jammer
  itself) carries its per-band `jammer-uptime` alarms; an alarm panel that is offline carries
  the `device-offline` alarms of its inputs (the inputs are heard through their panel: it is
  the site's only gateway in the model). Nothing is dropped: the console folds the members
  under their cause only during a flood, one click away.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from daemon.archive.model import FLOOD_PER_OPERATOR, STALE_US, TEN_MIN_US, find_chattering
from daemon.view import AlertView, ReadView

HOUR_US = 3600 * 1_000_000
TOP = 5


def groups(site: Any, alerts: list[AlertView]) -> list[dict[str, Any]]:
    """Causes and the alarms they explain, among the active alerts (cause raised first)."""
    by_key = {(v.policy, v.subject): v for v in alerts if v.active}
    out = []
    for (policy, subject), cause in sorted(by_key.items(), key=lambda kv: kv[1].raised_ts):
        members: list[AlertView] = []
        if subject in site.jammers and policy in ("jammer-uptime", "device-offline"):
            if policy == "device-offline" and ("jammer-uptime", subject) in by_key:
                continue  # the jammer's own uptime alarm is the cause
            members = [
                v
                for (p, s), v in by_key.items()
                if p == "jammer-uptime" and s.startswith(subject + "/")
            ]
        elif policy == "device-offline" and subject in site.alarm_panels:
            inputs = {i.id for i in site.alarm_inputs.values() if i.panel == subject}
            members = [v for (p, s), v in by_key.items() if p == "device-offline" and s in inputs]
        if members:
            members.sort(key=lambda v: (v.raised_ts, v.alert_id))
            out.append({"cause": cause.alert_id, "members": [v.alert_id for v in members]})
    return out


def alarm_load(view: ReadView) -> dict[str, Any]:
    now = view.clock()
    raises = [
        {**t, "ts": t["ts_us"]}
        for t in view.transitions_between(now - HOUR_US, now)
        if t.get("state") == "raised" and not t.get("suppressed")
    ]
    operators = max(1, len(view.on_duty()))
    recent = sum(1 for t in raises if t["ts"] >= now - TEN_MIN_US)
    per_op = recent / operators
    alerts = view.open_alerts()
    stale = [
        {
            "alert_id": v.alert_id,
            "policy": v.policy,
            "subject": v.subject,
            "open_s": (now - v.raised_ts) // 1_000_000,
        }
        for v in alerts
        if v.active and now - v.raised_ts > STALE_US
    ]
    top = Counter(str(t["subject"]) for t in raises).most_common(TOP)
    return {
        "operators": operators,
        "last_10min": recent,
        "last_hour": len(raises),
        "per_operator_10min": round(per_op, 2),
        "flood_limit": FLOOD_PER_OPERATOR,
        "flood": per_op >= FLOOD_PER_OPERATOR,
        "chattering": find_chattering(raises),
        "stale": sorted(stale, key=lambda s: s["alert_id"]),
        "top_sources": [{"subject": s, "count": n} for s, n in top],
        "groups": groups(view.site, alerts),
    }
