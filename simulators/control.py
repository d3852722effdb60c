"""The control port: drive a running simulator over HTTP.

POST /actions   one step object or a list (scenario fields without `at`)
                200 {"ok": true, "ts": ..., "results": [...]} once performed (MQTT events
                acknowledged by the broker); 400 {"ok": false, "error": reason} for a bad
                step (nothing of the request is performed); 503 when the broker is away
GET /health     {"ok": true, "performed": N}
GET /devices    the state of every simulated device
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from .actions import StepError, check_step
from .gateways import GatewayError
from .site_sim import SiteSimulator

log = logging.getLogger("sealwatch.simulators.control")


def control_app(sim: SiteSimulator) -> web.Application:
    async def actions(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError as exc:
            return _error(400, f"body is not JSON: {exc}")
        steps: list[Any] = body if isinstance(body, list) else [body]
        try:
            for i, step in enumerate(steps):
                where = f"actions[{i}]" if isinstance(body, list) else "action"
                if isinstance(step, dict) and "at" in step:
                    raise StepError(f"{where}.at: the control port performs steps now; drop 'at'")
                check_step(sim.site, step, where=where)
        except StepError as exc:
            return _error(400, str(exc))
        results: list[dict[str, Any]] = []
        try:
            for step in steps:
                results.append(await sim.perform(step))
        except StepError as exc:
            return _error(400, str(exc), results)
        except GatewayError as exc:
            return _error(503, str(exc), results)
        except Exception as exc:  # never let one request take the simulator down
            log.exception("action failed")
            return _error(500, f"{type(exc).__name__}: {exc}", results)
        return web.json_response(
            {"ok": True, "ts": results[-1]["ts"] if results else None, "results": results}
        )

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "site": sim.site.id, "performed": sim.performed})

    async def devices(_request: web.Request) -> web.Response:
        return web.json_response(sim.describe())

    app = web.Application()
    app.router.add_post("/actions", actions)
    app.router.add_get("/health", health)
    app.router.add_get("/devices", devices)
    return app


def _error(status: int, reason: str, done: list[dict[str, Any]] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error": reason}
    if done:
        body["performed"] = done
    return web.json_response(body, status=status)


async def start_control(sim: SiteSimulator, host: str, port: int) -> web.AppRunner:
    """Serve the control port; the caller cleans the runner up."""
    runner = web.AppRunner(
        control_app(sim), access_log=None, handle_signals=False, shutdown_timeout=1.0
    )
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("control port on http://%s:%d", host, port)
    return runner
