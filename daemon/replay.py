"""`sealwatch replay` (CONTRACT §3): events from a file through the engine, alerts to stdout."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import IO

import orjson

from policies.engine import Engine, EventRejected, Transition
from policies.events import Rejection, parse_event, parse_line
from policies.site import Site


def replay_lines(
    site: Site,
    lines: Iterable[bytes | str],
    *,
    until: int | None = None,
    errors: IO[str] | None = None,
) -> Iterator[Transition]:
    """Stream transitions for a stream of JSON lines; report rejected lines to `errors`."""
    engine = Engine(site)
    feed = engine.feed
    loads, bad_json = orjson.loads, orjson.JSONDecodeError
    for n, line in enumerate(lines, start=1):
        try:  # parse_line, unrolled: this loop runs once per event
            ev = parse_event(loads(line), site)
        except bad_json:
            ev = parse_line(line, site)  # for its reason
        if type(ev) is not Rejection:
            try:
                out = feed(ev)  # type: ignore[arg-type]
                if out:
                    yield from out
                continue
            except EventRejected as exc:
                reason = exc.reason
                yield from engine.pending_transitions()
        elif not line.strip():
            continue  # blank lines are allowed
        else:
            reason = ev.reason  # type: ignore[union-attr]
        if errors is not None:
            errors.write(f"line {n}: {reason}\n")
    if until is not None:
        yield from engine.advance(until)


def run_replay(site: Site, path: str, *, until: int | None, strict: bool) -> int:
    """Write the transitions as JSON lines to stdout; exit status per CONTRACT §3."""
    tz = site.tz
    out = sys.stdout.buffer
    stream = sys.stdin.buffer if path == "-" else open(path, "rb")
    rejected = 0

    class CountingStderr:
        def write(self, s: str) -> int:
            nonlocal rejected
            rejected += 1
            return sys.stderr.write(s)

    try:
        buf: list[bytes] = []
        for t in replay_lines(site, stream, until=until, errors=CountingStderr()):  # type: ignore[arg-type]
            buf.append(orjson.dumps(t.to_dict(tz)))
            if len(buf) >= 256:
                out.write(b"\n".join(buf) + b"\n")
                buf.clear()
        if buf:
            out.write(b"\n".join(buf) + b"\n")
        out.flush()
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    return 1 if strict and rejected else 0
