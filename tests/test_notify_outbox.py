"""The durable outbox (daemon/notify/outbox.py) on a real SQLite file: idempotent by delivery
id, steps taken once, a cursor that only moves forward, and pruning that keeps what a live
chain needs."""

from __future__ import annotations

from pathlib import Path

from daemon.notify.chain import Step
from daemon.notify.outbox import Outbox
from daemon.notify.routing import Delivery


def delivery(did: str, address: str = "") -> Delivery:
    return Delivery(did, did.split("-")[0], "hook", address, ("ops",), {"delivery_id": did})


def test_repeats_add_nothing_and_the_file_survives_reopening(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "n.db")
    step = Step("a", 0, 10, ("ops",), 1, "raised")
    assert box.add([delivery("a-1")], [step], 1, 100) == (1, [step])
    assert box.add([delivery("a-1"), delivery("a-1", "x")], [step], 0, 101) == (1, [])
    box.close()
    box = Outbox(tmp_path / "n.db")
    assert box.cursor() == 1  # never moves back
    assert box.taken() == {("a", 0)}
    assert box.depth() == {"hook": 2}
    (first, _) = box.pending("hook", "") + box.pending("hook", "x")
    box.failed(first.id, "HTTP 503")
    box.sent(first.id, 200)
    assert box.depth() == {"hook": 1} and box.lanes() == [("hook", "x")]


def test_pruning_keeps_the_steps_of_live_chains(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "n.db")
    box.add([delivery("a-1"), delivery("b-2")], [Step("a", 0, 1, ()), Step("b", 0, 1, ())], 2, 100)
    for p in box.pending("hook", ""):
        box.sent(p.id, 100)
    assert box.prune(before=500, live=["a"]) == 2
    assert box.taken() == {("a", 0)}
    assert box.depth() == {}
