"""`sealwatch replay` (CONTRACT §3): events from a file through the engine, alerts to stdout.

A bad line never stops a replay: a line the parser or the engine refuses is reported on stderr
as `line N: reason`; and, as a last resort, any other exception while parsing, feeding or
writing the alerts of one line is reported as `line N: internal error: …` and the replay goes
on with the next line.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import IO

import orjson

from policies.engine import Engine, EventRejected, Transition
from policies.events import Rejection, parse_event, parse_line
from policies.site import Site
from policies.timefmt import implausible_reason

UNTIL = 0  # the "line number" of transitions that `--until` produces after the last line


def replay_lines(
    site: Site,
    lines: Iterable[bytes | str],
    *,
    until: int | None = None,
    errors: IO[str] | None = None,
) -> Iterator[Transition]:
    """Stream transitions for a stream of JSON lines; report rejected lines to `errors`."""
    for _, t in numbered_transitions(site, lines, until=until, errors=errors):
        yield t


def internal_error(exc: BaseException) -> str:
    """`internal error: Type: message`, short and on one line, whatever the exception holds."""
    try:
        text = str(exc)
    except Exception:  # a message that cannot be shown is still an error
        text = "(no message)"
    if len(text) > 200:
        text = text[:200] + "…"
    return one_line(f"internal error: {type(exc).__name__}: {text}")


def one_line(reason: str) -> str:
    """A reason fit for `line N: reason` (reasons may quote what a line contained)."""
    if "\n" in reason or "\r" in reason:
        reason = reason.replace("\r", "\\r").replace("\n", "\\n")
    return reason


def numbered_transitions(
    site: Site,
    lines: Iterable[bytes | str],
    *,
    until: int | None = None,
    errors: IO[str] | None = None,
) -> Iterator[tuple[int, Transition]]:
    """`replay_lines`, each transition with the number of the line that produced it.

    Transitions that the clock running on to `until` produces carry `UNTIL` (0).
    """
    engine = Engine(site)
    feed = engine.feed
    loads, bad_json = orjson.loads, orjson.JSONDecodeError
    for n, line in enumerate(lines, start=1):
        try:
            try:  # parse_line, unrolled: this loop runs once per event
                ev = parse_event(loads(line), site)
            except bad_json:
                ev = parse_line(line, site)  # for its reason
            if type(ev) is not Rejection:
                try:
                    out = feed(ev)  # type: ignore[arg-type]
                    if out:
                        for t in out:
                            yield n, t
                    continue
                except EventRejected as exc:
                    reason = exc.reason
                    out = engine.pending_transitions()
            elif isinstance(line, bytes | str) and not line.strip():
                continue  # blank lines are allowed
            else:
                reason = ev.reason
                out = []
        except Exception as exc:  # the last resort: one line, not the replay
            reason = internal_error(exc)
            out = engine.pending_transitions()
        for t in out:
            yield n, t
        if errors is not None:
            errors.write(f"line {n}: {one_line(reason)}\n")
    if until is not None:
        try:
            out = engine.advance(until)
        except Exception as exc:
            out = engine.pending_transitions()
            if errors is not None:
                errors.write(f"--until: {internal_error(exc)}\n")
        for t in out:
            yield UNTIL, t


def run_replay(site: Site, path: str, *, until: int | None, strict: bool) -> int:
    """Write the transitions as JSON lines to stdout; exit status per CONTRACT §3."""
    if until is not None:
        why = implausible_reason(until, "--until")
        if why is not None:
            print(why, file=sys.stderr)
            return 2
    tz = site.tz
    out = sys.stdout.buffer
    stream = sys.stdin.buffer if path == "-" else open(path, "rb")
    rejected = 0

    class CountingStderr:
        def write(self, s: str) -> int:
            nonlocal rejected
            rejected += 1
            return sys.stderr.write(s)

    errors = CountingStderr()
    dumps = orjson.dumps
    try:
        buf: list[bytes] = []
        for n, t in numbered_transitions(site, stream, until=until, errors=errors):  # type: ignore[arg-type]
            try:
                buf.append(dumps(t.to_dict(tz)))
            except Exception as exc:  # the last resort, as for a line
                where = f"line {n}" if n != UNTIL else "--until"
                errors.write(f"{where}: {internal_error(exc)} (writing an alert)\n")
                continue
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
