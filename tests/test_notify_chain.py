"""The escalation chain (daemon/notify/chain.py) as a pure function of transitions: computed on
the output of a real `sealwatch replay` run, so who is notified when follows from a stream."""

from __future__ import annotations

import json
from pathlib import Path

from daemon.notify.chain import ChainState, Step, TransitionIn, timeline
from daemon.notify.config import Escalation, Level
from policies.timefmt import parse_ts
from tests.support.daemon import sealwatch_cli
from tests.support.engine import BEFORE_SEAL, at

ESC = Escalation(
    operators=("ops-hook",),
    supervisors=("chen-mail",),
    levels=(Level(300, ("director-sms",)), Level(600, ("bureau-mail",))),
)
T0 = parse_ts(BEFORE_SEAL)


def t(s: float) -> int:
    return T0 + round(s * 1e6)


def ev(s: float, device: str, type: str, **fields: object) -> str:
    return json.dumps({"ts": at(s, BEFORE_SEAL), "device": device, "type": type, **fields})


def replay(site: Path, lines: list[str], tmp: Path, until: float) -> list[dict[str, object]]:
    stream = tmp / "stream.jsonl"
    stream.write_text("\n".join(lines) + "\n")
    p = sealwatch_cli(
        "replay", "--config", str(site), str(stream), "--until", at(until, BEFORE_SEAL)
    )
    assert p.returncode == 0 and p.stderr == "", p.stderr
    return [json.loads(x) for x in p.stdout.splitlines() if x.strip()]


def alert_of(transitions: list[dict[str, object]], subject: str) -> str:
    return next(
        str(x["alert_id"])
        for x in transitions
        if x["subject"] == subject and x["policy"] == "door-forced"
    )


def test_timeline_of_a_replayed_stream(site_path: Path, tmp_path: Path) -> None:
    forced = [
        ev(0, "fire-exit-north", "door.forced"),  # A: nobody acts until 700 s
        ev(10, "monitoring-door", "door.forced"),  # B: acknowledged at 60 s
        ev(30, "typesetting-door", "door.forced"),  # C: shelved 100 s .. 200 s
    ]
    first = replay(site_path, forced, tmp_path, 40)
    a, b, c = (
        alert_of(first, d) for d in ("fire-exit-north", "monitoring-door", "typesetting-door")
    )
    actions = [
        ev(60, "console-1", "alert.ack", alert_id=b, badge="O4001"),
        ev(
            100,
            "console-1",
            "alert.shelve",
            alert_id=c,
            badge="O4001",
            until=at(200, BEFORE_SEAL),
            reason="test",
        ),
        ev(700, "console-1", "alert.ack", alert_id=a, badge="O4001"),
    ]
    transitions = replay(site_path, forced + actions, tmp_path, 2000)
    # The engine's own contract is unchanged: one `escalated` each for A (at 120 s, the
    # reference ack_escalation_s) and C (120 s after it was unshelved).
    escalated = [(x["alert_id"], x["ts"]) for x in transitions if x["state"] == "escalated"]
    assert escalated == [(a, at(120, BEFORE_SEAL)), (c, at(320, BEFORE_SEAL))]

    steps = timeline(transitions, ESC, until=t(2000))
    got = [(s.alert_id, s.level, s.due, s.recipients) for s in steps]
    assert got == [
        (a, 0, t(0), ("ops-hook",)),
        (b, 0, t(10), ("ops-hook",)),
        (c, 0, t(30), ("ops-hook",)),
        (a, 1, t(120), ("chen-mail",)),  # the supervisor on duty, at the engine's escalation
        (c, 1, t(320), ("chen-mail",)),
        (a, 2, t(420), ("director-sms",)),  # 300 s later, still unacknowledged
        (c, 2, t(620), ("director-sms",)),
        (c, 3, t(1220), ("bureau-mail",)),  # A was acknowledged at 700 s: no level 3 for it
    ]


def tr(s: float, state: str, severity: str = "critical", alert: str = "x") -> dict[str, object]:
    return {"ts": t(s), "alert_id": alert, "state": state, "severity": severity}


def test_acknowledgement_at_the_due_instant_goes_first() -> None:
    lines = [tr(0, "raised"), tr(120, "escalated"), tr(420, "acknowledged")]
    assert [s.level for s in timeline(lines, ESC, until=t(5000))] == [0, 1]


def test_clear_stops_and_unshelve_counts_the_wait_again() -> None:
    cleared = [tr(0, "raised"), tr(120, "escalated"), tr(200, "cleared")]
    assert [s.level for s in timeline(cleared, ESC, until=t(5000))] == [0, 1]
    shelved = [tr(0, "raised"), tr(120, "escalated"), tr(400, "shelved"), tr(1000, "unshelved")]
    steps = timeline(shelved, ESC, until=t(1300))
    assert [(s.level, s.due) for s in steps] == [(0, t(0)), (1, t(120)), (2, t(1300))]


def test_only_critical_alerts_climb_and_a_rise_to_critical_starts_at_step_0() -> None:
    assert timeline([tr(0, "raised", "major"), tr(600, "cleared", "major")], ESC) == []
    rise = [tr(0, "raised", "major"), tr(50, "escalated"), tr(170, "escalated")]
    steps = timeline(rise, ESC, until=t(170))
    assert [(s.level, s.due, s.cause) for s in steps] == [
        (0, t(50), "escalated"),
        (1, t(170), "escalated"),
    ]


def test_the_live_state_takes_timer_steps_once() -> None:
    st = ChainState(ESC, "x")
    assert st.feed(TransitionIn(t(0), "x", "raised", "critical", 7)) == [
        Step("x", 0, t(0), ("ops-hook",), 7, "raised")
    ]
    assert st.next_due() is None  # the engine's escalation comes as a transition
    st.feed(TransitionIn(t(120), "x", "escalated", "critical", 9))
    assert st.next_due() == t(420)
    assert st.advance(t(419)) == []
    assert [s.level for s in st.advance(t(2000))] == [2, 3]
    assert st.advance(t(9000)) == [] and st.next_due() is None
