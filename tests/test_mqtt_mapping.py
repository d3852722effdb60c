"""Mapping third-party MQTT messages to events: pure functions, no broker needed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.mqtt_mapping import (
    Ignored,
    MappingError,
    MappingRule,
    map_message,
    parse_mapping_config,
    topic_filters,
)
from daemon.config import load_settings
from policies.events import Rejection
from policies.site import load_site
from tests.support.daemon import write_site

DATA = Path(__file__).resolve().parent / "data"

CONFIG = yaml.safe_load("""
- {topic: "zigbee2mqtt/+/contact", device: "{1}", type: door.opened, when: "ON"}
- {topic: "zigbee2mqtt/+/contact", device: "{1}", type: door.closed, when: "OFF"}
- topic: "zigbee2mqtt/+"
  device: "{1}"
  devices: {hatch_sensor: hatch-1}
  json_path: contact
  values: {true: door.closed, false: door.opened}
- topic: frigate/available
  device: [cam-gate, cam-press]
  type: device.status
  when: [online, offline]
  fields: {state: "{value}"}
- topic: "detectors/+/rssi"
  device: "pd-{1}"
  type: phone.detected
  fields: {rssi_dbm: "{value}", band: "{$.band}"}
  json_path: rssi
""")


@pytest.fixture
def rules() -> list[MappingRule]:
    return parse_mapping_config(CONFIG)


def test_contact_on_off_maps_to_door_events(rules: list[MappingRule]) -> None:
    assert map_message(rules, "zigbee2mqtt/door1/contact", b"ON") == [
        {"device": "door1", "type": "door.opened"}
    ]
    assert map_message(
        rules, "zigbee2mqtt/door1/contact", b" OFF\n", ts="2027-05-25T06:00:00+00:00"
    ) == [{"device": "door1", "type": "door.closed", "ts": "2027-05-25T06:00:00+00:00"}]


def test_json_value_map_and_device_rename(rules: list[MappingRule]) -> None:
    assert map_message(rules, "zigbee2mqtt/hatch_sensor", b'{"contact": false, "battery": 97}') == [
        {"device": "hatch-1", "type": "door.opened"}
    ]
    assert map_message(rules, "zigbee2mqtt/hatch_sensor", b'{"contact": true}') == [
        {"device": "hatch-1", "type": "door.closed"}
    ]
    r = map_message(rules, "zigbee2mqtt/kitchen_plug", b'{"contact": true}')
    assert isinstance(r, Rejection) and "'kitchen_plug' is not in" in r.reason


def test_frigate_availability_fans_out_to_its_cameras(rules: list[MappingRule]) -> None:
    assert map_message(rules, "frigate/available", b"offline") == [
        {"device": "cam-gate", "type": "device.status", "state": "offline"},
        {"device": "cam-press", "type": "device.status", "state": "offline"},
    ]


def test_single_placeholder_keeps_the_json_type(rules: list[MappingRule]) -> None:
    assert map_message(rules, "detectors/work/rssi", b'{"rssi": -61.5, "band": "lte"}') == [
        {"device": "pd-work", "type": "phone.detected", "rssi_dbm": -61.5, "band": "lte"}
    ]


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (
            "zigbee2mqtt/door1/contact",
            b"MAYBE",
            "value 'MAYBE' is not ON; value 'MAYBE' is not OFF",
        ),
        ("zigbee2mqtt/hatch_sensor", b"{broken", "not valid JSON"),
        ("zigbee2mqtt/hatch_sensor", b'{"battery": 50}', "no contact in the payload"),
        ("zigbee2mqtt/hatch_sensor", b'{"contact": "sort of"}', "value 'sort of' not in"),
        ("frigate/available", b"\xff\xfe", "not UTF-8"),
        ("detectors/work/rssi", b'{"rssi": -70}', "payload has no $.band"),
    ],
)
def test_messages_that_fit_no_rule_are_rejected_with_a_reason(
    rules: list[MappingRule], topic: str, payload: bytes, reason: str
) -> None:
    r = map_message(rules, topic, payload)
    assert isinstance(r, Rejection)
    assert reason in r.reason
    assert r.reason.startswith(topic)


def test_topics_no_rule_covers_give_nothing(rules: list[MappingRule]) -> None:
    assert map_message(rules, "zigbee2mqtt/door1/battery", b"50") == []
    assert map_message(rules, "other/thing", b"ON") == []


def test_topic_filters_for_subscribing(rules: list[MappingRule]) -> None:
    assert topic_filters(rules) == [
        "zigbee2mqtt/+/contact",
        "zigbee2mqtt/+",
        "frigate/available",
        "detectors/+/rssi",
    ]


def test_hash_wildcard_matches_the_rest() -> None:
    rules = parse_mapping_config([{"topic": "site/#", "device": "{2}", "type": "device.heartbeat"}])
    assert map_message(rules, "site/a/door-1", b"x") == [
        {"device": "door-1", "type": "device.heartbeat"}
    ]
    assert isinstance(map_message(rules, "site/a", b"x"), Rejection)


def test_config_errors_name_the_path() -> None:
    with pytest.raises(MappingError) as info:
        parse_mapping_config(
            [
                {"topic": "a/+/b", "device": "{1}", "type": "door.opend"},
                {"topic": "a/b#", "device": "{5}", "type": "door.opened", "colour": 1},
                {"topic": "a/+", "device": "{1}"},
                {
                    "topic": "a/+",
                    "device": "{1}",
                    "type": "door.opened",
                    "values": {"1": "door.closed"},
                    "fields": {"type": "x"},
                },
                "nonsense",
            ]
        )
    errors = info.value.errors
    assert (
        "daemon.mqtt_mappings[0].type: unknown event type 'door.opend' "
        "(did you mean 'door.opened'?)"
    ) in errors
    assert any(
        e.startswith("daemon.mqtt_mappings[1].topic: 'a/b#' is not a valid filter") for e in errors
    )
    assert "daemon.mqtt_mappings[1].colour: unknown key" in errors
    assert "daemon.mqtt_mappings[2].type: required (or give `values`: value → type)" in errors
    assert any(e.startswith("daemon.mqtt_mappings[3].values: give either") for e in errors)
    assert "daemon.mqtt_mappings[3].fields.type: set by the rule itself, not in fields" in errors
    assert "daemon.mqtt_mappings[4]: expected a mapping, got str" in errors


def test_template_beyond_topic_levels_is_a_config_error() -> None:
    with pytest.raises(MappingError, match=r"\[0\].device: '\{3\}' is beyond the 3 levels"):
        parse_mapping_config([{"topic": "a/+/c", "device": "{3}", "type": "door.opened"}])


def test_no_rules_is_fine() -> None:
    assert parse_mapping_config(None) == []
    with pytest.raises(MappingError, match="expected a list of rules"):
        parse_mapping_config({"topic": "x"})


# Frigate's frigate/events message (its documented shape: type new/update/end, `before` and
# `after` with camera, label, current_zones, id, score, start_time …), as in tests/data.
FRIGATE_RULES = parse_mapping_config(
    yaml.safe_load("""
- topic: frigate/events
  where: {type: [new, update], after.label: person, after.camera: [secure_room, press]}
  json_path: after.camera
  device: "{value}"
  devices: {secure_room: cam-secure, press: cam-press}
  type: camera.object
  fields:
    label: "{$.after.label}"
    score: "{$.after.score}"
    zones: "{$.after.current_zones}"
    object_id: "{$.after.id}"
""")
)


def frigate(kind: str = "new", **after: object) -> bytes:
    sample = json.loads((DATA / "frigate-event.json").read_text())
    sample["type"] = kind
    sample["after"].update(after)
    return json.dumps(sample).encode()


def test_frigate_person_becomes_a_camera_object_event() -> None:
    assert map_message(FRIGATE_RULES, "frigate/events", frigate()) == [
        {
            "device": "cam-secure",
            "type": "camera.object",
            "label": "person",
            "score": 0.87,
            "zones": ["vault"],
            "object_id": "1718000000.123456-abc123",
        }
    ]
    assert map_message(FRIGATE_RULES, "frigate/events", frigate("update", camera="press"))


@pytest.mark.parametrize(
    "payload",
    [frigate("end"), frigate(label="car"), frigate(camera="parking")],
)
def test_what_the_where_leaves_alone_is_ignored_not_rejected(payload: bytes) -> None:
    got = map_message(FRIGATE_RULES, "frigate/events", payload)
    assert isinstance(got, Ignored) and got.reason.startswith("frigate/events: left alone")


def test_a_payload_without_the_where_fields_is_rejected() -> None:
    got = map_message(FRIGATE_RULES, "frigate/events", b'{"before": {}}')
    assert isinstance(got, Rejection) and "no type in the payload" in got.reason


def test_where_is_checked() -> None:
    with pytest.raises(MappingError) as exc:
        parse_mapping_config(
            [
                {"topic": "a", "device": "d", "type": "door.opened", "where": {"x": {"y": 1}}},
                {"topic": "a", "device": "d", "type": "door.opened", "where": ["type"]},
            ]
        )
    assert exc.value.errors == [
        "daemon.mqtt_mappings[0].where.x: expected a value or a list of values, got {'y': 1}",
        "daemon.mqtt_mappings[1].where: expected a mapping of JSON path → value or list of values",
    ]


def doc_configs() -> list[dict[str, Any]]:
    """The `daemon:` blocks of docs/integrations.md (indented four spaces)."""
    text = (DATA.parent.parent / "docs" / "integrations.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^    daemon:\n(?:^    .*\n|^\n)+", text, re.M)
    return [
        yaml.safe_load("\n".join(line[4:] for line in b.splitlines()))["daemon"] for b in blocks
    ]


def test_the_configurations_in_docs_integrations_load_and_map(tmp_path: Path) -> None:
    configs = doc_configs()
    assert len(configs) == 3  # Home Assistant, Frigate, contacts and gateways
    for daemon in configs:
        site = load_site(write_site(tmp_path, "t-docs", daemon=daemon))
        load_settings(site, {})
    contact, gateway = (
        parse_mapping_config(configs[2]["mqtt_mappings"][:2]),
        parse_mapping_config(configs[2]["mqtt_mappings"][2:]),
    )
    assert map_message(contact, "zigbee2mqtt/fire_exit/contact", b"ON") == [
        {"device": "fire-exit-north", "type": "door.opened"}
    ]
    payload = b'{"sensor": "hatch_sensor", "contact": false, "battery": 97}'
    assert map_message(gateway, "gateway/gw1/state", payload) == [
        {"device": "supply-hatch", "type": "door.opened"}
    ]
    frigate = parse_mapping_config(configs[1]["mqtt_mappings"])
    sample = json.loads((DATA / "frigate-event.json").read_text())
    sample["after"]["camera"] = "press_hall"
    got = map_message(frigate, "frigate/events", json.dumps(sample).encode())
    assert isinstance(got, list) and got[0]["device"] == "cam-press"
