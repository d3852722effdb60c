"""EXAM-2.8.2: "A seal leaves a complete archive: who, when, every entry and exit."

The archive's "who" is only worth something if whoever acknowledges an alert, approves an
exit, records an inspection, review or pre-seal check, or starts or ends a seal is a known person whose role
allows it. `AUTHORITY` is the one table of who may do what (docs/policies.md quotes it). The
engine asks `refusal(ev)` before an operator action changes anything; a refused action is a
rejection naming the badge and the action, and the attempt itself raises `unauthorised-action`
on the console it came from (latched; critical for a seal's end, major otherwise). The subject
is the console, not the claimed badge: a stream of invented badges is one alert, not many.

`seal.start`, `seal.end` and `approval.granted` did not always name who acts (`badge`,
`granted_by`): without it the engine allows them, so old streams replay unchanged. The live
daemon requires it from consoles, the HTTP API and the CLI (daemon/pipeline/evaluate.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from policies.core import Rule
from policies.events import Event

ALERT_ROLES: Final = frozenset({"operator", "supervisor", "secrecy_officer"})
SUPERVISOR_ROLES: Final = frozenset({"supervisor", "secrecy_officer"})


@dataclass(frozen=True, slots=True)
class Authority:
    """Who may do one operator action: the event field naming the person, and their roles."""

    field: str
    roles: frozenset[str]
    optional: bool = False  # absent in older streams: allowed by the engine, required live


AUTHORITY: Final[dict[str, Authority]] = {
    "alert.ack": Authority("badge", ALERT_ROLES),
    "alert.shelve": Authority("badge", ALERT_ROLES),
    "alert.unshelve": Authority("badge", ALERT_ROLES),
    "review.done": Authority("badge", ALERT_ROLES),
    "inspection.done": Authority("badge", SUPERVISOR_ROLES),
    "approval.granted": Authority("granted_by", SUPERVISOR_ROLES, optional=True),
    "seal.start": Authority("badge", SUPERVISOR_ROLES, optional=True),
    "seal.end": Authority("badge", SUPERVISOR_ROLES, optional=True),
    "precheck.recorded": Authority("badge", SUPERVISOR_ROLES),
}

ROLE_NAMES: Final = {
    "sealed_staff": "sealed staff",
    "supervisor": "a supervisor",
    "secrecy_officer": "a secrecy officer",
    "operator": "an operator",
    "guard": "a guard",
    "maintenance": "maintenance staff",
}
_ORDER = ("operator", "supervisor", "secrecy_officer")


def _roles(roles: frozenset[str]) -> str:
    names = [ROLE_NAMES[r] for r in _ORDER if r in roles]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def actor_of(ev: Event) -> str | None:
    """The badge an operator action names as acting, or None (not one, or not named)."""
    auth = AUTHORITY.get(ev.type)
    if auth is None:
        return None
    value = ev.source.get(auth.field)
    return value if type(value) is str and value else None


class UnauthorisedAction(Rule):
    policy = "unauthorised-action"
    clause = "EXAM-2.8.2"
    severity = "major"
    latched = True

    def refusal(self, ev: Event, actor_required: bool = False) -> str | None:
        """Why `ev` may not be done by whoever it names, or None if it may (pure).

        Without `actor_required`, an action whose actor is optional and absent is allowed.
        """
        auth = AUTHORITY.get(ev.type)
        if auth is None:
            return None
        badge = actor_of(ev)
        if badge is None:
            if auth.optional and not actor_required and ev.source.get(auth.field) is None:
                return None
            return f"unauthorised: {ev.type} names nobody: field '{auth.field}' must be a badge"
        shown = repr(badge[:60])
        person = self.site.people.get(badge)
        if person is None:
            return f"unauthorised: badge {shown} is not a known person: may not {ev.type}"
        if person.role not in auth.roles:
            return (
                f"unauthorised: badge {shown} is {ROLE_NAMES.get(person.role, person.role)}: "
                f"{ev.type} needs {_roles(auth.roles)}"
            )
        return None

    def attempt(self, ev: Event, reason: str) -> None:
        """Raise the alert for a refused attempt on the console it came from."""
        severity = "critical" if ev.type == "seal.end" else "major"
        what = f"{ev.type} of seal '{ev.source.get('seal')}'" if ev.type == "seal.end" else ev.type
        self.raise_(
            ev.device,
            f"{what} at {ev.device} refused: {reason.removeprefix('unauthorised: ')}",
            severity=severity,
        )
