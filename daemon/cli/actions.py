"""Operator commands (alerts, ack, shelve, seal start, …) over the running daemon's HTTP API,
so that each becomes an event on the same path as everything else.

The CLI holds the API token, an admin credential: it acts for the person it names (`--badge`,
`--by` for an approval), who must be a known person of a role the authority table allows
(docs/policies.md, "Who may act"); the engine refuses anyone else. The daemon records the
action with origin `cli` (it decides that, not the CLI) and the named badge as the actor."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode

from daemon.cli.daemon_api import call, fetch

ALERT_COLUMNS = ("id", "severity", "state", "raised", "policy", "subject", "clause", "by")


def _when(rfc3339: Any) -> str:
    """`2027-06-07T08:00:00.123456+08:00` -> `2027-06-07 08:00:00` (the site's time)."""
    text = str(rfc3339 or "")
    return text[:19].replace("T", " ") if len(text) >= 19 else text


def alerts_table(alerts: list[dict[str, Any]]) -> str:
    """The open alerts as a table for people (most severe first, then newest)."""
    rank = {"critical": 0, "major": 1, "minor": 2}
    rows = []
    for a in sorted(
        alerts, key=lambda a: (rank.get(a.get("severity", ""), 3), str(a.get("raised", "")))
    ):
        by = a.get("acked_by") or (f"shelved by {a['shelved_by']}" if a.get("shelved_by") else "")
        rows.append(
            (
                str(a.get("alert_id", "")),
                str(a.get("severity", "")),
                str(a.get("isa_state", "")),
                _when(a.get("raised")),
                str(a.get("policy", "")),
                str(a.get("subject", "")),
                str(a.get("clause", "")),
                str(by),
            )
        )
    if not rows:
        return "no open alerts\n"
    return _table(ALERT_COLUMNS, rows) + f"{len(rows)} open alert(s)\n"


def _table(cols: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, headers in capitals."""
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(cols, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _show(
    args: argparse.Namespace, what: str, path: str, kind: type, render: Callable[[Any], str]
) -> int:
    """GET `path` and print it for people (`render`), or as JSON with --json."""
    if args.json:
        return call(args, "GET", path)
    status, result = fetch(args, "GET", path)
    if status != 200 or not isinstance(result, kind):
        reason = result.get("reason") if isinstance(result, dict) else result
        print(f"{what}: {reason} ({status or 'no answer'})", file=sys.stderr)
        return 2 if status == 0 else 1
    sys.stdout.write(render(result))
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    return _show(args, "alerts", "/api/alerts", list, alerts_table)


def muster_table(m: dict[str, Any]) -> str:
    """The muster for an evacuation: everyone inside, by zone, then who is unseen."""
    cols = ("zone", "badge", "name", "role", "last seen", "note")
    rows = []
    for p in sorted(
        (p for p in m.get("people", []) if p.get("zone")),
        key=lambda p: (str(p.get("zone")), str(p.get("badge"))),
    ):
        notes = []
        if not p.get("permitted", True):
            notes.append("NOT PERMITTED HERE")
        if p.get("unseen"):
            notes.append(f"UNSEEN > {m.get('unseen_min', 0):g} min")
        rows.append(
            (
                str(p.get("zone")),
                str(p.get("badge")),
                str(p.get("name") or "?"),
                str(p.get("role") or "?"),
                _when(p.get("last_seen")) or "never",
                ", ".join(notes),
            )
        )
    head = f"muster at {_when(m.get('ts'))}, site {m.get('site')}\n"
    if not rows:
        return head + "nobody inside\n"
    unseen = m.get("unseen") or []
    tail = f"{len(rows)} inside; {len(unseen)} unseen" + (
        f": {', '.join(unseen)}" if unseen else ""
    )
    return head + _table(cols, rows) + tail + "\n"


def cmd_muster(args: argparse.Namespace) -> int:
    return _show(args, "muster", "/api/muster", dict, muster_table)


def cmd_precheck(args: argparse.Namespace) -> int:
    """The pre-seal readiness checks against the live daemon, one line per item."""
    path = "/api/precheck" + (f"?{urlencode({'badge': args.badge})}" if args.badge else "")
    status, result = fetch(args, "GET", path)
    if not isinstance(result, dict) or "items" not in result:
        print(f"precheck failed ({status}): {result}", file=sys.stderr)
        return 2
    print(
        f"pre-seal check at {result['ts']}, site {result['site']}, "
        f"inspector {result.get('inspector') or '-'}"
    )
    for item in result["items"]:
        print(f"  [{'PASS' if item['passed'] else 'FAIL'}] {item['item']}")
        for problem in item["problems"]:
            print(f"         - {problem}")
    print("READY" if result["passed"] else "NOT READY")
    if args.record:
        # the daemon runs the checks again and records what it finds (never these items)
        body = {"badge": args.badge, "remediation": args.remediation, "console": args.console}
        status, outcome = fetch(args, "POST", "/api/precheck", body)
        if not isinstance(outcome, dict) or not outcome.get("accepted"):
            print(f"precheck not recorded ({status}): {outcome}", file=sys.stderr)
            return 2
        print(f"recorded as event {outcome.get('seq')}")
    return 0 if result["passed"] else 1


def cmd_ack(args: argparse.Namespace) -> int:
    return call(
        args,
        "POST",
        f"/api/alerts/{args.alert_id}/ack",
        {"badge": args.badge, "comment": args.comment, "console": args.console},
    )


def cmd_shelve(args: argparse.Namespace) -> int:
    return call(
        args,
        "POST",
        f"/api/alerts/{args.alert_id}/shelve",
        {
            "badge": args.badge,
            "until": args.until,
            "for_s": args.for_s,
            "reason": args.reason,
            "console": args.console,
        },
    )


def cmd_unshelve(args: argparse.Namespace) -> int:
    return call(
        args,
        "POST",
        f"/api/alerts/{args.alert_id}/unshelve",
        {"badge": args.badge, "console": args.console},
    )


def cmd_comment(args: argparse.Namespace) -> int:
    return call(
        args,
        "POST",
        f"/api/alerts/{args.alert_id}/comment",
        {"badge": args.badge, "text": args.text},
    )


def cmd_seal(args: argparse.Namespace) -> int:
    return call(
        args,
        "POST",
        f"/api/seals/{args.seal_id}/{args.action}",
        {
            "badge": args.badge,
            "name": args.name,
            "classification": args.classification,
            "end": args.end,
            "console": args.console,
        },
    )


def cmd_approve(args: argparse.Namespace) -> int:
    return call(
        args,
        "POST",
        "/api/approvals",
        {
            "badge": args.badge,
            "valid_s": args.valid_s,
            "by": args.by,
            "console": args.console,
        },
    )


def cmd_inspect(args: argparse.Namespace) -> int:
    return call(
        args,
        "POST",
        "/api/inspections",
        {"zone": args.zone, "badge": args.badge, "console": args.console},
    )


def cmd_review(args: argparse.Namespace) -> int:
    return call(
        args,
        "POST",
        "/api/reviews",
        {
            "camera": args.camera,
            "zone": args.zone,
            "badge": args.badge,
            "console": args.console,
        },
    )


def cmd_maintenance(args: argparse.Namespace) -> int:
    return call(
        args,
        "POST",
        "/api/maintenance",
        {
            "device": args.device,
            "start": args.start,
            "end": args.end,
            "reason": args.reason,
            "badge": args.badge,
        },
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the operator commands to the `sealwatch` parser."""

    def client(name: str, help: str, func: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument("--config", help="site file (to find the daemon's HTTP address)")
        p.add_argument("--data-dir")
        p.add_argument("--http", help="the daemon's host:port (default SEALWATCH_HTTP)")
        p.set_defaults(func=func)
        return p

    p = client(
        "alerts", "list the alerts not yet closed (a table; --json for machines)", cmd_alerts
    )
    p.add_argument("--json", action="store_true", help="the API's JSON, times in µs and RFC 3339")
    p = client("muster", "who is inside each zone now, who is unseen (a table; --json)", cmd_muster)
    p.add_argument("--json", action="store_true", help="the API's JSON")
    p = client("precheck", "run the pre-seal readiness checks against the live site", cmd_precheck)
    p.add_argument("--badge", help="the inspector's badge")
    p.add_argument(
        "--record",
        action="store_true",
        help="record the checks as the written pre-seal record (precheck.recorded; needs --badge)",
    )
    p.add_argument("--remediation", help="with --record: the inspector's remediation note")
    p.add_argument("--console", help="with --record: the console it is recorded at")
    p = client("ack", "acknowledge an alert", cmd_ack)
    p.add_argument("alert_id")
    p.add_argument("--badge", required=True, help="who acknowledges (the person acting)")
    p.add_argument("--comment")
    p.add_argument("--console")
    p = client("shelve", "shelve an alert until a time", cmd_shelve)
    p.add_argument("alert_id")
    p.add_argument("--badge", required=True)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--until", help="RFC 3339 time")
    g.add_argument("--for", dest="for_s", type=float, help="seconds from now")
    p.add_argument("--reason", required=True)
    p.add_argument("--console")
    p = client("unshelve", "unshelve an alert", cmd_unshelve)
    p.add_argument("alert_id")
    p.add_argument("--badge", required=True)
    p.add_argument("--console")
    p = client("comment", "add a comment to an alert", cmd_comment)
    p.add_argument("alert_id")
    p.add_argument("text")
    p.add_argument("--badge", required=True)
    p = client("seal", "start or end a seal", cmd_seal)
    p.add_argument("action", choices=("start", "end"))
    p.add_argument("seal_id")
    p.add_argument("--badge", required=True)
    p.add_argument("--name")
    p.add_argument("--classification", choices=("top_secret", "secret", "confidential"))
    p.add_argument("--end", help="planned end (RFC 3339)")
    p.add_argument("--console")
    p = client("approve", "grant an exit approval", cmd_approve)
    p.add_argument("badge", help="the person allowed out")
    p.add_argument("--valid-s", type=float, required=True)
    p.add_argument("--by", required=True, help="who grants it")
    p.add_argument("--console")
    p = client("inspect", "record an inspection of a key part", cmd_inspect)
    p.add_argument("zone")
    p.add_argument("--badge", required=True)
    p.add_argument("--console")
    p = client("review", "record a video review", cmd_review)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--camera")
    g.add_argument("--zone")
    p.add_argument("--badge", required=True)
    p.add_argument("--console")
    p = client(
        "maintenance",
        "schedule a maintenance window (suppresses a device's alerts)",
        cmd_maintenance,
    )
    p.add_argument("device")
    p.add_argument("--start", required=True)
    p.add_argument("--end", required=True)
    p.add_argument("--reason", required=True)
    p.add_argument("--badge", required=True, help="the supervisor scheduling it")
