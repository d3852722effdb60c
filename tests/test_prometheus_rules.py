"""deploy/prometheus/: the alerting rules and the scrape example are valid for Prometheus
(`promtool`, from Debian's `prometheus` package, installed by scripts/setup), every metric the
rules name is one a real daemon serves on /metrics (or one the notification and telemetry
work adds: listed below), and the rules fire when the metric says so (`promtool test rules`)."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.daemon import ahttp, running_daemon, write_site
from tests.support.mosquitto import Mosquitto

ROOT = Path(__file__).resolve().parent.parent
PROM = ROOT / "deploy" / "prometheus"
RULES = PROM / "sealwatch-rules.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing: scripts/setup installs Debian's prometheus"
)
# Metrics served only while notifications (daemon/notify/) or telemetry (daemon/telemetry/) are
# configured, which the daemon this test scrapes is not.
ELSEWHERE = {"sealwatch_notifications_failed_total", "sealwatch_telemetry_spool_bytes"}
# Prometheus's own series and PromQL functions, not sealwatch metrics
NOT_METRICS = {"up", "increase", "deriv", "and", "or", "unless", "rate", "job", "instance"}


def rule_metrics() -> set[str]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    names: set[str] = set()
    for group in groups:
        for rule in group["rules"]:
            expr = re.sub(r'\{[^}]*\}|"[^"]*"|\[[^\]]*\]', "", rule["expr"])
            names |= set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr)) - NOT_METRICS
    return {n for n in names if not re.fullmatch(r"\d+e\d+|e\d+", n)}


@needs_promtool
def test_promtool_accepts_the_rules_and_the_scrape_example() -> None:
    assert PROMTOOL is not None
    for args in (["check", "rules", str(RULES)], ["check", "config", str(PROM / "prometheus.yml")]):
        done = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_the_rules_fire(tmp_path: Path) -> None:
    """`promtool test rules` over made-up series: the store failing, the daemon down."""
    tests = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": [
                    {"series": 'sealwatch_store_degraded{instance="a"}', "values": "0 0 1x10"},
                    {"series": 'up{job="sealwatch",instance="a"}', "values": "1 1 0x10"},
                    {"series": 'sealwatch_mqtt_connected{instance="a"}', "values": "1x12"},
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "2m",
                        "alertname": "SealwatchStoreFailing",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "critical", "instance": "a"},
                                "exp_annotations": {
                                    "summary": "sealwatch store writes failing on a",
                                    "description": "Disk full, read-only or locked. Alerting "
                                    "goes on; accepted events are held in memory "
                                    "(sealwatch_store_pending) up to daemon.store_queue_max, "
                                    "then ingest pauses.",
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "2m",
                        "alertname": "SealwatchDown",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "critical",
                                    "instance": "a",
                                    "job": "sealwatch",
                                },
                                "exp_annotations": {
                                    "summary": "sealwatch on a cannot be scraped",
                                    "description": "The daemon is stopped, hung or unreachable: "
                                    "nothing is being watched.",
                                },
                            }
                        ],
                    },
                    {"eval_time": "2m", "alertname": "SealwatchBrokerDown", "exp_alerts": []},
                ],
            }
        ],
    }
    path = tmp_path / "rules-test.yml"
    path.write_text(yaml.safe_dump(tests))
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, "test", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
async def test_every_metric_the_rules_name_is_served(
    tmp_path: Path, mosquitto_session: Mosquitto
) -> None:
    path = write_site(tmp_path, "t-prom")
    async with running_daemon(path, mosquitto_session, tmp_path / "data") as d:
        assert d.http_port is not None
        status, text = await ahttp(d.http_port, "GET", "/metrics")
    assert status == 200 and isinstance(text, str)
    served = set(re.findall(r"^# TYPE (\w+) ", text, re.M))
    named = rule_metrics()
    assert "sealwatch_store_degraded" in named and "up" not in named  # the scan works
    missing = sorted(named - served - ELSEWHERE)
    assert not missing, f"the rules name metrics the daemon does not serve: {missing}"
    if PROMTOOL is not None:  # the exposition itself is valid for Prometheus
        done = await asyncio.to_thread(
            subprocess.run,
            [PROMTOOL, "check", "metrics"],
            input=text,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "error" not in (done.stdout + done.stderr).lower(), done.stdout + done.stderr
