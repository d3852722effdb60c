"""`python -m simulators --config SITE.yaml [--mqtt HOST:PORT] [--scenario FILE] [--control PORT]
[--loop] [--data-dir DIR]` — every device of a site on its real protocol (docs/simulators.md)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

from policies.site import Site, SiteError, load_site

from .camera import CameraOptions
from .control import start_control
from .scenario import Scenario, ScenarioError, load_scenario, play
from .site_sim import SiteSimulator

log = logging.getLogger("sealwatch.simulators")


def parse_hostport(value: str, default_port: int) -> tuple[str, int]:
    """`host:port`, `host`, or `mqtt://host:port`."""
    if "://" in value:
        parts = urlsplit(value)
        return parts.hostname or "127.0.0.1", parts.port or default_port
    host, sep, port = value.rpartition(":")
    if not sep:
        return value, default_port
    return host or "127.0.0.1", int(port)


def parse_size(value: str) -> tuple[int, int]:
    w, _, h = value.lower().partition("x")
    return int(w), int(h)


def parse_port_pair(value: str) -> tuple[int, int]:
    old, sep, new = value.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected SITE_PORT=PORT, got {value!r}")
    return int(old), int(new)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m simulators", description="Simulate every device of a sealwatch site."
    )
    p.add_argument("--config", required=True, help="the site file (YAML)")
    p.add_argument(
        "--mqtt",
        default=os.environ.get("SEALWATCH_MQTT_URL", "127.0.0.1:1883"),
        help="broker HOST:PORT or mqtt://HOST:PORT (default $SEALWATCH_MQTT_URL or 127.0.0.1:1883)",
    )
    p.add_argument("--scenario", help="a scenario YAML file to play")
    p.add_argument("--loop", action="store_true", help="repeat the scenario")
    p.add_argument(
        "--exit-after-scenario",
        action="store_true",
        help="stop once the scenario has played (default: keep the devices up)",
    )
    p.add_argument("--control", type=int, help="serve the control port on this port")
    p.add_argument("--control-host", default="127.0.0.1")
    p.add_argument("--data-dir", default=".", help="where relative recording folders go")
    p.add_argument(
        "--port-offset",
        type=int,
        default=0,
        help="add this to every jammer and camera port of the site file",
    )
    p.add_argument(
        "--port-map",
        action="append",
        default=[],
        type=parse_port_pair,
        metavar="SITE_PORT=PORT",
        help="serve a jammer/camera port of the site file on another port "
        "(repeatable; wins over --port-offset)",
    )
    p.add_argument("--topic-site", help="publish under sealwatch/THIS/ instead of site.id")
    p.add_argument("--heartbeat-s", type=float, default=10.0)
    p.add_argument("--segment-s", type=int, default=60, help="live recording segment length")
    p.add_argument(
        "--backfill-days",
        type=float,
        default=0.0,
        help="create this many days of past segments into empty folders",
    )
    p.add_argument("--backfill-segment-s", type=int, default=600)
    p.add_argument("--stream-size", default="640x360", type=parse_size)
    p.add_argument("--snapshot-size", default="1280x720", type=parse_size)
    p.add_argument("--fps", type=float, default=10.0)
    p.add_argument("--day-night", choices=("clock", "day", "night"), default="clock")
    p.add_argument(
        "--no-call-events",
        action="store_true",
        help="write duty-phone call records only, do not publish call.recorded",
    )
    p.add_argument("--mqtt-username", default=os.environ.get("SEALWATCH_MQTT_USERNAME"))
    p.add_argument("--mqtt-password-file", default=os.environ.get("SEALWATCH_MQTT_PASSWORD_FILE"))
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def load_inputs(args: argparse.Namespace) -> tuple[Site, Scenario | None, str | None]:
    """The site, scenario and broker password; SystemExit(1) naming every problem."""
    try:
        site = load_site(args.config)
    except SiteError as exc:
        print(f"{args.config}: invalid site file:", *exc.errors, sep="\n  ", file=sys.stderr)
        raise SystemExit(1) from None
    scenario = None
    if args.scenario:
        try:
            scenario = load_scenario(args.scenario, site)
        except ScenarioError as exc:
            print(f"{args.scenario}: invalid scenario:", *exc.errors, sep="\n  ", file=sys.stderr)
            raise SystemExit(1) from None
    password = None
    if args.mqtt_password_file:
        try:
            password = Path(args.mqtt_password_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            print(f"{args.mqtt_password_file}: cannot read: {exc.strerror}", file=sys.stderr)
            raise SystemExit(1) from None
    return site, scenario, password


async def run(
    args: argparse.Namespace, site: Site, scenario: Scenario | None, password: str | None
) -> int:
    host, port = parse_hostport(args.mqtt, 1883)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    sim = SiteSimulator(
        site,
        host,
        port,
        Path(args.data_dir),
        port_offset=args.port_offset,
        port_map=dict(args.port_map),
        topic_site=args.topic_site,
        mqtt_username=args.mqtt_username,
        mqtt_password=password,
        camera_options=CameraOptions(
            snapshot_size=args.snapshot_size,
            stream_size=args.stream_size,
            fps=args.fps,
            day_night=args.day_night,
        ),
        heartbeat_s=args.heartbeat_s,
        segment_s=args.segment_s,
        backfill_days=args.backfill_days,
        backfill_segment_s=args.backfill_segment_s,
        call_events=not args.no_call_events,
    )
    async with sim, asyncio.TaskGroup() as tg:
        runner = await start_control(sim, args.control_host, args.control) if args.control else None
        log.info(
            "simulating site %s (%d devices); MQTT %s:%d",
            site.id,
            len(site.device_kind),
            host,
            port,
        )
        player = None
        if scenario is not None:
            player = tg.create_task(play(sim, scenario, loop=args.loop), name="scenario")
            if args.exit_after_scenario:
                player.add_done_callback(lambda _t: stop.set())
        await stop.wait()
        log.info("stopping")
        if player is not None and not player.done():
            player.cancel()
        if runner is not None:
            await runner.cleanup()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("pymodbus").setLevel(logging.WARNING if not args.verbose else logging.INFO)
    site, scenario, password = load_inputs(args)
    return asyncio.run(run(args, site, scenario, password))


if __name__ == "__main__":
    sys.exit(main())
