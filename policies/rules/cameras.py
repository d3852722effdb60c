"""EXAM-2.7.9: "Video surveillance is reviewed … recordings are kept at least 3 months."

Also EXAM-2.7.10 (video systems always in effective working state: stream and tamper).
"""

from __future__ import annotations

from policies.core import Context, Rule
from policies.events import CameraStatus, Event, RecordingInventory
from policies.timefmt import format_ts, seconds, to_us

DAY_US = 86_400 * 1_000_000
MAX_GAPS_LISTED = 10  # an inventory may list thousands; the message names the first ones


class CameraIntegrity(Rule):
    """A camera's stream down or tampered (critical during a seal inside or at the entrance)."""

    policy = "camera-integrity"
    clause = "EXAM-2.7.10"
    severity = "major"
    handles = ("camera.status",)

    def _severity(self, camera: str) -> str:
        zone = self.site.zones[self.site.cameras[camera].zone]
        critical = self.ctx.sealed and (zone.sealed or zone.kind == "screening")
        return "critical" if critical else "major"

    def on_event(self, ev: Event) -> None:
        assert isinstance(ev, CameraStatus)
        problems = []
        if ev.stream == "down":
            problems.append("stream down")
        if ev.tamper is not None:
            problems.append(ev.tamper)
        if problems:
            self.raise_(
                ev.device,
                f"camera {ev.device}: {', '.join(problems)}",
                severity=self._severity(ev.device),
                fold=False,
            )
        else:
            self.clear(ev.device)

    def on_seal_start(self) -> None:
        for camera, a in list(self.ctx.active_alerts(self.policy).items()):
            self.raise_(
                camera,
                a.message + " (persists into the seal)",
                severity=self._severity(camera),
                fold=False,
            )


class VideoRetention(Rule):
    """Footage reaches back `video_retention_days` with no gap over `max_recording_gap_s`."""

    policy = "video-retention"
    clause = "EXAM-2.7.9"
    severity = "major"
    handles = ("recording.inventory",)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.timeout_s = self.tunables.heartbeat_timeout_s
        # Cameras with a recordings folder: each must send an inventory (adapters/recordings.py
        # sends one per scan, also for a missing or empty folder).
        self.recorded = sorted(c.id for c in self.site.cameras.values() if c.recordings)
        self.sealed_period = 0  # bumped at each seal start and end: stale timers do nothing

    def on_seal_start(self) -> None:
        """A camera that has sent no inventory `heartbeat_timeout_s` after the later of the
        seal start and the first event: its retention is unknown, which is not compliant."""
        self.sealed_period += 1
        due = self.ctx.now + seconds(self.timeout_s)
        for camera in self.recorded:
            if camera not in self.ctx.world.inventory:
                self.ctx.schedule(due, self._no_inventory, (camera, self.sealed_period))

    def on_seal_end(self) -> None:
        self.sealed_period += 1

    def _no_inventory(self, arg: tuple[str, int]) -> None:
        camera, period = arg
        if period != self.sealed_period or camera in self.ctx.world.inventory:
            return
        self.raise_(
            camera,
            f"camera {camera}: no recording inventory received in {self.timeout_s:g} s of the "
            "seal (retention unknown)",
            fold=False,
        )

    def on_event(self, ev: Event) -> None:
        assert isinstance(ev, RecordingInventory)
        camera = self.site.cameras[ev.device]
        days = self.tunables.video_retention_days
        max_gap = seconds(self.tunables.max_recording_gap_s)
        since = ev.ts - round(days * DAY_US)
        if camera.installed is not None:
            since = max(since, to_us(camera.installed))
        tz = self.ctx.tz
        problems = []
        if ev.oldest is None:
            problems.append("no recordings")
        elif ev.oldest > since:  # CONTRACT §4: no tolerance; the window includes its start
            problems.append(
                f"oldest recording {format_ts(ev.oldest, tz)} is newer than "
                f"{format_ts(since, tz)} ({days:g} days)"
            )
        long_gaps = 0
        for start, end in ev.gaps:
            # Only the part of a gap inside the retention window counts.
            if min(end, ev.ts) - max(start, since) > max_gap:
                long_gaps += 1
                if long_gaps <= MAX_GAPS_LISTED:
                    problems.append(f"gap {format_ts(start, tz)} to {format_ts(end, tz)}")
        if long_gaps > MAX_GAPS_LISTED:
            problems.append(f"{long_gaps - MAX_GAPS_LISTED} more gap(s)")
        if problems:
            a = self.raise_(camera.id, f"camera {camera.id}: " + "; ".join(problems), fold=False)
            a.message = f"camera {camera.id}: " + "; ".join(problems)
        else:
            self.clear(camera.id)
