"""Home Assistant's MQTT discovery schema for the two components sealwatch announces, written
down from Home Assistant's own sources (home-assistant/core), in voluptuous like Home Assistant:

- homeassistant/components/mqtt/discovery.py: TOPIC_MATCHER, the discovery topic's layout
  `PREFIX/COMPONENT/[NODE_ID/]OBJECT_ID/config`, ids of [a-zA-Z0-9_-];
- homeassistant/components/mqtt/config.py: MQTT_RO_SCHEMA (`state_topic` required, `qos`,
  `encoding`, `value_template`) for sensor-type platforms;
- homeassistant/components/mqtt/schemas.py: MQTT_AVAILABILITY_SCHEMA (`availability_topic`
  or an `availability` list, exclusive; `payload_available` "online" and
  `payload_not_available` "offline" by default), MQTT_ENTITY_DEVICE_INFO_SCHEMA (at least one
  of `identifiers`/`connections`), MQTT_ORIGIN_INFO_SCHEMA (`name` required) and
  MQTT_ENTITY_COMMON_SCHEMA (`device`, `origin`, `unique_id`, `object_id`, `icon` …);
- homeassistant/components/mqtt/sensor.py and binary_sensor.py: each platform's own keys;
- homeassistant/components/sensor/const.py (SensorDeviceClass, SensorStateClass) and
  homeassistant/components/binary_sensor/__init__.py (BinarySensorDeviceClass).

Home Assistant drops unknown keys of a discovery payload silently (extra=REMOVE_EXTRA); here
they are errors (PREVENT_EXTRA), so that a misspelt key fails the test instead of being lost.
"""

from __future__ import annotations

import re
from typing import Any

import voluptuous as vol

TOPIC_MATCHER = re.compile(
    r"(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?(?P<object_id>[a-zA-Z0-9_-]+)/config"
)

BINARY_SENSOR_DEVICE_CLASSES = (
    "battery battery_charging carbon_monoxide cold connectivity door garage_door gas heat "
    "light lock moisture motion moving occupancy opening plug power presence problem running "
    "safety smoke sound tamper update vibration window"
).split()
# the sensor device classes sealwatch could use, and the unit each allows (sensor/const.py)
SENSOR_DEVICE_UNITS = {"signal_strength": {"dB", "dBm"}, "power": {"W", "kW", "MW", "GW", "TW"}}
SENSOR_STATE_CLASSES = ("measurement", "total", "total_increasing")


def _topic(v: Any) -> str:
    """util.py valid_subscribe_topic/valid_publish_topic: text, no NUL, ≤ 65535 bytes; a
    state topic here is a plain topic (no wildcards)."""
    if not isinstance(v, str) or not v or "\0" in v or len(v.encode()) > 65535:
        raise vol.Invalid(f"not an MQTT topic: {v!r}")
    if "+" in v or "#" in v:
        raise vol.Invalid(f"a state or availability topic has no wildcards: {v!r}")
    return v


def _icon(v: Any) -> str:
    """cv.icon: `prefix:name`."""
    if not isinstance(v, str) or ":" not in v:
        raise vol.Invalid(f"icons look like 'mdi:name', got {v!r}")
    return v


DEVICE = vol.All(
    vol.Schema(
        {
            vol.Optional("identifiers"): [str],
            vol.Optional("connections"): [vol.All([str], vol.Length(min=2, max=2))],
            vol.Optional("manufacturer"): str,
            vol.Optional("model"): str,
            vol.Optional("model_id"): str,
            vol.Optional("name"): str,
            vol.Optional("hw_version"): str,
            vol.Optional("serial_number"): str,
            vol.Optional("sw_version"): str,
            vol.Optional("via_device"): str,
            vol.Optional("suggested_area"): str,
            vol.Optional("configuration_url"): str,
        },
        extra=vol.PREVENT_EXTRA,
    ),
    vol.Schema(
        vol.Any(
            {vol.Required("identifiers"): vol.Length(min=1)},
            {vol.Required("connections"): vol.Length(min=1)},
        ),
        extra=vol.ALLOW_EXTRA,
    ),
)
ORIGIN = vol.Schema(
    {vol.Required("name"): str, vol.Optional("sw_version"): str, vol.Optional("support_url"): str}
)
COMMON = {
    # config.py MQTT_RO_SCHEMA
    vol.Required("state_topic"): _topic,
    vol.Optional("value_template"): str,
    vol.Optional("qos"): vol.In((0, 1, 2)),
    vol.Optional("encoding"): str,
    # schemas.py MQTT_AVAILABILITY_SCHEMA
    vol.Exclusive("availability_topic", "availability"): _topic,
    vol.Exclusive("availability", "availability"): [
        {
            vol.Required("topic"): _topic,
            vol.Optional("payload_available"): str,
            vol.Optional("payload_not_available"): str,
            vol.Optional("value_template"): str,
        }
    ],
    vol.Optional("availability_mode"): vol.In(("all", "any", "latest")),
    vol.Optional("availability_template"): str,
    vol.Optional("payload_available"): str,
    vol.Optional("payload_not_available"): str,
    # schemas.py MQTT_ENTITY_COMMON_SCHEMA
    vol.Optional("device"): DEVICE,
    vol.Optional("origin"): ORIGIN,
    vol.Optional("enabled_by_default"): bool,
    vol.Optional("entity_category"): vol.In(("config", "diagnostic")),
    vol.Optional("icon"): _icon,
    vol.Optional("json_attributes_topic"): _topic,
    vol.Optional("json_attributes_template"): str,
    vol.Optional("object_id"): vol.Match(r"^[a-zA-Z0-9_-]+$"),
    vol.Optional("unique_id"): str,
    vol.Optional("name"): vol.Any(str, None),
}


def _sensor_unit(config: dict[str, Any]) -> dict[str, Any]:
    units = SENSOR_DEVICE_UNITS.get(config.get("device_class", ""))
    if units is not None and config.get("unit_of_measurement") not in units:
        raise vol.Invalid(
            f"device_class {config['device_class']} takes a unit of {sorted(units)}, "
            f"got {config.get('unit_of_measurement')!r}"
        )
    return config


SENSOR = vol.All(
    vol.Schema(
        {
            **COMMON,
            vol.Optional("device_class"): vol.In(tuple(SENSOR_DEVICE_UNITS)),
            vol.Optional("state_class"): vol.In(SENSOR_STATE_CLASSES),
            vol.Optional("unit_of_measurement"): str,
            vol.Optional("expire_after"): vol.All(int, vol.Range(min=0)),
            vol.Optional("force_update"): bool,
            vol.Optional("suggested_display_precision"): vol.All(int, vol.Range(min=0)),
        },
        extra=vol.PREVENT_EXTRA,
    ),
    _sensor_unit,
)
BINARY_SENSOR = vol.Schema(
    {
        **COMMON,
        vol.Optional("device_class"): vol.In(BINARY_SENSOR_DEVICE_CLASSES),
        vol.Optional("expire_after"): vol.All(int, vol.Range(min=0)),
        vol.Optional("force_update"): bool,
        vol.Optional("off_delay"): vol.All(int, vol.Range(min=0)),
        vol.Optional("payload_on"): str,
        vol.Optional("payload_off"): str,
    },
    extra=vol.PREVENT_EXTRA,
)
SCHEMAS: dict[str, vol.Schema | vol.All] = {"sensor": SENSOR, "binary_sensor": BINARY_SENSOR}


def validate(topic: str, prefix: str, payload: dict[str, Any]) -> str:
    """Check one discovery message as Home Assistant would; its component."""
    assert topic.startswith(prefix + "/"), topic
    m = TOPIC_MATCHER.fullmatch(topic[len(prefix) + 1 :])
    assert m is not None, f"Home Assistant drops an illegal discovery topic: {topic}"
    component = m.group("component")
    SCHEMAS[component](payload)
    return component
