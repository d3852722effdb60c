"""`sealwatch backup` (online, while the daemon runs) and `sealwatch restore` (daemon
stopped): daemon/backup.py does the work; this module reads the settings and speaks."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from daemon.cli.common import fail, load_site_or_exit, settings_or_exit


def cmd_backup(args: argparse.Namespace) -> int:
    from daemon import audit, backup

    site = load_site_or_exit(args.config)
    settings = settings_or_exit(site, args)
    out = Path(args.output)
    try:
        checked = backup.take(settings.db_path, out, pages=args.pages, pause_s=args.pause)
    except backup.BackupError as exc:
        return fail(f"backup failed, nothing written to {out}: {exc}")
    note = (
        f"backup {out}: verified (integrity ok, ledger ok), {checked.events} events "
        f"(last seq {checked.last_event_seq}), ledger head {checked.audit_seq} "
        f"{checked.audit_hash[:16]}…"
    )
    # The head the backup holds, signed with the site key when it can be read: an anchor
    # for `audit verify --anchor` of the restored store.
    head_file = out.with_name(out.name + ".head.json")
    key_path = settings.audit_key_path
    if not key_path.exists():  # a backup never creates the site key
        print(f"{note}; head not signed (no site key at {key_path})")
        return 0
    try:
        priv = audit.load_or_create_key(key_path)
    except (OSError, ValueError) as exc:
        print(f"{note}; head not signed (site key: {exc})")
        return 0
    head = audit.sign_head(
        priv, site.id, checked.audit_seq, checked.audit_hash, time.time_ns() // 1000
    )
    head_file.write_bytes(head.to_json() + b"\n")
    print(f"{note}; signed head in {head_file}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from daemon import backup
    from daemon.datadir import DataDirInUse, DataDirLock

    settings = settings_or_exit(load_site_or_exit(args.config), args)
    source = Path(args.file)
    if not source.is_file():
        return fail(f"no backup file {source}")
    try:
        with DataDirLock(settings.data_dir):
            checked, aside = backup.restore(source, settings.db_path)
    except DataDirInUse as exc:
        return fail(f"{exc}: stop it before restoring (systemctl stop sealwatch)")
    except backup.BackupError as exc:
        return fail(f"not restored, the store is unchanged: {exc}")
    except OSError as exc:
        return fail(f"not restored: {exc}")
    print(
        f"restored {source} to {settings.db_path}: ledger verified to head {checked.audit_seq}, "
        f"{checked.events} events" + (f"; the previous store is kept as {aside}" if aside else ""),
        file=sys.stdout,
    )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    b = sub.add_parser(
        "backup", help="copy the store while the daemon runs; verified before it is kept"
    )
    b.add_argument("--config", required=True)
    b.add_argument("--data-dir")
    b.add_argument("-o", "--output", required=True, help="the backup file")
    b.add_argument("--pages", type=int, default=1024, help="pages copied per step")
    b.add_argument("--pause", type=float, default=0.005, help="seconds between steps")
    b.set_defaults(func=cmd_backup)
    r = sub.add_parser(
        "restore", help="put a verified backup in place of the store (daemon stopped)"
    )
    r.add_argument("--config", required=True)
    r.add_argument("--data-dir")
    r.add_argument("file", help="a file written by `sealwatch backup`")
    r.set_defaults(func=cmd_restore)
