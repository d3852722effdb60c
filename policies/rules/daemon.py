"""EXAM-2.7.10: "Access control, video and burglar-alarm systems are … always in effective working state."

The monitoring system is one of those systems. The daemon reports on its own parts (`store`,
`mqtt-session`, `ingest`, `sink`) with `daemon.health` events from the reserved device
`sealwatch`: `degraded` raises a critical alert that clears when the same component reports
`ok`; `lost` (e.g. a broker session lost: events the broker held for the daemon may be gone)
raises a latched major alert that only an operator's acknowledgement clears, because nothing
the daemon sees later can tell that what was lost did not matter. One alert per component:
a loss while it is degraded latches that alert; degraded while a loss awaits acknowledgement
escalates it to critical.
"""

from __future__ import annotations

from policies.core import Rule
from policies.events import DaemonHealth, Event

LOST_MEANS = {
    "mqtt-session": "the broker session was lost; events the broker held for the daemon may be gone",
    "store": "the event store lost accepted events",
    "ingest": "incoming events may have been dropped",
    "sink": "alert transitions may not have been delivered",
}


class DaemonHealthRule(Rule):
    policy = "daemon-health"
    clause = "EXAM-2.7.10"
    severity = "critical"
    handles = ("daemon.health",)

    def on_event(self, ev: Event) -> None:
        assert isinstance(ev, DaemonHealth)
        component = ev.component
        why = f" ({ev.reason})" if ev.reason else ""
        active = self.active(component)
        if ev.state == "ok":
            self.clear(component)  # a latched loss stays until acknowledged
        elif ev.state == "degraded":
            message = f"sealwatch {component} degraded{why}"
            if active is not None and active.latched:
                message += "; a loss awaits acknowledgement"
            a = self.raise_(component, message, fold=False)
            a.message = message
        else:
            message = f"sealwatch {component} lost{why}: {LOST_MEANS[component]}"
            if active is not None and not active.latched and active.acked:
                # the operator acknowledged the degradation, not this loss: a new alert
                self.ctx.clear_alert(self.policy, component)
                active = None
            if active is not None and not active.latched:
                active.latched = True  # still degraded: stays critical, now needs an ack
                active.count += 1
                active.message = message
            else:
                a = self.raise_(component, message, severity="major", latched=True)
                a.message = message
