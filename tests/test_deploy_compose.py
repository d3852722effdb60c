"""The container deployment (docs/deploy.md, "Docker and compose"): the Dockerfile and
deploy/compose.yaml. No Docker engine runs here, so nothing is built or started: the compose
file is checked by Debian's `docker-compose config` (skipped, saying so, where the tool is
missing) and its structure by the checks below, which always run."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
SITE_SERVICES = {"mosquitto", "influxdb", "grafana", "sealwatch"}
LAB_SERVICES = {"lab-broker", "sealwatch-lab", "simulators"}
SECRET_FILES = (
    "secrets/mosquitto/secrets/sealwatch.password",
    "secrets/mosquitto/ca.crt",
    "secrets/audit-ed25519.key",
    "secrets/influxdb-password",
    "secrets/influxdb-token",
    "secrets/grafana-admin-password",
    "site.yaml",
)


def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def test_the_compose_file_runs_every_site_service_hardened_with_a_healthcheck() -> None:
    services: dict[str, Any] = _compose()["services"]
    assert set(services) == SITE_SERVICES | LAB_SERVICES
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, name
        assert not svc.get("privileged"), name
        assert svc.get("network_mode", "") in ("", "service:sealwatch-lab"), name
        assert svc.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in svc.get("security_opt", []), name
        assert "SYS_ADMIN" not in svc.get("cap_add", []), name
        if name in SITE_SERVICES:
            assert "profiles" not in svc, f"{name} must start with the site"
            assert svc["healthcheck"]["test"], name
        else:
            assert svc["profiles"] == ["simulators"], name
    # the daemon's healthcheck asks its /healthz; its data lives in a named volume
    sw = services["sealwatch"]
    assert "/healthz" in " ".join(sw["healthcheck"]["test"])
    assert "sealwatch-data:/var/lib/sealwatch" in sw["volumes"]
    assert sw["user"] != "0" and not str(sw["user"]).startswith("0:")
    # secrets come as files, never as values in the environment
    env = sw["environment"]
    assert env["SEALWATCH_MQTT_PASSWORD_FILE"].startswith("/run/secrets/")
    assert env["SEALWATCH_AUDIT_KEY_FILE"].startswith("/run/secrets/")
    assert env["SEALWATCH_MQTT_URL"].startswith("mqtts://")
    assert not any("PASSWORD=" in str(v) or "TOKEN=" in str(v) for v in env.values())
    # only the site-facing services publish ports; InfluxDB stays on the internal network
    assert _compose()["networks"]["site"]["internal"] is True
    assert "ports" not in services["influxdb"] and services["influxdb"]["networks"] == ["site"]


def test_every_file_the_compose_file_mounts_from_the_repository_exists() -> None:
    services: dict[str, Any] = _compose()["services"]
    shipped = 0
    for name, svc in services.items():
        build = svc.get("build")
        if build:
            context = DEPLOY / (build if isinstance(build, str) else build["context"])
            dockerfile = "Dockerfile" if isinstance(build, str) else build["dockerfile"]
            assert (context / dockerfile).is_file(), name
        for volume in svc.get("volumes", []):
            source = re.sub(r"\$\{[A-Z_]+:-([^}]+)\}", r"\1", volume).split(":", 1)[0]
            if not source.startswith("."):
                assert source in _compose()["volumes"], f"{name}: undeclared volume {source}"
                continue
            if any(source.lstrip("./").startswith(s) for s in ("secrets/", "site.yaml")):
                continue  # the site's own files (docs/deploy.md)
            assert (DEPLOY / source).exists(), f"{name}: {source} is not in deploy/"
            shipped += 1
    assert shipped >= 6


def test_grafana_is_provisioned_with_the_influxdb_source_and_the_dashboards_folder() -> None:
    services: dict[str, Any] = _compose()["services"]
    prov = DEPLOY / "grafana" / "provisioning"
    ds = yaml.safe_load((prov / "datasources" / "influxdb.yaml").read_text())["datasources"][0]
    assert ds["type"] == "influxdb" and ds["jsonData"]["version"] == "Flux"
    assert ds["url"] == "http://influxdb:8086"
    env = services["influxdb"]["environment"]
    assert ds["jsonData"]["organization"] == env["DOCKER_INFLUXDB_INIT_ORG"]
    assert ds["jsonData"]["defaultBucket"] == env["DOCKER_INFLUXDB_INIT_BUCKET"]
    token = env["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN_FILE"]
    assert ds["secureJsonData"]["token"] == f"$__file{{{token}}}"
    provider = yaml.safe_load((prov / "dashboards" / "sealwatch.yaml").read_text())["providers"][0]
    mounts = dict(v.split(":")[:2] for v in services["grafana"]["volumes"])
    assert mounts["./grafana"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    # offline: no update checks or usage reports
    genv = services["grafana"]["environment"]
    assert genv["GF_ANALYTICS_REPORTING_ENABLED"] == genv["GF_ANALYTICS_CHECK_FOR_UPDATES"]
    assert genv["GF_ANALYTICS_CHECK_FOR_UPDATES"] == "false"


def test_the_dockerfile_is_multi_stage_from_the_wheelhouse_non_root_with_a_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    froms = [ln for ln in lines if ln.startswith("FROM ")]
    assert len(froms) == 2 and all("python:3.11-slim" in f for f in froms)
    assert "COPY dist/wheelhouse /wheelhouse" in text
    assert "--no-index --find-links /wheelhouse sealwatch" in text
    assert [ln for ln in lines if ln.startswith("USER ")] == ["USER sealwatch"]
    health = next(ln for ln in lines if ln.startswith("HEALTHCHECK"))
    assert "HEALTHCHECK" in health and "/healthz" in text.split("HEALTHCHECK", 1)[1]
    assert 'VOLUME ["/var/lib/sealwatch"]' in lines
    # the context is the wheelhouse only
    assert (ROOT / ".dockerignore").read_text().split("\n")[-3:-1] == ["*", "!dist/wheelhouse/"]


def test_the_mosquitto_container_script_keeps_the_shipped_configuration() -> None:
    script = DEPLOY / "mosquitto" / "container-start.sh"
    subprocess.run(["sh", "-n", str(script)], check=True)
    text = script.read_text()
    # only the log destination and the key's path change (as in tests/test_broker_security.py)
    assert text.count("-e 's") == 2 and "log_dest stdout" in text and "keyfile" in text
    services: dict[str, Any] = _compose()["services"]
    assert (
        "./mosquitto/mosquitto.conf:/etc/sealwatch-mosquitto/mosquitto.conf:ro"
        in services["mosquitto"]["volumes"]
    )


def _docker_compose() -> str:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip(
            "docker-compose is not installed (scripts/setup installs Debian's): the compose "
            "file's structure is still checked by the other tests of this module"
        )
    return tool


def test_docker_compose_accepts_the_file_with_and_without_the_simulators(tmp_path: Path) -> None:
    tool = _docker_compose()
    deploy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, deploy, ignore=shutil.ignore_patterns("secrets", "site.yaml"))
    for name in SECRET_FILES:
        (deploy / name).parent.mkdir(parents=True, exist_ok=True)
        (deploy / name).write_text("placeholder\n")
    (tmp_path / "Dockerfile").write_text((ROOT / "Dockerfile").read_text())

    def compose(*args: str) -> str:
        out = subprocess.run(
            [tool, "-f", "compose.yaml", *args],
            cwd=deploy,
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    # (docker-compose 1.29 lists every service whatever the profile; it keeps `profiles`)
    resolved = yaml.safe_load(compose("config"))
    assert set(resolved["services"]) == SITE_SERVICES | LAB_SERVICES
    for name in LAB_SERVICES:
        assert resolved["services"][name]["profiles"] == ["simulators"]
    assert set(compose("--profile", "simulators", "config", "--services").split()) == (
        SITE_SERVICES | LAB_SERVICES
    )
    sw = resolved["services"]["sealwatch"]
    assert Path(sw["build"]["context"]) == tmp_path
    assert sw["healthcheck"]["test"][0] == "CMD"
    assert set(resolved["secrets"]) >= {"mqtt-password", "audit-key"}
