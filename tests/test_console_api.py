"""The console's alert detail, muster and alarm-load APIs against a real daemon and a real
Mosquitto (events published by a gateway over MQTT), the `sealwatch muster` CLI as a real
subprocess, and the settings that shape them (`daemon.dashboard.procedures`,
`muster_unseen_min`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
