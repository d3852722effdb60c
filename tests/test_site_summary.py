"""The site summary a centre follows (`sealwatch/SITE/summary`, docs/central.md): retained,
sent on change, carrying the seals in force with jammer uptime, active alerts by severity and
the worst of them. Real Mosquitto, the whole daemon in this process."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.daemon import Gateway, now_ts, running_daemon, wait_until, write_site
from tests.support.mosquitto import Mosquitto
from tests.test_homeassistant import Retained

pytestmark = pytest.mark.slow
_ids = itertools.count()


def _summary(seen: Retained, topic: str) -> dict[str, Any] | None:
    raw = seen.last.get(topic)
    return orjson.loads(raw) if raw else None


async def test_summary_follows_alerts_and_seals(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    site_id = f"summary{next(_ids)}"
    site_path = write_site(tmp_path, site_id, seals=True)
    topic = f"sealwatch/{site_id}/summary"
    async with (
        Retained(mosquitto_session, [topic]) as seen,
        running_daemon(site_path, mosquitto_session, tmp_path / "data"),
        Gateway(mosquitto_session, site_id) as gw,
    ):
        first = await wait_until(lambda: _summary(seen, topic), what="a first summary")
        assert first["site"] == site_id and set(first["active"]) == {"minor", "major", "critical"}
        await gw.event("fire-exit-north", "door.forced", ts=now_ts())

        def forced() -> dict[str, Any] | None:
            s = _summary(seen, topic)
            ids = [a["policy"] for a in (s or {}).get("alerts", [])]
            return s if s and "door-forced" in ids else None

        got = await wait_until(forced, what="door-forced in the summary")
        assert got["active"]["critical"] >= 1
        assert got["worst"]["severity"] == "critical"
        assert got["alerts_truncated"] == 0
        for seal in got["seals"]:
            assert seal["status"] == "active" and seal["elapsed_ms"] >= 0
            for band in seal["bands"]:
                assert 0.0 <= band["uptime_pct"] <= 100.0
                assert band["up_ms"] + band["down_ms"] >= seal["elapsed_ms"] - 1
