"""The words of a notification: a mail's subject and body, an SMS's text; Chinese or English.

The plain-words explanation of each policy, the severity and the state names come from the
dashboard's own dictionary (daemon/web/i18n.json), so a guard reads the same words on the
page and in the message. Times are shown in the site's time zone.
"""

from __future__ import annotations

import functools
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from policies.timefmt import parse_ts

I18N = Path(__file__).resolve().parents[1] / "web" / "i18n.json"
UI_LANG = {"zh": "zh-CN", "en": "en"}

WORDS = {
    "zh": {
        "site": "站点",
        "alert": "告警",
        "policy": "策略",
        "clause": "条款",
        "severity": "级别",
        "state": "状态",
        "subject": "对象",
        "zone": "区域",
        "seal": "封闭期",
        "time": "时间",
        "id": "告警编号",
        "detail": "详情",
        "none": "无",
        "level": "升级第 {n} 级：{who}",
        "level_short": "升级{n}级",
        "act": "请立即处置，并在监控台确认该告警。",
        "sep": "，",
        "colon": "：",
    },
    "en": {
        "site": "Site",
        "alert": "Alert",
        "policy": "Policy",
        "clause": "Clause",
        "severity": "Severity",
        "state": "State",
        "subject": "Subject",
        "zone": "Zone",
        "seal": "Seal",
        "time": "Time",
        "id": "Alert id",
        "detail": "Detail",
        "none": "none",
        "level": "Escalation level {n}: {who}",
        "level_short": "escalation {n}",
        "act": "Act now and acknowledge the alert at the console.",
        "sep": ", ",
        "colon": ": ",
    },
}
WHO = {
    "zh": {0: "值班操作员", 1: "值班主管"},
    "en": {0: "operators on duty", 1: "supervisor on duty"},
}


@functools.cache
def _dictionary() -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(I18N.read_bytes())
    return data


def _ui(lang: str, key: str, default: str) -> str:
    return str(_dictionary()["ui"].get(UI_LANG[lang], {}).get(key, default))


def explain(lang: str, policy: str, subject: str) -> str:
    texts = _dictionary()["explain"]
    entry = texts.get(policy) or texts["_"]
    return str(entry.get(UI_LANG[lang]) or texts["_"][UI_LANG[lang]]).replace("{subject}", subject)


def local_time(ts: Any, timezone: str) -> str:
    try:
        us = ts if isinstance(ts, int) else parse_ts(str(ts))
        dt = datetime.fromtimestamp(us // 1_000_000, ZoneInfo(timezone))
    except (ValueError, OverflowError, OSError):
        return str(ts)
    return f"{dt:%Y-%m-%d %H:%M:%S} ({timezone})"


def _level_line(lang: str, msg: dict[str, Any]) -> str | None:
    esc = msg.get("escalation")
    if not esc:
        return None
    n = int(esc["level"])
    who = WHO[lang].get(n) or ", ".join(esc.get("recipients", []))
    return WORDS[lang]["level"].format(n=n, who=who)


def subject_line(lang: str, msg: dict[str, Any]) -> str:
    """A mail subject: severity and state, site, what happened, where."""
    a, w = msg["alert"], WORDS[lang]
    sev = _ui(lang, f"sev.{a['severity']}", a["severity"])
    state = _ui(lang, f"tr.{a['state']}", a["state"])
    esc = msg.get("escalation")
    tag = f"{sev}·{state}" if lang == "zh" else f"{sev} {state}"
    if esc and esc["level"] >= 1:
        tag += ("·" if lang == "zh" else ", ") + w["level_short"].format(n=esc["level"])
    site = msg["site"]["name"] or msg["site"]["id"]
    head = f"【{tag}】" if lang == "zh" else f"[{tag}] "
    return f"{head}{site}{w['colon']}{a['policy']} {a['subject']}"


def body_text(lang: str, msg: dict[str, Any]) -> str:
    a, w, site = msg["alert"], WORDS[lang], msg["site"]
    c = w["colon"]
    lines = [
        f"{w['alert']}{c}{explain(lang, a['policy'], a['subject'])}",
        "",
        f"{w['site']}{c}{site['name']} ({site['id']})",
        f"{w['policy']}{c}{a['policy']}",
        f"{w['clause']}{c}{a.get('clause') or w['none']}",
        f"{w['severity']}{c}{_ui(lang, 'sev.' + a['severity'], a['severity'])}",
        f"{w['state']}{c}{_ui(lang, 'tr.' + a['state'], a['state'])}",
        f"{w['subject']}{c}{a['subject']}",
        f"{w['zone']}{c}{w['sep'].join(msg.get('zones') or []) or w['none']}",
        f"{w['seal']}{c}{w['sep'].join(msg.get('seals') or []) or w['none']}",
        f"{w['time']}{c}{local_time(a['ts'], site['timezone'])}",
        f"{w['id']}{c}{a['alert_id']}",
        f"{w['detail']}{c}{a.get('message') or ''}",
    ]
    level = _level_line(lang, msg)
    if level:
        lines += ["", level]
    if a["state"] in ("raised", "escalated"):
        lines += ["", w["act"]]
    return "\n".join(lines) + "\n"


def sms_text(lang: str, msg: dict[str, Any], max_chars: int) -> str:
    a, w, site = msg["alert"], WORDS[lang], msg["site"]
    sev = _ui(lang, f"sev.{a['severity']}", a["severity"])
    state = _ui(lang, f"tr.{a['state']}", a["state"])
    zones = w["sep"].join(msg.get("zones") or [])
    when = local_time(a["ts"], site["timezone"]).split(" (")[0]
    parts = [f"[{site['name'] or site['id']}] {sev}{'' if lang == 'zh' else ' '}{state}"]
    level = _level_line(lang, msg)
    if level:
        parts.append(level)
    parts.append(explain(lang, a["policy"], a["subject"]))
    parts.append(f"{w['zone']}{w['colon']}{zones or w['none']}")
    parts.append(f"{w['clause']}{w['colon']}{a.get('clause') or w['none']}")
    parts.append(f"{when} #{a['alert_id']}")
    text = " ".join(parts)
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"
