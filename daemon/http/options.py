"""The dashboard's options: the `daemon.dashboard` and `daemon.auth` sections of the settings.

Read in one place, `Options.from_settings(settings)` (the config schema is moving these
into `daemon.config` as `DashboardOptions`, same field names).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from daemon.config import ConfigError, Settings


@dataclass(frozen=True, slots=True)
class Options:
    """The `daemon.dashboard` and `daemon.auth` sections (all optional)."""

    idle_timeout_s: float = 900.0
    guard_idle_timeout_s: float = 12 * 3600.0
    max_session_s: float = 12 * 3600.0
    login_per_user: int = 5
    login_per_ip: int = 20
    login_window_s: float = 300.0
    cookie_secure: str = "auto"  # auto (when the request came over TLS) | always | never
    trust_proxy: bool = False  # believe X-Forwarded-Proto/-For from a local TLS proxy
    tick_s: float = 0.25
    floor_plan: str | None = None  # an image file shown under the devices' positions
    floor_plan_size: tuple[float, float] | None = None
    positions: dict[str, tuple[float, float]] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Options:
        dash = dict(settings.extra.get("dashboard") or {})
        auth = dict(settings.extra.get("auth") or {})
        errors: list[str] = []
        known = {
            "idle_timeout_s",
            "guard_idle_timeout_s",
            "max_session_s",
            "login_per_user",
            "login_per_ip",
            "login_window_s",
            "cookie_secure",
            "trust_proxy",
        }
        for key in auth:
            if key not in known:
                errors.append(f"daemon.auth.{key}: unknown key")
        for key in dash:
            if key not in ("tick_s", "floor_plan", "positions"):
                errors.append(f"daemon.dashboard.{key}: unknown key")
        if errors:
            raise ConfigError(errors)
        kw: dict[str, Any] = {k: auth[k] for k in known if k in auth}
        if "tick_s" in dash:
            kw["tick_s"] = float(dash["tick_s"])
        plan = dash.get("floor_plan")
        if isinstance(plan, dict):
            kw["floor_plan"] = str(plan["image"])
            kw["floor_plan_size"] = (float(plan["width"]), float(plan["height"]))
        if dash.get("positions"):
            kw["positions"] = {
                str(k): (float(v[0]), float(v[1])) for k, v in dict(dash["positions"]).items()
            }
        return cls(**kw)
