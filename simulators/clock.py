"""Time as the simulated devices write it: RFC 3339 UTC stamps and scenario offsets."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

_OFFSET = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def now_utc() -> datetime:
    return datetime.now(UTC)


def rfc3339(dt: datetime) -> str:
    """`2027-05-25T06:00:00.123+00:00`: UTC, milliseconds, explicit offset."""
    return dt.astimezone(UTC).isoformat(timespec="milliseconds")


def parse_duration(value: Any) -> float:
    """Seconds from `5s`, `2m`, `1h`, `1d`, `250ms` or a plain number; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 5s, 2m or 1h, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = _OFFSET.match(value)
        if m:
            return float(m.group(1)) * _UNIT_S[m.group(2)]
    raise ValueError(f"expected a duration such as 5s, 2m or 1h, got {value!r}")


def parse_when(value: Any, now: datetime) -> datetime:
    """An RFC 3339 time with an offset, or an offset from `now` such as `-2h`."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"time '{value}' has no offset")
        return value
    if isinstance(value, str) and "T" in value:
        dt = datetime.fromisoformat(value)
        if dt.tzinfo is None:
            raise ValueError(f"time '{value}' has no offset (write e.g. +08:00)")
        return dt
    return now + timedelta(seconds=parse_duration(value))
