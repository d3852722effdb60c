"""The archive's tables as CSV, one file per table, headers in Chinese or English.

`write_csv(doc, target, lang)`: a target ending in `.zip` gets a zip archive (entries in a
fixed order with a fixed date, so the same archive gives the same bytes); any other target is
a directory (created) with one `NAME.csv` per table. Files are UTF-8 with a BOM (so that
spreadsheet programs read the Chinese headers) and CRLF line ends (RFC 4180). Lists inside a
cell (zones, supervisors, gaps) are joined with `; `. Values are exactly the JSON's.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

Json = dict[str, Any]
Column = tuple[str, str, str]  # key, English, Chinese

_ZIP_DATE = (2000, 1, 1, 0, 0, 0)


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "; ".join(
            _cell(x) if not isinstance(x, list) else "/".join(map(_cell, x)) for x in v
        )
    return str(v)


def _seal_rows(doc: Json) -> list[Json]:
    rows = [{"field": f"site.{k}", "value": v} for k, v in sorted(doc["site"].items())]
    rows += [{"field": f"seal.{k}", "value": v} for k, v in sorted(doc["seal"].items())]
    rows += [{"field": f"ledger.{k}", "value": v} for k, v in sorted(doc["ledger"].items())]
    p = doc["preseal"]
    if p is not None:
        rows += [
            {"field": f"preseal.{k}", "value": v} for k, v in sorted(p.items()) if k != "record"
        ]
        record = p.get("record") or {}
        rows += [
            {"field": f"preseal.record.{k}", "value": v}
            for k, v in sorted(record.items())
            if k != "items"
        ]
    load = doc["alarm_load"]
    rows += [
        {"field": f"alarm_load.{k}", "value": v}
        for k, v in sorted(load.items())
        if not isinstance(v, list)
    ]
    return [{"format": doc["format"], **r} for r in rows]


def _preseal_items(doc: Json) -> list[Json]:
    record = (doc["preseal"] or {}).get("record") or {}
    return list(record.get("items") or [])


def _personnel(doc: Json) -> list[Json]:
    return [
        {**p, "on_duty": [[a or "", b or ""] for a, b in p["on_duty"]]} for p in doc["personnel"]
    ]


def _interruptions(doc: Json) -> list[Json]:
    return [
        {"jammer": j["jammer"], "band": j["band"], **i}
        for j in doc["jammers"]
        for i in j["interruptions"]
    ]


def _history(doc: Json) -> list[Json]:
    return [{"alert_id": a["alert_id"], **h} for a in doc["alerts"] for h in a["history"]]


def _video(doc: Json) -> list[Json]:
    out = []
    for v in doc["video_retention"]:
        for when in ("at_start", "at_end"):
            inv = v[when]
            out.append({"camera": v["camera"], "when": when, **(inv or {})})
    return out


# name, rows, columns
TABLES: list[tuple[str, Callable[[Json], list[Json]], list[Column]]] = [
    (
        "seal",
        _seal_rows,
        [("format", "format", "格式"), ("field", "field", "项目"), ("value", "value", "内容")],
    ),
    (
        "preseal_items",
        _preseal_items,
        [
            ("item", "item", "检查项目"),
            ("passed", "passed", "结果"),
            ("problems", "problems", "发现问题"),
            ("evidence", "evidence", "检查依据"),
        ],
    ),
    (
        "personnel",
        _personnel,
        [
            ("badge", "badge", "工牌"),
            ("name", "name", "姓名"),
            ("role", "role", "角色"),
            ("zones", "zones", "准入区域"),
            ("on_duty", "on duty", "值班时段"),
            ("badged", "badged", "刷卡"),
        ],
    ),
    (
        "movements",
        lambda d: d["movements"],
        [
            ("ts", "time", "时间"),
            ("badge", "badge", "工牌"),
            ("name", "name", "姓名"),
            ("door", "door", "门"),
            ("direction", "direction", "方向"),
            ("kind", "entry/exit", "进出"),
        ],
    ),
    (
        "jammers",
        lambda d: d["jammers"],
        [
            ("jammer", "jammer", "屏蔽器"),
            ("band", "band", "频段"),
            ("min_dbm", "floor (dBm)", "下限 (dBm)"),
            ("seal_s", "seal (s)", "封闭时长 (秒)"),
            ("uptime_s", "uptime (s)", "运行时长 (秒)"),
            ("downtime_s", "downtime (s)", "中断时长 (秒)"),
            ("uptime_pct", "uptime (%)", "运行率 (%)"),
        ],
    ),
    (
        "jammer_interruptions",
        _interruptions,
        [
            ("jammer", "jammer", "屏蔽器"),
            ("band", "band", "频段"),
            ("start", "start", "开始"),
            ("end", "end", "结束"),
            ("duration_s", "duration (s)", "时长 (秒)"),
            ("alert_id", "alert", "告警"),
            ("subject", "subject", "对象"),
            ("acked_by", "acknowledged by", "确认人"),
            ("acked_at", "acknowledged at", "确认时间"),
        ],
    ),
    (
        "alerts",
        lambda d: d["alerts"],
        [
            ("alert_id", "alert", "告警"),
            ("policy", "policy", "规则"),
            ("subject", "subject", "对象"),
            ("severity", "severity", "级别"),
            ("clause", "clause", "条款"),
            ("message", "message", "内容"),
            ("raised", "raised", "发生"),
            ("acknowledged", "acknowledged", "确认"),
            ("time_to_ack_s", "time to acknowledge (s)", "确认用时 (秒)"),
            ("cleared", "cleared", "解除"),
            ("suppressed", "suppressed", "维护屏蔽"),
        ],
    ),
    (
        "alert_history",
        _history,
        [
            ("alert_id", "alert", "告警"),
            ("ts", "time", "时间"),
            ("state", "state", "状态"),
            ("by", "by", "操作人"),
            ("comment", "comment", "备注"),
        ],
    ),
    (
        "alerts_per_hour",
        lambda d: d["alerts_per_hour"],
        [("hour", "hour", "小时"), ("count", "alerts", "告警数")],
    ),
    (
        "patrol_visits",
        lambda d: d["patrol"]["visits"],
        [
            ("ts", "time", "时间"),
            ("checkpoint", "checkpoint", "巡更点"),
            ("badge", "badge", "工牌"),
        ],
    ),
    (
        "patrol_gaps",
        lambda d: d["patrol"]["gaps"],
        [
            ("checkpoint", "checkpoint", "巡更点"),
            ("start", "start", "开始"),
            ("end", "end", "结束"),
            ("duration_s", "duration (s)", "时长 (秒)"),
        ],
    ),
    (
        "duty_phone",
        lambda d: d["duty_phone"],
        [
            ("phone", "phone", "值班电话"),
            ("start", "start", "开始"),
            ("end", "end", "结束"),
            ("recording", "recording", "录音"),
            ("supervisors", "supervisors", "监听人"),
        ],
    ),
    (
        "video_retention",
        _video,
        [
            ("camera", "camera", "摄像机"),
            ("when", "when", "时点"),
            ("ts", "inventory time", "清点时间"),
            ("oldest", "oldest", "最早录像"),
            ("newest", "newest", "最新录像"),
            ("gaps", "gaps", "缺口"),
        ],
    ),
    (
        "inspections",
        lambda d: d["inspections"],
        [("ts", "time", "时间"), ("zone", "zone", "区域"), ("badge", "badge", "工牌")],
    ),
    (
        "reviews",
        lambda d: d["reviews"],
        [
            ("ts", "time", "时间"),
            ("camera", "camera", "摄像机"),
            ("zone", "zone", "区域"),
            ("badge", "badge", "工牌"),
        ],
    ),
    (
        "alarm_floods",
        lambda d: d["alarm_load"]["floods"],
        [("start", "start", "开始"), ("end", "end", "结束"), ("count", "alarms", "告警数")],
    ),
    (
        "alarm_chattering",
        lambda d: d["alarm_load"]["chattering"],
        [
            ("alert_id", "alert", "告警"),
            ("policy", "policy", "规则"),
            ("subject", "subject", "对象"),
            ("count", "raised in 1 min", "1分钟内发生次数"),
            ("raised_in_seal", "raised in the seal", "封闭期内发生次数"),
        ],
    ),
    (
        "alarm_stale",
        lambda d: d["alarm_load"]["stale"],
        [("alert_id", "alert", "告警"), ("open_s", "active (s)", "持续 (秒)")],
    ),
    (
        "headcount",
        lambda d: d["headcount"],
        [("zone", "zone", "区域"), ("max", "most at once", "最多人数")],
    ),
]


def render_tables(doc: Json, lang: str = "zh") -> list[tuple[str, bytes]]:
    """(file name, CSV bytes) of every table, in a fixed order."""
    out = []
    for name, rows_of, cols in TABLES:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow([zh if lang == "zh" else en for _k, en, zh in cols])
        for row in rows_of(doc):
            w.writerow([_cell(row.get(k)) for k, _en, _zh in cols])
        out.append((f"{name}.csv", b"\xef\xbb\xbf" + buf.getvalue().encode()))
    return out


def write_csv(doc: Json, target: Path, lang: str = "zh") -> None:
    files = render_tables(doc, lang)
    if target.suffix == ".zip":
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in files:
                info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                z.writestr(info, data)
        return
    target.mkdir(parents=True, exist_ok=True)
    for name, data in files:
        (target / name).write_bytes(data)
