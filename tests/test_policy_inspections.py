"""inspection-due (policies/rules/inspections.py): CITY-key-7, 1 / 3 / 6 calendar months."""

from __future__ import annotations

from typing import Any

from policies.timefmt import parse_ts
from tests.support.engine import AGENCY_IN, Run, agency_site, ev, reference_site

SITE = agency_site()
ID = "inspection-due"
DAY = 86_400.0


def inspected(t: float, zone: str, base: str = AGENCY_IN) -> dict[str, Any]:
    return ev(t, "desk-1", "inspection.done", base=base, zone=zone, badge="A100")


def test_top_secret_part_not_inspected_for_a_month_raises_minor_then_inspection_clears() -> None:
    r = Run(SITE).feed(ev(0, "desk-1", "device.heartbeat", base=AGENCY_IN))
    r.advance(31 * DAY - 1, base=AGENCY_IN)  # 2027-03-10 + 1 month = 2027-04-10, 31 days
    assert r.triples(ID) == []
    r.advance(31 * DAY, base=AGENCY_IN)
    assert r.triples(ID) == [(ID, "secure-room", "raised")]
    assert (r.of(ID)[0].severity, r.of(ID)[0].clause) == ("minor", "CITY-key-7")
    r.feed(inspected(32 * DAY, "secure-room"))
    assert r.triples(ID)[-1] == (ID, "secure-room", "cleared")


def test_secret_and_confidential_parts_fall_due_after_three_and_six_months() -> None:
    r = Run(SITE).feed(ev(0, "desk-1", "device.heartbeat", base=AGENCY_IN))
    r.advance(200 * DAY, base=AGENCY_IN)
    raised = [(x.subject, x.ts) for x in r.of(ID) if x.state == "raised"]
    due = {s: t for s, t in raised if s != "secure-room"}
    assert set(due) == {"computer-room", "meeting-room", "archive"}
    assert due["computer-room"] == due["meeting-room"]
    assert due["computer-room"] == parse_ts("2027-06-10T10:00:00+08:00")
    assert due["archive"] == parse_ts("2027-09-10T10:00:00+08:00")


def test_inspection_before_the_due_date_moves_the_next_due_date() -> None:
    r = Run(SITE).feed(
        ev(0, "desk-1", "device.heartbeat", base=AGENCY_IN), inspected(20 * DAY, "secure-room")
    )
    r.advance(40 * DAY, base=AGENCY_IN)
    assert [x for x in r.triples(ID) if x[1] == "secure-room"] == []


def test_inspection_exactly_at_the_due_time_is_in_time() -> None:
    r = Run(SITE).feed(
        ev(0, "desk-1", "device.heartbeat", base=AGENCY_IN), inspected(31 * DAY, "secure-room")
    )
    r.advance(45 * DAY, base=AGENCY_IN)
    assert [x for x in r.triples(ID) if x[1] == "secure-room"] == []


def test_inspecting_another_zone_does_not_satisfy_a_key_part() -> None:
    r = Run(SITE).feed(
        ev(0, "desk-1", "device.heartbeat", base=AGENCY_IN),
        inspected(10 * DAY, "corridor"),
        inspected(11 * DAY, "archive"),
    )
    r.advance(31 * DAY, base=AGENCY_IN)
    assert r.triples(ID) == [(ID, "secure-room", "raised")]


def test_months_are_calendar_months_clamped_to_the_month_end() -> None:
    base = "2027-01-31T12:00:00+08:00"
    r = Run(reference_site()).feed(ev(0, "console-1", "device.heartbeat", base=base))
    r.advance(28 * DAY - 1, base=base)  # 2027-02-28 12:00 is the due time
    assert r.triples(ID) == []
    r.advance(28 * DAY, base=base)
    assert sorted(x[1] for x in r.triples(ID)) == ["press-hall", "secure-room", "typesetting"]
