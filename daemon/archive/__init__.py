"""A seal's archive (EXAM-2.8.2): the seal, the pre-seal record, personnel and duties, every
entry and exit, jammer uptime per band, every alert with its history, patrols, duty-phone
calls, video retention, inspections and reviews, alarm load, and the ledger's head at the end.

`model.build_archive` builds it from a read-only store connection and the site (the daemon
may be stopped: `sealwatch archive`); `tables` writes its tables as CSV. The HTTP API's
`/api/seals/{id}/archive` serves the same document through `seal_archive`.
"""

from __future__ import annotations

from typing import Any

from daemon.archive.model import FORMAT, build_archive, dumps
from daemon.view import ReadView, _open_ro

__all__ = ["FORMAT", "build_archive", "dumps", "seal_archive"]


def seal_archive(view: ReadView, seal_id: str) -> dict[str, Any] | None:
    """The seal's archive from the daemon's store, or None if no such seal has started."""
    conn = _open_ro(view.db_path)
    try:
        return build_archive(conn, view.site, seal_id)
    finally:
        conn.close()
