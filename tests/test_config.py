"""The runtime settings (daemon/config.py): every key of the site file's `daemon:` section and
of the environment is checked, every accepted key lands in Settings, features that are not
built are refused, and every error names its path."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from daemon.config import (
    AUTH_KEYS,
    DAEMON_KEYS,
    DASHBOARD_KEYS,
    DEVICE_KEYS,
    KNOBS,
    MQTT_KEYS,
    TLS_KEYS,
    ConfigError,
    DashboardOptions,
    DeviceOptions,
    Settings,
    load_settings,
)
from daemon.telemetry.options import InfluxOptions
from policies.site import Site, load_site, parse_site

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "deploy" / "examples" / "site.yaml"
AGENCY = ROOT / "deploy" / "examples" / "agency.yaml"


def site_with(daemon: dict[str, Any] | str) -> Site:
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    raw["daemon"] = yaml.safe_load(daemon) if isinstance(daemon, str) else daemon
    return parse_site(yaml.safe_dump(raw))


def settings(daemon: dict[str, Any] | str, env: dict[str, str] | None = None) -> Settings:
    return load_settings(site_with(daemon), env or {})


def errors(daemon: dict[str, Any] | str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as err:
        settings(daemon, env)
    return err.value.errors


# -- the reference sites and the defaults --------------------------------------------------


@pytest.mark.parametrize("path", [EXAMPLE, AGENCY], ids=["site", "agency"])
def test_reference_sites_load_with_the_defaults(path: Path) -> None:
    s = load_settings(load_site(path), {})
    assert s.mqtt.client_id == f"sealwatch-{load_site(path).id}"
    assert (s.http_host, s.http_port, s.data_dir) == ("127.0.0.1", 8080, Path("var"))
    assert s.devices == DeviceOptions() and s.dashboard == DashboardOptions()
    assert s.mqtt_mappings == () and s.warnings == ()


def test_defaults_of_the_pipeline_settings() -> None:
    s = settings({})
    assert s.retention_days >= 3 * 365
    assert (s.store_queue_max, s.store_retry_s) == (100_000, 1.0)
    assert (s.outage_lateness_max_s, s.reconnect_max_s) == (3600.0, 0.25)


def test_settings_have_no_passthrough_bag() -> None:
    assert "extra" not in {f.name for f in fields(Settings)}


# -- every key is read --------------------------------------------------------------------

# A valid value other than the default for every scalar setting.
KNOB_VALUES: dict[str, Any] = {
    "timer_lag_s": 2.5,
    "reorder_tolerance_s": 7,
    "future_tolerance_s": 9.5,
    "tick_s": 0.5,
    "ingest_hold_max_s": 4,
    "batch_max": 64,
    "snapshot_interval_s": 30,
    "snapshot_every_events": 1000,
    "retention_days": 2000,
    "size_budget_mb": 512,
    "size_warning_pct": 90,
    "sqlite_synchronous": "full",
    "store_queue_max": 5000,
    "store_retry_s": 0.2,
    "outage_lateness_max_s": 600,
    "reconnect_max_s": 2,
}


def test_every_scalar_setting_has_a_test_value() -> None:
    assert set(KNOB_VALUES) == set(KNOBS)


@pytest.mark.parametrize("key", sorted(KNOB_VALUES))
def test_every_scalar_setting_lands_in_settings(key: str) -> None:
    value = KNOB_VALUES[key]
    s = settings({key: value})
    assert getattr(s, key) == value != getattr(Settings(mqtt=s.mqtt), key)


def test_max_payload_is_given_in_kib() -> None:
    assert settings({"max_payload_kib": 8}).max_payload_bytes == 8 * 1024


def test_devices_section_becomes_device_options(tmp_path: Path) -> None:
    s = settings(
        {
            "devices": {
                "jammers": False,
                "cameras": False,
                "camera_interval_s": 0.5,
                "recordings": False,
                "recordings_interval_s": 5,
                "duty_phone": False,
                "base_dir": str(tmp_path),
            }
        }
    )
    assert s.devices == DeviceOptions(False, False, 0.5, False, 5.0, False, tmp_path)
    assert set(DEVICE_KEYS) == {f.name for f in fields(DeviceOptions)}


def test_dashboard_and_auth_sections_become_dashboard_options(tmp_path: Path) -> None:
    plan = tmp_path / "plan.png"
    plan.write_bytes(b"\x89PNG")
    s = settings(
        {
            "auth": {
                "idle_timeout_s": 600,
                "guard_idle_timeout_s": 3600,
                "max_session_s": 7200,
                "login_per_user": 3,
                "login_per_ip": 10,
                "login_window_s": 60,
                "cookie_secure": "always",
                "trust_proxy": True,
            },
            "dashboard": {
                "tick_s": 0.5,
                "floor_plan": {"image": str(plan), "width": 1600, "height": 900},
                "positions": {"cam-gate": [220, 410], "gate-inner": [300, 400.5]},
            },
        }
    )
    assert s.dashboard == DashboardOptions(
        idle_timeout_s=600,
        guard_idle_timeout_s=3600,
        max_session_s=7200,
        login_per_user=3,
        login_per_ip=10,
        login_window_s=60,
        cookie_secure="always",
        trust_proxy=True,
        tick_s=0.5,
        floor_plan=str(plan),
        floor_plan_size=(1600.0, 900.0),
        positions={"cam-gate": (220.0, 410.0), "gate-inner": (300.0, 400.5)},
    )


def test_third_party_mappings_are_parsed_into_rules() -> None:
    s = settings(
        {
            "mqtt_mappings": [
                {"topic": "z2m/+/contact", "device": "{1}", "type": "door.opened", "when": "ON"}
            ]
        }
    )
    assert [r.topic for r in s.mqtt_mappings] == ["z2m/+/contact"]


def test_mqtt_section_and_tls(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("x")
    s = settings(
        {
            "mqtt": {
                "url": "mqtts://sw@broker:8884",
                "client_id": "me",
                "keepalive_s": 60,
                "tls": {"ca_file": str(ca), "insecure": True},
            }
        }
    )
    m = s.mqtt
    assert (m.host, m.port, m.username, m.client_id, m.keepalive_s) == (
        "broker",
        8884,
        "sw",
        "me",
        60,
    )
    assert m.tls is not None and (m.tls.ca_file, m.tls.insecure) == (ca, True)


def test_environment_wins_and_password_comes_from_a_file(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    s = settings(
        {"mqtt": {"url": "mqtt://yaml-host:1883"}, "http": "0.0.0.0:9000", "data_dir": "/nope"},
        {
            "SEALWATCH_MQTT_URL": "mqtts://daemon@broker:8884",
            "SEALWATCH_MQTT_PASSWORD_FILE": str(pw),
            "SEALWATCH_DATA_DIR": str(tmp_path),
            "SEALWATCH_HTTP": "127.0.0.2:9001",
        },
    )
    assert (s.mqtt.host, s.mqtt.port, s.mqtt.username, s.mqtt.password) == (
        "broker",
        8884,
        "daemon",
        "s3cret",
    )
    assert s.mqtt.tls is not None  # mqtts
    assert (s.http_host, s.http_port, s.data_dir) == ("127.0.0.2", 9001, tmp_path)
    assert "s3cret" not in repr(s)


# -- unknown keys, with a did-you-mean, at every level ------------------------------------


@pytest.mark.parametrize(
    ("daemon", "expected"),
    [
        (
            {"retention_dayz": 2000},
            "daemon.retention_dayz: unknown key (did you mean 'retention_days'?)",
        ),
        (
            {"mqtt": {"clientid": "x"}},
            "daemon.mqtt.clientid: unknown key (did you mean 'client_id'?)",
        ),
        (
            {"mqtt": {"url": "mqtts://h", "tls": {"cafile": "x"}}},
            "daemon.mqtt.tls.cafile: unknown key (did you mean 'ca_file'?)",
        ),
        (
            {"devices": {"camera": True}},
            "daemon.devices.camera: unknown key (did you mean 'cameras'?)",
        ),
        ({"dashboard": {"tick": 1}}, "daemon.dashboard.tick: unknown key (did you mean 'tick_s'?)"),
        (
            {"auth": {"trust_proxies": True}},
            "daemon.auth.trust_proxies: unknown key (did you mean 'trust_proxy'?)",
        ),
        (
            {"dashboard": {"floor_plan": {"image": "x", "width": 1, "heigth": 1}}},
            "daemon.dashboard.floor_plan.heigth: unknown key (did you mean 'height'?)",
        ),
        (
            {"dashboard": {"positions": {"cam-gat": [1, 2]}}},
            "daemon.dashboard.positions.cam-gat: no device, door or zone 'cam-gat' in the site"
            " (did you mean 'cam-gate'?)",
        ),
        (
            {"mqtt_mappings": [{"topic": "a/b", "device": "d", "type": "door.opend"}]},
            "daemon.mqtt_mappings[0].type: unknown event type 'door.opend' (did you mean"
            " 'door.opened'?)",
        ),
    ],
)
def test_unknown_keys_name_their_path_and_the_near_miss(
    daemon: dict[str, Any], expected: str
) -> None:
    assert expected in errors(daemon)


# -- bad types and ranges -----------------------------------------------------------------

BAD_KNOBS: list[tuple[str, Any]] = [
    *((k, "soon") for k in KNOBS if k != "sqlite_synchronous"),
    *((k, True) for k in KNOBS if k != "sqlite_synchronous"),
    *((k, [1]) for k in KNOBS),
    ("timer_lag_s", -1),
    ("timer_lag_s", 61),
    ("reorder_tolerance_s", 3601),
    ("tick_s", 0),
    ("tick_s", float("nan")),
    ("batch_max", 0),
    ("batch_max", 2.5),
    ("snapshot_every_events", 10),
    ("size_budget_mb", 0),
    ("size_warning_pct", 101),
    ("sqlite_synchronous", "fsync"),
    ("store_queue_max", 0),
    ("store_queue_max", 10**9),
    ("store_queue_max", 100.5),
    ("store_retry_s", 0),
    ("store_retry_s", float("inf")),
    ("outage_lateness_max_s", -5),
    ("outage_lateness_max_s", 8 * 86_400),
    ("reconnect_max_s", 0),
    ("reconnect_max_s", 301),
]


@pytest.mark.parametrize(("key", "value"), BAD_KNOBS)
def test_bad_scalar_settings_are_refused_naming_the_key(key: str, value: Any) -> None:
    (error,) = errors({key: value})
    assert error.startswith(f"daemon.{key}: ")


def test_retention_below_three_years_is_refused() -> None:
    (error,) = errors({"retention_days": 365})
    assert error.startswith("daemon.retention_days: 365 is below") and "EXAM-2.6.7" in error


@pytest.mark.parametrize(
    ("daemon", "expected"),
    [
        ({"mqtt": 5}, "daemon.mqtt: expected a mapping, got int"),
        (
            {"mqtt": {"keepalive_s": 1}},
            "daemon.mqtt.keepalive_s: expected a whole number from 5 to 3600, got 1",
        ),
        ({"mqtt": {"url": "http://broker"}}, "daemon.mqtt.url: 'http://broker' is not mqtt://"),
        (
            {"mqtt": {"url": "mqtt://broker:99999"}},
            "daemon.mqtt.url: bad port in 'mqtt://broker:99999'",
        ),
        ({"mqtt": {"url": "mqtt://u:pw@broker"}}, "daemon.mqtt.url: no passwords in the URL"),
        (
            {"mqtt": {"password_file": "/no/such/file"}},
            "daemon.mqtt.password_file: cannot read /no/such/file",
        ),
        (
            {"mqtt": {"url": "mqtts://b", "tls": {"ca_file": "/no/ca"}}},
            "daemon.mqtt.tls.ca_file: no such file: /no/ca",
        ),
        (
            {"mqtt": {"url": "mqtts://b", "tls": {"insecure": "yes"}}},
            "daemon.mqtt.tls.insecure: expected true or false",
        ),
        (
            {"mqtt": {"url": "mqtts://b", "tls": []}},
            "daemon.mqtt.tls: expected a mapping, got list",
        ),
        ({"http": "8080"}, "daemon.http: '8080' is not host:port"),
        ({"http": "h:70000"}, "daemon.http: 'h:70000' is not host:port"),
        ({"http": ["h", 1]}, "daemon.http: expected text, got list"),
        ({"data_dir": ""}, "daemon.data_dir: expected a path"),
        ({"data_dir": 5}, "daemon.data_dir: expected a path, got 5"),
        ({"max_payload_kib": 0}, "daemon.max_payload_kib: expected a whole number from 1 to 16384"),
        ({"devices": "all"}, "daemon.devices: expected a mapping, got str"),
        (
            {"devices": {"jammers": "yes"}},
            "daemon.devices.jammers: expected true or false, got 'yes'",
        ),
        (
            {"devices": {"camera_interval_s": 0}},
            "daemon.devices.camera_interval_s: expected a number",
        ),
        (
            {"devices": {"recordings_interval_s": "1m"}},
            "daemon.devices.recordings_interval_s: expected a number",
        ),
        ({"devices": {"base_dir": 3}}, "daemon.devices.base_dir: expected a path, got 3"),
        ({"auth": {"idle_timeout_s": -1}}, "daemon.auth.idle_timeout_s: expected a number"),
        ({"auth": {"login_per_user": 0}}, "daemon.auth.login_per_user: expected a whole number"),
        ({"auth": {"login_per_ip": 1.5}}, "daemon.auth.login_per_ip: expected a whole number"),
        (
            {"auth": {"cookie_secure": "sometimes"}},
            "daemon.auth.cookie_secure: 'sometimes' is not one of auto, always, never",
        ),
        ({"auth": {"trust_proxy": 1}}, "daemon.auth.trust_proxy: expected true or false, got 1"),
        ({"auth": "strict"}, "daemon.auth: expected a mapping, got str"),
        ({"dashboard": {"tick_s": 0}}, "daemon.dashboard.tick_s: expected a number"),
        (
            {"dashboard": {"floor_plan": "plan.png"}},
            "daemon.dashboard.floor_plan: expected a mapping, got str",
        ),
        (
            {"dashboard": {"floor_plan": {"image": "/no/plan.png"}}},
            "daemon.dashboard.floor_plan: needs width, height",
        ),
        (
            {"dashboard": {"floor_plan": {"image": "/no/plan.png", "width": 10, "height": 10}}},
            "daemon.dashboard.floor_plan.image: no such file: /no/plan.png",
        ),
        (
            {"dashboard": {"floor_plan": {"image": "/p", "width": 0, "height": 10}}},
            "daemon.dashboard.floor_plan.width: expected a number",
        ),
        (
            {"dashboard": {"positions": [1, 2]}},
            "daemon.dashboard.positions: expected a mapping, got list",
        ),
        (
            {"dashboard": {"positions": {"cam-gate": [1]}}},
            "daemon.dashboard.positions.cam-gate: expected [x, y], got [1]",
        ),
        (
            {"mqtt_mappings": {"topic": "x"}},
            "daemon.mqtt_mappings: expected a list of rules, got dict",
        ),
    ],
)
def test_bad_values_in_sections_name_their_path(daemon: dict[str, Any], expected: str) -> None:
    assert any(e.startswith(expected) for e in errors(daemon)), errors(daemon)


def test_every_problem_is_reported_at_once() -> None:
    found = errors(
        {
            "tick_s": 0,
            "mqtt": {"keepalive_s": 0},
            "devices": {"jammers": 1},
            "auth": {"login_per_ip": 0},
            "dashboard": {"tick_s": -1},
            "influxdb": {"url": "http://influx:8086"},
        }
    )
    assert sorted(e.split(":")[0] for e in found) == [
        "daemon.auth.login_per_ip",
        "daemon.dashboard.tick_s",
        "daemon.devices.jammers",
        "daemon.influxdb",
        "daemon.mqtt.keepalive_s",
        "daemon.tick_s",
    ]


def test_password_in_the_site_file_is_refused() -> None:
    assert errors({"mqtt": {"password": "hunter2"}}) == [
        "daemon.mqtt.password: secrets are not kept in the site file; "
        "write it to a file and name it in password_file"
    ]


# -- features that are not built are refused, never ignored -------------------------------


def test_influxdb_section_is_read_with_its_defaults(tmp_path: Path) -> None:
    token = tmp_path / "influx.token"
    token.write_text("s3cret\n")
    s = settings(
        {
            "influxdb": {
                "url": "http://influx:8086/",
                "org": "works",
                "bucket": "sealwatch",
                "token_file": str(token),
                "batch_size": 500,
                "spool_max_bytes": 1048576,
            }
        }
    )
    assert s.influxdb == InfluxOptions(
        url="http://influx:8086",
        org="works",
        bucket="sealwatch",
        token="s3cret",
        batch_size=500,
        spool_max_bytes=1048576,
    )
    assert "s3cret" not in repr(s)
    assert settings({}).influxdb is None  # telemetry is optional


def test_influxdb_token_from_the_environment_variable_it_names() -> None:
    s = settings(
        {"influxdb": {"url": "https://i:8086", "org": "o", "bucket": "b", "token_env": "TOK"}},
        {"TOK": "abc"},
    )
    assert s.influxdb is not None and s.influxdb.token == "abc"


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (None, "daemon.influxdb: needs url, org, bucket (or remove the section)"),
        ({"url": "http://influx:8086"}, "daemon.influxdb: needs org, bucket"),
        (
            {"url": "http://i:8086", "org": "o", "bucket": "b", "token": "x"},
            "daemon.influxdb.token: secrets are not kept in the site file; write it to a file "
            "and name it in token_file, or name an environment variable in token_env",
        ),
        (
            {"url": "http://i:8086", "org": "o", "bucket": "b", "batch_sise": 5},
            "daemon.influxdb.batch_sise: unknown key (did you mean 'batch_size'?)",
        ),
        (
            {"url": "influx:8086", "org": "o", "bucket": "b"},
            "daemon.influxdb.url: 'influx:8086' is not http://host:port or https://host:port",
        ),
        (
            {"url": "http://i:8086", "org": "o", "bucket": "b", "spool_max_bytes": 10},
            "daemon.influxdb.spool_max_bytes: ",
        ),
        (
            {"url": "http://i:8086", "org": "o", "bucket": "b", "token_env": "NOPE_X"},
            "daemon.influxdb.token_env: the environment variable NOPE_X is not set",
        ),
        (
            {"url": "http://i:8086", "org": "o", "bucket": "b", "token_file": "/no/such"},
            "daemon.influxdb.token_file: cannot read /no/such",
        ),
        (
            {"url": "http://i:8086", "org": "o", "bucket": "b", "retry_min_s": 9, "retry_max_s": 2},
            "daemon.influxdb.retry_min_s: 9 is above retry_max_s (2)",
        ),
        ("not a mapping", "daemon.influxdb: expected a mapping"),
    ],
)
def test_influxdb_mistakes_name_their_path(section: Any, expected: str) -> None:
    found = errors({"influxdb": section})
    assert len(found) == 1 and found[0].startswith(expected), found


def test_webhooks_are_refused_pointing_at_notifications() -> None:
    assert errors({"webhooks": [{"url": "https://hooks.example/alerts"}]}) == [
        "daemon.webhooks: webhooks are a channel of daemon.notifications (type: webhook; "
        "see docs/notifications.md)"
    ]
    assert len(errors("webhooks:\n")) == 1


def test_central_in_a_site_file_points_at_sealwatch_central() -> None:
    (error,) = errors("central:\n")
    assert error.startswith("daemon.central: the centre is a program of its own")
    assert "sealwatch central --config CENTRAL.yaml" in error


# -- the environment ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SEALWATCH_HTTP": "localhost"}, "SEALWATCH_HTTP: 'localhost' is not host:port"),
        (
            {"SEALWATCH_MQTT_URL": "tcp://b:1883"},
            "SEALWATCH_MQTT_URL: 'tcp://b:1883' is not mqtt://",
        ),
        (
            {"SEALWATCH_MQTT_PASSWORD_FILE": "/no/pw"},
            "SEALWATCH_MQTT_PASSWORD_FILE: cannot read /no/pw",
        ),
    ],
)
def test_bad_environment_values_name_the_variable(env: dict[str, str], expected: str) -> None:
    assert any(e.startswith(expected) for e in errors({}, env))


def test_unknown_sealwatch_variables_are_warned_about_with_a_near_miss() -> None:
    s = settings({}, {"SEALWATCH_DATADIR": "/x", "SEALWATCH_MQTT_USERNAME": "sim", "HOME": "/"})
    assert s.warnings == (
        "SEALWATCH_DATADIR: unknown environment variable, ignored "
        "(did you mean 'SEALWATCH_DATA_DIR'?)",
    )


# -- the documentation keeps up -----------------------------------------------------------


def test_docs_list_every_setting() -> None:
    text = (ROOT / "docs" / "daemon.md").read_text(encoding="utf-8")
    keys = {
        *DAEMON_KEYS,
        *MQTT_KEYS,
        *TLS_KEYS,
        *DEVICE_KEYS,
        *AUTH_KEYS,
        *DASHBOARD_KEYS,
    }
    missing = sorted(k for k in keys if f"{k}:" not in text and f"`{k}`" not in text)
    assert not missing, f"docs/daemon.md does not describe {missing}"
