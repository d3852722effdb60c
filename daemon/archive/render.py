"""A seal's archive as a document an auditor signs: one self-contained HTML page, and a PDF of it.

`render_html(archive, lang)` takes the archive dict (format "sealwatch-archive/1") and gives a
printable A4 page: a cover with the site, the seal, its classification and a signature block,
then a section per part of the archive, as tables, with inline SVG charts (jammer uptime per
band with every interruption as a gap, alerts per hour, headcount per zone). Nothing is fetched
(no fonts, scripts or images from outside), and the same dict gives the same bytes.
`render_pdf` lays that page out with WeasyPrint (page numbers from CSS `@page` counters).
Chinese labels by default, English with lang="en".
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson

LANGS = ("zh", "en")

# Label texts. Values of the archive (states, roles, directions, ...) that are not listed here
# are shown as they are.
LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "doc_title": "封闭期档案",
        "doc_sub": "入闱区 / 保密室 安全监控记录",
        "site": "场所",
        "site_id": "场所编号",
        "timezone": "时区",
        "fingerprint": "场所配置文件指纹",
        "times_note": "本档案中所有时间均为场所时区",
        "seal": "封闭期",
        "seal_id": "封闭期编号",
        "seal_name": "名称",
        "classification": "密级",
        "status": "状态",
        "planned_start": "计划开始",
        "planned_end": "计划结束",
        "start": "实际开始",
        "end": "实际结束",
        "started_by": "开启人",
        "ended_by": "结束人",
        "duration": "时长",
        "ledger": "审计链",
        "head_seq": "链头序号",
        "head_hash": "链头哈希",
        "records": "覆盖记录范围",
        "signatures": "签字确认",
        "sign_note": "经核对，本档案所载内容与实际情况相符。",
        "sig_role": "职责",
        "sig_name": "姓名",
        "sig_sign": "签字",
        "sig_date": "日期",
        "inspector": "检查人",
        "supervisor": "监督员",
        "secrecy_officer": "保密员",
        "contents": "目录",
        "s_preseal": "封闭前检查记录",
        "s_personnel": "人员与值班",
        "s_movements": "出入记录",
        "s_jammers": "手机信号屏蔽器运行",
        "s_alerts": "告警及处置",
        "s_alarm_load": "告警负荷（ISA-18.2）",
        "s_patrol": "巡查记录",
        "s_duty_phone": "值班电话",
        "s_video": "视频保存证明",
        "s_inspections": "现场检查",
        "s_reviews": "视频回看",
        "s_headcount": "各区域人数",
        "ts": "时间",
        "passed": "结果",
        "pass": "通过",
        "fail": "未通过",
        "problems": "发现问题",
        "evidence": "检查依据",
        "item": "检查项目",
        "remediation": "整改措施",
        "written_record": "书面检查记录",
        "engine_check": "封闭开始时的系统核验",
        "no_record": "封闭开始前没有书面检查记录。",
        "seal_marked": "封闭标记",
        "mark_passed": "检查通过后封闭",
        "mark_failed": "检查未通过即封闭",
        "mark_none": "无检查记录即封闭",
        "message": "说明",
        "no_preseal": "本封闭期无封闭前检查记录。",
        "preseal_failed": "封闭前检查未通过即开始封闭。",
        "badge": "工牌号",
        "name": "姓名",
        "role": "角色",
        "zones": "授权区域",
        "on_duty": "值班时段",
        "badged": "刷卡",
        "yes": "是",
        "no": "否",
        "never_badged": "值班但未刷卡",
        "open_end": "至封闭结束",
        "door": "门",
        "direction": "方向",
        "kind": "类型",
        "jammer": "屏蔽器",
        "band": "频段",
        "min_dbm": "功率下限 (dBm)",
        "seal_s": "封闭时长",
        "uptime_s": "运行时长",
        "uptime_pct": "运行率",
        "interruptions": "中断",
        "alert_id": "告警编号",
        "acked_by": "确认人",
        "acked_at": "确认时间",
        "chart_jammers": "各频段屏蔽运行时间轴（红色为中断）",
        "chart_alerts": "每小时告警数",
        "chart_headcount": "各区域最大人数",
        "policy": "策略",
        "subject": "对象",
        "severity": "级别",
        "clause": "条款",
        "raised": "发生",
        "cleared": "消除",
        "time_to_ack": "确认用时",
        "history": "处置经过",
        "state": "状态",
        "by": "操作人",
        "comment": "备注",
        "hour": "小时",
        "count": "次数",
        "operators": "值班操作员数",
        "per10_avg": "每操作员每10分钟告警数（平均）",
        "per10_max": "每操作员每10分钟告警数（最大）",
        "floods": "告警泛滥时段",
        "chattering": "抖动告警",
        "stale": "长期未消除告警",
        "open_s": "持续时长",
        "interval_min": "规定巡查间隔（分钟）",
        "visits": "巡查打卡",
        "gaps": "超出间隔",
        "checkpoint": "巡查点",
        "phone": "电话",
        "recording": "录音",
        "supervisors": "监听人",
        "camera": "摄像机",
        "at_start": "封闭开始时",
        "at_end": "封闭结束时",
        "oldest": "最早录像",
        "newest": "最新录像",
        "no_inventory": "无录像清单",
        "zone": "区域",
        "max": "最大人数",
        "none": "无",
        "unacked": "未确认",
        "page": "第 {p} 页，共 {n} 页",
        "generated_from": "数据格式",
    },
    "en": {
        "doc_title": "Seal archive",
        "doc_sub": "Sealed area / secure room security monitoring record",
        "site": "Site",
        "site_id": "Site ID",
        "timezone": "Time zone",
        "fingerprint": "Site file fingerprint",
        "times_note": "All times in this archive are in the site's time zone",
        "seal": "Seal",
        "seal_id": "Seal ID",
        "seal_name": "Name",
        "classification": "Classification",
        "status": "Status",
        "planned_start": "Planned start",
        "planned_end": "Planned end",
        "start": "Actual start",
        "end": "Actual end",
        "started_by": "Started by",
        "ended_by": "Ended by",
        "duration": "Duration",
        "ledger": "Audit ledger",
        "head_seq": "Head sequence",
        "head_hash": "Head hash",
        "records": "Records covered",
        "signatures": "Signatures",
        "sign_note": "We have checked this archive and find it a true record.",
        "sig_role": "Role",
        "sig_name": "Name",
        "sig_sign": "Signature",
        "sig_date": "Date",
        "inspector": "Inspector",
        "supervisor": "Supervisor",
        "secrecy_officer": "Secrecy officer",
        "contents": "Contents",
        "s_preseal": "Pre-seal inspection record",
        "s_personnel": "Personnel and duties",
        "s_movements": "Entries and exits",
        "s_jammers": "Phone jammers",
        "s_alerts": "Alerts and their handling",
        "s_alarm_load": "Alarm load (ISA-18.2)",
        "s_patrol": "Patrol log",
        "s_duty_phone": "Duty phone",
        "s_video": "Video retention",
        "s_inspections": "Inspections",
        "s_reviews": "Video reviews",
        "s_headcount": "Headcount per zone",
        "ts": "Time",
        "passed": "Result",
        "pass": "passed",
        "fail": "FAILED",
        "problems": "Problems found",
        "evidence": "Evidence",
        "item": "Item",
        "remediation": "Remediation",
        "written_record": "Written inspection record",
        "engine_check": "The system's check when the seal started",
        "no_record": "No written inspection was recorded before the seal.",
        "seal_marked": "Seal marked",
        "mark_passed": "sealed after a passed check",
        "mark_failed": "sealed after a failed check",
        "mark_none": "sealed without a recorded check",
        "message": "Message",
        "no_preseal": "No pre-seal inspection was recorded for this seal.",
        "preseal_failed": "The seal was started after a failed pre-seal check.",
        "badge": "Badge",
        "name": "Name",
        "role": "Role",
        "zones": "Zones",
        "on_duty": "On duty",
        "badged": "Badged",
        "yes": "yes",
        "no": "no",
        "never_badged": "on duty, never badged",
        "open_end": "to the seal's end",
        "door": "Door",
        "direction": "Direction",
        "kind": "Kind",
        "jammer": "Jammer",
        "band": "Band",
        "min_dbm": "Floor (dBm)",
        "seal_s": "Seal length",
        "uptime_s": "Uptime",
        "uptime_pct": "Uptime %",
        "interruptions": "Interruptions",
        "alert_id": "Alert",
        "acked_by": "Acknowledged by",
        "acked_at": "Acknowledged at",
        "chart_jammers": "Jammer uptime per band over the seal (red: interruption)",
        "chart_alerts": "Alerts per hour",
        "chart_headcount": "Maximum headcount per zone",
        "policy": "Policy",
        "subject": "Subject",
        "severity": "Severity",
        "clause": "Clause",
        "raised": "Raised",
        "cleared": "Cleared",
        "time_to_ack": "Time to ack",
        "history": "History",
        "state": "State",
        "by": "By",
        "comment": "Comment",
        "hour": "Hour",
        "count": "Count",
        "operators": "Operators on duty",
        "per10_avg": "Alarms per 10 min per operator (average)",
        "per10_max": "Alarms per 10 min per operator (maximum)",
        "floods": "Flood periods",
        "chattering": "Chattering alarms",
        "stale": "Stale alarms",
        "open_s": "Open for",
        "interval_min": "Required interval (minutes)",
        "visits": "Checkpoint visits",
        "gaps": "Gaps over the interval",
        "checkpoint": "Checkpoint",
        "phone": "Phone",
        "recording": "Recording",
        "supervisors": "Supervisors",
        "camera": "Camera",
        "at_start": "At the seal's start",
        "at_end": "At the seal's end",
        "oldest": "Oldest footage",
        "newest": "Newest footage",
        "no_inventory": "no inventory",
        "zone": "Zone",
        "max": "Max",
        "none": "None",
        "unacked": "not acknowledged",
        "page": "Page {p} of {n}",
        "generated_from": "Format",
    },
}

# Values of the archive shown translated (anything else is shown as it is).
VALUES: dict[str, dict[str, str]] = {
    "zh": {
        "top_secret": "绝密",
        "secret": "机密",
        "confidential": "秘密",
        "internal": "内部",
        "open": "进行中",
        "active": "进行中",
        "ended": "已结束",
        "closed": "已结束",
        "planned": "计划中",
        "in": "进",
        "out": "出",
        "entry": "进入",
        "exit": "离开",
        "raised": "发生",
        "escalated": "升级",
        "acknowledged": "已确认",
        "acked": "已确认",
        "shelved": "搁置",
        "unshelved": "取消搁置",
        "comment": "备注",
        "commented": "备注",
        "cleared": "消除",
        "critical": "紧急",
        "major": "重要",
        "minor": "一般",
        "sealed_staff": "入闱人员",
        "supervisor": "监督员",
        "secrecy_officer": "保密员",
        "operator": "监控操作员",
        "guard": "警卫",
        "inspector": "检查人",
    },
    "en": {
        "top_secret": "TOP SECRET",
        "secret": "SECRET",
        "confidential": "CONFIDENTIAL",
        "internal": "INTERNAL",
        "sealed_staff": "sealed staff",
        "secrecy_officer": "secrecy officer",
    },
}

DASH = "—"

CSS = """
@page {
  size: A4;
  margin: 20mm 16mm 20mm 16mm;
  @top-left { content: string(sitename); font-size: 8pt; color: #555; }
  @top-right { content: string(classif); font-size: 9pt; font-weight: bold; color: #b00000; }
  @bottom-center { content: "%(page)s"; font-size: 8pt; color: #333; }
  @bottom-right { content: string(sealname); font-size: 8pt; color: #555; }
}
@page :first {
  @top-left { content: none; }
  @bottom-right { content: none; }
}
html { font-family: "WenQuanYi Micro Hei", "Noto Sans CJK SC", "DejaVu Sans", sans-serif;
  font-size: 9pt; color: #000; line-height: 1.35; }
body { margin: 0; }
.sitename { string-set: sitename content(); }
.stamp { string-set: classif content(); }
.cover .sealname { string-set: sealname content(); }
.cover { page-break-after: always; }
.cover .site { font-size: 13pt; margin-top: 3mm; }
.cover h1 { font-size: 22pt; margin: 5mm 0 1mm 0; letter-spacing: 0.05em; }
.cover .sub { color: #444; margin-bottom: 3mm; }
.cover .sealname { font-size: 16pt; font-weight: bold; margin: 3mm 0 2mm 0; }
.cover th, .cover td { padding: 0.8mm 1.6mm; }
.cover table.sig td { height: 11mm; }
.cover h3 { margin: 3mm 0 1mm 0; }
.sigblock { page-break-inside: avoid; }
.stamp { display: inline-block; border: 2.5pt solid #b00000; color: #b00000;
  font-size: 20pt; font-weight: bold; padding: 1.5mm 6mm; letter-spacing: 0.2em; }
.nowrap { white-space: nowrap; }
tbody.alert { page-break-inside: avoid; }
.warn { border: 1.5pt solid #b00000; color: #b00000; padding: 2mm 3mm; margin: 3mm 0;
  font-weight: bold; }
table { border-collapse: collapse; width: 100%%; margin: 2mm 0 4mm 0; }
th, td { border: 0.5pt solid #666; padding: 1.2mm 1.6mm; text-align: left;
  vertical-align: top; }
th { background: #e8e8e8; font-weight: bold; }
thead { display: table-header-group; }
tr { page-break-inside: avoid; }
table.kv { page-break-inside: avoid; }
table.kv th { width: 32%%; }
table.sig td { height: 13mm; }
table.sig th.role { width: 20%%; }
td.num, th.num { text-align: right; }
.mono { font-family: "DejaVu Sans Mono", monospace; font-size: 7.5pt; word-break: break-all; }
.bad { color: #b00000; font-weight: bold; }
h2 { font-size: 13pt; border-bottom: 1pt solid #000; padding-bottom: 1mm;
  margin: 7mm 0 3mm 0; page-break-after: avoid; }
h3 { font-size: 10.5pt; margin: 4mm 0 2mm 0; page-break-after: avoid; }
h2.newpage { page-break-before: always; }
figure { margin: 2mm 0 4mm 0; page-break-inside: avoid; }
figcaption { font-size: 8.5pt; color: #333; margin-bottom: 1mm; font-weight: bold; }
svg { display: block; }
svg text { font-family: "WenQuanYi Micro Hei", "DejaVu Sans", sans-serif; }
.none { color: #555; font-style: italic; }
ul.hist { margin: 0; padding-left: 4mm; }
.small { font-size: 8pt; color: #333; }
"""


class _Ctx:
    """What every piece of the page needs: the language's labels, the time format."""

    def __init__(self, lang: str, offset: str | None, names: dict[str, str]) -> None:
        self.lang = lang
        self.names = names  # badge -> name, from the archive's personnel
        self.labels = LABELS[lang]
        self.values = VALUES[lang]
        self.offset = offset  # the site's UTC offset, "+08:00"; other offsets are shown

    def t(self, key: str) -> str:
        return self.labels[key]

    def v(self, value: Any) -> str:
        """A value of the archive, translated when it is a known word, escaped."""
        if value is None or value == "":
            return DASH
        if isinstance(value, bool):
            return self.t("yes") if value else self.t("no")
        s = str(value)
        return esc(self.values.get(s, s))

    def who(self, badge: Any) -> str:
        """A badge with its holder's name when the archive's personnel names it."""
        if not badge:
            return DASH
        name = self.names.get(str(badge))
        return f"{esc(badge)} {esc(name)}" if name else esc(badge)

    def ts(self, value: Any) -> str:
        """An RFC 3339 time as `YYYY-MM-DD HH:MM:SS`, with its offset if not the site's."""
        if not value:
            return DASH
        try:
            dt = datetime.fromisoformat(str(value))
        except ValueError:
            return esc(str(value))
        out = dt.strftime("%Y-%m-%d %H:%M:%S")
        off = _offset(dt)
        if off is not None and off != self.offset:
            out += f" ({off})"
        return out

    def dur(self, seconds: Any) -> str:
        """Whole seconds as H:MM:SS (to the second), or a dash."""
        if seconds is None:
            return DASH
        try:
            s = int(seconds)
        except (TypeError, ValueError):
            return esc(str(seconds))
        sign = "-" if s < 0 else ""
        s = abs(s)
        return f"{sign}{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def esc(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _offset(dt: datetime) -> str | None:
    off = dt.utcoffset()
    if off is None:
        return None
    minutes = int(off.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return dt if dt.tzinfo is not None else None


def _num(x: float) -> str:
    """A coordinate with two decimals at most, the same on every run."""
    s = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _pct(x: Any) -> str:
    if x is None:
        return DASH
    try:
        return f"{float(x):.3f}%"
    except (TypeError, ValueError):
        return esc(str(x))


def _list(x: Any) -> list[Any]:
    return list(x) if isinstance(x, list | tuple) else []


def _dict(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


# --- tables -------------------------------------------------------------------------------


def _table(
    ctx: _Ctx,
    headers: Sequence[tuple[str, str]],
    rows: Iterable[Sequence[str]],
    cls: str = "",
) -> str:
    """A table; headers are (label key, css class); cells are already-escaped HTML."""
    head = "".join(
        f'<th class="{c}">{esc(ctx.t(k))}</th>' if c else f"<th>{esc(ctx.t(k))}</th>"
        for k, c in headers
    )
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="{c}">{cell}</td>' if c else f"<td>{cell}</td>"
            for (_, c), cell in zip(headers, row, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(headers)}" class="none">{esc(ctx.t("none"))}</td></tr>')
    cls_attr = f' class="{cls}"' if cls else ""
    return (
        f"<table{cls_attr}><thead><tr>{head}</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table>"
    )


def _kv(ctx: _Ctx, pairs: Sequence[tuple[str, str]]) -> str:
    rows = "".join(f"<tr><th>{esc(ctx.t(k))}</th><td>{v}</td></tr>" for k, v in pairs)
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


# --- charts (inline SVG) --------------------------------------------------------------------

_SVG_W = 680  # px; the A4 text block is about 178 mm = 673 CSS px


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}">'
        + "".join(body)
        + "</svg>"
    )


def _time_ticks(start: datetime, end: datetime) -> list[datetime]:
    """Round tick times between start and end: every 1, 2, 3, 6, 12 or 24 hours."""
    span = (end - start).total_seconds()
    step_h = next((h for h in (1, 2, 3, 6, 12, 24, 48) if span / (h * 3600) <= 12), 168)
    first = start.replace(minute=0, second=0, microsecond=0)
    ticks = []
    t = first
    while t <= end:
        if t >= start and (t.hour % step_h == 0 or step_h > 24):
            ticks.append(t)
        t = datetime.fromtimestamp(t.timestamp() + 3600, tz=start.tzinfo)
    return ticks


def _jammer_chart(ctx: _Ctx, seal: dict[str, Any], jammers: list[dict[str, Any]]) -> str:
    start, end = _parse(seal.get("start")), _parse(seal.get("end"))
    if start is None or not jammers:
        return ""
    if end is None:  # an open seal: the chart runs to the last interruption seen
        last = [
            _parse(i.get("end")) or _parse(i.get("start"))
            for j in jammers
            for i in _list(j.get("interruptions"))
        ]
        ends = [t for t in last if t is not None]
        end = max(ends) if ends else None
    if end is None or end <= start:
        return ""
    label_w, right, top, row_h, bar_h = 190, 10, 6, 22, 14
    x0, x1 = label_w, _SVG_W - right
    span = (end - start).total_seconds()

    def x(t: datetime) -> float:
        f = (t - start).total_seconds() / span
        return x0 + max(0.0, min(1.0, f)) * (x1 - x0)

    body = []
    for n, j in enumerate(jammers):
        y = top + n * row_h
        label = f"{j.get('jammer', '')} · {j.get('band', '')}"
        body.append(
            f'<text x="4" y="{_num(y + bar_h - 3)}" font-size="10">{esc(label)}</text>'
            f'<text x="{label_w - 6}" y="{_num(y + bar_h - 3)}" font-size="9" '
            f'text-anchor="end">{_pct(j.get("uptime_pct"))}</text>'
            f'<rect x="{x0}" y="{y}" width="{_num(x1 - x0)}" height="{bar_h}" fill="#3a8f3a"/>'
        )
        for it in _list(j.get("interruptions")):
            a = _parse(it.get("start"))
            if a is None:
                continue
            b = _parse(it.get("end")) or end
            xa, xb = x(a), x(b)
            w = max(xb - xa, 1.5)  # a few seconds' gap stays visible
            body.append(
                f'<rect x="{_num(xa)}" y="{y - 1}" width="{_num(w)}" height="{bar_h + 2}" '
                f'fill="#d01010"><title>{esc(it.get("alert_id") or "")}</title></rect>'
            )
    axis_y = top + len(jammers) * row_h + 2
    body.append(
        f'<line x1="{x0}" y1="{axis_y}" x2="{x1}" y2="{axis_y}" stroke="#000" stroke-width="0.8"/>'
    )
    ticks = _time_ticks(start, end)
    multi_day = start.date() != end.date()
    for t in ticks:
        tx = _num(x(t))
        label = t.strftime("%m-%d %H:%M" if multi_day and t.hour == 0 else "%H:%M")
        body.append(
            f'<line x1="{tx}" y1="{top - 2}" x2="{tx}" y2="{axis_y + 3}" stroke="#999" '
            f'stroke-width="0.4" stroke-dasharray="2,2"/>'
            f'<text x="{tx}" y="{axis_y + 13}" font-size="8.5" text-anchor="middle">'
            f"{esc(label)}</text>"
        )
    body.append(
        f'<text x="{x0}" y="{axis_y + 25}" font-size="8.5">{esc(ctx.ts(seal.get("start")))}</text>'
        f'<text x="{x1}" y="{axis_y + 25}" font-size="8.5" text-anchor="end">'
        f"{esc(ctx.ts(end.isoformat()))}</text>"
    )
    height = axis_y + 30
    title = ctx.t("chart_jammers")
    return (
        f"<figure><figcaption>{esc(title)}</figcaption>{_svg(_SVG_W, height, body, title)}</figure>"
    )


def _nice_max(m: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000):
        if m <= step * 5:
            return max(step * ((m + step - 1) // step), step)
    return m


def _vbar_chart(title: str, items: list[tuple[str, int]]) -> str:
    """Vertical bars, one per item (label, value), with a value axis."""
    if not items:
        return ""
    left, right, top, plot_h, bottom = 34, 8, 12, 130, 42
    x0, x1 = left, _SVG_W - right
    vmax = _nice_max(max((v for _, v in items), default=0))
    slot = (x1 - x0) / len(items)
    bar_w = max(min(slot * 0.7, 40), 1)
    label_every = max(1, -(-len(items) // 24))  # at most 24 labels under the axis
    body = []
    ybase = top + plot_h
    nticks = min(5, vmax) or 1
    for k in range(0, nticks + 1):
        val = vmax * k / nticks
        yy = ybase - plot_h * k / nticks
        body.append(
            f'<line x1="{x0}" y1="{_num(yy)}" x2="{x1}" y2="{_num(yy)}" stroke="#ccc" '
            f'stroke-width="0.4"/><text x="{x0 - 4}" y="{_num(yy + 3)}" font-size="8.5" '
            f'text-anchor="end">{_num(val)}</text>'
        )
    for n, (label, value) in enumerate(items):
        cx = x0 + slot * (n + 0.5)
        h = plot_h * value / vmax if vmax else 0
        body.append(
            f'<rect x="{_num(cx - bar_w / 2)}" y="{_num(ybase - h)}" width="{_num(bar_w)}" '
            f'height="{_num(h)}" fill="#2f5f9f"/>'
        )
        if value and len(items) <= 48:
            body.append(
                f'<text x="{_num(cx)}" y="{_num(ybase - h - 2)}" font-size="8" '
                f'text-anchor="middle">{value}</text>'
            )
        if n % label_every == 0:
            body.append(
                f'<text x="{_num(cx)}" y="{ybase + 12}" font-size="8.5" '
                f'text-anchor="middle">{esc(label)}</text>'
            )
    body.append(
        f'<line x1="{x0}" y1="{ybase}" x2="{x1}" y2="{ybase}" stroke="#000" stroke-width="0.8"/>'
    )
    height = ybase + bottom - 20
    return (
        f"<figure><figcaption>{esc(title)}</figcaption>{_svg(_SVG_W, height, body, title)}</figure>"
    )


def _hbar_chart(title: str, items: list[tuple[str, int]]) -> str:
    """Horizontal bars, one per item (label, value)."""
    if not items:
        return ""
    label_w, right, top, row_h, bar_h = 150, 40, 4, 20, 13
    x0, x1 = label_w, _SVG_W - right
    vmax = max((v for _, v in items), default=0) or 1
    body = []
    for n, (label, value) in enumerate(items):
        y = top + n * row_h
        w = (x1 - x0) * value / vmax
        body.append(
            f'<text x="{label_w - 6}" y="{_num(y + bar_h - 3)}" font-size="10" '
            f'text-anchor="end">{esc(label)}</text>'
            f'<rect x="{x0}" y="{y}" width="{_num(w)}" height="{bar_h}" fill="#2f5f9f"/>'
            f'<text x="{_num(x0 + w + 4)}" y="{_num(y + bar_h - 3)}" font-size="9">{value}</text>'
        )
    height = top + len(items) * row_h + 2
    body.append(
        f'<line x1="{x0}" y1="{top - 2}" x2="{x0}" y2="{height}" stroke="#000" stroke-width="0.8"/>'
    )
    return (
        f"<figure><figcaption>{esc(title)}</figcaption>{_svg(_SVG_W, height, body, title)}</figure>"
    )


def _int(x: Any) -> int:
    try:
        return int(x)
    except (TypeError, ValueError):
        return 0


# --- sections -----------------------------------------------------------------------------


def _cover(ctx: _Ctx, a: dict[str, Any]) -> str:
    site, seal, ledger = _dict(a.get("site")), _dict(a.get("seal")), _dict(a.get("ledger"))
    classif = ctx.v(seal.get("classification"))
    tz = site.get("timezone")
    tz_text = esc(tz) if tz else DASH
    if ctx.offset:
        tz_text += f" (UTC{ctx.offset})"
    seal_rows = [
        ("seal_id", ctx.v(seal.get("id"))),
        ("classification", f'<span class="bad">{classif}</span>'),
        ("status", ctx.v(seal.get("status"))),
        ("planned_start", ctx.ts(seal.get("planned_start"))),
        ("planned_end", ctx.ts(seal.get("planned_end"))),
        ("start", ctx.ts(seal.get("start"))),
        ("end", ctx.ts(seal.get("end"))),
        ("duration", _seal_duration(ctx, seal)),
        ("started_by", ctx.who(seal.get("started_by"))),
        ("ended_by", ctx.who(seal.get("ended_by"))),
    ]
    first, last = ledger.get("first_seq"), ledger.get("last_seq")
    ledger_rows = [
        ("head_seq", ctx.v(ledger.get("head_seq"))),
        ("head_hash", f'<span class="mono">{ctx.v(ledger.get("head_hash"))}</span>'),
        ("records", f"{ctx.v(first)} – {ctx.v(last)}"),
        ("fingerprint", f'<span class="mono">{ctx.v(site.get("fingerprint"))}</span>'),
    ]
    sig_rows = "".join(
        f'<tr><th class="role">{esc(ctx.t(role))}</th><td></td><td></td><td></td></tr>'
        for role in ("inspector", "supervisor", "secrecy_officer")
    )
    sig = (
        f'<div class="sigblock"><h3>{esc(ctx.t("signatures"))}</h3>'
        f"<p>{esc(ctx.t('sign_note'))}</p>"
        f'<table class="sig"><thead><tr><th class="role">{esc(ctx.t("sig_role"))}</th>'
        f"<th>{esc(ctx.t('sig_name'))}</th><th>{esc(ctx.t('sig_sign'))}</th>"
        f"<th>{esc(ctx.t('sig_date'))}</th></tr></thead><tbody>{sig_rows}</tbody></table></div>"
    )
    return (
        '<section class="cover">'
        f'<div class="stamp">{classif}</div>'
        f'<div class="site"><span class="sitename">{ctx.v(site.get("name"))}</span>'
        f" <span class='small'>({esc(ctx.t('site_id'))}: {ctx.v(site.get('id'))})</span></div>"
        f"<h1>{esc(ctx.t('doc_title'))}</h1>"
        f'<div class="sub">{esc(ctx.t("doc_sub"))}</div>'
        f'<div class="sealname">{ctx.v(seal.get("name"))}</div>'
        + _kv(ctx, seal_rows)
        + f'<p class="small">{esc(ctx.t("times_note"))}: {tz_text}</p>'
        + _preseal_warning(ctx, a)
        + f"<h3>{esc(ctx.t('ledger'))}</h3>"
        + _kv(ctx, ledger_rows)
        + sig
        + f'<p class="small">{esc(ctx.t("generated_from"))}: {ctx.v(a.get("format"))}</p>'
        + "</section>"
    )


def _seal_duration(ctx: _Ctx, seal: dict[str, Any]) -> str:
    a, b = _parse(seal.get("start")), _parse(seal.get("end"))
    if a is None or b is None:
        return DASH
    return ctx.dur(int((b - a).total_seconds()))


def _preseal_warning(ctx: _Ctx, a: dict[str, Any]) -> str:
    pre = a.get("preseal")
    if isinstance(pre, dict) and pre.get("passed") is False:
        return f'<div class="warn">{esc(ctx.t("preseal_failed"))}</div>'
    return ""


def _h2(ctx: _Ctx, n: int, key: str, newpage: bool = False) -> str:
    cls = ' class="newpage"' if newpage else ""
    return f'<h2{cls} id="{key}">{n}. {esc(ctx.t(key))}</h2>'


def _result(ctx: _Ctx, passed: Any) -> str:
    if passed is True:
        return esc(ctx.t("pass"))
    if passed is False:
        return f'<span class="bad">{esc(ctx.t("fail"))}</span>'
    return DASH


def _bullets(ctx: _Ctx, items: list[Any]) -> str:
    if not items:
        return esc(ctx.t("none"))
    return "<ul class='hist'>" + "".join(f"<li>{_any(ctx, x)}</li>" for x in items) + "</ul>"


def _s_preseal(ctx: _Ctx, a: dict[str, Any]) -> str:
    pre = a.get("preseal")
    if not isinstance(pre, dict):
        return f'<p class="none">{esc(ctx.t("no_preseal"))}</p>'
    mark = str(_dict(a.get("seal")).get("precheck") or "none")
    out = [_kv(ctx, [("seal_marked", esc(ctx.t(f"mark_{mark}")))])]
    record = pre.get("record")
    out.append(f"<h3>{esc(ctx.t('written_record'))}</h3>")
    if isinstance(record, dict):
        out.append(
            _kv(
                ctx,
                [
                    ("ts", ctx.ts(record.get("ts"))),
                    (
                        "inspector",
                        ctx.v(
                            " ".join(
                                str(x)
                                for x in (record.get("inspector"), record.get("inspector_name"))
                                if x
                            )
                            or None
                        ),
                    ),
                    ("passed", _result(ctx, record.get("passed"))),
                    ("remediation", ctx.v(record.get("remediation"))),
                ],
            )
        )
        out.append(
            _table(
                ctx,
                [("item", ""), ("passed", ""), ("problems", ""), ("evidence", "")],
                (
                    (
                        ctx.v(i.get("item")),
                        _result(ctx, i.get("passed")),
                        _bullets(ctx, _list(i.get("problems"))),
                        _bullets(ctx, _list(i.get("evidence"))),
                    )
                    for i in map(_dict, _list(record.get("items")))
                ),
            )
        )
    else:
        out.append(f'<p class="none">{esc(ctx.t("no_record"))}</p>')
    out.append(f"<h3>{esc(ctx.t('engine_check'))}</h3>")
    out.append(
        _kv(
            ctx,
            [
                ("ts", ctx.ts(pre.get("ts"))),
                ("passed", _result(ctx, pre.get("passed"))),
                ("problems", _bullets(ctx, _list(pre.get("problems")))),
                ("message", ctx.v(pre.get("message"))),
            ],
        )
    )
    return "".join(out)


def _any(ctx: _Ctx, x: Any) -> str:
    """A value of unknown shape (a problem may be a string or a small dict)."""
    if isinstance(x, dict):
        return "; ".join(f"{esc(k)}: {_any(ctx, v)}" for k, v in sorted(x.items()))
    if isinstance(x, list):
        return ", ".join(_any(ctx, v) for v in x)
    return ctx.v(x)


def _s_personnel(ctx: _Ctx, a: dict[str, Any]) -> str:
    rows = []
    for p in _list(a.get("personnel")):
        p = _dict(p)
        spans = []
        for span in _list(p.get("on_duty")):
            span = _list(span)
            on = span[0] if span else None
            off = span[1] if len(span) > 1 else None
            spans.append(f"{ctx.ts(on)} – {ctx.ts(off) if off else esc(ctx.t('open_end'))}")
        badged = p.get("badged")
        badged_cell = (
            f'<span class="bad">{esc(ctx.t("never_badged"))}</span>'
            if badged is False and spans
            else ctx.v(badged)
        )
        rows.append(
            [
                ctx.v(p.get("badge")),
                ctx.v(p.get("name")),
                ctx.v(p.get("role")),
                esc(", ".join(str(z) for z in _list(p.get("zones")))) or DASH,
                "<br/>".join(spans) or DASH,
                badged_cell,
            ]
        )
    return _table(
        ctx,
        [("badge", ""), ("name", ""), ("role", ""), ("zones", ""), ("on_duty", ""), ("badged", "")],
        rows,
    )


def _s_movements(ctx: _Ctx, a: dict[str, Any]) -> str:
    rows = [
        [
            ctx.ts(m.get("ts")),
            ctx.v(m.get("badge")),
            ctx.v(m.get("name")),
            ctx.v(m.get("door")),
            ctx.v(m.get("direction")),
            ctx.v(m.get("kind")),
        ]
        for m in map(_dict, _list(a.get("movements")))
    ]
    return _table(
        ctx,
        [("ts", ""), ("badge", ""), ("name", ""), ("door", ""), ("direction", ""), ("kind", "")],
        rows,
    )


def _s_jammers(ctx: _Ctx, a: dict[str, Any]) -> str:
    jammers = [_dict(j) for j in _list(a.get("jammers"))]
    out = [_jammer_chart(ctx, _dict(a.get("seal")), jammers)]
    out.append(
        _table(
            ctx,
            [
                ("jammer", ""),
                ("band", ""),
                ("min_dbm", "num"),
                ("seal_s", "num"),
                ("uptime_s", "num"),
                ("uptime_pct", "num"),
                ("interruptions", "num"),
            ],
            [
                [
                    ctx.v(j.get("jammer")),
                    ctx.v(j.get("band")),
                    ctx.v(j.get("min_dbm")),
                    ctx.dur(j.get("seal_s")),
                    ctx.dur(j.get("uptime_s")),
                    _pct(j.get("uptime_pct")),
                    str(len(_list(j.get("interruptions")))),
                ]
                for j in jammers
            ],
        )
    )
    rows = []
    unacked = f'<span class="bad">{esc(ctx.t("unacked"))}</span>'
    for j in jammers:
        for it in map(_dict, _list(j.get("interruptions"))):
            rows.append(
                [
                    ctx.v(j.get("jammer")),
                    ctx.v(j.get("band")),
                    ctx.ts(it.get("start")),
                    ctx.ts(it.get("end")),
                    ctx.dur(it.get("duration_s")),
                    ctx.v(it.get("alert_id")),
                    ctx.who(it.get("acked_by")) if it.get("acked_by") else unacked,
                    ctx.ts(it.get("acked_at")),
                ]
            )
    out.append(f"<h3>{esc(ctx.t('interruptions'))}</h3>")
    out.append(
        _table(
            ctx,
            [
                ("jammer", ""),
                ("band", ""),
                ("start", ""),
                ("end", ""),
                ("duration", "num"),
                ("alert_id", ""),
                ("acked_by", ""),
                ("acked_at", ""),
            ],
            rows,
        )
    )
    return "".join(out)


def _s_alerts(ctx: _Ctx, a: dict[str, Any]) -> str:
    per_hour = [_dict(h) for h in _list(a.get("alerts_per_hour"))]
    items = []
    for h in per_hour:
        t = _parse(h.get("hour"))
        items.append((t.strftime("%H") if t else str(h.get("hour", "")), _int(h.get("count"))))
    out = [_vbar_chart(ctx.t("chart_alerts"), items)]
    rows: list[list[str]] = []
    for al in map(_dict, _list(a.get("alerts"))):
        hist = "".join(
            "<li>"
            + " · ".join(
                x
                for x in (
                    ctx.ts(h.get("ts")),
                    f"<b>{ctx.v(h.get('state'))}</b>",
                    ctx.who(h.get("by")) if h.get("by") else "",
                    esc(h.get("comment")) if h.get("comment") else "",
                )
                if x
            )
            + "</li>"
            for h in map(_dict, _list(al.get("history")))
        )
        rows.append(
            [
                f'<span class="mono">{ctx.v(al.get("alert_id"))}</span>',
                f"{ctx.v(al.get('policy'))}<br/><span class='small'>"
                f"{ctx.v(al.get('clause'))}</span>",
                ctx.v(al.get("subject")),
                f'<span class="nowrap">{ctx.v(al.get("severity"))}</span>',
                ctx.v(al.get("message")),
                ctx.ts(al.get("raised")),
                ctx.ts(al.get("cleared")),
                ctx.dur(al.get("time_to_ack_s"))
                if al.get("time_to_ack_s") is not None
                else f'<span class="bad">{esc(ctx.t("unacked"))}</span>',
            ]
        )
        rows.append([f'<ul class="hist">{hist}</ul>' if hist else DASH])
    # alerts: one row of figures, then one full-width row with the history
    head = [
        ("alert_id", ""),
        ("policy", ""),
        ("subject", ""),
        ("severity", ""),
        ("message", ""),
        ("raised", ""),
        ("cleared", ""),
        ("time_to_ack", "num"),
    ]
    th = "".join(f"<th>{esc(ctx.t(k))}</th>" for k, _ in head)
    body = []
    for r in rows:
        if len(r) == 1:
            body.append(
                f'<tr><td></td><td colspan="{len(head) - 1}"><span class="small">'
                f"{esc(ctx.t('history'))}:</span>{r[0]}</td></tr></tbody>"
            )
        else:
            body.append(
                '<tbody class="alert"><tr>'
                + "".join(
                    f'<td class="{c}">{cell}</td>' if c else f"<td>{cell}</td>"
                    for (_, c), cell in zip(head, r, strict=True)
                )
                + "</tr>"
            )
    if not body:
        body.append(
            f'<tbody><tr><td colspan="{len(head)}" class="none">{esc(ctx.t("none"))}</td></tr>'
            "</tbody>"
        )
    out.append(f'<table class="alerts"><thead><tr>{th}</tr></thead>{"".join(body)}</table>')
    return "".join(out)


def _s_alarm_load(ctx: _Ctx, a: dict[str, Any]) -> str:
    load = _dict(a.get("alarm_load"))
    out = [
        _kv(
            ctx,
            [
                ("operators", ctx.v(load.get("operators"))),
                ("per10_avg", ctx.v(load.get("per_10min_per_operator_avg"))),
                ("per10_max", ctx.v(load.get("per_10min_per_operator_max"))),
            ],
        )
    ]
    out.append(f"<h3>{esc(ctx.t('floods'))}</h3>")
    out.append(
        _table(
            ctx,
            [("start", ""), ("end", ""), ("count", "num")],
            [
                [ctx.ts(f.get("start")), ctx.ts(f.get("end")), ctx.v(f.get("count"))]
                for f in map(_dict, _list(load.get("floods")))
            ],
        )
    )
    out.append(f"<h3>{esc(ctx.t('chattering'))}</h3>")
    out.append(
        _table(
            ctx,
            [("alert_id", ""), ("count", "num")],
            [
                [f'<span class="mono">{ctx.v(c.get("alert_id"))}</span>', ctx.v(c.get("count"))]
                for c in map(_dict, _list(load.get("chattering")))
            ],
        )
    )
    out.append(f"<h3>{esc(ctx.t('stale'))}</h3>")
    out.append(
        _table(
            ctx,
            [("alert_id", ""), ("open_s", "num")],
            [
                [f'<span class="mono">{ctx.v(s.get("alert_id"))}</span>', ctx.dur(s.get("open_s"))]
                for s in map(_dict, _list(load.get("stale")))
            ],
        )
    )
    return "".join(out)


def _s_patrol(ctx: _Ctx, a: dict[str, Any]) -> str:
    patrol = _dict(a.get("patrol"))
    out = [_kv(ctx, [("interval_min", ctx.v(patrol.get("interval_min")))])]
    out.append(f"<h3>{esc(ctx.t('gaps'))}</h3>")
    out.append(
        _table(
            ctx,
            [("checkpoint", ""), ("start", ""), ("end", ""), ("duration", "num")],
            [
                [
                    ctx.v(g.get("checkpoint")),
                    ctx.ts(g.get("start")),
                    ctx.ts(g.get("end")),
                    f'<span class="bad">{ctx.dur(g.get("duration_s"))}</span>',
                ]
                for g in map(_dict, _list(patrol.get("gaps")))
            ],
        )
    )
    out.append(f"<h3>{esc(ctx.t('visits'))}</h3>")
    out.append(
        _table(
            ctx,
            [("ts", ""), ("checkpoint", ""), ("badge", "")],
            [
                [ctx.ts(v.get("ts")), ctx.v(v.get("checkpoint")), ctx.who(v.get("badge"))]
                for v in map(_dict, _list(patrol.get("visits")))
            ],
        )
    )
    return "".join(out)


def _s_duty_phone(ctx: _Ctx, a: dict[str, Any]) -> str:
    return _table(
        ctx,
        [("phone", ""), ("start", ""), ("end", ""), ("recording", ""), ("supervisors", "")],
        [
            [
                ctx.v(c.get("phone")),
                ctx.ts(c.get("start")),
                ctx.ts(c.get("end")),
                ctx.v(c.get("recording")),
                "<br/>".join(ctx.who(s) for s in _list(c.get("supervisors"))) or DASH,
            ]
            for c in map(_dict, _list(a.get("duty_phone")))
        ],
    )


def _inventory(ctx: _Ctx, inv: Any) -> list[str]:
    if not isinstance(inv, dict):
        na = f'<span class="bad">{esc(ctx.t("no_inventory"))}</span>'
        return [na, DASH, DASH]
    gaps = inv.get("gaps")
    if isinstance(gaps, list):
        gap_cell = (
            "<br/>".join(
                f"{ctx.ts(_dict(g).get('start'))} – {ctx.ts(_dict(g).get('end'))}"
                if isinstance(g, dict)
                else _any(ctx, g)
                for g in gaps
            )
            or "0"
        )
    else:
        gap_cell = ctx.v(gaps)
    return [ctx.ts(inv.get("oldest")), ctx.ts(inv.get("newest")), gap_cell]


def _s_video(ctx: _Ctx, a: dict[str, Any]) -> str:
    rows = []
    for c in map(_dict, _list(a.get("video_retention"))):
        rows.append(
            [ctx.v(c.get("camera")), esc(ctx.t("at_start")), *_inventory(ctx, c.get("at_start"))]
        )
        rows.append(["", esc(ctx.t("at_end")), *_inventory(ctx, c.get("at_end"))])
    return _table(
        ctx,
        [("camera", ""), ("ts", ""), ("oldest", ""), ("newest", ""), ("gaps", "")],
        rows,
    )


def _s_inspections(ctx: _Ctx, a: dict[str, Any]) -> str:
    return _table(
        ctx,
        [("ts", ""), ("zone", ""), ("badge", "")],
        [
            [ctx.ts(i.get("ts")), ctx.v(i.get("zone")), ctx.who(i.get("badge"))]
            for i in map(_dict, _list(a.get("inspections")))
        ],
    )


def _s_reviews(ctx: _Ctx, a: dict[str, Any]) -> str:
    return _table(
        ctx,
        [("ts", ""), ("camera", ""), ("zone", ""), ("badge", "")],
        [
            [
                ctx.ts(r.get("ts")),
                ctx.v(r.get("camera")),
                ctx.v(r.get("zone")),
                ctx.who(r.get("badge")),
            ]
            for r in map(_dict, _list(a.get("reviews")))
        ],
    )


def _s_headcount(ctx: _Ctx, a: dict[str, Any]) -> str:
    hc = [_dict(h) for h in _list(a.get("headcount"))]
    chart = _hbar_chart(
        ctx.t("chart_headcount"), [(str(h.get("zone", "")), _int(h.get("max"))) for h in hc]
    )
    return chart + _table(
        ctx,
        [("zone", ""), ("max", "num")],
        [[ctx.v(h.get("zone")), ctx.v(h.get("max"))] for h in hc],
    )


_SECTIONS: list[tuple[str, Callable[[_Ctx, dict[str, Any]], str], bool]] = [
    ("s_preseal", _s_preseal, False),
    ("s_personnel", _s_personnel, False),
    ("s_movements", _s_movements, False),
    ("s_jammers", _s_jammers, True),
    ("s_alerts", _s_alerts, True),
    ("s_alarm_load", _s_alarm_load, False),
    ("s_patrol", _s_patrol, True),
    ("s_duty_phone", _s_duty_phone, False),
    ("s_video", _s_video, True),
    ("s_inspections", _s_inspections, False),
    ("s_reviews", _s_reviews, False),
    ("s_headcount", _s_headcount, False),
]


def render_html(archive: dict[str, Any], lang: str = "zh") -> str:
    """The archive as one self-contained, printable HTML page (same dict, same string)."""
    if lang not in LABELS:
        raise ValueError(f"lang must be one of {', '.join(LANGS)}, not {lang!r}")
    seal = _dict(archive.get("seal"))
    start = _parse(seal.get("start")) or _parse(seal.get("planned_start"))
    names = {
        str(p["badge"]): str(p["name"])
        for p in map(_dict, _list(archive.get("personnel")))
        if p.get("badge") and p.get("name")
    }
    ctx = _Ctx(lang, _offset(start) if start else None, names)
    page = ctx.t("page").replace("{p}", '" counter(page) "').replace("{n}", '" counter(pages) "')
    css = CSS % {"page": page}
    title = f"{ctx.t('doc_title')} · {seal.get('name') or seal.get('id') or ''}"
    contents = "".join(
        f'<li><a href="#{key}">{n}. {esc(ctx.t(key))}</a></li>'
        for n, (key, _, _) in enumerate(_SECTIONS, 1)
    )
    parts = [
        "<!DOCTYPE html>\n",
        f'<html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8"/>',
        f"<title>{esc(title)}</title><style>{css}</style></head><body>",
        _cover(ctx, archive),
        f"<h2>{esc(ctx.t('contents'))}</h2><ol class='toc' style='list-style:none;padding:0'>"
        f"{contents}</ol>",
    ]
    for n, (key, fn, newpage) in enumerate(_SECTIONS, 1):
        parts.append(_h2(ctx, n, key, newpage))
        parts.append(fn(ctx, archive))
    parts.append(_embedded(archive))
    parts.append("</body></html>\n")
    return "".join(parts)


EMBED_ID = "sealwatch-archive"


def _embedded(archive: dict[str, Any]) -> str:
    """The signed document inside the page, so that `sealwatch archive verify PAGE.html`
    checks the signature and that the page is exactly what the document renders to."""
    doc = {k: v for k, v in archive.items() if k != "proofs"}
    # no "<" at all inside the block: no "</script" or "<!--" can end or confuse it
    text = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode().replace("<", "\\u003c")
    return f'<script type="application/json" id="{EMBED_ID}">{text}</script>'


def embedded_archive(page: str) -> tuple[dict[str, Any], str] | None:
    """(the document a page embeds, the page's language), or None."""
    start = page.find(f'<script type="application/json" id="{EMBED_ID}">')
    if start < 0:
        return None
    start = page.index(">", start) + 1
    end = page.find("</script>", start)
    lang = "en" if '<html lang="en">' in page[:200] else "zh"
    try:
        doc = orjson.loads(page[start:end])
    except orjson.JSONDecodeError:
        return None
    return (doc, lang) if isinstance(doc, dict) else None


def _no_fetch(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    raise ValueError(f"the archive fetches nothing (asked for {url})")


def render_pdf(archive: dict[str, Any], lang: str = "zh") -> bytes:
    """The archive's HTML laid out as an A4 PDF with WeasyPrint; nothing is fetched."""
    import weasyprint  # a heavy import, only for the PDF

    doc = weasyprint.HTML(string=render_html(archive, lang), url_fetcher=_no_fetch)
    pdf = doc.write_pdf()
    assert isinstance(pdf, bytes)
    return pdf
