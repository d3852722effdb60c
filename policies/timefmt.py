"""Times: RFC 3339 strings outside, whole microseconds since the epoch inside.

Integers keep "the same instant" exact: a timer due at the same microsecond as an event is
recognisably the same time, however the offsets were written.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

US = 1_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def to_us(dt: datetime) -> int:
    """An aware datetime as microseconds since the epoch."""
    return (dt - EPOCH) // _ONE_US


def parse_ts(value: str) -> int:
    """RFC 3339 with an offset → µs since the epoch; ValueError otherwise."""
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        raise ValueError(f"time '{value}' has no offset")
    return (dt - EPOCH) // _ONE_US


def from_us(us: int, tz: tzinfo = UTC) -> datetime:
    return (EPOCH + timedelta(microseconds=us)).astimezone(tz)


def format_ts(us: int, tz: tzinfo = UTC) -> str:
    """µs since the epoch → RFC 3339 in `tz`, with fractions only when there are any."""
    dt = from_us(us, tz)
    return dt.isoformat(timespec="microseconds" if dt.microsecond else "seconds")


def seconds(s: float) -> int:
    """A duration in seconds as whole microseconds."""
    return round(s * US)
