"""The pre-seal check (EXAM-2.8.14) against a whole simulated site over real protocols: it
passes on a healthy site, and fails — on the right item, naming the device — for each kind of
readiness problem the simulators can inject (docs/simulators.md), then passes again once the
device is restored. `recording.prune` comes last: nothing brings deleted footage back.

The checks are read through the daemon's own view (what GET /api/precheck and
`sealwatch precheck` answer), after the simulator's action has been done by the device."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.support.daemon import wait_until
from tests.support.e2e import Rig, e2e_rig
from tests.support.mosquitto import Mosquitto

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

CONSOLE = "console-1"
HEALTHY = [
    {"do": "operator.on", "console": CONSOLE, "badge": "O4001"},
    {"do": "panel.arm", "panel": "panel-main"},
]
# (what is done, what undoes it, the item that must fail, a problem it must list)
PROBLEMS: list[tuple[dict[str, Any], dict[str, Any] | None, str, str]] = [
    (
        {"do": "door.open", "door": "fire-exit-north"},
        {"do": "door.close", "door": "fire-exit-north"},
        "boundary and entrance doors closed",
        "door fire-exit-north open",
    ),
    (
        {"do": "door.open", "door": "gate-outer"},
        {"do": "door.close", "door": "gate-outer"},
        "boundary and entrance doors closed",
        "door gate-outer open",
    ),
    (
        {"do": "jammer.band_down", "jammer": "jam-work", "band": "gsm900"},
        {"do": "jammer.band_up", "jammer": "jam-work", "band": "gsm900"},
        "every jammer band above its floor, output on",
        "jammer jam-work band gsm900 below floor",
    ),
    (
        {"do": "jammer.output_off", "jammer": "jam-living"},
        {"do": "jammer.output_on", "jammer": "jam-living"},
        "every jammer band above its floor, output on",
        "jammer jam-living output off",
    ),
    (
        {"do": "jammer.fault", "jammer": "jam-work", "fault": "over_temperature"},
        {"do": "jammer.clear", "jammer": "jam-work", "fault": "over_temperature"},
        "jammers answering, without faults",
        "jammer jam-work fault over_temperature",
    ),
    (
        {"do": "jammer.garbage", "jammer": "jam-living"},
        {"do": "jammer.normal", "jammer": "jam-living"},
        "jammers answering, without faults",
        "jammer jam-living not answering with its status",
    ),
    (
        {"do": "jammer.disconnect", "jammer": "jam-work"},
        {"do": "jammer.reconnect", "jammer": "jam-work"},
        "every device reporting",
        "jam-work offline",
    ),
    (
        {"do": "camera.cover", "camera": "cam-gate"},
        {"do": "camera.restore", "camera": "cam-gate"},
        "cameras streaming without tamper",
        "camera cam-gate",
    ),
    (
        {"do": "camera.freeze", "camera": "cam-press"},
        {"do": "camera.restore", "camera": "cam-press"},
        "cameras streaming without tamper",
        "camera cam-press",
    ),
    (
        {"do": "camera.disconnect", "camera": "cam-secure"},
        {"do": "camera.reconnect", "camera": "cam-secure"},
        "cameras streaming without tamper",
        "camera cam-secure down",
    ),
    (
        {"do": "panel.disarm", "panel": "panel-main"},
        {"do": "panel.arm", "panel": "panel-main"},
        "perimeter armed",
        "perimeter panel panel-main disarmed",
    ),
    (
        {"do": "panel.mains_lost", "panel": "panel-main"},
        {"do": "panel.mains_ok", "panel": "panel-main"},
        "alarm panels and inputs sound",
        "alarm panel panel-main mains lost",
    ),
    (
        {"do": "panel.battery_low", "panel": "panel-main"},
        {"do": "panel.battery_ok", "panel": "panel-main"},
        "alarm panels and inputs sound",
        "alarm panel panel-main battery low",
    ),
    (
        {"do": "panel.tamper", "panel": "panel-main"},
        {"do": "panel.tamper_ok", "panel": "panel-main"},
        "alarm panels and inputs sound",
        "alarm panel panel-main tamper",
    ),
    (
        {"do": "alarm.tamper", "input": "belt-south-pir"},
        {"do": "alarm.restore", "input": "belt-south-pir"},
        "alarm panels and inputs sound",
        "alarm input belt-south-pir tamper",
    ),
    (
        {"do": "operator.off", "console": CONSOLE, "badge": "O4001"},
        {"do": "operator.on", "console": CONSOLE, "badge": "O4001"},
        "monitoring room staffed",
        "monitoring-room: 0 of 1 operators on duty",
    ),
    (
        {"do": "device.silence", "device": "pd-work"},
        {"do": "device.resume", "device": "pd-work"},
        "every device reporting",
        "pd-work offline",
    ),
    (  # last: deleted footage does not come back
        {"do": "recording.prune", "camera": "cam-typesetting", "keep_days": 1},
        None,
        "video retention compliant",
        "camera cam-typesetting out of retention",
    ),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig(
    tmp_path_factory: pytest.TempPathFactory, mosquitto_session: Mosquitto
) -> AsyncIterator[Rig]:
    async with e2e_rig(tmp_path_factory.mktemp("precheck"), mosquitto_session, "pre-live") as r:
        for step in HEALTHY:
            await r.do(**step)
        yield r


def checks(rig: Rig) -> dict[str, Any]:
    assert rig.daemon.view is not None
    return rig.daemon.view.precheck("S2001")


def failing(rig: Rig) -> dict[str, list[str]]:
    return {i["item"]: i["problems"] for i in checks(rig)["items"] if not i["passed"]}


async def healthy(rig: Rig, what: str) -> None:
    await wait_until(lambda: checks(rig)["passed"] or None, 60, what)


async def test_passes_on_a_healthy_site(rig: Rig) -> None:
    try:
        await healthy(rig, "the pre-seal check to pass on the healthy site")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; still failing: {failing(rig)}") from None
    record = checks(rig)
    assert all(i["evidence"] for i in record["items"]), record
    assert len(record["items"]) == 9


@pytest.mark.parametrize(
    ("do", "undo", "item", "problem"), PROBLEMS, ids=[p[0]["do"] for p in PROBLEMS]
)
async def test_fails_for_each_injected_problem(
    rig: Rig, do: dict[str, Any], undo: dict[str, Any] | None, item: str, problem: str
) -> None:
    await healthy(rig, "the pre-seal check to pass before the problem")
    await rig.do(**do)

    def fails() -> bool | None:
        return any(problem in p for p in failing(rig).get(item, [])) or None

    try:
        await wait_until(fails, 60, f"the pre-seal check to fail on {item!r}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; failing instead: {failing(rig)}") from None
    assert checks(rig)["passed"] is False
    if undo is not None:
        await rig.do(**undo)
        try:
            await healthy(rig, f"the pre-seal check to pass again after {undo['do']}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; still failing: {failing(rig)}") from None
