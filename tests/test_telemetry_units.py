"""What telemetry measures (daemon/telemetry/points.py) and the shipped Grafana dashboard
(deploy/grafana/sealwatch.json): every panel asks for a measurement and fields the daemon
writes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import orjson

from daemon.config import load_settings
from daemon.pipeline.flow import Pipeline, new_metrics
from daemon.pipeline.items import Row
from daemon.store import Store
from daemon.telemetry.options import InfluxOptions
from daemon.telemetry.points import Points
from daemon.telemetry.sink import Telemetry
from policies.site import load_site

ROOT = Path(__file__).resolve().parent.parent
SITE = load_site(ROOT / "deploy" / "examples" / "site.yaml")


def event(seq: int, device: str, etype: str, **fields: Any) -> tuple[Any, ...]:
    src = orjson.dumps({"type": etype, "device": device, **fields}).decode()
    return (seq, 1_700_000_000_000_000 + seq, None, 0, device, etype, "mqtt", None, None, src)


SAMPLE = [
    event(
        1,
        "jam-work",
        "jammer.status",
        output=True,
        bands={"gsm900": 31.5, "cdma800": 12.0},
        faults=["fan", "vendor-thing"],
        temperature_c=41,
        reflected={"gsm900": 3.5},
    ),
    event(2, "gate-outer", "door.forced"),
    event(3, "gate-outer", "door.closed"),
    event(4, "cam-gate", "camera.status", stream="up", tamper="covered", fps=12.5, sharpness=0.4),
    event(5, "belt-north-fence", "alarm.input", state="tamper"),
    event(6, "panel-main", "alarm.panel", armed=True, mains="lost"),
    event(7, "gate-outer", "device.status", state="offline"),
    event(8, "gate-outer", "badge.granted", badge="S2001", direction="in"),
]


def parse(line: str) -> tuple[str, dict[str, str], dict[str, str], int]:
    head, fields, ts = line.rsplit(" ", 2)
    measurement, *tags = head.split(",")
    return (
        measurement,
        dict(t.split("=", 1) for t in tags),
        dict(f.split("=", 1) for f in fields.split(",")),
        int(ts),
    )


def test_events_become_points_with_site_tags_and_fixed_field_types() -> None:
    got = [parse(x) for x in Points(SITE).events(SAMPLE)]
    by = {(m, t.get("band", "")): (t, f, ts) for m, t, f, ts in got}
    tags, fields, ts = by[("jammer", "")]
    assert tags == {"site": "jb-print", "device": "jam-work", "zone": "work"}
    assert ts == 1_700_000_000_000_001  # the event's time, µs
    assert fields["output"] == "1i" and fields["fault_fan"] == "1i" and fields["faults"] == "2i"
    assert fields["status_bits"] == "9i"
    assert fields["temperature_c"] == "41"  # no `i`: a float in line protocol, always
    assert fields["seq"] == "1i"
    band = by[("jammer_band", "gsm900")][1]
    assert band == {
        "power_dbm": "31.5",
        "floor_dbm": "30",
        "margin_db": "1.5",
        "below_floor": "0i",
        "reflected_dbm": "3.5",
        "seq": "1i",
    }
    assert by[("jammer_band", "cdma800")][1]["below_floor"] == "1i"
    doors = [(t["zone"], f["open"], f["forced"]) for m, t, f, _ in got if m == "door"]
    assert doors == [("screening", "1i", "1i"), ("screening", "0i", "0i")]
    camera = by[("camera", "")][1]
    assert (camera["tamper_code"], camera["sharpness"], camera["fps"]) == ("1i", "0.4", "12.5")
    assert by[("alarm_input", "")][0]["panel"] == "panel-main"
    assert by[("alarm_input", "")][1]["state_code"] == "2i"
    assert by[("alarm_panel", "")][1] == {"armed": "1i", "mains_ok": "0i", "seq": "6i"}
    assert by[("device", "")][0]["kind"] == "door" and by[("device", "")][1]["online"] == "0i"
    assert "badge" not in {m for m, *_ in got}  # not measured


def test_transitions_and_the_daemons_gauges() -> None:
    points = Points(SITE)
    row = Row(
        9,
        "a-1",
        {
            "ts": "2023-11-15T06:13:20.5+08:00",
            "policy": "jammer-uptime",
            "subject": "jam-work/gsm900",
            "severity": "critical",
            "state": "raised",
        },
        "",
        "",
    )
    ((m, tags, fields, ts),) = [parse(x) for x in points.transitions([row])]
    assert (m, fields) == ("alert", {"count": "1i", "id": "9i"})
    assert tags["policy"] == "jammer-uptime" and tags["zone"] == "work"
    assert ts == 1_700_000_000_500_000
    metrics = new_metrics()
    lines = points.stats(5, metrics.unlabelled(), {("door-forced", "UNACK"): 2.0})
    assert parse(lines[0])[2]["duplicates_total"] == "0"
    assert parse(lines[1])[1]["policy"] == "door-forced"
    again = points.stats(6, metrics.unlabelled(), {})  # every alert closed: back to 0
    assert parse(again[1])[2] == {"open": "0"}


def test_a_hostile_payload_gives_no_point_and_no_exception() -> None:
    odd = [
        event(1, "jam-work", "jammer.status", bands="x", reflected=[1], temperature_c="hot"),
        event(2, "cam-gate", "camera.status", stream=None, tamper="glued", fps=None),
        event(3, "belt-north-fence", "alarm.input", state=["x"]),
    ]
    got = [parse(x) for x in Points(SITE).events(odd)]
    assert [m for m, *_ in got] == ["jammer", "camera", "alarm_input"]
    assert got[1][2]["tamper_code"] == "9i" and got[2][2]["state_code"] == "9i"


def test_every_dashboard_panel_asks_for_what_the_daemon_writes(tmp_path: Path) -> None:
    points = Points(SITE)
    row = Row(1, "a", {"ts": "2023-11-15T06:13:20+08:00", "policy": "p", "state": "raised"}, "", "")
    settings = load_settings(SITE, {"SEALWATCH_DATA_DIR": str(tmp_path)})
    store = Store(tmp_path / "sealwatch.db", "normal")
    try:
        # the gauges the daemon really has: the pipeline's and telemetry's own
        pipeline = Pipeline(SITE, settings, store)
        Telemetry(SITE, InfluxOptions("http://127.0.0.1:1", "o", "b"), tmp_path, pipeline)
        metrics = pipeline.metrics
    finally:
        store.close()
    lines = (
        points.events(SAMPLE)
        + points.transitions([row])
        + points.stats(1, metrics.unlabelled(), {("p", "UNACK"): 1.0})
    )
    written: dict[str, set[str]] = {}
    for m, _tags, fields, _ts in (parse(x) for x in lines):
        written.setdefault(m, set()).update(fields)
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "sealwatch.json").read_text())
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        query = panel["targets"][0]["query"]
        (measurement,) = re.findall(r'r\._measurement == "(\w+)"', query)
        asked = set(re.findall(r'r\._field == "(\w+)"', query))
        assert measurement in written, panel["title"]
        assert asked and asked <= written[measurement], (panel["title"], asked)
