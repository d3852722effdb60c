"""Times: RFC 3339 strings outside, whole microseconds since the epoch inside.

Integers keep "the same instant" exact: a timer due at the same microsecond as an event is
recognisably the same time, however the offsets were written.

Every time that comes from outside (an event's `ts` and other time fields, `--until`, seal
times in the site file) must lie in the plausible range [`EARLIEST_US`, `LATEST_US`):
2000-01-01T00:00:00Z up to, not including, 2100-01-01T00:00:00Z. `plausible` and
`parse_plausible_ts` check it; `format_ts` never fails for a time in that range (nor for one
centuries outside it), whatever the time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final

US = 1_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)

EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(2100, 1, 1, tzinfo=UTC)
EARLIEST_US: Final = 946_684_800 * US  # 2000-01-01T00:00:00Z, the first plausible instant
LATEST_US: Final = 4_102_444_800 * US  # 2100-01-01T00:00:00Z, the first implausible one
PLAUSIBLE_RANGE: Final = "from 2000-01-01T00:00:00Z up to (not including) 2100-01-01T00:00:00Z"


def to_us(dt: datetime) -> int:
    """An aware datetime as microseconds since the epoch."""
    return (dt - EPOCH) // _ONE_US


def parse_ts(value: str) -> int:
    """RFC 3339 with an offset → µs since the epoch; ValueError otherwise.

    Any year datetime can read is accepted here; `parse_plausible_ts` also checks the range.
    """
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        raise ValueError(f"time '{value}' has no offset")
    return (dt - EPOCH) // _ONE_US


def plausible(us: int) -> bool:
    """True for a time in [EARLIEST_US, LATEST_US)."""
    return EARLIEST_US <= us < LATEST_US


def implausible_reason(us: int, what: str, value: str | None = None) -> str | None:
    """None for a plausible time, else why `what` (e.g. "field 'ts'", "--until") is refused."""
    if EARLIEST_US <= us < LATEST_US:
        return None
    when = "too early" if us < EARLIEST_US else "too late"
    shown = f" ({value})" if value is not None and len(value) <= 64 else ""
    return f"{what} is {when}{shown}: times must be {PLAUSIBLE_RANGE}"


def parse_plausible_ts(value: str, what: str = "field 'ts'") -> int:
    """`parse_ts` plus the range check; ValueError naming `what` and the range otherwise."""
    us = parse_ts(value)
    why = implausible_reason(us, what, value)
    if why is not None:
        raise ValueError(why)
    return us


def from_us(us: int, tz: tzinfo = UTC) -> datetime:
    return (EPOCH + timedelta(microseconds=us)).astimezone(tz)


def format_ts(us: int, tz: tzinfo = UTC) -> str:
    """µs since the epoch → RFC 3339 in `tz`, with fractions only when there are any.

    Never raises for a plausible time (nor for anything within years 2 to 9998).
    """
    dt = from_us(us, tz)
    return dt.isoformat(timespec="microseconds" if dt.microsecond else "seconds")


def seconds(s: float) -> int:
    """A duration in seconds as whole microseconds."""
    return round(s * US)
