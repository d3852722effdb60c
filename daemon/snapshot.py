"""Engine snapshots: a versioned format, reused only by the same engine on the same site.

A snapshot is `MAGIC`, one JSON header line, then the pickled engine. The header names the
format, the engine's code (a hash of every `policies/` source file) and the site's meaning (a
deterministic fingerprint of the loaded site model, not of the file's bytes: comments,
key order and the `daemon:` section do not count). A snapshot whose header does not match
is refused with a reason and the engine is rebuilt from the stored events; pickled objects
of another engine's classes are therefore never loaded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
from collections.abc import Mapping
from datetime import tzinfo
from pathlib import Path
from typing import Any

import orjson

import policies
from policies.engine import Engine
from policies.site import Site

MAGIC = b"SEALWATCH-SNAPSHOT\n"
FORMAT = 1
# Parts of the site model that do not change what the engine decides.
_NOT_MEANING = frozenset({"daemon", "warnings"})


def _engine_code() -> str:
    h = hashlib.sha256()
    root = Path(policies.__file__).parent
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:32]


ENGINE_CODE = _engine_code()


def _canon(obj: Any) -> Any:
    """A JSON-able rendering whose order never depends on the process (sets are sorted)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: _canon(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if f.name not in _NOT_MEANING
        }
    if isinstance(obj, Mapping):
        return [[str(k), _canon(v)] for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))]
    if isinstance(obj, set | frozenset):
        return sorted((_canon(v) for v in obj), key=lambda v: orjson.dumps(v))
    if isinstance(obj, list | tuple):
        return [_canon(v) for v in obj]
    if isinstance(obj, tzinfo):
        return str(obj)
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    return repr(obj)


def site_fingerprint(site: Site) -> str:
    """The same for the same meaning, in every process (PYTHONHASHSEED does not matter)."""
    return hashlib.sha256(orjson.dumps(_canon(site))).hexdigest()


def dump(engine: Engine, site: Site) -> bytes:
    header = {"format": FORMAT, "engine": ENGINE_CODE, "site": site_fingerprint(site)}
    return (
        MAGIC
        + orjson.dumps(header)
        + b"\n"
        + pickle.dumps(engine, protocol=pickle.HIGHEST_PROTOCOL)
    )


class SnapshotRefused(Exception):
    """This snapshot cannot be used (the reason says why); rebuild from events."""


def load(blob: bytes, site: Site) -> Engine:
    """The engine in `blob`, or SnapshotRefused naming why it cannot be used."""
    if not blob.startswith(MAGIC):
        raise SnapshotRefused("written in an older format (before format 1)")
    head, sep, body = blob[len(MAGIC) :].partition(b"\n")
    try:
        header = orjson.loads(head) if sep else None
    except orjson.JSONDecodeError:
        header = None
    if not isinstance(header, dict):
        raise SnapshotRefused("its header is unreadable")
    if header.get("format") != FORMAT:
        raise SnapshotRefused(f"format {header.get('format')!r}, this release reads {FORMAT}")
    if header.get("engine") != ENGINE_CODE:
        raise SnapshotRefused("written by another version of the engine")
    if header.get("site") != site_fingerprint(site):
        raise SnapshotRefused("the site file's meaning changed since it was taken")
    try:
        engine = pickle.loads(body)
    except Exception as exc:  # a damaged blob: refused, never fatal
        raise SnapshotRefused(f"it does not load ({type(exc).__name__})") from None
    if not isinstance(engine, Engine):
        raise SnapshotRefused("it does not hold an engine")
    return engine
