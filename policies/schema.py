"""Converters for validating configuration: `(path, value) -> value`, raising ValueError.

Shared by the site model (policies/site.py) and the daemon's runtime settings
(daemon/config.py), so that every configuration error reads the same way.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Converter = Callable[[str, Any], Any]


class ConfigErrors(ValueError):
    """A configuration is invalid; `errors` lists every problem as `path: message`."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def suggest(name: str, known: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for a near miss, else ''."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def parse_time(value: Any) -> datetime:
    """An RFC 3339 time with an offset; ValueError otherwise."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        dt = datetime.fromisoformat(value)
    else:
        raise ValueError(f"expected an RFC 3339 time, got {type(value).__name__}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"time '{value}' has no offset (write e.g. +08:00)")
    return dt


def tname(v: Any) -> str:
    return "nothing" if v is None else type(v).__name__


def any_(_p: str, v: Any) -> Any:
    return v


def text(_p: str, v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, str | int | float):
        raise ValueError(f"expected text, got {tname(v)}")
    return str(v)


def ident(_p: str, v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, str | int) or str(v).strip() == "":
        raise ValueError(f"expected an id, got {tname(v)}")
    s = str(v)
    if any(c in s for c in "/+#") or any(c.isspace() for c in s):
        raise ValueError(f"id '{s}' may not contain spaces, '/', '+' or '#'")
    return s


def idlist(p: str, v: Any) -> list[str]:
    if not isinstance(v, list):
        raise ValueError(f"expected a list of ids, got {tname(v)}")
    return [ident(p, x) for x in v]


def boolean(_p: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"expected true or false, got {v!r}")
    return v


def number(_p: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ValueError(f"expected a number, got {v!r}")
    return float(v)


def positive(p: str, v: Any) -> float:
    x = number(p, v)
    if x <= 0:
        raise ValueError(f"must be greater than 0, got {v!r}")
    return x


def number_range(lo: float, hi: float) -> Callable[[str, Any], float]:
    def conv(_p: str, v: Any) -> float:
        if (
            isinstance(v, bool)
            or not isinstance(v, int | float)
            or not math.isfinite(v)
            or not lo <= v <= hi
        ):
            raise ValueError(f"expected a number from {lo:g} to {hi:g}, got {v!r}")
        return float(v)

    return conv


def int_range(lo: int, hi: int) -> Callable[[str, Any], int]:
    def conv(_p: str, v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ValueError(f"expected a whole number from {lo} to {hi}, got {v!r}")
        return v

    return conv


def enum(choices: tuple[str, ...]) -> Callable[[str, Any], str]:
    def conv(_p: str, v: Any) -> str:
        if v not in choices:
            raise ValueError(f"'{v}' is not one of {', '.join(choices)}{suggest(str(v), choices)}")
        return str(v)

    return conv


def time(_p: str, v: Any) -> datetime:
    try:
        return parse_time(v)
    except ValueError as exc:
        raise ValueError(
            str(exc).replace("Invalid isoformat string", "not an RFC 3339 time")
        ) from None


def tzname(_p: str, v: Any) -> str:
    try:
        ZoneInfo(str(v))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone '{v}' (an IANA name such as Asia/Shanghai)") from None
    return str(v)


def position(_p: str, v: Any) -> tuple[float, float]:
    if (
        not isinstance(v, list)
        or len(v) != 2
        or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
    ):
        raise ValueError(f"expected [x, y], got {v!r}")
    return (float(v[0]), float(v[1]))
