"""Third-party MQTT messages → normalized events, by rules from the config. Pure: no I/O.

A rule (one entry of `daemon.mqtt_mappings`):

    topic:     MQTT filter, + and # allowed            "zigbee2mqtt/+/contact"
    device:    template or list of templates           "{1}"  (topic level 1: "door1")
    type:      event type when the rule fires          door.opened
    when:      the value(s) that make it fire          "ON"  (or a list)
    json_path: take the value from a JSON payload      "contact" / "after.camera"
    values:    value → event type, instead of type+when {true: door.closed, false: door.opened}
    fields:    extra event fields, literal or template {state: "{value}"}
    devices:   rename table applied to the device      {door1: door-lobby}
    where:     JSON fields that must hold, else the     {type: [new, update], after.label: person}
               rule leaves the message alone

Templates: `{N}` is topic level N (0-based), `{value}` the selected value (the payload text,
or what `json_path` found), `{$.a.b}` a field of the JSON payload. A template that is a
single placeholder keeps the value's JSON type. Values compare as text: JSON true is "true".

Every rule whose filter matches the topic, whose `where` holds and whose value matches fires
(one rule can feed several devices). A message that matches a rule's topic but no rule's
value, or whose JSON is bad, or lacks a field a `where` names, is a `Rejection`; a topic no rule
covers gives no events; a message every rule of its topic leaves alone by its `where` is
`Ignored` (the configuration says so: e.g. Frigate's detections of cars, or its `end`
messages). `ts` is left to the caller
(the daemon stamps receive time), unless given.

`map_message` is total: any payload bytes (not UTF-8, over `MAX_PAYLOAD_BYTES`, JSON nested
deeper than the parser or the encoder goes, any type where a rule expects a value) give a
list of events or a `Rejection` with a reason of bounded length, never an exception. The
events are not validated here: a mapped field of the wrong type (`rssi_dbm: "{value}"` on an
object) is an event that the daemon's event parser rejects, with its own reason.
`parse_mapping_config` raises `MappingError` and nothing else, whatever the config holds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from policies.events import EVENT_TYPES, Rejection
from policies.schema import ConfigErrors
from policies.site import suggest

TEMPLATE_RE = re.compile(r"\{(\d+|value|\$\.[^{}]+)\}")
RULE_KEYS = (
    "topic",
    "device",
    "type",
    "when",
    "json_path",
    "values",
    "fields",
    "devices",
    "where",
)
RESERVED_FIELDS = frozenset({"ts", "device", "type"})
MAX_PAYLOAD_BYTES = 256 * 1024  # no sensor sends more; beyond that it is not a reading


class MappingError(ConfigErrors):
    """The MQTT mapping config is invalid."""


@dataclass(frozen=True, slots=True)
class Ignored:
    """Every rule of the topic leaves this message alone (their `where` does not hold)."""

    reason: str


@dataclass(frozen=True, slots=True)
class MappingRule:
    topic: str
    devices: tuple[str, ...]  # device templates
    type: str | None = None
    when: frozenset[str] | None = None
    json_path: tuple[str, ...] | None = None
    values: Mapping[str, str] | None = None  # value → event type
    fields: Mapping[str, Any] = field(default_factory=dict)
    rename: Mapping[str, str] | None = None
    levels: tuple[str, ...] = ()
    where: tuple[tuple[tuple[str, ...], frozenset[str]], ...] = ()  # (path, values)

    def matches_topic(self, topic: str) -> bool:
        return topic_matches(self.levels, topic.split("/"))


def value_text(v: Any) -> str:
    """How a payload value compares: JSON true → "true", 1 → "1", " ON " → "ON"."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, str):
        return v.strip()
    if isinstance(v, int | float):
        return str(v)
    try:
        return orjson.dumps(v).decode()
    except TypeError:  # nested deeper than orjson writes (255), or not JSON at all
        return f"<{type(v).__name__} nested too deeply to compare>"


def _short(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def topic_matches(levels: tuple[str, ...], topic: list[str]) -> bool:
    for i, lv in enumerate(levels):
        if lv == "#":
            return True
        if i >= len(topic) or (lv != "+" and lv != topic[i]):
            return False
    return len(levels) == len(topic)


def topic_filters(rules: list[MappingRule]) -> list[str]:
    """The distinct topic filters to subscribe to, in rule order."""
    return list(dict.fromkeys(r.topic for r in rules))


# -- config ----------------------------------------------------------------------------


def parse_mapping_config(raw: Any, path: str = "daemon.mqtt_mappings") -> list[MappingRule]:
    """Validate the rules; MappingError lists every problem with its path."""
    errors: list[str] = []
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise MappingError([f"{path}: expected a list of rules, got {type(raw).__name__}"])
    rules = []
    for i, item in enumerate(raw):
        rule = _parse_rule(f"{path}[{i}]", item, errors)
        if rule is not None:
            rules.append(rule)
    if errors:
        raise MappingError(errors)
    return rules


def _parse_rule(p: str, d: Any, errors: list[str]) -> MappingRule | None:
    def err(key: str, msg: str) -> None:
        errors.append(f"{p}.{key}: {msg}" if key else f"{p}: {msg}")

    if not isinstance(d, dict):
        err("", f"expected a mapping, got {type(d).__name__}")
        return None
    n = len(errors)
    for key in d:
        if key not in RULE_KEYS:
            err(str(key), f"unknown key{suggest(str(key), RULE_KEYS)}")
    topic = d.get("topic")
    levels: tuple[str, ...] = ()
    if not isinstance(topic, str) or not topic:
        err("topic", "required: an MQTT topic filter")
    else:
        levels = tuple(topic.split("/"))
        for j, lv in enumerate(levels):
            if ("#" in lv and (lv != "#" or j != len(levels) - 1)) or ("+" in lv and lv != "+"):
                err(
                    "topic",
                    f"'{topic}' is not a valid filter (+ is a whole level, # the last level)",
                )
                break
    fixed_levels = None if "#" in levels else len(levels)

    def template(key: str, t: Any) -> str | None:
        if not isinstance(t, str) or not t:
            err(key, f"expected text, got {t!r}")
            return None
        for m in TEMPLATE_RE.finditer(t):
            g = m.group(1)
            if g.isdigit() and fixed_levels is not None and int(g) >= fixed_levels:
                err(key, f"'{{{g}}}' is beyond the {fixed_levels} levels of '{topic}'")
        return t

    devices_raw = d.get("device")
    devices: list[str] = []
    if devices_raw is None:
        err("device", "required: a device id or template such as '{1}'")
    else:
        for j, t in enumerate(devices_raw if isinstance(devices_raw, list) else [devices_raw]):
            key = f"device[{j}]" if isinstance(devices_raw, list) else "device"
            if (ok := template(key, t)) is not None:
                devices.append(ok)

    etype = d.get("type")
    if etype is not None and (not isinstance(etype, str) or etype not in EVENT_TYPES):
        err("type", f"unknown event type {etype!r}{suggest(str(etype), EVENT_TYPES)}")
    values: dict[str, str] | None = None
    if "values" in d:
        if not isinstance(d["values"], dict) or not d["values"]:
            err("values", "expected a mapping of value → event type")
        else:
            values = {}
            for k, t in d["values"].items():
                if not isinstance(t, str) or t not in EVENT_TYPES:
                    err(f"values.{k}", f"unknown event type {t!r}{suggest(str(t), EVENT_TYPES)}")
                values[value_text(k)] = str(t)
    if etype is None and values is None:
        err("type", "required (or give `values`: value → type)")
    if etype is not None and values is not None:
        err("values", "give either `type` (with an optional `when`) or `values`, not both")

    when: frozenset[str] | None = None
    if "when" in d:
        w = d["when"]
        items = w if isinstance(w, list) else [w]
        if not items or any(isinstance(x, dict | list) for x in items):
            err("when", f"expected a value or a list of values, got {w!r}")
        else:
            when = frozenset(value_text(x) for x in items)

    json_path: tuple[str, ...] | None = None
    if "json_path" in d:
        jp = d["json_path"]
        if not isinstance(jp, str) or not jp or any(not s for s in jp.split(".")):
            err("json_path", f"expected a dotted path such as 'after.camera', got {jp!r}")
        else:
            json_path = tuple(jp.removeprefix("$.").split("."))

    fields: dict[str, Any] = {}
    if "fields" in d:
        if not isinstance(d["fields"], dict):
            err("fields", "expected a mapping of field → value or template")
        else:
            for k, v in d["fields"].items():
                if k in RESERVED_FIELDS:
                    err(f"fields.{k}", "set by the rule itself, not in fields")
                elif isinstance(v, str):
                    template(f"fields.{k}", v)
                fields[str(k)] = v

    rename: dict[str, str] | None = None
    if "devices" in d:
        if not isinstance(d["devices"], dict) or not all(
            isinstance(v, str) for v in d["devices"].values()
        ):
            err("devices", "expected a mapping of name → site device id")
        else:
            rename = {str(k): v for k, v in d["devices"].items()}

    where: list[tuple[tuple[str, ...], frozenset[str]]] = []
    if "where" in d:
        if not isinstance(d["where"], dict) or not d["where"]:
            err("where", "expected a mapping of JSON path → value or list of values")
        else:
            for k, w in d["where"].items():
                items = w if isinstance(w, list) else [w]
                if not isinstance(k, str) or not k or any(not s for s in k.split(".")):
                    err("where", f"expected dotted paths such as 'after.label', got {k!r}")
                elif not items or any(isinstance(x, dict | list) for x in items):
                    err(f"where.{k}", f"expected a value or a list of values, got {w!r}")
                else:
                    path_ = tuple(k.removeprefix("$.").split("."))
                    where.append((path_, frozenset(value_text(x) for x in items)))

    if len(errors) > n:
        return None
    return MappingRule(
        where=tuple(where),
        topic=str(topic),
        devices=tuple(devices),
        type=etype,
        when=when,
        json_path=json_path,
        values=values,
        fields=fields,
        rename=rename,
        levels=levels,
    )


# -- mapping ---------------------------------------------------------------------------

_MISSING = object()


def _dig(doc: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isascii() and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return _MISSING
    return doc


class _NoValue(Exception):
    pass


def _render(t: str, levels: list[str], value: Any, doc: Any) -> Any:
    def one(g: str) -> Any:
        if g.isdigit():
            if int(g) >= len(levels):
                raise _NoValue(f"topic has no level {g}")
            return levels[int(g)]
        if g == "value":
            return value
        found = _dig(doc, tuple(g[2:].split(".")))
        if found is _MISSING:
            raise _NoValue(f"payload has no {g}")
        return found

    whole = TEMPLATE_RE.fullmatch(t)
    if whole:
        return one(whole.group(1))
    return TEMPLATE_RE.sub(lambda m: value_text(one(m.group(1))), t)


def map_message(
    rules: list[MappingRule], topic: str, payload: bytes, *, ts: str | None = None
) -> list[dict[str, Any]] | Rejection | Ignored:
    """The events `payload` on `topic` maps to, or a Rejection saying why none."""
    levels = topic.split("/")
    candidates = [r for r in rules if topic_matches(r.levels, levels)]
    if not candidates:
        return []
    where = topic if len(topic) <= 200 else topic[:200] + "…"
    if len(payload) > MAX_PAYLOAD_BYTES:
        return Rejection(f"{where}: payload of {len(payload)} bytes (at most {MAX_PAYLOAD_BYTES})")
    try:
        return _map(candidates, where, levels, bytes(payload), ts)
    except Exception as exc:  # a bug; never seen in the property tests, kept as a last resort
        return Rejection(f"{where}: cannot map: {exc!r}"[:500])


def _map(
    candidates: list[MappingRule], topic: str, levels: list[str], payload: bytes, ts: str | None
) -> list[dict[str, Any]] | Rejection | Ignored:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return Rejection(f"{topic}: payload is not UTF-8")
    doc: Any = _MISSING
    events: list[dict[str, Any]] = []
    why: list[str] = []
    left: list[str] = []  # what the rules' `where` did not find
    for rule in candidates:
        needs_json = (
            bool(rule.where)
            or rule.json_path is not None
            or any(
                "{$." in t
                for t in (*rule.devices, *(v for v in rule.fields.values() if isinstance(v, str)))
            )
        )
        if needs_json and doc is _MISSING:
            try:
                doc = orjson.loads(payload)
            except orjson.JSONDecodeError as exc:
                return Rejection(f"{topic}: payload is not valid JSON ({exc}): {_short(text)}")
        if rule.where:
            missing = next((p for p, _ in rule.where if _dig(doc, p) is _MISSING), None)
            if missing is not None:
                why.append(f"no {'.'.join(missing)} in the payload")
                continue
            miss = next((p for p, ok in rule.where if value_text(_dig(doc, p)) not in ok), None)
            if miss is not None:
                left.append(f"{'.'.join(miss)} is {_short(value_text(_dig(doc, miss)))}")
                continue
        if rule.json_path is not None:
            value = _dig(doc, rule.json_path)
            if value is _MISSING:
                why.append(f"no {'.'.join(rule.json_path)} in the payload")
                continue
        else:
            value = text.strip()
        vt = value_text(value)
        if rule.values is not None:
            etype = rule.values.get(vt)
            if etype is None:
                why.append(f"value {_short(vt)} not in {sorted(rule.values)}")
                continue
        else:
            if rule.when is not None and vt not in rule.when:
                why.append(f"value {_short(vt)} is not {' or '.join(sorted(rule.when))}")
                continue
            assert rule.type is not None
            etype = rule.type
        try:
            for t in rule.devices:
                device = value_text(_render(t, levels, value, doc))
                if rule.rename is not None:
                    if device not in rule.rename:
                        raise _NoValue(
                            f"device {_short(device)} is not in the rule's devices table"
                        )
                    device = rule.rename[device]
                if not device:
                    raise _NoValue("the device id is empty")
                event: dict[str, Any] = {"device": device, "type": etype}
                if ts is not None:
                    event["ts"] = ts
                for k, v in rule.fields.items():
                    event[k] = _render(v, levels, value, doc) if isinstance(v, str) else v
                try:
                    orjson.dumps(event)  # what the daemon stores must be writable
                except TypeError as exc:
                    raise _NoValue(f"a field cannot be passed on: {exc}") from None
                events.append(event)
        except _NoValue as exc:
            why.append(str(exc))
    if not events and not why and left:
        return Ignored(f"{topic}: left alone by the rules' where ({'; '.join(left)[:500]})")
    if not events:
        reasons = "; ".join(dict.fromkeys(why))
        if len(reasons) > 1000:
            reasons = reasons[:1000] + "…"
        return Rejection(f"{topic}: no mapping rule fits ({reasons})")
    return events
