"""Request input, checked: query numbers and lists, JSON bodies, their fields, ids and times.

Every check that fails raises an HTTP 4xx whose JSON body names the bad key:
`{"accepted": false, "reason": "limit: ...", "key": "limit"}`. Nothing a client sends reaches
the engine or the store in a shape they do not expect. The caps are documented in
docs/dashboard.md ("Limits").
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, NoReturn

import orjson
from aiohttp import web

from policies.timefmt import parse_ts

MAX_BODY_BYTES = 64 * 1024  # a request body; larger is refused with 413
MAX_TEXT = 2000  # comments, reasons, names (characters)
MAX_ID = 128  # alert, seal, device, badge ids (characters)
MAX_TIME_TEXT = 64
MAX_LIST_ITEMS = 200  # comma-separated filter values in a query
MAX_INT = 2**63 - 1  # what SQLite stores
# Times a person could mean: anything outside is refused (across the project).
MIN_TIME_US = 946_684_800 * 1_000_000  # 2000-01-01T00:00:00Z
MAX_TIME_US = 4_102_444_800 * 1_000_000  # 2100-01-01T00:00:00Z (excluded)
# The acting badge (or user name) of a logged-in user, set by the auth middleware; it wins
# over a `badge` in the body.
ACTOR: web.RequestKey[str] = web.RequestKey("actor", str)
_INT = re.compile(r"-?[0-9]{1,20}")


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, headers=headers, content_type="application/json"
    )


def refusal(reason: str, status: int = 400, key: str | None = None) -> web.Response:
    body: dict[str, Any] = {"accepted": False, "reason": reason}
    if key is not None:
        body["key"] = key
    return json_response(body, status)


class Refused(web.HTTPException):
    """A 4xx with a JSON body naming the key at fault (raised from handlers)."""

    def __init__(self, status: int, key: str, problem: str) -> None:
        self.status_code = status
        super().__init__(
            text=orjson.dumps(
                {"accepted": False, "reason": f"{key}: {problem}", "key": key}
            ).decode(),
            content_type="application/json",
        )


def refuse(key: str, problem: str, status: int = 400) -> NoReturn:
    raise Refused(status, key, problem)


def shown(value: Any, limit: int = 60) -> str:
    """A client's value, safe to echo in a reason: short, printable, valid UTF-8."""
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text[: limit + 1])
    return repr(text[:limit] + ("…" if len(text) > limit else ""))


def _clean(text: str) -> bool:
    """Valid UTF-8 (no lone surrogates) and no control characters."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in text)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


# -- query strings ---------------------------------------------------------------------------


def query_int(request: web.Request, key: str, default: int, lo: int, hi: int) -> int:
    """A whole number from the query string, within [lo, hi]."""
    raw = request.query.get(key)
    if raw is None:
        return default
    if not _INT.fullmatch(raw.strip()):
        refuse(key, f"must be a whole number from {lo} to {hi}, got {shown(raw)}")
    value = int(raw.strip())
    if not lo <= value <= hi:
        refuse(key, f"must be a whole number from {lo} to {hi}, got {shown(raw)}")
    return value


def query_list(
    request: web.Request, key: str, known: Callable[[str], bool], what: str
) -> set[str] | None:
    """Comma-separated values from the query string, each one `known`; None when absent."""
    raw = request.query.get(key, "").strip()
    values = {x for x in raw.split(",") if x}
    if not values:
        return None
    if len(values) > MAX_LIST_ITEMS:
        refuse(key, f"at most {MAX_LIST_ITEMS} values")
    for v in values:
        if len(v) > MAX_ID or not _clean(v) or not known(v):
            refuse(key, f"unknown {what} {shown(v)}")
    return values


def path_id(request: web.Request, key: str) -> str:
    """An id from the URL path: printable UTF-8, at most MAX_ID characters."""
    value = request.match_info[key]
    if not value or len(value) > MAX_ID or not _clean(value):
        refuse(key, f"not a valid id ({shown(value)}; at most {MAX_ID} printable characters)")
    return value


# -- bodies ----------------------------------------------------------------------------------


async def read_body(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object (an empty body is `{}`)."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        refuse("body", f"larger than {MAX_BODY_BYTES} bytes", 413)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        refuse("body", f"larger than {MAX_BODY_BYTES} bytes", 413)
    if len(raw) > MAX_BODY_BYTES:
        refuse("body", f"larger than {MAX_BODY_BYTES} bytes", 413)
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        refuse("body", f"not valid JSON (UTF-8): {shown(str(exc), 120)}")
    if not isinstance(data, dict):
        refuse("body", f"expected a JSON object, got {_type_name(data)}")
    return data


def opt_str(body: dict[str, Any], key: str, max_len: int = MAX_TEXT) -> str | None:
    """An optional string field (absent or null is None)."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        refuse(key, f"must be a string, got {_type_name(value)}")
    if len(value) > max_len:
        refuse(key, f"longer than {max_len} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        refuse(key, "not valid UTF-8")
    return value


def req_str(body: dict[str, Any], key: str, max_len: int = MAX_TEXT) -> str:
    value = opt_str(body, key, max_len)
    if value is None or not value.strip():
        refuse(key, "required (a non-empty string)")
    return value


def opt_id(body: dict[str, Any], key: str) -> str | None:
    """An optional id field: a printable string of at most MAX_ID characters."""
    value = opt_str(body, key, MAX_ID)
    if value is not None and (not value or not _clean(value)):
        refuse(key, f"not a valid id ({shown(value)})")
    return value


def req_id(body: dict[str, Any], key: str) -> str:
    value = opt_id(body, key)
    if value is None:
        refuse(key, "required (an id)")
    return value


def opt_number(body: dict[str, Any], key: str, lo: float, hi: float) -> float | None:
    """An optional finite number in (lo, hi] (booleans are not numbers)."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        refuse(key, f"must be a number, got {_type_name(value)}")
    if isinstance(value, int) and abs(value) > MAX_INT:
        refuse(key, f"must be more than {lo:g} and at most {hi:g}")
    number = float(value)
    if not math.isfinite(number) or not lo < number <= hi:
        refuse(key, f"must be more than {lo:g} and at most {hi:g}")
    return number


def check_time_us(key: str, us: int) -> int:
    if not MIN_TIME_US <= us < MAX_TIME_US:
        refuse(key, "must be a time from 2000 up to (not including) 2100")
    return us


def opt_time(body: dict[str, Any], key: str) -> str | None:
    """An optional RFC 3339 time with an offset, in [2000, 2100); returned as given."""
    value = opt_str(body, key, MAX_TIME_TEXT)
    if value is None:
        return None
    try:
        us = parse_ts(value)
    except (ValueError, OverflowError):
        refuse(key, f"not an RFC 3339 time with an offset: {shown(value)}")
    check_time_us(key, us)
    return value
