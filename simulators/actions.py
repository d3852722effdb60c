"""The simulator's actions (CONTRACT §7): which fields each takes, checked against the site.

Scenario files and the control port share this table, so a step that loads from a file is
accepted by `POST /actions` and the other way round. A bad step raises `StepError` naming
the step and the problem; nothing here performs an action.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from policies.site import Site, suggest

from .clock import parse_duration, parse_when


class StepError(ValueError):
    """A step is not a valid action for this site."""


Check = Callable[[Site, str, Any], Any]


@dataclass(frozen=True, slots=True)
class ActionSpec:
    required: Mapping[str, Check]
    optional: Mapping[str, Check] = field(default_factory=dict)


# -- field checks: (site, field name, value) -> normalized value, ValueError on a problem --


def _device(*kinds: str) -> Check:
    def check(site: Site, _name: str, value: Any) -> str:
        dev = str(value)
        kind = site.device_kind.get(dev)
        if kind is None:
            known = [d for d, k in site.device_kind.items() if not kinds or k in kinds]
            raise ValueError(f"unknown {_kind_words(kinds)} '{dev}'{suggest(dev, known)}")
        if kinds and kind not in kinds:
            raise ValueError(f"'{dev}' is a {kind.replace('_', ' ')}, not a {_kind_words(kinds)}")
        return dev

    return check


def _kind_words(kinds: tuple[str, ...]) -> str:
    return " or ".join(k.replace("_", " ") for k in kinds) if kinds else "device"


def _text(_site: Site, _name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
        raise ValueError(f"expected text, got {value!r}")
    return str(value)


def _badges(_site: Site, _name: str, value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(b, str | int) for b in value):
        raise ValueError(f"expected a list of badges, got {value!r}")
    return [str(b) for b in value]


def _bool(_site: Site, _name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _number(_site: Site, _name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def _seconds(_site: Site, _name: str, value: Any) -> float:
    seconds = parse_duration(value)
    if seconds < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    return seconds


def _when(_site: Site, _name: str, value: Any) -> Any:
    # Offsets (`-2h`) are resolved when the action runs; here only the syntax is checked.
    parse_when(value, datetime.now(UTC))
    return value


def _direction(_site: Site, _name: str, value: Any) -> str:
    if value not in ("in", "out"):
        raise ValueError(f"expected 'in' or 'out', got {value!r}")
    return str(value)


def _zone(site: Site, _name: str, value: Any) -> str:
    zone = str(value)
    if zone not in site.zones:
        raise ValueError(f"unknown zone '{zone}'{suggest(zone, site.zones)}")
    return zone


def _classification(_site: Site, _name: str, value: Any) -> str:
    if value not in ("top_secret", "secret", "confidential"):
        raise ValueError(f"expected top_secret, secret or confidential, got {value!r}")
    return str(value)


def _fault(_site: Site, _name: str, value: Any) -> str:
    if value not in JAMMER_FAULTS:
        raise ValueError(
            f"expected one of {', '.join(JAMMER_FAULTS)}, got {value!r}"
            f"{suggest(str(value), JAMMER_FAULTS)}"
        )
    return str(value)


JAMMER_FAULTS = ("over_temperature", "vswr", "fan", "enclosure_tamper", "mains_lost", "on_battery")

_door = {"door": _device("door")}
_input = {"input": _device("alarm_input")}
_panel = {"panel": _device("alarm_panel")}
_jammer = {"jammer": _device("jammer")}
_camera = {"camera": _device("camera")}
_console = {"console": _device("console")}

ACTIONS: dict[str, ActionSpec] = {
    **{f"door.{a}": ActionSpec(_door) for a in ("open", "close", "force")},
    "badge": ActionSpec({**_door, "badge": _text, "direction": _direction}),
    **{f"alarm.{a}": ActionSpec(_input) for a in ("trigger", "restore", "tamper", "fault")},
    **{
        f"panel.{a}": ActionSpec(_panel)
        for a in (
            "arm",
            "disarm",
            "mains_lost",
            "mains_ok",
            "battery_low",
            "battery_ok",
            "tamper",
            "tamper_ok",
        )
    },
    "jammer.band_down": ActionSpec({**_jammer, "band": _text}, {"dbm": _number}),
    "jammer.band_up": ActionSpec({**_jammer, "band": _text}),
    **{
        f"jammer.{a}": ActionSpec(_jammer)
        for a in ("output_off", "output_on", "disconnect", "reconnect", "garbage", "normal")
    },
    "jammer.fault": ActionSpec({**_jammer, "fault": _fault}),
    "jammer.clear": ActionSpec({**_jammer, "fault": _fault}),
    "camera.cover": ActionSpec(_camera, {"partial": _bool}),
    **{
        f"camera.{a}": ActionSpec(_camera)
        for a in ("defocus", "move", "freeze", "restore", "disconnect", "reconnect", "day", "night")
    },
    "recording.prune": ActionSpec({**_camera, "keep_days": _number}),
    "recording.gap": ActionSpec({**_camera, "start": _when, "end": _when}),
    "phone.detect": ActionSpec(
        {"detector": _device("phone_detector")}, {"band": _text, "rssi_dbm": _number}
    ),
    "patrol.visit": ActionSpec({"checkpoint": _device("checkpoint"), "badge": _text}),
    "operator.on": ActionSpec({**_console, "badge": _text}),
    "operator.off": ActionSpec({**_console, "badge": _text}),
    "seal.start": ActionSpec(
        {**_console, "seal": _text},
        {"name": _text, "classification": _classification, "end": _when, "badge": _text},
    ),
    "seal.end": ActionSpec({**_console, "seal": _text}, {"badge": _text}),
    "call": ActionSpec(
        {"phone": _device("duty_phone"), "supervisors": _badges, "recorded": _bool},
        {"duration_s": _seconds},
    ),
    "device.silence": ActionSpec({"device": _device()}),
    "device.resume": ActionSpec({"device": _device()}),
    "approval": ActionSpec(
        {**_console, "badge": _text, "valid_s": _seconds}, {"granted_by": _text}
    ),
    "inspection": ActionSpec({**_console, "zone": _zone, "badge": _text}),
    "review": ActionSpec(
        {**_console, "badge": _text}, {"camera": _device("camera"), "zone": _zone}
    ),
    "alert.ack": ActionSpec({**_console, "alert_id": _text, "badge": _text}, {"comment": _text}),
    "alert.shelve": ActionSpec(
        {**_console, "alert_id": _text, "badge": _text, "until": _when, "reason": _text}
    ),
    "alert.unshelve": ActionSpec({**_console, "alert_id": _text, "badge": _text}),
}


def check_step(
    site: Site, raw: Any, *, where: str = "step", with_at: bool = False
) -> dict[str, Any]:
    """Validate one step against ACTIONS and the site; return it with normalized values."""
    if not isinstance(raw, dict):
        raise StepError(
            f"{where}: expected a mapping such as {{do: door.open, door: ...}}, "
            f"got {type(raw).__name__}"
        )
    if "do" not in raw:
        raise StepError(f"{where}: missing 'do' (the action)")
    action = str(raw["do"])
    spec = ACTIONS.get(action)
    if spec is None:
        raise StepError(f"{where}: unknown action '{action}'{suggest(action, ACTIONS)}")
    out: dict[str, Any] = {"do": action}
    allowed = {"do", *spec.required, *spec.optional} | ({"at"} if with_at else set())
    for key in raw:
        if key not in allowed:
            raise StepError(
                f"{where}.{key}: unknown field for {action} "
                f"(takes {', '.join(sorted(allowed - {'do', 'at'}))})"
                f"{suggest(str(key), allowed)}"
            )
    if with_at:
        if "at" not in raw:
            raise StepError(f"{where}: missing 'at' (e.g. at: 5s)")
        try:
            out["at"] = _seconds(site, "at", raw["at"])
        except ValueError as exc:
            raise StepError(f"{where}.at: {exc}") from None
    for key, check in (*spec.required.items(), *spec.optional.items()):
        if key not in raw or raw[key] is None:
            if key in spec.required:
                raise StepError(f"{where}: {action} needs '{key}'")
            continue
        try:
            out[key] = check(site, key, raw[key])
        except ValueError as exc:
            raise StepError(f"{where}.{key}: {exc}") from None
    _check_cross_fields(site, out, where)
    return out


def _check_cross_fields(site: Site, step: dict[str, Any], where: str) -> None:
    if step["do"] in ("jammer.band_down", "jammer.band_up"):
        jammer = site.jammers[step["jammer"]]
        bands = [b.id for b in jammer.bands]
        if step["band"] not in bands:
            raise StepError(
                f"{where}.band: jammer '{jammer.id}' has no band "
                f"'{step['band']}'{suggest(step['band'], bands)} "
                f"(bands: {', '.join(bands)})"
            )
    if step["do"] == "review" and "camera" not in step and "zone" not in step:
        raise StepError(f"{where}: review needs 'camera' or 'zone'")
