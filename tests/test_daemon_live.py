"""The live daemon against a real Mosquitto: events in over MQTT, alert transitions out."""

from __future__ import annotations

import itertools
from pathlib import Path

import orjson
import pytest

from tests.support.daemon import AlertWatcher, Gateway, ahttp, now_ts, running_daemon, write_site
from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.slow
_ids = itertools.count()


def site_id(name: str) -> str:
    return f"t-{name}-{next(_ids)}"


async def test_forced_door_raises_then_clears_with_retained_active_topic(
        tmp_path: Path, mosquitto_session: Mosquitto) -> None:
    sid = site_id("forced")
    path = write_site(tmp_path, sid)
    async with (running_daemon(path, mosquitto_session, tmp_path / "data"),
                AlertWatcher(mosquitto_session, sid) as alerts,
                Gateway(mosquitto_session, sid) as gw):
        await gw.event("fire-exit-north", "door.forced", ts=now_ts())
        raised = await alerts.wait_for("door-forced", "raised", "fire-exit-north")
        assert raised["clause"] == "EXAM-2.7.5" and raised["severity"] == "critical"
        retained = await alerts.wait_active(raised["alert_id"], lambda p: p != b"")
        assert orjson.loads(retained)["isa_state"] == "unacknowledged"
        await gw.event("fire-exit-north", "door.closed")
        cleared = await alerts.wait_for("door-forced", "cleared", "fire-exit-north")
        assert cleared["alert_id"] == raised["alert_id"]
        # Not acknowledged yet: returned to normal unacknowledged, still on the list.
        retained = await alerts.wait_active(raised["alert_id"],
                                            lambda p: orjson.loads(p)["state"] == "cleared")
        assert orjson.loads(retained)["isa_state"] == "rtn_unacknowledged"
