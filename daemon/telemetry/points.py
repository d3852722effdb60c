"""What is measured: accepted events, alert transitions and the daemon's own gauges as
InfluxDB line protocol (influxdb-client's `Point`, microsecond precision).

Every point is tagged `site` and, where the site file knows them, `zone` and `device` (and
`band` for a jammer's band). Each field keeps one type for ever (InfluxDB refuses a field
whose type changes): numbers are floats, states and flags are integers. Event points carry
the event's store sequence number as `seq`, so a point leads back to the stored event
(`sealwatch export-events`). docs/telemetry.md lists every measurement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from influxdb_client.client.write.point import Point
from influxdb_client.domain.write_precision import WritePrecision

from daemon.pipeline.items import Row
from policies.site import RegisterMap, Site
from policies.timefmt import parse_ts

US = WritePrecision.US
# The reference map's status bits (docs/interfaces.md §6); "output" is bit 0.
STATUS_BITS: Mapping[str, int] = RegisterMap().status_bits
FAULTS = tuple(name for name in STATUS_BITS if name != "output")
ALARM_STATES = {"normal": 0, "alarm": 1, "tamper": 2, "fault": 3}
TAMPERS = {None: 0, "covered": 1, "defocused": 2, "moved": 3, "frozen": 4}
DOOR_OPEN = {"door.opened": 1, "door.closed": 0, "door.forced": 1}


def _num(v: Any) -> float | None:
    return float(v) if type(v) in (int, float) else None


class Points:
    """Turns what the pipeline committed into line protocol for one site."""

    def __init__(self, site: Site) -> None:
        self.site_id = site.id
        zone: dict[str, str] = {}
        for d in site.doors.values():
            zone[d.id] = d.b  # the side a→b leads into
        zone.update(site.device_zones())
        self.zone = zone
        self.kind = dict(site.device_kind)
        self.floors = {j.id: {b.id: b.min_dbm for b in j.bands} for j in site.jammers.values()}
        self.panel_of = {i.id: i.panel for i in site.alarm_inputs.values()}
        self._policies_seen: set[str] = set()

    def _point(self, measurement: str, device: str | None, ts: int) -> Point:
        p = Point(measurement)
        p.tag("site", self.site_id).time(ts, US)
        if device is not None:
            p.tag("device", device)
            zone = self.zone.get(device)
            if zone is not None:
                p.tag("zone", zone)
        return p

    # -- events -----------------------------------------------------------------------------

    def events(self, rows: Iterable[tuple[Any, ...]]) -> list[str]:
        """Stored event rows (store.Writes.events) → lines; events of other types give none."""
        out: list[str] = []
        for row in rows:
            seq, ts, device, etype, source = row[0], row[1], row[4], row[5], row[9]
            make = _EVENTS.get(etype)
            if make is None:
                continue
            src = orjson.loads(source) if isinstance(source, str | bytes) else dict(source)
            src["type"] = etype
            for p in make(self, device, ts, src):
                out.append(p.field("seq", int(seq)).to_line_protocol())
        return out

    def _jammer(self, device: str, ts: int, src: dict[str, Any]) -> list[Point]:
        faults = set(src.get("faults") or ())
        output = bool(src.get("output"))
        bits = int(output) << STATUS_BITS["output"]
        p = self._point("jammer", device, ts).field("output", int(output))
        for name in FAULTS:
            on = name in faults
            bits |= int(on) << STATUS_BITS[name]
            p.field(f"fault_{name}", int(on))
        p.field("faults", len(faults)).field("status_bits", bits)
        temp = _num(src.get("temperature_c"))
        if temp is not None:
            p.field("temperature_c", temp)
        uptime = _num(src.get("uptime_s"))
        if uptime is not None:
            p.field("uptime_s", uptime)
        points = [p]
        floors = self.floors.get(device, {})
        reflected = src.get("reflected")
        reflected = reflected if isinstance(reflected, dict) else {}
        bands = src.get("bands")
        for band, dbm in (bands if isinstance(bands, dict) else {}).items():
            power = _num(dbm)
            if power is None:
                continue
            b = self._point("jammer_band", device, ts).tag("band", str(band))
            b.field("power_dbm", power)
            floor = floors.get(band)
            if floor is not None:
                b.field("floor_dbm", float(floor)).field("margin_db", power - floor)
                b.field("below_floor", int(power < floor))
            back = _num(reflected.get(band))
            if back is not None:
                b.field("reflected_dbm", back)
            points.append(b)
        return points

    def _door(self, device: str, ts: int, src: dict[str, Any]) -> list[Point]:
        etype = str(src.get("type"))
        p = self._point("door", device, ts)
        return [p.field("open", DOOR_OPEN[etype]).field("forced", int(etype == "door.forced"))]

    def _camera(self, device: str, ts: int, src: dict[str, Any]) -> list[Point]:
        tamper = src.get("tamper")
        p = self._point("camera", device, ts)
        p.field("stream_up", int(src.get("stream") == "up"))
        p.field("tamper", int(tamper is not None)).field("tamper_code", TAMPERS.get(tamper, 9))
        for key in ("fps", "sharpness"):
            v = _num(src.get(key))
            if v is not None:
                p.field(key, v)
        return [p]

    def _alarm_input(self, device: str, ts: int, src: dict[str, Any]) -> list[Point]:
        state = ALARM_STATES.get(str(src.get("state")), 9)
        p = self._point("alarm_input", device, ts)
        panel = self.panel_of.get(device)
        if panel is not None:
            p.tag("panel", panel)
        return [p.field("state_code", state).field("alarm", int(state != 0))]

    def _alarm_panel(self, device: str, ts: int, src: dict[str, Any]) -> list[Point]:
        p = self._point("alarm_panel", device, ts)
        fields = {
            "armed": src.get("armed"),
            "mains_ok": None if "mains" not in src else src["mains"] == "ok",
            "battery_ok": None if "battery" not in src else src["battery"] == "ok",
            "tamper": src.get("tamper"),
        }
        for key, v in fields.items():
            if isinstance(v, bool):
                p.field(key, int(v))
        return [p] if p._fields else []

    def _device(self, device: str, ts: int, src: dict[str, Any]) -> list[Point]:
        p = self._point("device", device, ts).tag("kind", self.kind.get(device, "daemon"))
        return [p.field("online", int(src.get("state") == "online"))]

    # -- alert transitions and the daemon's gauges -----------------------------------------------

    def transitions(self, rows: Iterable[Row]) -> list[str]:
        """Each alert transition as a count of 1, tagged policy, state and severity."""
        out = []
        for r in rows:
            line = r.line
            try:
                ts = parse_ts(str(line.get("ts")))
            except (ValueError, OverflowError):
                continue
            device = str(line.get("subject", "")).split("/", 1)[0]
            p = Point("alert").tag("site", self.site_id).time(ts, US)
            if device in self.zone:
                p.tag("device", device).tag("zone", self.zone[device])
            p.tag("policy", str(line.get("policy"))).tag("state", str(line.get("state")))
            p.tag("severity", str(line.get("severity")))
            out.append(p.field("count", 1).field("id", int(r.id)).to_line_protocol())
        return out

    def stats(
        self,
        ts: int,
        plain: Mapping[str, float],
        open_alerts: Mapping[tuple[str, ...], float],
    ) -> list[str]:
        """The daemon's unlabelled metrics (one `daemon` point) and open alerts by policy."""
        p = Point("daemon").tag("site", self.site_id).time(ts, US)
        for name, value in sorted(plain.items()):
            p.field(name.removeprefix("sealwatch_"), float(value))
        out = [p.to_line_protocol()] if plain else []
        by_policy = dict.fromkeys(self._policies_seen, 0.0)  # back to 0 once all are closed
        for labels, n in open_alerts.items():
            by_policy[labels[0]] = by_policy.get(labels[0], 0.0) + n
        self._policies_seen.update(by_policy)
        for policy, n in sorted(by_policy.items()):
            a = Point("alerts_open").tag("site", self.site_id).tag("policy", policy)
            out.append(a.field("open", float(n)).time(ts, US).to_line_protocol())
        return out


_EVENTS = {
    "jammer.status": Points._jammer,
    "door.opened": Points._door,
    "door.closed": Points._door,
    "door.forced": Points._door,
    "camera.status": Points._camera,
    "alarm.input": Points._alarm_input,
    "alarm.panel": Points._alarm_panel,
    "device.status": Points._device,
}
