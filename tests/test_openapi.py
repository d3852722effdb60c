"""The OpenAPI description of the HTTP API (daemon/http/openapi.yaml, served at
/api/openapi.json) matches the daemon, and schemathesis finds no 5xx against the real one.

Every aiohttp route is described (so the document cannot drift from the code). Then one
real daemon process (real Mosquitto, SQLite, aiohttp) with users and open alerts is driven by
schemathesis: every operation with examples generated from the document (positive and
negative), with the CLI's API token so the handlers are reached, checking that no answer is a
server error and that answers conform to the documented status codes and response schemas.
Budget: EXAMPLES per operation (31 operations), about a minute in all.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from daemon.http.app import OPENAPI_FILE
from tests.support.browser import add_users
from tests.support.daemon import DaemonProcess, running_daemon, wait_until, write_site
from tests.support.mosquitto import Mosquitto

EXAMPLES = 30  # per operation: ~31 operations, about a minute against the real daemon
DOC = yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8"))
schema = schemathesis.openapi.from_dict(DOC).exclude(path="/live")  # a WebSocket
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


def _template(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


async def test_every_route_is_described(tmp_path: Path, mosquitto_session: Mosquitto) -> None:
    site_path = write_site(tmp_path, "openapi-routes")
    async with running_daemon(site_path, mosquitto_session, tmp_path / "data") as d:
        routes = set()
        for route in d.app.router.routes():
            info = route.resource.get_info() if route.resource is not None else {}
            path = info.get("path") or info.get("formatter") or ""
            if "prefix" in info:  # the static files
                path = info["prefix"] + "/{file}"
            if route.method != "HEAD":
                routes.add((route.method.lower(), _template(path)))
    described = {
        (method, _template(path))
        for path, item in DOC["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert routes - described == set(), "routes not in daemon/http/openapi.yaml"
    assert described - routes == set(), "described routes the daemon does not have"


def test_the_document_is_valid_openapi() -> None:
    assert DOC["openapi"].startswith("3.")
    schemathesis.openapi.from_dict(DOC).validate()  # raises on an invalid document


# -- schemathesis against the real daemon --------------------------------------------------------


class Rig:
    def __init__(self, proc: DaemonProcess, token: str) -> None:
        self.proc = proc
        self.base = f"http://127.0.0.1:{proc.http_port}"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.session = requests.Session()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, mosquitto_session: Mosquitto) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("openapi")
    site_path = write_site(tmp, "openapi")
    data_dir = tmp / "data"
    add_users(data_dir)
    proc = DaemonProcess(site_path, mosquitto_session, data_dir).start()
    try:
        asyncio.run(proc.ready())
        rig = Rig(proc, (data_dir / "api.token").read_text().strip())
        # A seal with nobody on duty: real open alerts for the alert routes.
        r = rig.session.post(
            rig.base + "/api/seals/s-o/start",
            data=json.dumps({"badge": "S2001", "name": "o", "classification": "secret"}),
            headers=rig.headers,
            timeout=30,
        )
        assert r.status_code == 200, r.text

        def alerts() -> list[Any] | None:
            got = rig.session.get(rig.base + "/api/alerts", headers=rig.headers, timeout=30)
            return got.json() or None

        asyncio.run(wait_until(alerts, what="the seal's alerts"))
        yield rig
        assert proc.proc is not None and proc.proc.poll() is None, "the daemon exited"
        log = proc.log.read_text(errors="replace")
        assert "Traceback" not in log, log[-4000:]
    finally:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.terminate()


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_and_never_answers_5xx(case: Any, rig: Rig) -> None:
    case.call_and_validate(
        base_url=rig.base,
        session=rig.session,
        headers=rig.headers,
        checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
    )
