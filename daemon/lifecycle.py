"""ISA-18.2 presentation of alerts, derived from the engine's transitions.

The engine decides raised / acknowledged / cleared / shelved / escalated. The daemon adds what
an operator sees: an alert that returned to normal without ever being acknowledged stays on the
list until someone acknowledges it, and an alert of a device under a supervisor's maintenance
window is suppressed by design (stored and audited, flagged so consoles do not annunciate it).
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, replace
from typing import Any


class IsaState(enum.StrEnum):
    """An alert's state as an operator sees it (ISA-18.2); stored and sent as its value."""

    UNACKNOWLEDGED = "unacknowledged"
    ACKNOWLEDGED = "acknowledged"
    RTN_UNACKNOWLEDGED = "rtn_unacknowledged"  # returned to normal, never acknowledged
    SHELVED = "shelved"
    SUPPRESSED = "suppressed"  # suppressed by design: a maintenance window
    NORMAL = "normal"  # closed and dealt with


UNACKNOWLEDGED = IsaState.UNACKNOWLEDGED
ACKNOWLEDGED = IsaState.ACKNOWLEDGED
RTN_UNACKNOWLEDGED = IsaState.RTN_UNACKNOWLEDGED
SHELVED = IsaState.SHELVED
SUPPRESSED = IsaState.SUPPRESSED
NORMAL = IsaState.NORMAL


@dataclass(frozen=True, slots=True)
class AlertView:
    """What the daemon shows and stores about one alert."""

    alert_id: str
    policy: str
    subject: str
    severity: str
    clause: str
    message: str
    raised_ts: int
    last_ts: int
    last_state: str
    active: bool = True
    acked: bool = False
    acked_by: str | None = None
    shelved_until: int | None = None
    shelved_by: str | None = None  # who shelved it (never under acked_by)
    suppressed: bool = False
    closed: bool = False  # the engine closed it (cleared and acknowledged)

    @property
    def isa_state(self) -> IsaState:
        if self.closed:
            return NORMAL
        if self.suppressed:
            return SUPPRESSED
        if self.shelved_until is not None:
            return SHELVED
        if not self.active:
            return RTN_UNACKNOWLEDGED if not self.acked else NORMAL
        return ACKNOWLEDGED if self.acked else UNACKNOWLEDGED

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "isa_state": self.isa_state}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AlertView:
        return cls(**{k: v for k, v in d.items() if k != "isa_state"})


def apply(view: AlertView | None, tr: Any, engine_alert: Any, *, suppressed: bool) -> AlertView:
    """The view after transition `tr`, given the engine's alert (None once it is closed)."""
    if view is None or tr.state == "raised":
        view = AlertView(
            tr.alert_id,
            tr.policy,
            tr.subject,
            tr.severity,
            tr.clause or "",
            tr.message or "",
            tr.ts,
            tr.ts,
            tr.state,
        )
    view = replace(
        view,
        last_ts=tr.ts,
        last_state=tr.state,
        suppressed=suppressed,
        message=tr.message or view.message,
        severity=tr.severity,
    )
    if tr.state == "acknowledged":
        view = replace(view, acked=True, acked_by=tr.acked_by)
    elif tr.state == "shelved":
        view = replace(view, shelved_by=tr.acked_by)
    elif tr.state == "unshelved":
        view = replace(view, shelved_by=None)
    elif tr.state == "cleared":
        view = replace(view, active=False)
    if engine_alert is None:
        # The engine closed it: cleared and acknowledged (in either order).
        return replace(view, closed=True, active=False, shelved_until=None, shelved_by=None)
    return replace(
        view,
        active=engine_alert.active,
        acked=engine_alert.acked,
        acked_by=engine_alert.acked_by,
        shelved_until=engine_alert.shelved_until,
        severity=engine_alert.severity,
    )
