"""Secrets named by the site file, never kept in it: `{stem}_file` (a file's text) or
`{stem}_env` (an environment variable's value), one of the two. Used by every section that
needs a secret (notifications, telemetry); errors go to the caller's `err(path, message)`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

Err = Callable[[str, str], None]


def read_secret(
    err: Err,
    where: str,
    section: Mapping[str, Any],
    env: Mapping[str, str],
    stem: str,
    *,
    required: bool,
    env_names: set[str] | None = None,
) -> str | None:
    """The secret of `section` at `where`; None when none is named, "" when one is named but
    could not be read (the error is reported; the caller need not report it again).
    `env_names` collects the environment variables named, so that they are not reported as
    unknown."""
    f, e = section.get(f"{stem}_file"), section.get(f"{stem}_env")
    if f is not None and e is not None:
        err(where, f"{stem}_file and {stem}_env are alternatives: give one")
        return ""
    if f is not None:
        try:
            value = Path(f).read_text(encoding="utf-8").strip()
        except OSError as exc:
            err(f"{where}.{stem}_file", f"cannot read {f}: {exc.strerror}")
            return ""
        if not value:
            err(f"{where}.{stem}_file", f"{f} is empty")
        return value
    if e is not None:
        if env_names is not None:
            env_names.add(e)
        value = env.get(e, "").strip()
        if not value:
            err(f"{where}.{stem}_env", f"the environment variable {e} is not set")
        return value
    if required:
        err(where, f"needs {stem}_file or {stem}_env (the {stem} is never kept in the site file)")
    return None
