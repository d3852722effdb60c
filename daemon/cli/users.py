"""`sealwatch user …` and the CLI's bearer token belong to the dashboard's user management.

This is the one place the CLI imports them from, so that moving them (to the HTTP package)
changes one line here.
"""

from daemon.auth import cli_headers, register_cli

__all__ = ["cli_headers", "register_cli"]
