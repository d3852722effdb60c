from daemon.http.users_cli import cli_headers, register_cli  # noqa: F401  (moved; see there)
