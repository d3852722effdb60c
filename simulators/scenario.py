"""Scenarios: `steps: [{at: 5s, do: ACTION, ...fields}]` played against a SiteSimulator.

Every step is checked when the file loads, so a typo stops the run before anything starts.
A step's events carry ts = scenario start + `at`, so steps at the same `at` share one
timestamp; steps run in file order (stably sorted by `at`). With `loop`, the scenario starts
again one second after its last step.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import yaml

from policies.site import Site

from .actions import StepError, check_step
from .clock import now_utc

log = logging.getLogger("sealwatch.simulators.scenario")

LOOP_PAUSE_S = 1.0


class ScenarioError(ValueError):
    """The scenario file is invalid; `errors` lists every problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


class Performer(Protocol):
    async def perform(self, step: dict[str, Any], ts: datetime | None = None) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Scenario:
    steps: tuple[dict[str, Any], ...]

    @property
    def duration_s(self) -> float:
        return max((s["at"] for s in self.steps), default=0.0)


def parse_scenario(text: str, site: Site, name: str = "scenario") -> Scenario:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError([f"{name}: not valid YAML: {exc}"]) from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("steps"), list):
        raise ScenarioError([f"{name}: expected a mapping with a list under 'steps'"])
    unknown = [k for k in raw if k not in ("steps", "name", "description")]
    errors = [f"{name}.{k}: unknown key (a scenario has steps, name, description)" for k in unknown]
    steps: list[dict[str, Any]] = []
    for i, raw_step in enumerate(raw["steps"]):
        try:
            steps.append(check_step(site, raw_step, where=f"steps[{i}]", with_at=True))
        except StepError as exc:
            errors.append(str(exc))
    if errors:
        raise ScenarioError(errors)
    return Scenario(tuple(sorted(steps, key=lambda s: s["at"])))


def load_scenario(path: str | Path, site: Site) -> Scenario:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError([f"{path}: cannot read: {exc.strerror}"]) from exc
    return parse_scenario(text, site, str(path))


async def play(
    sim: Performer, scenario: Scenario, *, loop: bool = False, start: datetime | None = None
) -> int:
    """Perform every step at its time; return how many steps failed (logged, not raised)."""
    failures = 0
    start = start or now_utc()
    while True:
        for step in scenario.steps:
            due = start + timedelta(seconds=step["at"])
            delay = (due - now_utc()).total_seconds()
            if delay > 0:
                await asyncio.sleep(delay)
            action = {k: v for k, v in step.items() if k != "at"}
            try:
                await sim.perform(action, due)
            except Exception as exc:  # a failed step is reported; the scenario goes on
                failures += 1
                log.error("scenario step at %.1fs (%s) failed: %s", step["at"], step["do"], exc)
        if not loop:
            return failures
        start += timedelta(seconds=scenario.duration_s + LOOP_PAUSE_S)
