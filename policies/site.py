"""The site model: one YAML file describes one site (CONTRACT §1).

Loading validates every rule at once and reports each problem with its path and, where a
name is close to a known one, a suggestion. Nothing here does I/O beyond reading the file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from policies.schema import (
    ConfigErrors,
    any_,
    boolean,
    enum,
    ident,
    idlist,
    int_range,
    number,
    parse_time,
    position,
    positive,
    suggest,
    text,
    time,
    tname,
    tzname,
)
from policies.timefmt import implausible_reason, to_us

__all__ = ["Site", "SiteError", "load_site", "parse_site", "parse_time", "suggest"]

ZONE_KINDS = (
    "public",
    "buffer",
    "screening",
    "sealed_work",
    "sealed_living",
    "key_part",
    "monitoring",
)
SEALED_KINDS = frozenset({"sealed_work", "sealed_living", "key_part", "monitoring"})
CLASSIFICATIONS = ("top_secret", "secret", "confidential")
ROLES = ("sealed_staff", "supervisor", "secrecy_officer", "operator", "guard", "maintenance")
DOOR_KINDS = ("door", "hatch")
INPUT_KINDS = (
    "pir",
    "contact",
    "fence",
    "glass_break",
    "vibration",
    "beam",
    "seismic",
    "smoke",
    "panic",
    "other",
)
CAMERA_MODES = ("snapshot", "stream")
MIN_VIDEO_RETENTION_DAYS = 90  # EXAM-2.7.9: recordings kept at least three months
MAX_VIDEO_RETENTION_DAYS = 36_500
YEAR_S = 365 * 86_400.0  # the longest any timing tunable may be
# The daemon's own events (daemon.health) come from this device id; no site may use it.
RESERVED_DEVICE_ID = "sealwatch"


class SiteError(ConfigErrors):
    """The site file is invalid."""


@dataclass(frozen=True, slots=True)
class Zone:
    id: str
    kind: str
    parent: str | None = None
    classification: str | None = None

    @property
    def sealed(self) -> bool:
        return self.kind in SEALED_KINDS


@dataclass(frozen=True, slots=True)
class Door:
    id: str
    a: str
    b: str
    kind: str = "door"
    two_person: bool = False

    def zone_entered(self, direction: str) -> str:
        """The zone a person is in after passing the door in `direction`."""
        return self.b if direction == "in" else self.a


@dataclass(frozen=True, slots=True)
class Entrance:
    outer: str
    inner: str


@dataclass(frozen=True, slots=True)
class Person:
    badge: str
    name: str
    role: str
    zones: frozenset[str]


@dataclass(frozen=True, slots=True)
class RegisterField:
    """Where one value lives in a jammer's register map (CONTRACT §6)."""

    address: int
    scale: float = 1.0
    signed: bool = False
    words: int = 1
    word_order: str = "big"


@dataclass(frozen=True, slots=True)
class RegisterMap:
    """A jammer model's Modbus register map; the defaults are the reference map."""

    function: str = "input"
    version: RegisterField = RegisterField(0)
    band_count: RegisterField = RegisterField(1)
    status: RegisterField = RegisterField(2)
    temperature: RegisterField = RegisterField(3, scale=0.1, signed=True)
    uptime: RegisterField = RegisterField(4, words=2)
    forward: RegisterField = RegisterField(10, scale=0.1, signed=True)
    reflected: RegisterField = RegisterField(30, scale=0.1, signed=True)
    status_bits: Mapping[str, int] = field(
        default_factory=lambda: {
            "output": 0,
            "over_temperature": 1,
            "vswr": 2,
            "fan": 3,
            "enclosure_tamper": 4,
            "mains_lost": 5,
            "on_battery": 6,
        }
    )


@dataclass(frozen=True, slots=True)
class Modbus:
    host: str
    port: int = 502
    unit: int = 1
    poll_s: float = 1.0
    timeout_s: float = 1.0
    map: RegisterMap = RegisterMap()


@dataclass(frozen=True, slots=True)
class Band:
    index: int
    id: str
    min_dbm: float


@dataclass(frozen=True, slots=True)
class Jammer:
    id: str
    zone: str
    bands: tuple[Band, ...]
    modbus: Modbus | None = None


@dataclass(frozen=True, slots=True)
class Camera:
    id: str
    zone: str
    url: str | None = None
    snapshot: str | None = None
    mode: str = "snapshot"
    recordings: str | None = None
    installed: datetime | None = None
    position: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class AlarmInput:
    id: str
    zone: str
    kind: str
    panel: str


@dataclass(frozen=True, slots=True)
class AlarmPanel:
    id: str
    zone: str
    inputs: tuple[AlarmInput, ...]


@dataclass(frozen=True, slots=True)
class Placed:
    """A device that only has a zone: phone detector, checkpoint, console."""

    id: str
    zone: str


@dataclass(frozen=True, slots=True)
class DutyPhone:
    id: str
    zone: str
    recordings: str | None = None


@dataclass(frozen=True, slots=True)
class SealSpec:
    id: str
    name: str
    classification: str
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class BurstRule:
    count: int = 3
    within_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Policies:
    door_held_open_s: float = 30.0
    two_person_window_s: float = 15.0
    heartbeat_timeout_s: float = 30.0
    jammer_status_timeout_s: float = 10.0
    video_retention_days: float = 90.0
    max_recording_gap_s: float = 60.0
    patrol_interval_min: float = 60.0
    min_operators_on_duty: int = 1
    ack_escalation_s: float = 120.0
    badge_denied_burst: BurstRule = BurstRule()


# Device kinds, as the event table of CONTRACT §2 names them.
DEVICE_KINDS = (
    "door",
    "jammer",
    "camera",
    "alarm_panel",
    "alarm_input",
    "phone_detector",
    "checkpoint",
    "console",
    "duty_phone",
)


@dataclass(frozen=True, slots=True)
class Site:
    id: str
    name: str
    timezone: str
    zones: Mapping[str, Zone]
    doors: Mapping[str, Door]
    entrance: Entrance | None
    people: Mapping[str, Person]
    jammers: Mapping[str, Jammer]
    cameras: Mapping[str, Camera]
    alarm_panels: Mapping[str, AlarmPanel]
    alarm_inputs: Mapping[str, AlarmInput]
    phone_detectors: Mapping[str, Placed]
    checkpoints: Mapping[str, Placed]
    consoles: Mapping[str, Placed]
    duty_phones: Mapping[str, DutyPhone]
    seals: tuple[SealSpec, ...]
    policies: Policies
    daemon: Mapping[str, Any]
    device_kind: Mapping[str, str]
    warnings: tuple[str, ...] = ()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_boundary(self, door: Door) -> bool:
        """A boundary door joins a sealed-area zone with a zone outside it."""
        return self.zones[door.a].sealed != self.zones[door.b].sealed

    @property
    def boundary_doors(self) -> tuple[Door, ...]:
        return tuple(d for d in self.doors.values() if self.is_boundary(d))

    @property
    def monitoring_zones(self) -> tuple[str, ...]:
        return tuple(z.id for z in self.zones.values() if z.kind == "monitoring")

    def device_zones(self) -> dict[str, str]:
        """The zone of every placed device (doors excluded: they join two zones)."""
        groups: tuple[Mapping[str, Any], ...] = (
            self.jammers,
            self.cameras,
            self.alarm_panels,
            self.alarm_inputs,
            self.phone_detectors,
            self.checkpoints,
            self.consoles,
            self.duty_phones,
        )
        return {dev_id: dev.zone for group in groups for dev_id, dev in group.items()}

    def perimeter_panels(self) -> tuple[str, ...]:
        """Panels with at least one input in a `buffer` zone (the isolation belt)."""
        return tuple(
            p.id
            for p in self.alarm_panels.values()
            if any(self.zones[i.zone].kind == "buffer" for i in p.inputs)
        )


# ---------------------------------------------------------------------------------------
# Loading and validation


def load_site(path: str | Path) -> Site:
    """Read and validate a site file; raise SiteError listing every problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SiteError([f"{path}: cannot read: {exc.strerror}"]) from exc
    return parse_site(text)


def parse_site(text: str) -> Site:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SiteError([f"(file): not valid YAML: {exc}"]) from exc
    return _Loader().load(raw)


_Spec = dict[str, tuple[bool, Callable[[str, Any], Any]]]

TOP_KEYS = (
    "site",
    "zones",
    "doors",
    "entrance",
    "people",
    "jammers",
    "cameras",
    "alarm_panels",
    "phone_detectors",
    "checkpoints",
    "consoles",
    "duty_phones",
    "seals",
    "policies",
    "daemon",
)


class _Loader:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.ids: dict[str, str] = {}  # id -> path where first defined

    # -- primitive checks ------------------------------------------------------------------

    def err(self, path: str, msg: str) -> None:
        self.errors.append(f"{path}: {msg}")

    def mapping(self, path: str, value: Any, spec: _Spec) -> dict[str, Any] | None:
        """Check keys of a mapping against spec {key: (required, converter)}; convert values."""
        if not isinstance(value, dict):
            self.err(path, f"expected a mapping, got {tname(value)}")
            return None
        out: dict[str, Any] = {}
        for key in value:
            if key not in spec:
                self.err(
                    f"{path}.{key}" if path else str(key), f"unknown key{suggest(str(key), spec)}"
                )
        for key, (required, conv) in spec.items():
            sub = f"{path}.{key}" if path else key
            if key not in value or value[key] is None:
                if required:
                    self.err(sub, "required")
                continue
            try:
                out[key] = conv(sub, value[key])
            except ValueError as exc:
                self.err(sub, str(exc))
        return out

    def listing(self, path: str, value: Any) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.err(path, f"expected a list, got {tname(value)}")
            return []
        return value

    def new_id(self, path: str, value: str) -> None:
        if value == RESERVED_DEVICE_ID:
            self.err(
                path,
                f"id '{value}' is reserved for the daemon's own events (daemon.health); "
                "choose another id",
            )
        elif value in self.ids:
            self.err(path, f"duplicate id '{value}' (first defined at {self.ids[value]})")
        else:
            self.ids[value] = path

    def ref(self, path: str, value: str | None, known: Mapping[str, Any], what: str) -> None:
        if value is not None and value not in known:
            self.err(path, f"unknown {what} '{value}'{suggest(value, known)}")

    # -- the file --------------------------------------------------------------------------

    def load(self, raw: Any) -> Site:
        if not isinstance(raw, dict):
            raise SiteError([f"(file): expected a mapping at the top, got {tname(raw)}"])
        for key in raw:
            if key not in TOP_KEYS:
                self.err(str(key), f"unknown key{suggest(str(key), TOP_KEYS)}")
        for key in ("site", "zones"):
            if key not in raw:
                self.err(key, "required")

        site = (
            self.mapping(
                "site",
                raw.get("site", {}),
                {"id": (True, ident), "name": (True, text), "timezone": (False, tzname)},
            )
            or {}
        )
        zones = self.zones(raw.get("zones"))
        doors = self.doors(raw.get("doors"), zones)
        entrance = self.entrance(raw.get("entrance"), zones, doors)
        people = self.people(raw.get("people"), zones)
        jammers = self.jammers(raw.get("jammers"), zones)
        cameras = self.cameras(raw.get("cameras"), zones)
        panels, inputs = self.panels(raw.get("alarm_panels"), zones)
        detectors = self.placed("phone_detectors", raw.get("phone_detectors"), zones)
        checkpoints = self.placed("checkpoints", raw.get("checkpoints"), zones)
        consoles = self.placed("consoles", raw.get("consoles"), zones)
        phones = self.duty_phones(raw.get("duty_phones"), zones)
        seals = self.seals(raw.get("seals"))
        policies = self.policies(raw.get("policies"))
        daemon = raw.get("daemon") or {}
        if not isinstance(daemon, dict):
            self.err("daemon", f"expected a mapping, got {tname(daemon)}")
            daemon = {}

        if self.errors:
            raise SiteError(self.errors)

        device_kind: dict[str, str] = {}
        for kind, group in (
            ("door", doors),
            ("jammer", jammers),
            ("camera", cameras),
            ("alarm_panel", panels),
            ("alarm_input", inputs),
            ("phone_detector", detectors),
            ("checkpoint", checkpoints),
            ("console", consoles),
            ("duty_phone", phones),
        ):
            for dev in group:
                device_kind[dev] = kind
        self.key_part_warnings(zones, doors, cameras, inputs)
        return Site(
            id=site["id"],
            name=site["name"],
            timezone=site.get("timezone", "UTC"),
            zones=zones,
            doors=doors,
            entrance=entrance,
            people=people,
            jammers=jammers,
            cameras=cameras,
            alarm_panels=panels,
            alarm_inputs=inputs,
            phone_detectors=detectors,
            checkpoints=checkpoints,
            consoles=consoles,
            duty_phones=phones,
            seals=tuple(seals),
            policies=policies,
            daemon=daemon,
            device_kind=device_kind,
            warnings=tuple(self.warnings),
        )

    def zones(self, raw: Any) -> dict[str, Zone]:
        out: dict[str, Zone] = {}
        items = self.listing("zones", raw)
        for i, item in enumerate(items):
            p = f"zones[{i}]"
            z = self.mapping(
                p,
                item,
                {
                    "id": (True, ident),
                    "kind": (True, enum(ZONE_KINDS)),
                    "parent": (False, ident),
                    "classification": (False, enum(CLASSIFICATIONS)),
                    "name": (False, text),
                },
            )
            if not z or "id" not in z:
                continue
            self.new_id(f"{p}.id", z["id"])
            kind = z.get("kind")
            if kind == "key_part" and "classification" not in z:
                self.err(
                    p, f"key part '{z['id']}' needs a classification ({', '.join(CLASSIFICATIONS)})"
                )
            if kind and kind != "key_part" and "classification" in z:
                self.err(f"{p}.classification", "only key_part zones carry a classification")
            # A zone with a bad kind is still known, so that references to it do not cascade.
            out[z["id"]] = Zone(z["id"], kind or "public", z.get("parent"), z.get("classification"))
        for i, item in enumerate(items):
            if isinstance(item, dict) and isinstance(item.get("parent"), str):
                self.ref(f"zones[{i}].parent", item["parent"], out, "zone")
        for zid in out:  # parent cycles
            seen, cur = set(), out.get(zid)
            while cur is not None and cur.parent is not None:
                if cur.id in seen:
                    self.err(f"zones[{list(out).index(zid)}].parent", "parent chain loops")
                    break
                seen.add(cur.id)
                cur = out.get(cur.parent)
        if not out and raw is not None:
            self.err("zones", "at least one zone is needed")
        return out

    def doors(self, raw: Any, zones: Mapping[str, Zone]) -> dict[str, Door]:
        out: dict[str, Door] = {}
        for i, item in enumerate(self.listing("doors", raw)):
            p = f"doors[{i}]"
            d = self.mapping(
                p,
                item,
                {
                    "id": (True, ident),
                    "a": (True, ident),
                    "b": (True, ident),
                    "kind": (False, enum(DOOR_KINDS)),
                    "two_person": (False, boolean),
                    "name": (False, text),
                    "position": (False, position),
                },
            )
            if not d or "id" not in d:
                continue
            self.new_id(f"{p}.id", d["id"])
            self.ref(f"{p}.a", d.get("a"), zones, "zone")
            self.ref(f"{p}.b", d.get("b"), zones, "zone")
            if d.get("a") is not None and d.get("a") == d.get("b"):
                self.err(p, f"door '{d['id']}' joins zone '{d['a']}' with itself")
            if d.get("a") in zones and d.get("b") in zones:
                out[d["id"]] = Door(
                    d["id"], d["a"], d["b"], d.get("kind", "door"), d.get("two_person", False)
                )
        return out

    def entrance(
        self, raw: Any, zones: Mapping[str, Zone], doors: Mapping[str, Door]
    ) -> Entrance | None:
        if raw is None:
            return None
        e = self.mapping("entrance", raw, {"outer": (True, ident), "inner": (True, ident)})
        if not e or len(e) < 2:
            return None
        self.ref("entrance.outer", e["outer"], doors, "door")
        self.ref("entrance.inner", e["inner"], doors, "door")
        inner, outer = doors.get(e["inner"]), doors.get(e["outer"])
        if inner is not None and zones[inner.a].sealed == zones[inner.b].sealed:
            self.err(
                "entrance.inner",
                f"door '{inner.id}' is not a boundary door (it must join "
                "a sealed-area zone with a zone outside it)",
            )
        if outer is not None:
            kinds = {zones[outer.a].kind, zones[outer.b].kind}
            if "screening" not in kinds:
                self.err("entrance.outer", f"door '{outer.id}' must lead into the screening zone")
            if zones[outer.a].sealed or zones[outer.b].sealed:
                self.err(
                    "entrance.outer",
                    f"door '{outer.id}' must lead from outside the sealed area, not from inside it",
                )
        if inner is not None and outer is not None and inner.id == outer.id:
            self.err("entrance", "outer and inner must be two different doors")
        return Entrance(e["outer"], e["inner"])

    def people(self, raw: Any, zones: Mapping[str, Zone]) -> dict[str, Person]:
        out: dict[str, Person] = {}
        for i, item in enumerate(self.listing("people", raw)):
            p = f"people[{i}]"
            d = self.mapping(
                p,
                item,
                {
                    "badge": (True, ident),
                    "name": (True, text),
                    "role": (True, enum(ROLES)),
                    "zones": (False, idlist),
                },
            )
            if not d or "badge" not in d:
                continue
            if d["badge"] in out:
                self.err(f"{p}.badge", f"duplicate badge '{d['badge']}'")
            for j, z in enumerate(d.get("zones", [])):
                self.ref(f"{p}.zones[{j}]", z, zones, "zone")
            if "role" in d and "name" in d:
                out[d["badge"]] = Person(
                    d["badge"], d["name"], d["role"], frozenset(d.get("zones", []))
                )
        return out

    def zoned(
        self, p: str, item: Any, zones: Mapping[str, Zone], extra: _Spec
    ) -> dict[str, Any] | None:
        d = self.mapping(
            p,
            item,
            {
                "id": (True, ident),
                "zone": (True, ident),
                "name": (False, text),
                "position": (False, position),
                **extra,
            },
        )
        if not d or "id" not in d:
            return None
        self.new_id(f"{p}.id", d["id"])
        self.ref(f"{p}.zone", d.get("zone"), zones, "zone")
        return d if d.get("zone") in zones else None

    def jammers(self, raw: Any, zones: Mapping[str, Zone]) -> dict[str, Jammer]:
        out: dict[str, Jammer] = {}
        for i, item in enumerate(self.listing("jammers", raw)):
            p = f"jammers[{i}]"
            d = self.zoned(
                p,
                item,
                zones,
                {"bands": (True, any_), "modbus": (False, any_), "model": (False, text)},
            )
            if d is None:
                continue
            bands: list[Band] = []
            for j, b in enumerate(self.listing(f"{p}.bands", d.get("bands"))):
                bp = f"{p}.bands[{j}]"
                bd = self.mapping(
                    bp,
                    b,
                    {
                        "index": (True, int_range(0, 15)),
                        "id": (True, ident),
                        "min_dbm": (True, number),
                    },
                )
                if not bd or len(bd) < 3:
                    continue
                if any(x.id == bd["id"] for x in bands):
                    self.err(f"{bp}.id", f"duplicate band '{bd['id']}' in jammer '{d['id']}'")
                if any(x.index == bd["index"] for x in bands):
                    self.err(f"{bp}.index", f"duplicate band index {bd['index']}")
                bands.append(Band(bd["index"], bd["id"], bd["min_dbm"]))
            if not bands and "bands" in d:
                self.err(f"{p}.bands", "at least one band is needed")
            modbus = self.modbus(f"{p}.modbus", d["modbus"]) if "modbus" in d else None
            out[d["id"]] = Jammer(d["id"], d["zone"], tuple(bands), modbus)
        return out

    def modbus(self, p: str, raw: Any) -> Modbus | None:
        d = self.mapping(
            p,
            raw,
            {
                "host": (True, text),
                "port": (False, int_range(1, 65535)),
                "unit": (False, int_range(0, 247)),
                "poll_s": (False, positive),
                "timeout_s": (False, positive),
                "map": (False, any_),
            },
        )
        if not d or "host" not in d:
            return None
        rmap = RegisterMap()
        if "map" in d:
            rmap = self.register_map(f"{p}.map", d.pop("map")) or rmap
        return Modbus(**d, map=rmap)

    def register_map(self, p: str, raw: Any) -> RegisterMap | None:
        fields = (
            "version",
            "band_count",
            "status",
            "temperature",
            "uptime",
            "forward",
            "reflected",
        )
        spec: _Spec = {f: (False, any_) for f in fields}
        spec["function"] = (False, enum(("input", "holding")))
        spec["status_bits"] = (False, any_)
        d = self.mapping(p, raw, spec)
        if d is None:
            return None
        default = RegisterMap()
        kw: dict[str, Any] = {}
        for f in fields:
            if f in d:
                rf = self.mapping(
                    f"{p}.{f}",
                    d[f],
                    {
                        "address": (True, int_range(0, 65535)),
                        "scale": (False, number),
                        "signed": (False, boolean),
                        "words": (False, int_range(1, 2)),
                        "word_order": (False, enum(("big", "little"))),
                    },
                )
                if rf and "address" in rf:
                    kw[f] = RegisterField(**rf)
        if "function" in d:
            kw["function"] = d["function"]
        if "status_bits" in d:
            bits = self.mapping(
                f"{p}.status_bits",
                d["status_bits"],
                {k: (False, int_range(0, 15)) for k in default.status_bits},
            )
            if bits is not None:
                kw["status_bits"] = {**default.status_bits, **bits}
        return RegisterMap(**kw)

    def cameras(self, raw: Any, zones: Mapping[str, Zone]) -> dict[str, Camera]:
        out: dict[str, Camera] = {}
        for i, item in enumerate(self.listing("cameras", raw)):
            p = f"cameras[{i}]"
            d = self.zoned(
                p,
                item,
                zones,
                {
                    "url": (False, text),
                    "snapshot": (False, text),
                    "mode": (False, enum(CAMERA_MODES)),
                    "recordings": (False, text),
                    "installed": (False, _plausible_time),
                },
            )
            if d is not None:
                d.pop("name", None)
                out[d["id"]] = Camera(**d)
        return out

    def panels(
        self, raw: Any, zones: Mapping[str, Zone]
    ) -> tuple[dict[str, AlarmPanel], dict[str, AlarmInput]]:
        panels: dict[str, AlarmPanel] = {}
        inputs: dict[str, AlarmInput] = {}
        for i, item in enumerate(self.listing("alarm_panels", raw)):
            p = f"alarm_panels[{i}]"
            d = self.zoned(p, item, zones, {"inputs": (False, any_), "model": (False, text)})
            if d is None:
                continue
            mine: list[AlarmInput] = []
            for j, inp in enumerate(self.listing(f"{p}.inputs", d.get("inputs"))):
                ip = f"{p}.inputs[{j}]"
                di = self.zoned(ip, inp, zones, {"kind": (False, enum(INPUT_KINDS))})
                if di is not None:
                    ai = AlarmInput(di["id"], di["zone"], di.get("kind", "other"), d["id"])
                    mine.append(ai)
                    inputs[ai.id] = ai
            panels[d["id"]] = AlarmPanel(d["id"], d["zone"], tuple(mine))
        return panels, inputs

    def placed(self, key: str, raw: Any, zones: Mapping[str, Zone]) -> dict[str, Placed]:
        out: dict[str, Placed] = {}
        for i, item in enumerate(self.listing(key, raw)):
            d = self.zoned(f"{key}[{i}]", item, zones, {})
            if d is not None:
                out[d["id"]] = Placed(d["id"], d["zone"])
        return out

    def duty_phones(self, raw: Any, zones: Mapping[str, Zone]) -> dict[str, DutyPhone]:
        out: dict[str, DutyPhone] = {}
        for i, item in enumerate(self.listing("duty_phones", raw)):
            d = self.zoned(f"duty_phones[{i}]", item, zones, {"recordings": (False, text)})
            if d is not None:
                out[d["id"]] = DutyPhone(d["id"], d["zone"], d.get("recordings"))
        return out

    def seals(self, raw: Any) -> list[SealSpec]:
        out: list[SealSpec] = []
        for i, item in enumerate(self.listing("seals", raw)):
            p = f"seals[{i}]"
            d = self.mapping(
                p,
                item,
                {
                    "id": (True, ident),
                    "name": (True, text),
                    "classification": (True, enum(CLASSIFICATIONS)),
                    "start": (True, _plausible_time),
                    "end": (True, _plausible_time),
                },
            )
            if not d or len(d) < 5:
                continue
            self.new_id(f"{p}.id", d["id"])
            if d["end"] <= d["start"]:
                self.err(f"{p}.end", "must be after start")
            out.append(SealSpec(**d))
        return out

    def policies(self, raw: Any) -> Policies:
        if raw is None:
            return Policies()
        spec: _Spec = {
            "door_held_open_s": (False, _duration(YEAR_S)),
            "two_person_window_s": (False, _duration(YEAR_S)),
            "heartbeat_timeout_s": (False, _duration(YEAR_S)),
            "jammer_status_timeout_s": (False, _duration(YEAR_S)),
            "video_retention_days": (False, _retention),
            "max_recording_gap_s": (False, _duration(YEAR_S)),
            "patrol_interval_min": (False, _duration(YEAR_S / 60)),
            "min_operators_on_duty": (False, int_range(0, 100)),
            "ack_escalation_s": (False, _duration(YEAR_S)),
            "badge_denied_burst": (False, any_),
        }
        d = self.mapping("policies", raw, spec) or {}
        if "badge_denied_burst" in d:
            b = self.mapping(
                "policies.badge_denied_burst",
                d["badge_denied_burst"],
                {"count": (False, int_range(2, 1000)), "within_s": (False, _duration(YEAR_S))},
            )
            d["badge_denied_burst"] = BurstRule(**(b or {}))
        return Policies(**d)

    def key_part_warnings(
        self,
        zones: Mapping[str, Zone],
        doors: Mapping[str, Door],
        cameras: Mapping[str, Camera],
        inputs: Mapping[str, AlarmInput],
    ) -> None:
        """EXAM-2.7.5 / CO-three-irons: a key part should have access control, video, alarm."""
        for z in zones.values():
            if z.kind != "key_part":
                continue
            missing = [
                what
                for what, ok in (
                    ("door", any(z.id in (d.a, d.b) for d in doors.values())),
                    ("camera", any(c.zone == z.id for c in cameras.values())),
                    ("alarm input", any(i.zone == z.id for i in inputs.values())),
                )
                if not ok
            ]
            if missing:
                self.warnings.append(
                    f"zone '{z.id}' (key part) has no {', no '.join(missing)} (EXAM-2.7.5)"
                )


def _plausible_time(p: str, v: Any) -> datetime:
    """An RFC 3339 time with an offset inside the plausible range of policies.timefmt."""
    dt = time(p, v)
    why = implausible_reason(to_us(dt), "the time", str(v))
    if why is not None:
        raise ValueError(why)
    return dt


def _duration(most: float) -> Callable[[str, Any], float]:
    """A positive duration of at most `most` (a year: timers stay inside the plausible range)."""

    def conv(p: str, v: Any) -> float:
        x = positive(p, v)
        if x > most:
            raise ValueError(f"must be at most {most:g} (a year), got {v!r}")
        return x

    return conv


def _retention(p: str, v: Any) -> float:
    x = number(p, v)
    if x > MAX_VIDEO_RETENTION_DAYS:
        raise ValueError(f"must be at most {MAX_VIDEO_RETENTION_DAYS} days, got {v!r}")
    if x < MIN_VIDEO_RETENTION_DAYS:
        raise ValueError(
            f"{v!r} is below the {MIN_VIDEO_RETENTION_DAYS} days that EXAM-2.7.9 "
            "requires (recordings are kept at least three months)"
        )
    return x
