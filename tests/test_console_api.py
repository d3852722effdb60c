"""The console's alert detail, muster and alarm-load APIs against a real daemon and a real
Mosquitto (events published by a gateway over MQTT), the `sealwatch muster` CLI as a real
subprocess, and the settings that shape them (`daemon.dashboard.procedures`,
`muster_unseen_min`)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from daemon.config import load_settings
from daemon.runtime import Daemon
from policies.schema import ConfigErrors
from policies.site import load_site
from tests.support.daemon import (
    Gateway,
    ahttp,
    now_ts,
    running_daemon,
    sealwatch_cli,
    wait_until,
    write_site,
)
from tests.support.mosquitto import Mosquitto


def alert_of(d: Daemon, policy: str, subject: str | None = None) -> str | None:
    assert d.pipeline is not None
    for v in d.pipeline.stage.views.values():
        if v.policy == policy and (subject is None or v.subject == subject):
            return v.alert_id
    return None


def port(d: Daemon) -> int:
    assert d.http_port is not None
    return d.http_port


async def get(d: Daemon, path: str) -> Any:
    status, body = await ahttp(port(d), "GET", path)
    assert status == 200, (path, status, body)
    return body


# -- settings ---------------------------------------------------------------------------------


def _settings(tmp_path: Path, dashboard: dict[str, Any]) -> Any:
    site = load_site(write_site(tmp_path, "cfg", daemon={"dashboard": dashboard}))
    return load_settings(site, {})


def test_procedures_and_muster_settings_are_checked_by_path(tmp_path: Path) -> None:
    s = _settings(
        tmp_path,
        {"procedures": {"door-forced": {"zh": "本站：先看录像", "en": "Ours: video first"}}},
    )
    assert s.dashboard.procedures == {
        "door-forced": {"zh": "本站：先看录像", "en": "Ours: video first"}
    }
    assert s.dashboard.muster_unseen_min == 60.0
    assert _settings(tmp_path, {"muster_unseen_min": 15}).dashboard.muster_unseen_min == 15
    with pytest.raises(ConfigErrors) as e:
        _settings(
            tmp_path,
            {
                "procedures": {"door-forcd": {"zh": "x"}, "intrusion": {"de": "y"}},
                "muster_unseen_mins": 5,
            },
        )
    text = str(e.value)
    assert "daemon.dashboard.procedures.door-forcd: no policy" in text
    assert "door-forced" in text  # did you mean
    assert "daemon.dashboard.procedures.intrusion.de: unknown key" in text
    assert "daemon.dashboard.muster_unseen_mins: unknown key" in text
    assert "muster_unseen_min" in text


# -- the alert detail -------------------------------------------------------------------------


async def test_alert_detail_has_history_context_clause_procedure_and_no_fake_snapshot(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    path = write_site(
        tmp_path,
        "detail",
        daemon={
            "dashboard": {"procedures": {"zone-authorization": {"en": "Site rule: call S2001"}}}
        },
    )
    async with (
        running_daemon(path, mosquitto_session, tmp_path / "data") as d,
        Gateway(mosquitto_session, "detail") as gw,
    ):
        await gw.event("console-1", "operator.duty", badge="O4001", state="on", ts=now_ts())
        # a guard walks through the entrance into the work zone (not theirs)
        await gw.event("gate-outer", "badge.granted", badge="G3001", direction="in", ts=now_ts())
        await gw.event("gate-outer", "door.opened", ts=now_ts())
        await gw.event("gate-inner", "badge.granted", badge="G3001", direction="in", ts=now_ts())
        aid = await wait_until(lambda: alert_of(d, "zone-authorization", "G3001"), what="alert")
        status, out = await ahttp(
            port(d),
            "POST",
            f"/api/alerts/{aid}/comment",
            {"badge": "O4001", "text": "guard called back"},
        )
        assert status == 200, out
        status, out = await ahttp(
            port(d), "POST", f"/api/alerts/{aid}/ack", {"badge": "O4001", "comment": "seen"}
        )
        assert status == 200, out

        detail = await get(d, f"/api/dashboard/alerts/{aid}")
        whats = [h["what"] for h in detail["history"]]
        assert whats[0] == "raised" and "comment" in whats and "acknowledged" in whats
        ack = next(h for h in detail["history"] if h["what"] == "acknowledged")
        assert ack["by"] == "O4001" and ack["comment"] == "seen"
        note = next(h for h in detail["history"] if h["what"] == "comment")
        assert note["by"] == "O4001" and note["comment"] == "guard called back"
        # the badge's own events and its doors' events before it, oldest first
        types = [(e["device"], e["type"]) for e in detail["context"]]
        assert ("gate-outer", "badge.granted") in types
        assert ("gate-outer", "door.opened") in types
        assert ("gate-inner", "badge.granted") in types
        assert [e["seq"] for e in detail["context"]] == sorted(e["seq"] for e in detail["context"])
        assert detail["clause_text"]["zh"] and detail["clause_text"]["en"]
        # the site's own procedure replaces the shipped one in English; Chinese is shipped
        assert detail["procedure"] == {
            "zh": detail["procedure"]["zh"],
            "en": "Site rule: call S2001",
            "source": "site",
        }
        assert "监督" in detail["procedure"]["zh"]
        assert detail["snapshot"] is None  # a badge: no camera shows it

        # a forced door covered by a camera: no snapshot is stored, and the answer says so
        await gw.event("fire-exit-north", "door.forced", ts=now_ts())
        door = await wait_until(lambda: alert_of(d, "door-forced"), what="door-forced")
        detail = await get(d, f"/api/dashboard/alerts/{door}")
        assert detail["snapshot"]["stored"] is False
        assert "cam-belt-north" in detail["snapshot"]["cameras"]
        assert "no snapshot stored" in detail["snapshot"]["note"]
        assert detail["procedure"]["source"] == "default"

        status, body = await ahttp(port(d), "GET", "/api/dashboard/alerts/nope")
        assert status == 404 and body["key"] == "alert_id"


# -- the muster -------------------------------------------------------------------------------


async def test_muster_api_and_cli_list_who_is_inside_and_who_is_unseen(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    path = write_site(tmp_path, "muster", daemon={"dashboard": {"muster_unseen_min": 30}})
    async with (
        running_daemon(path, mosquitto_session, tmp_path / "data") as d,
        Gateway(mosquitto_session, "muster") as gw,
    ):
        # Zhang Wei came in 2 h ago and has not been seen since; Wang Fang just now; guard
        # Wu Qiang is in the work zone (not his)
        for badge, ago in (("B1001", -7200), ("B1002", 0), ("G3001", 0)):
            for door in ("gate-outer", "gate-inner"):
                await gw.event(door, "badge.granted", badge=badge, direction="in", ts=now_ts(ago))
        await wait_until(  # through both doors: each is in the work zone
            lambda: (
                d.pipeline is not None
                and all(
                    d.pipeline.stage.engine.world.location.get(b) == "work"
                    for b in ("B1001", "B1002", "G3001")
                )
            ),
            what="three people in the work zone",
        )
        m = await get(d, "/api/muster")
        assert m["unseen_min"] == 30
        work = next(z for z in m["zones"] if z["zone"] == "work")
        assert work["badges"] == ["B1001", "B1002", "G3001"] and work["count"] == 3
        people = {p["badge"]: p for p in m["people"]}
        assert people["B1001"]["unseen"] is True and people["B1002"]["unseen"] is False
        assert people["G3001"]["permitted"] is False and people["B1002"]["permitted"] is True
        assert people["S2001"]["zone"] is None and people["S2001"]["unseen"] is False
        assert m["unseen"] == ["B1001"] and m["inside"] == 3

        env_args = [
            *("--config", str(path), "--data-dir", str(tmp_path / "data")),
            *("--http", f"127.0.0.1:{port(d)}"),
        ]
        out = await asyncio.to_thread(sealwatch_cli, "muster", *env_args)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[1].split() == ["ZONE", "BADGE", "NAME", "ROLE", "LAST", "SEEN", "NOTE"]
        b1001 = next(line for line in lines if "B1001" in line)
        assert b1001.startswith("work") and "Zhang Wei" in b1001 and "UNSEEN > 30 min" in b1001
        assert "NOT PERMITTED HERE" in next(line for line in lines if "G3001" in line)
        assert lines[-1] == "3 inside; 1 unseen: B1001"
        out = await asyncio.to_thread(sealwatch_cli, "muster", "--json", *env_args)
        assert out.returncode == 0 and orjson.loads(out.stdout)["unseen"] == ["B1001"]


# -- alarm load -------------------------------------------------------------------------------


def test_groups_fold_band_alarms_and_panel_inputs_under_their_cause(tmp_path: Path) -> None:
    from daemon.http.load import groups
    from daemon.lifecycle import AlertView

    site = load_site(write_site(tmp_path, "groups"))

    def v(aid: str, policy: str, subject: str, ts: int) -> AlertView:
        return AlertView(
            **{
                **_view_defaults(),
                "alert_id": aid,
                "policy": policy,
                "subject": subject,
                "raised_ts": ts,
                "last_ts": ts,
            }
        )

    alerts = [
        v("b2", "jammer-uptime", "jam-work/gsm900", 3),
        v("j", "jammer-uptime", "jam-work", 1),
        v("b1", "jammer-uptime", "jam-work/cdma800", 2),
        v("p", "device-offline", "panel-main", 5),
        v("i", "device-offline", "secure-safe", 6),
        v("x", "door-forced", "gate-inner", 0),
    ]
    assert groups(site, alerts) == [
        {"cause": "j", "members": ["b1", "b2"]},
        {"cause": "p", "members": ["i"]},
    ]


def _view_defaults() -> dict[str, Any]:
    import dataclasses

    from daemon.lifecycle import AlertView

    out: dict[str, Any] = {}
    for f in dataclasses.fields(AlertView):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
    base = {"severity": "critical", "clause": "X", "message": "m", "active": True}
    base["last_state"] = "raised"
    base.update({"acked": False, "acked_by": None, "closed": False})
    return {**base, **out}
