"""The escalation chain (ISA-18.2), a pure function of an alert's transitions and the config.

Only critical alerts climb it, as only they are escalated by the engine:

- step 0, **operators**: when the alert is raised critical (or rises to critical: an
  `escalated` transition whose previous severity was lower);
- step 1, **the supervisor on duty**: at the engine's own `escalated` transition, which it
  writes once, `ack_escalation_s` after the raise if nobody acknowledged (docs/policies.md);
- step k ≥ 2: `levels[k-2]`, `after_s` after step k-1, while the alert stays unacknowledged.

`acknowledged` and `cleared` stop the chain for good. `shelved` pauses it; `unshelved` starts
the wait for the next step again in full (as the engine does for its own escalation). The
engine's §3 transitions are unchanged: steps beyond 1 exist only as notification records.

`ChainState` is fed transitions in order and asked for timer steps up to a time; the live sink
runs it on the wall clock, `timeline()` on a replayed stream's transitions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from daemon.notify.config import Escalation
from policies.timefmt import parse_ts

US = 1_000_000


@dataclass(frozen=True, slots=True)
class Step:
    alert_id: str
    level: int  # 0 operators, 1 the supervisor on duty, 2… the configured levels
    due: int  # µs since the epoch (engine time of the transition, or the timer's due time)
    recipients: tuple[str, ...]
    transition_id: int | None = None  # the transition that made it (steps 0 and 1)
    cause: str = "timer"  # raised | escalated | timer


@dataclass(frozen=True, slots=True)
class TransitionIn:
    ts: int
    alert_id: str
    state: str
    severity: str
    id: int | None = None

    @classmethod
    def of(cls, line: Mapping[str, Any]) -> TransitionIn:
        """From a §3 line (the `sealwatch replay` output, or a stored row with its `id`)."""
        ts = line["ts"]
        return cls(
            ts if isinstance(ts, int) else parse_ts(str(ts)),
            str(line["alert_id"]),
            str(line["state"]),
            str(line["severity"]),
            int(line["id"]) if line.get("id") is not None else None,
        )


class ChainState:
    """One alert's place on the chain."""

    def __init__(self, escalation: Escalation, alert_id: str) -> None:
        self.escalation = escalation
        self.alert_id = alert_id
        self.level = -1  # the last step taken
        self.base: int | None = None  # when the wait for the next timer step began
        self.severity: str | None = None
        self.paused = False
        self.stopped: str | None = None  # why the chain ended

    @property
    def done(self) -> bool:
        return self.stopped is not None

    def next_due(self) -> int | None:
        """When the next timer step falls due (None: none is waiting)."""
        if self.done or self.paused or self.base is None or self.level < 1:
            return None
        k = self.level + 1
        if k - 2 >= len(self.escalation.levels):
            return None
        return self.base + round(self.escalation.levels[k - 2].after_s * US)

    def advance(self, now: int, *, inclusive: bool = True) -> list[Step]:
        """Timer steps due by `now` (before it, with inclusive=False)."""
        out = []
        while (due := self.next_due()) is not None and (due <= now if inclusive else due < now):
            self.level += 1
            self.base = due
            out.append(Step(self.alert_id, self.level, due, self.escalation.recipients(self.level)))
        return out

    def feed(self, t: TransitionIn) -> list[Step]:
        """The step this transition takes, if any (call `advance(t.ts, inclusive=False)`
        first: a transition at a step's due instant goes first, as in the engine)."""
        previous, self.severity = self.severity, t.severity
        if self.done:
            return []
        state = t.state
        if state in ("acknowledged", "cleared"):
            self.stopped = state
            return []
        if state == "shelved":
            self.paused = True
            return []
        if state == "unshelved":
            self.paused = False
            if self.level >= 1:
                self.base = t.ts  # the wait for the next step counts again in full
            return []
        if t.severity != "critical":
            return []
        if state == "raised" or (state == "escalated" and previous != "critical"):
            if self.level >= 0:
                return []
            return [self._take(0, t, state)]
        if state == "escalated" and self.level == 0:
            self.base = t.ts
            return [self._take(1, t, state)]
        return []

    def _take(self, level: int, t: TransitionIn, cause: str) -> Step:
        self.level = level
        return Step(self.alert_id, level, t.ts, self.escalation.recipients(level), t.id, cause)


def timeline(
    transitions: Iterable[Mapping[str, Any]], escalation: Escalation, until: int | None = None
) -> list[Step]:
    """Every step of every alert in a stream of §3 transitions (in stream order), with timer
    steps up to `until` (default: the last transition's time), sorted by time."""
    chains: dict[str, ChainState] = {}
    out: list[Step] = []
    last = 0
    for line in transitions:
        t = TransitionIn.of(line)
        last = max(last, t.ts)
        for st in chains.values():
            out += st.advance(t.ts, inclusive=False)
        chain = chains.get(t.alert_id)
        if chain is None:
            chain = chains[t.alert_id] = ChainState(escalation, t.alert_id)
        out += chain.feed(t)
    end = last if until is None else until
    for st in chains.values():
        out += st.advance(end)
    return sorted(out, key=lambda s: (s.due, s.alert_id, s.level))
