"""No input of any shape ends an adapter: hostile devices, folders and payloads.

Real servers where there is a protocol (pymodbus behind a mangling TCP proxy, aiohttp camera
servers), real directories for the folders, hypothesis for every pure decoder. Each case
asserts what the adapter made of it (a rejection or a health event, with a reason), that it
kept going, and that it recovered once the device was good again; `errors` counts what the
adapters' last-resort guards caught, and it stays 0: nothing here is allowed to reach them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import shutil
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymodbus.constants import ExcCodes

from adapters.base import printable
from adapters.camera import (
    MAX_FRAME_BYTES,
    CameraMonitor,
    MjpegError,
    MjpegParser,
    decode_gray,
    frame_problem,
    jpeg_size,
)
from adapters.camera_tamper import TAMPERS, BadFrame, TamperConfig, TamperDetector
from adapters.duty_phone import BadCall, DutyPhoneWatcher, parse_call
from adapters.modbus_jammer import JammerDecoder, JammerGarbage, JammerPoller
from adapters.mqtt_mapping import (
    RULE_KEYS,
    Ignored,
    MappingError,
    map_message,
    parse_mapping_config,
)
from adapters.recordings import (
    MAX_GAPS,
    MAX_REJECTIONS_PER_SCAN,
    RecordingsWatcher,
    day_problem,
    parse_segment_name,
)
from policies.events import EVENT_TYPES, Rejection
from policies.site import (
    Band,
    Camera,
    Jammer,
    Modbus,
    RegisterField,
    RegisterMap,
    Site,
    parse_site,
    parse_time,
)
from tests.support.collecting_sink import CollectingSink, eventually
from tests.support.mjpeg_server import HUGE, HostileCamera, resized_header
from tests.support.modbus_server import HostileProxy, JammerServer

# -- Modbus jammers --------------------------------------------------------------------------

BANDS = (Band(0, "gsm900", 30.0), Band(1, "dcs1800", 27.0), Band(2, "lte2100", 27.0))
GOOD = {0: 33.0, 1: 31.5, 2: 28.2}


def jammer(port: int, *, rmap: RegisterMap | None = None, timeout_s: float = 0.3) -> Jammer:
    return Jammer(
        "jam-x",
        "work",
        BANDS,
        Modbus("127.0.0.1", port, 1, poll_s=0.05, timeout_s=timeout_s, map=rmap or RegisterMap()),
    )


def statuses(sink: CollectingSink) -> list[dict[str, Any]]:
    return sink.of_type("jammer.status")


def poke(srv: JammerServer, address: int, value: int) -> None:
    regs = list(srv.regs)
    regs[address] = value & 0xFFFF
    srv.regs = regs


@pytest.mark.slow
@pytest.mark.parametrize(
    ("garble", "reason"),
    [
        (lambda s: poke(s, 1, 17), "band count 17 (at most 16)"),
        (lambda s: poke(s, 1, 65535), "band count 65535"),
        (lambda s: poke(s, 0, 0), "register map version 0, expected 1"),
        (lambda s: poke(s, 0, 65535), "register map version 65535"),
        (lambda s: poke(s, 3, 0x8000), "implausible temperature -3276.8 °C"),
        (lambda s: poke(s, 3, 0x7FFF), "implausible temperature 3276.7 °C"),
        (lambda s: poke(s, 11, 0x8000), "implausible forward power -3276.8 dBm on band dcs1800"),
        (lambda s: poke(s, 30, 0x7FFF), "implausible reflected power 3276.7 dBm on band gsm900"),
        (lambda s: setattr(s, "holes", {3}), "exception response (code 2)"),
        (lambda s: setattr(s, "exception", ExcCodes.ILLEGAL_FUNCTION), "(code 1)"),
        (lambda s: setattr(s, "exception", ExcCodes.DEVICE_BUSY), "(code 6)"),
        (lambda s: setattr(s, "exception", ExcCodes.GATEWAY_NO_RESPONSE), "(code 11)"),
        (lambda s: setattr(s, "truncate_to", 1), "asked for 33 registers at 0, got 1"),
        (lambda s: setattr(s, "extra", 5), "asked for 33 registers at 0, got 38"),
    ],
    ids=[
        "bands17",
        "bands65535",
        "version0",
        "version65535",
        "temp-min",
        "temp-max",
        "fwd-min",
        "refl-max",
        "hole",
        "illegal-function",
        "busy",
        "gateway",
        "short",
        "long",
    ],
)
async def test_garbage_registers_are_rejected_and_polling_recovers(
    garble: Any, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "adapters.modbus_jammer")
    sink = CollectingSink()
    async with JammerServer() as srv:
        srv.set_reference(bands=GOOD, band_count=3)
        async with JammerPoller(jammer(srv.port), sink) as poller:
            await sink.wait_for(lambda s: len(statuses(s)) >= 1)
            garble(srv)
            await sink.wait_for(lambda s: len(s.rejections) >= 4)  # it keeps polling
            before = len(statuses(sink))
            srv.exception, srv.holes, srv.truncate_to, srv.extra = None, set(), None, 0
            srv.set_reference(bands=GOOD, band_count=3)
            await sink.wait_for(lambda s: len(statuses(s)) >= before + 2)
        assert poller.stats.errors == 0
    assert all(reason in r for _, _, r in sink.rejections), sink.rejections[:2]
    assert all(src == "modbus:jam-x" for src, _, _ in sink.rejections)
    # The device answered all along: it never went offline.
    assert sink.states("jam-x") == ["online"]
    assert statuses(sink)[-1]["bands"] == {"gsm900": 33.0, "dcs1800": 31.5, "lte2100": 28.2}
    # Logged once when the garbage began and once when it ended, not per poll.
    garbage = [r for r in caplog.records if "sent garbage" in r.getMessage()]
    assert len(garbage) == 1, [r.getMessage() for r in garbage]
    assert any("valid statuses again" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
async def test_band_count_zero_is_read_as_every_band_missing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A device reporting no bands is a reading, not garbage: the status goes through with
    no bands, so jammer-uptime raises per missing band at once during a seal (a rejection
    would leave the engine waiting for `jammer_status_timeout_s`)."""
    caplog.set_level(logging.INFO, "adapters.modbus_jammer")
    sink = CollectingSink()
    async with JammerServer() as srv:
        srv.set_reference(bands=GOOD, band_count=0)
        async with JammerPoller(jammer(srv.port), sink):
            await sink.wait_for(lambda s: len(statuses(s)) >= 4)
            srv.set_reference(bands=GOOD, band_count=3)
            await sink.wait_for(lambda s: statuses(s)[-1]["band_count"] == 3)
    first = statuses(sink)[0]
    assert (first["bands"], first["band_count"], first["output"]) == ({}, 0, True)
    assert sink.rejections == []
    msgs = [r.getMessage() for r in caplog.records]
    assert sum("reports 0 bands" in m for m in msgs) == 1
    assert sum("reports all its bands again" in m for m in msgs) == 1


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["silent", "close", "half", "junk", "wrong_tid", "slow"])
async def test_hostile_connection_goes_offline_with_a_reason_and_recovers(mode: str) -> None:
    sink = CollectingSink()
    async with JammerServer() as srv:
        srv.set_reference(bands=GOOD, band_count=3)
        async with HostileProxy(srv.port, delay_s=1.0) as proxy:
            poller = JammerPoller(jammer(proxy.port, timeout_s=0.3), sink, backoff_cap_s=0.2)
            async with poller:
                await sink.wait_for(lambda s: len(statuses(s)) >= 2)
                proxy.mode = mode
                await sink.wait_for(lambda s: s.states("jam-x") == ["online", "offline"])
                seen = proxy.requests
                await eventually(lambda: proxy.requests >= seen + 2)  # still trying
                proxy.mode = "pass"
                await sink.wait_for(lambda s: s.states("jam-x")[-1:] == ["online"])
                n = len(statuses(sink))
                await sink.wait_for(lambda s: len(statuses(s)) >= n + 2)
            assert poller.stats.errors == 0
    offline = sink.of_type("device.status")[1]
    assert offline["state"] == "offline" and offline["reason"]
    orjson.dumps(offline)
    assert sink.states("jam-x") == ["online", "offline", "online"]


@pytest.mark.slow
async def test_slow_answers_within_the_timeout_are_statuses() -> None:
    sink = CollectingSink()
    async with JammerServer() as srv:
        srv.set_reference(bands=GOOD, band_count=3)
        async with HostileProxy(srv.port, mode="slow", delay_s=0.1) as proxy:
            async with JammerPoller(jammer(proxy.port, timeout_s=2.0), sink) as poller:
                await sink.wait_for(lambda s: len(statuses(s)) >= 5)
    assert sink.states("jam-x") == ["online"] and sink.rejections == []
    assert poller.stats.skipped >= 1  # 0.1 s answers at a 0.05 s period: slots skipped


ODD_MAP = RegisterMap(
    version=RegisterField(0, scale=0.5),  # the model counts half versions: 2 → 1.0
    band_count=RegisterField(1),
    status=RegisterField(2, words=2, word_order="little"),
    temperature=RegisterField(4, scale=10.0, signed=False),  # whole 10 °C steps
    uptime=RegisterField(5, words=2, word_order="little", scale=60.0),  # minutes
    forward=RegisterField(10, scale=0.001, signed=True, words=2, word_order="little"),
    reflected=RegisterField(40, scale=-0.1, signed=True),  # stored negated
)


@pytest.mark.slow
async def test_per_model_map_with_odd_scales_decodes_or_rejects() -> None:
    sink = CollectingSink()
    async with JammerServer() as srv:
        r = [0] * 64
        r[0], r[1] = 2, 3
        r[2], r[3] = 0x0009, 0x0000  # low word first: output + fan
        r[4] = 4  # 40 °C
        r[5], r[6] = 0x0010, 0x0000  # 16 minutes
        for i, mdbm in enumerate((33000, -5250, 27000)):
            v = mdbm & 0xFFFFFFFF
            r[10 + 2 * i], r[11 + 2 * i] = v & 0xFFFF, v >> 16
        r[40] = 0xFF9C  # -100 * -0.1 = 10.0 dBm
        srv.regs = r
        async with JammerPoller(jammer(srv.port, rmap=ODD_MAP), sink) as poller:
            await sink.wait_for(lambda s: len(statuses(s)) >= 1)
            status = statuses(sink)[0]
            assert status["bands"] == {"gsm900": 33.0, "dcs1800": -5.25, "lte2100": 27.0}
            assert status["reflected"]["gsm900"] == 10.0
            assert (status["temperature_c"], status["uptime_s"]) == (40.0, 960)
            assert status["faults"] == ["fan"] and status["output"] is True
            poke(srv, 4, 20)  # 200 °C with this scale: implausible
            await sink.wait_for(lambda s: len(s.rejections) >= 2)
            poke(srv, 0, 3)  # version 1.5
            poke(srv, 4, 4)
            await sink.wait_for(lambda s: any("version 1.5" in r for _, _, r in s.rejections))
            poke(srv, 0, 2)
            n = len(statuses(sink))
            await sink.wait_for(lambda s: len(statuses(s)) > n)
        assert poller.stats.errors == 0
    assert any("implausible temperature 200.0" in r for _, _, r in sink.rejections)


class FlakySink(CollectingSink):
    """A sink that raises on its first `fail` submits (a daemon bug, a full queue)."""

    def __init__(self, fail: int) -> None:
        super().__init__()
        self.fail = fail

    async def submit(self, event: dict[str, Any], *, source: str) -> None:
        if self.fail > 0:
            self.fail -= 1
            raise RuntimeError("sink exploded")
        await super().submit(event, source=source)


@pytest.mark.slow
async def test_a_sink_that_raises_does_not_end_the_poller(caplog: pytest.LogCaptureFixture) -> None:
    sink = FlakySink(fail=5)
    async with JammerServer() as srv:
        srv.set_reference(bands=GOOD, band_count=3)
        async with JammerPoller(jammer(srv.port), sink, backoff_cap_s=0.05) as poller:
            await sink.wait_for(lambda s: len(statuses(s)) >= 2)
    assert poller.stats.errors == 5
    assert sink.states("jam-x") == ["online"]  # the change was given again until it went in
    tracebacks = [r for r in caplog.records if r.exc_info and "poll failed" in r.getMessage()]
    assert len(tracebacks) == 1  # rate-limited


# hypothesis: any registers through any per-model map decode or are rejected, nothing else

SCALES = st.one_of(
    st.sampled_from([1.0, 0.1, 0.01, -0.1, 0.0, 10.0, 1e300, -1e300, 1e-300]),
    st.floats(allow_nan=True, allow_infinity=True),
)


@st.composite
def register_fields(draw: st.DrawFn, max_address: int = 60) -> RegisterField:
    return RegisterField(
        draw(st.integers(0, max_address)),
        scale=draw(SCALES),
        signed=draw(st.booleans()),
        words=draw(st.sampled_from([1, 2])),
        word_order=draw(st.sampled_from(["big", "little"])),
    )


@st.composite
def register_maps(draw: st.DrawFn) -> RegisterMap:
    bits = draw(
        st.dictionaries(
            st.sampled_from(["output", "over_temperature", "vswr", "fan", "x"]),
            st.integers(0, 31),
        )
    )
    return RegisterMap(
        function=draw(st.sampled_from(["input", "holding"])),
        version=draw(register_fields()),
        band_count=draw(register_fields()),
        status=draw(register_fields()),
        temperature=draw(register_fields()),
        uptime=draw(register_fields()),
        forward=draw(register_fields()),
        reflected=draw(register_fields()),
        status_bits=bits,
    )


REGISTER = st.one_of(st.integers(0, 0xFFFF), st.sampled_from([0, 1, 0x7FFF, 0x8000, 0xFFFF]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rmap=register_maps(), data=st.data())
def test_decode_any_registers_through_any_map(rmap: RegisterMap, data: st.DataObject) -> None:
    j = Jammer("jam-h", "work", BANDS, Modbus("127.0.0.1", 1, map=rmap))
    decoder = JammerDecoder(j, rmap)
    n = sum(count for _, count in decoder.plan.blocks)
    # The right number of registers, usually; sometimes too few or too many.
    size = data.draw(st.one_of(st.just(n), st.integers(0, n + 3)))
    regs = data.draw(st.lists(REGISTER, min_size=size, max_size=size))
    try:
        event = decoder.decode(regs, "2027-05-25T06:00:00.000+00:00")
    except JammerGarbage as exc:
        assert exc.message and exc.jammer == "jam-h"
        return
    orjson.dumps(event)  # JSON-safe: no NaN, no integer beyond 64 bits
    assert -60.0 <= event["temperature_c"] <= 150.0
    assert 0 <= event["band_count"] <= 16
    assert 0 <= event["uptime_s"] < 2**53
    for v in (*event["bands"].values(), *event["reflected"].values()):
        assert math.isfinite(v) and -100.0 <= v <= 90.0
    assert set(event["bands"]) <= {b.id for b in BANDS}


# -- frame analysis ---------------------------------------------------------------------------

DTYPES = [np.uint8, np.uint16, np.int8, np.int32, np.float32, np.float64, np.bool_, np.complex64]


@st.composite
def frames(draw: st.DrawFn) -> np.ndarray:
    h = draw(st.sampled_from([0, 1, 2, 9, 10, 15, 16, 17, 19, 21, 33, 90, 99, 101]))
    w = draw(st.sampled_from([0, 1, 3, 15, 16, 17, 31, 160, 161, 257, 321]))
    channels = draw(st.sampled_from([None, 1, 2, 3, 4, 5]))
    dtype = draw(st.sampled_from(DTYPES)) if draw(st.integers(0, 3)) == 0 else np.uint8
    shape = (h, w) if channels is None else (h, w, channels)
    kind = draw(st.sampled_from(["random", "flat", "black", "white", "stripes"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "random":
        a = rng.integers(0, 256, size=shape)
    elif kind == "stripes":
        a = np.zeros(shape, np.int64)
        a[::2] = 255
    else:
        a = np.full(shape, {"flat": 128, "black": 0, "white": 255}[kind])
    frame: np.ndarray = a.astype(dtype)
    if draw(st.booleans()) and frame.ndim >= 2 and frame.size:
        frame = frame[::-1, ::2]  # not contiguous
    return frame


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seq=st.lists(frames(), min_size=1, max_size=8))
def test_tamper_analysis_judges_or_refuses_any_array(seq: list[np.ndarray]) -> None:
    det = TamperDetector(TamperConfig(confirm_s=0.0, confirm_samples=1, learn_samples=1))
    t = 0.0
    for frame in seq:
        try:
            verdict = det.update(frame, t)
        except BadFrame as exc:
            assert str(exc)
            continue
        assert verdict in (None, *TAMPERS)
        t += 0.5


# -- cameras ----------------------------------------------------------------------------------

FAST = TamperConfig(confirm_s=0.5, confirm_samples=3, clear_s=0.2, clear_samples=2)


def camera_monitor(cam: Camera, sink: CollectingSink, **kw: Any) -> CameraMonitor:
    opts: dict[str, Any] = {
        "interval_s": 0.1,
        "stall_s": 0.5,
        "heartbeat_s": 60.0,
        "backoff_cap_s": 0.2,
        "request_timeout_s": 0.5,
        "tamper": FAST,
    }
    return CameraMonitor(cam, sink, **{**opts, **kw})


def cam_states(sink: CollectingSink) -> list[str]:
    """The camera's stream states, repeats folded."""
    out: list[str] = []
    for e in sink.of_type("camera.status"):
        if not out or out[-1] != e["stream"]:
            out.append(e["stream"])
    return out


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("not_jpeg", "not a JPEG frame (Content-Type 'text/html"),
        ("truncated", "not a JPEG frame"),
        ("empty", "empty frame"),
        ("huge_declared", f"snapshot of {HUGE} bytes"),
        ("huge_chunked", f"frame of {MAX_FRAME_BYTES + 1} bytes"),
        ("tiny", "picture 1x1 is too small to judge"),
        ("giant", "picture 10000x10000 is over 50 Mpx"),
        ("http500", "snapshot HTTP 500"),
        ("http404", "snapshot HTTP 404"),
        ("hang", None),
        ("hang_body", None),
    ],
)
async def test_hostile_snapshot_camera_is_down_with_a_reason_and_recovers(
    mode: str, reason: str | None
) -> None:
    sink = CollectingSink()
    async with HostileCamera() as srv:
        cam = Camera("cam-h", "hall", snapshot=srv.url("snap.jpg"))
        async with camera_monitor(cam, sink) as mon:
            await sink.wait_for(lambda s: cam_states(s) == ["up"])
            srv.mode = mode
            await sink.wait_for(lambda s: cam_states(s) == ["up", "down"])
            down = next(e for e in sink.of_type("camera.status") if e["stream"] == "down")
            requests = srv.requests
            await eventually(lambda: srv.requests >= requests + 2)  # it keeps asking
            srv.mode = "good"
            await sink.wait_for(lambda s: cam_states(s) == ["up", "down", "up"])
        assert mon.errors == 0
    assert down["tamper"] is None and down["reason"]
    orjson.dumps(down)
    if reason is None:  # nothing came: no rejection; the reason is the stall or the timeout
        assert sink.rejections == []
        assert "no frame for 0.5 s" in down["reason"] or "Timeout" in down["reason"]
    else:
        assert sink.rejections and all(reason in r for _, _, r in sink.rejections)
        assert reason in down["reason"] or "HTTP" in down["reason"]
    if mode.startswith("huge"):
        # The 50 MiB were never read: at most the cap plus what the sockets buffer.
        assert srv.most < HUGE // 2


@pytest.mark.slow
async def test_a_jpeg_labelled_text_plain_is_still_a_picture() -> None:
    """Cameras mislabel; the bytes decide."""
    sink = CollectingSink()
    async with HostileCamera() as srv:
        srv.mode = "text_plain"
        cam = Camera("cam-h", "hall", snapshot=srv.url("snap.jpg"))
        async with camera_monitor(cam, sink) as mon:
            await sink.wait_for(lambda s: cam_states(s) == ["up"])
            await eventually(lambda: mon.frames >= 3)
    assert sink.rejections == [] and cam_states(sink) == ["up"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("garbage_parts", "not a JPEG frame"),
        ("broken_boundary", "no complete part within"),
        ("text_plain", "Content-Type 'text/plain' is not multipart with a boundary"),
        ("no_boundary", "is not multipart with a boundary"),
        ("huge_part", "part of 50000000 bytes"),
        ("tiny", "picture 1x1 is too small to judge"),
        ("hang", None),
        ("http404", "stream HTTP 404"),
    ],
)
async def test_hostile_mjpeg_stream_is_down_with_a_reason_and_recovers(
    mode: str, reason: str | None
) -> None:
    sink = CollectingSink()
    async with HostileCamera() as srv:
        cam = Camera("cam-s", "hall", url=srv.url("live.mjpg"), mode="stream")
        async with camera_monitor(cam, sink) as mon:
            await sink.wait_for(lambda s: cam_states(s) == ["up"])
            srv.mode = mode
            await sink.wait_for(lambda s: cam_states(s) == ["up", "down"])
            down = next(e for e in sink.of_type("camera.status") if e["stream"] == "down")
            requests, rejected = srv.requests, mon.rejected
            # It goes on: reconnects, or stays connected and keeps judging what comes.
            await eventually(lambda: srv.requests > requests or mon.rejected >= rejected + 3)
            srv.mode = "good"
            await sink.wait_for(lambda s: cam_states(s) == ["up", "down", "up"])
        assert mon.errors == 0
    assert down["tamper"] is None and down["reason"]
    if reason is None:
        assert sink.rejections == []
    else:
        assert sink.rejections and any(reason in r for _, _, r in sink.rejections)
    if mode == "huge_part":
        assert srv.most < HUGE // 2


def _jpeg(w: int, h: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((h, w, 3), 90, np.uint8))
    assert ok
    return buf.tobytes()


def test_jpeg_size_reads_the_frame_header() -> None:
    assert jpeg_size(_jpeg(64, 48)) == (64, 48)
    assert jpeg_size(resized_header(_jpeg(64, 48), 10000, 10000)) == (10000, 10000)
    assert jpeg_size(b"") is None and jpeg_size(b"\xff\xd8\xff\xd9") is None
    assert frame_problem(resized_header(_jpeg(64, 48), 65535, 65535)) == (
        "picture 65535x65535 is over 50 Mpx"
    )
    assert frame_problem(resized_header(_jpeg(64, 48), 0, 48)) == (
        "picture 0x48 is too small to judge (at least 16x16)"
    )
    assert frame_problem(_jpeg(64, 48)) is None


@settings(max_examples=500, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=300).map(lambda b: b"\xff\xd8" + b + b"\xff\xd9"),
        st.builds(
            lambda cut, tail: _jpeg(40, 30)[:cut] + tail,
            st.integers(0, 700),
            st.binary(max_size=20),
        ),
        st.builds(
            lambda w, h: resized_header(_jpeg(40, 30), w, h),
            st.integers(0, 65535),
            st.integers(0, 65535),
        ),
    )
)
def test_any_bytes_as_a_frame_are_judged_or_refused(data: bytes) -> None:
    problem = frame_problem(data)
    size = jpeg_size(data)
    gray = decode_gray(data, 1)
    if problem is not None:
        assert gray is None and isinstance(problem, str)
    else:
        assert size is not None
    if gray is not None:
        assert gray.ndim == 2 and gray.size


@settings(max_examples=300, deadline=None)
@given(
    boundary=st.sampled_from(["frame", "--frame", '"frame"', "x", "--"]),
    chunks=st.lists(
        st.one_of(
            st.binary(max_size=200),
            st.sampled_from(
                [
                    b"--frame\r\n",
                    b"Content-Length: 5\r\n\r\n",
                    b"Content-Length: 99999999999\r\n\r\n",
                    b"Content-Length: -1\r\n\r\n",
                    b"\r\n\r\n",
                    b"\xff\xd8abc\xff\xd9",
                ]
            ),
        ),
        max_size=30,
    ),
)
def test_mjpeg_parser_splits_or_refuses_any_byte_stream(boundary: str, chunks: list[bytes]) -> None:
    try:
        parser = MjpegParser(boundary)
    except MjpegError:
        assert boundary.strip('"-') == ""
        return
    try:
        for chunk in chunks:
            for part in parser.feed(chunk):
                assert isinstance(part, bytes) and len(part) <= MAX_FRAME_BYTES
    except MjpegError as exc:
        assert str(exc)


# -- recording folders ------------------------------------------------------------------------

NOW = datetime(2027, 5, 25, 6, 0, tzinfo=UTC)


def rec_site() -> Site:
    return parse_site("""
site: {id: rec-hostile, name: Recording folders}
zones: [{id: hall, kind: sealed_work}]
cameras: [{id: cam-r, zone: hall, recordings: nvr/cam-r}]
policies: {max_recording_gap_s: 60, video_retention_days: 90}
""")


async def scan(watcher: RecordingsWatcher) -> dict[str, Any]:
    (event,) = await watcher.scan_once()
    orjson.dumps(event)
    return event


def segment(folder: Path, t: datetime, seconds: int = 60) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{t:%Y%m%dT%H%M%SZ}_{seconds}.mp4").write_bytes(b"x")


async def test_missing_then_empty_then_filled_folder_is_never_silent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "adapters.recordings")
    sink = CollectingSink()
    watcher = RecordingsWatcher(rec_site(), sink, tmp_path, now=lambda: NOW)
    root = tmp_path / "nvr" / "cam-r"
    missing = await scan(watcher)
    await scan(watcher)
    root.mkdir(parents=True)
    empty = await scan(watcher)
    await scan(watcher)
    segment(root / "2027-05-25", NOW - timedelta(minutes=1))
    found = await scan(watcher)
    for e in (missing, empty):
        assert e["type"] == "recording.inventory" and e["device"] == "cam-r"
        assert e["oldest"] == e["newest"] == e["ts"] == "2027-05-25T06:00:00+00:00"
        assert (e["segments"], e["gaps"]) == (0, [])
    assert missing["faults"] == ["recordings_unreadable"]
    assert "No such file or directory" in missing["error"]
    assert empty["faults"] == ["no_recordings"] and "no recordings in" in empty["error"]
    assert found["oldest"] == "2027-05-25T05:59:00+00:00" and found["faults"] == []
    assert sink.rejections == []
    # One line per change of state, not one per scan.
    msgs = [r.getMessage() for r in caplog.records if "cam-r" in r.getMessage()]
    assert len(msgs) == 3, msgs
    assert "recordings found" in msgs[-1]


def _touch(path: bytes | str | Path, content: bytes = b"") -> None:
    with open(path, "wb") as f:
        f.write(content)


async def test_bad_names_bad_times_and_bad_bytes_are_rejected_once(tmp_path: Path) -> None:
    root = tmp_path / "nvr" / "cam-r"
    day = root / "2027-05-25"
    segment(day, NOW - timedelta(hours=1))
    for name in [
        "holiday.jpg",
        "20270525T050000Z_60",  # no extension
        "20270525T050000Z_9999999999.mp4",  # duration digits beyond the pattern
        "20270525T250000Z_60.mp4",  # hour 25
        "２０２７０５２５T050000Z_60.mp4",  # full-width digits
        "20270525T050000Z_60.mp4.part",
    ]:
        _touch(day / name)
    (root / "0001-01-01").mkdir()
    segment(root / "0001-01-01", datetime(1, 1, 1, tzinfo=UTC))
    (root / "9999-12-31").mkdir()
    segment(root / "9999-12-31", datetime(9999, 12, 31, 23, 59, tzinfo=UTC))
    _touch(day / "99991231T235959Z_60.mp4")  # a time that would overflow when ended
    _touch(day / "00010101T000000Z_60.mp4")
    _touch(os.fsencode(day) + b"/\xff\xfe20270525.mp4")  # not UTF-8
    os.mkdir(os.fsencode(root) + b"/2027-05-\xff")
    sink = CollectingSink()
    watcher = RecordingsWatcher(rec_site(), sink, tmp_path, now=lambda: NOW)
    event = await scan(watcher)
    await scan(watcher)
    assert event["oldest"] == "2027-05-25T05:00:00+00:00"
    assert event["faults"] == ["bad_segment_names"] and event["bad_names"] == 12
    assert len(sink.rejections) == 12  # each once, though scanned twice
    for source, payload, reason in sink.rejections:
        assert source == "recordings:cam-r" and reason.startswith("bad recording file name: ")
        orjson.dumps([payload, reason])  # valid UTF-8: the store and the log can take it
    reasons = " | ".join(r for _, _, r in sink.rejections)
    assert "day folder outside 2000–2099" in reasons
    assert "start time 99991231T235959Z outside 2000–2099" in reasons
    assert "start time 00010101T000000Z outside 2000–2099" in reasons
    assert "impossible start time 20270525T250000Z" in reasons
    assert any("\\xff\\xfe20270525.mp4" in p for _, p, _ in sink.rejections)


async def test_symlink_loops_and_a_file_for_a_folder(tmp_path: Path) -> None:
    root = tmp_path / "nvr" / "cam-r"
    day = root / "2027-05-25"
    segment(day, NOW - timedelta(hours=1))
    (day / "20270525T051000Z_60.mp4").symlink_to("20270525T051000Z_60.mp4")  # ELOOP
    (root / "2027-05-24").symlink_to("2027-05-24")  # a day folder that is a loop
    (root / "2027-05-23").symlink_to(root)  # a day folder that is the root again
    sink = CollectingSink()
    watcher = RecordingsWatcher(rec_site(), sink, tmp_path, now=lambda: NOW)
    event = await scan(watcher)
    assert event["oldest"] == "2027-05-25T05:00:00+00:00" and event["segments"] == 1
    reasons = [r for _, _, r in sink.rejections]
    assert any("cannot stat: Too many levels of symbolic links" in r for r in reasons)
    assert any("not a readable directory" in r for r in reasons)
    assert any("filed under" in r or "not a segment name" in r for r in reasons)

    # The folder itself is a loop, then a plain file: unreadable, said so, for root too.
    shutil.rmtree(root)
    root.symlink_to(root)
    looped = await scan(watcher)
    assert looped["faults"] == ["recordings_unreadable"] and "symbolic links" in looped["error"]
    root.unlink()
    root.write_text("not a folder")
    as_file = await scan(watcher)
    assert as_file["faults"] == ["recordings_unreadable"] and "Not a directory" in as_file["error"]
    assert watcher.errors == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 folder anyway")
async def test_permission_denied_day_folder_is_rejected(tmp_path: Path) -> None:
    root = tmp_path / "nvr" / "cam-r"
    segment(root / "2027-05-25", NOW - timedelta(hours=1))
    segment(root / "2027-05-24", NOW - timedelta(days=1))
    (root / "2027-05-24").chmod(0)
    sink = CollectingSink()
    try:
        event = await scan(RecordingsWatcher(rec_site(), sink, tmp_path, now=lambda: NOW))
    finally:
        (root / "2027-05-24").chmod(0o755)
    assert event["segments"] == 1
    assert any("Permission denied" in r for _, _, r in sink.rejections)


@pytest.mark.slow
async def test_a_hundred_thousand_files_stay_bounded(tmp_path: Path) -> None:
    root = tmp_path / "nvr" / "cam-r"
    day = root / "2027-05-24"
    day.mkdir(parents=True)
    start = datetime(2027, 5, 24, tzinfo=UTC)
    for i in range(50_000):  # one-second segments, one missing every 1000: 49 gaps... no:
        if i % 1000 != 999:  # ... the gap is 2 s, under max_recording_gap_s: no gap
            _touch(day / f"{start + timedelta(seconds=i):%Y%m%dT%H%M%SZ}_1.mp4")
    for i in range(50_000):
        _touch(day / f"junk-{i:05d}.tmp")
    segment(root / "2027-05-25", NOW - timedelta(minutes=1))
    sink = CollectingSink()
    watcher = RecordingsWatcher(rec_site(), sink, tmp_path, now=lambda: NOW)
    tracemalloc.start()
    try:
        event = await scan(watcher)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert event["segments"] == 49_951 and event["bad_names"] == 50_000
    assert event["oldest"] == "2027-05-24T00:00:00+00:00"
    assert peak < 48 * 1024 * 1024, f"{peak / 1e6:.0f} MB"
    # 50 rejections by name and one summary, not 50,000.
    assert len(sink.rejections) == MAX_REJECTIONS_PER_SCAN + 1
    assert "not listed one by one (50000 in the folder)" in sink.rejections[-1][2]
    reads = watcher.scanners["cam-r"].day_reads
    await scan(watcher)
    assert watcher.scanners["cam-r"].day_reads == reads + 1  # only the newest day again
    assert len(sink.rejections) == MAX_REJECTIONS_PER_SCAN + 1


async def test_many_gaps_are_capped_to_the_newest(tmp_path: Path) -> None:
    day = tmp_path / "nvr" / "cam-r" / "2027-05-24"
    start = datetime(2027, 5, 24, tzinfo=UTC)
    for i in range(MAX_GAPS + 200):
        segment(day, start + timedelta(seconds=70 * i), 1)
    event = await scan(RecordingsWatcher(rec_site(), CollectingSink(), tmp_path, now=lambda: NOW))
    assert event["gaps_total"] == MAX_GAPS + 199 and len(event["gaps"]) == MAX_GAPS
    assert (
        event["gaps"][-1][1]
        == f"{start + timedelta(seconds=70 * (MAX_GAPS + 199)):%Y-%m-%dT%H:%M:%S}+00:00"
    )


@settings(max_examples=500, deadline=None)
@given(
    name=st.one_of(
        st.text(max_size=40),
        st.binary(max_size=40).map(lambda b: b.decode("utf-8", "surrogateescape")),
        st.builds(
            lambda y, mo, d, h, mi, s, dur, ext: (
                f"{y:04d}{mo:02d}{d:02d}T{h:02d}{mi:02d}{s:02d}Z_{dur}.{ext}"
            ),
            st.integers(0, 9999),
            st.integers(0, 13),
            st.integers(0, 32),
            st.integers(0, 24),
            st.integers(0, 60),
            st.integers(0, 61),
            st.integers(0, 10**9 - 1),
            st.sampled_from(["mp4", "mkv", "x", "ü"]),
        ),
    ),
    day=st.one_of(
        st.text(max_size=12), st.sampled_from(["2027-05-25", "9999-12-31", "0001-01-01"])
    ),
)
def test_segment_and_day_names_parse_or_are_refused(name: str, day: str) -> None:
    parsed = parse_segment_name(name, day)
    if isinstance(parsed, str):
        orjson.dumps(printable(parsed))
        assert parsed
    else:
        start, duration = parsed
        assert 2000 <= start.year < 2100 and 0 < duration <= 86400
        start + timedelta(seconds=duration)  # no overflow
    problem = day_problem(day)
    assert problem is None or problem.startswith(("not a day folder", "day folder outside"))


FS_NAME = st.one_of(
    st.text(
        st.characters(codec="utf-8", exclude_characters="/\x00"),
        min_size=1,
        max_size=30,
    ),
    st.binary(min_size=1, max_size=30).map(lambda b: b.replace(b"/", b"_").replace(b"\x00", b"_")),
    st.sampled_from(["2027-05-25", "2027-05-24", "0001-01-01", "20270525T050000Z_60.mp4"]),
).filter(lambda n: n not in (".", "..", b".", b".."))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tree=st.lists(st.tuples(FS_NAME, st.lists(FS_NAME, max_size=4), st.booleans()), max_size=6))
def test_any_folder_tree_gives_an_inventory(
    tmp_path_factory: pytest.TempPathFactory, tree: list[Any]
) -> None:
    base = tmp_path_factory.mktemp("tree")
    root = os.fsencode(base / "nvr" / "cam-r")
    os.makedirs(root)
    for top, children, is_dir in tree:
        top_b = os.fsencode(top) if isinstance(top, str) else top
        path = root + b"/" + top_b
        try:
            if is_dir:
                os.makedirs(path, exist_ok=True)
                for child in children:
                    child_b = os.fsencode(child) if isinstance(child, str) else child
                    _touch(path + b"/" + child_b)
            else:
                _touch(path)
        except OSError:  # a name too long for the file system, or a clash: skip it
            continue
    sink = CollectingSink()
    watcher = RecordingsWatcher(rec_site(), sink, base, now=lambda: NOW)
    (event,) = asyncio.run(watcher.scan_once())
    orjson.dumps([event, sink.rejections])
    assert event["type"] == "recording.inventory" and event["oldest"] <= event["newest"]
    assert event["bad_names"] >= len(sink.rejections) or sink.rejections[-1][2].startswith(
        "bad recording file names:"
    )


# -- duty-phone files -------------------------------------------------------------------------


def phone_site() -> Site:
    return parse_site("""
site: {id: phone-hostile, name: Duty phone}
zones: [{id: living, kind: sealed_living}]
duty_phones: [{id: duty-phone, zone: living, recordings: calls}]
""")


def record(call: str = "call-1", **fields: Any) -> dict[str, Any]:
    return {
        "call": call,
        "start": "2027-05-25T05:58:00+00:00",
        "end": "2027-05-25T06:00:00+00:00",
        "recording": None,
        "supervisors": ["S2001", "S2002"],
        **fields,
    }


def bad_json(**fields: Any) -> bytes:
    return orjson.dumps({**record("bad"), **fields})


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "not valid JSON"),
        (b"\x00\x01\xfe\xff" * 100, "not valid JSON"),
        (b'{"call": "bad", "start": "\xff\xfe"}', "not valid JSON"),
        (b"[" * 3000 + b"]" * 3000, "not valid JSON"),  # deeper than the parser goes
        (b"null", "expected an object, got NoneType"),
        (b"1e400", "not valid JSON"),
        (b'"a string"', "expected an object, got str"),
        (bad_json(call=5), "call id 5 does not match"),
        (bad_json(call=["bad"]), "does not match"),
        (bad_json(start=1748152680), "start must be an RFC 3339 time, got int"),
        (bad_json(start=None), "start must be an RFC 3339 time, got NoneType"),
        (bad_json(end={"t": 1}), "end must be an RFC 3339 time, got dict"),
        (bad_json(start="yesterday"), "bad time in start"),
        (
            bad_json(start="0001-01-01T00:00:00+14:00"),
            "start '0001-01-01T00:00:00+14:00' is outside",
        ),
        (bad_json(end="9999-12-31T23:59:59-14:00"), "end '9999-12-31T23:59:59-14:00' is outside"),
        (bad_json(start="1999-12-31T23:59:59Z"), "outside 2000–2099"),
        (bad_json(end="2100-01-01T00:00:00Z"), "outside 2000–2099"),
        (bad_json(supervisors=[1, 2]), "supervisors must be a list of badges"),
        (bad_json(supervisors=[""]), "supervisors must be a list of badges"),
        (bad_json(supervisors={"S1": True}), "supervisors must be a list of badges"),
        (bad_json(recording=5), "recording must be a file name in the folder or null, got 5"),
        (bad_json(recording="x" * 100_000), "more than"),  # over the size cap
        (orjson.dumps(record("bad", note="x" * 2_000_000)), "bytes (a call record has at most"),
    ],
)
async def test_bad_call_files_are_rejected_with_a_reason(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    calls = tmp_path / "calls"
    calls.mkdir()
    (calls / "call-1.json").write_bytes(orjson.dumps(record()))
    (calls / "bad.json").write_bytes(content)
    sink = CollectingSink()
    w = DutyPhoneWatcher(phone_site(), sink, tmp_path, now=lambda: NOW)
    assert [e["call"] for e in await w.scan_once()] == ["call-1"]
    await w.scan_once()
    assert len(sink.rejections) == 1, sink.rejections
    _, payload, why = sink.rejections[0]
    assert payload.endswith("bad.json")
    if reason == "more than":
        assert "bytes (a call record has at most 65536)" in why
    else:
        assert reason in why, why
    assert len(why) < 400  # a reason, not the file
    orjson.dumps(sink.rejections)
    assert w.errors == 0 and w.save_error is None


async def test_odd_files_in_the_phone_folder(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    calls.mkdir()
    (calls / "call-1.json").write_bytes(orjson.dumps(record()))
    os.mkfifo(calls / "fifo.json")  # reading it would block the scan forever
    (calls / "dir.json").mkdir()
    (calls / "loop.json").symlink_to("loop.json")
    (calls / "gone.json").symlink_to("nowhere.json")  # vanished between listing and reading
    (calls / "zero.json").symlink_to("/dev/zero")  # endless
    name = os.fsencode(calls) + b"/\xff\xfe.json"  # not UTF-8
    _touch(name, orjson.dumps(record("whatever")))
    sink = CollectingSink()
    w = DutyPhoneWatcher(phone_site(), sink, tmp_path, now=lambda: NOW)
    assert [e["call"] for e in await w.scan_once()] == ["call-1"]
    await w.scan_once()
    await DutyPhoneWatcher(phone_site(), sink, tmp_path, now=lambda: NOW).scan_once()
    got = {p.rsplit("/", 1)[1]: r for _, p, r in sink.rejections}
    assert len(sink.rejections) == 5, sink.rejections  # each once, across a restart too
    assert "not a regular file" in got["fifo.json"]
    assert "not a regular file" in got["dir.json"]
    assert "not a regular file" in got["zero.json"]
    assert "Too many levels of symbolic links" in got["loop.json"]
    assert "does not match the file name" in got["\\xff\\xfe.json"]
    orjson.dumps(sink.rejections)
    orjson.loads((tmp_path / "duty_phone_calls.json").read_bytes())
    assert w.errors == 0


async def test_a_state_file_that_cannot_be_written_is_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calls = tmp_path / "calls"
    calls.mkdir()
    (calls / "call-1.json").write_bytes(orjson.dumps(record()))
    blocker = tmp_path / "state"
    blocker.write_text("a file where a folder should be")
    sink = CollectingSink()
    w = DutyPhoneWatcher(
        phone_site(), sink, tmp_path, now=lambda: NOW, state_path=blocker / "calls.json"
    )
    assert len(await w.scan_once()) == 1
    assert w.save_error and w.save_error.startswith(f"cannot write {blocker}")
    (calls / "call-2.json").write_bytes(orjson.dumps(record("call-2")))
    assert len(await w.scan_once()) == 1  # calls go on; emitted ones are not repeated
    assert sum("cannot write" in r.getMessage() for r in caplog.records) == 1
    blocker.unlink()
    await w.scan_once()
    assert w.save_error is None
    saved = orjson.loads((blocker / "calls.json").read_bytes())
    assert saved["emitted"] == {"duty-phone": ["call-1", "call-2"]}


@pytest.mark.parametrize(
    "state",
    [
        b"[]",
        b'{"emitted": [1]}',
        b'{"emitted": {"duty-phone": [1, "x", null]}}',
        b'{"rejected": "abc"}',
        b'{"emitted": {"duty-phone": "call-1"}}',
        b"\xff",
    ],
)
async def test_a_corrupt_state_file_means_calls_again_never_a_crash(
    tmp_path: Path, state: bytes
) -> None:
    (tmp_path / "calls").mkdir()
    (tmp_path / "calls" / "call-1.json").write_bytes(orjson.dumps(record()))
    (tmp_path / "duty_phone_calls.json").write_bytes(state)
    w = DutyPhoneWatcher(phone_site(), CollectingSink(), tmp_path, now=lambda: NOW)
    assert len(await w.scan_once()) == 1
    assert w.save_error is None
    orjson.loads((tmp_path / "duty_phone_calls.json").read_bytes())


EXTREME = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(
        [
            "2027-05-25T06:00:00+00:00",
            "2027-05-25T06:00:00",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
            "2027-13-45T99:00:00Z",
            "x" * 10_000,
            "",
        ]
    ),
)
JSON_VALUES = st.recursive(
    EXTREME,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(
    raw=st.one_of(
        st.binary(max_size=200),
        JSON_VALUES.map(orjson.dumps),
        st.fixed_dictionaries(
            {},
            optional={
                "call": st.one_of(st.just("call-1"), JSON_VALUES),
                "start": st.one_of(st.just("2027-05-25T05:58:00+00:00"), JSON_VALUES),
                "end": st.one_of(st.just("2027-05-25T06:00:00+00:00"), JSON_VALUES),
                "recording": st.one_of(st.just("call-1.wav"), JSON_VALUES),
                "supervisors": st.one_of(st.just(["S1", "S2"]), JSON_VALUES),
            },
        ).map(orjson.dumps),
    )
)
def test_any_call_record_parses_or_is_refused(raw: bytes) -> None:
    try:
        call = parse_call(raw, "call-1")
    except BadCall as exc:
        assert str(exc) and len(str(exc)) < 400
        orjson.dumps(str(exc))
        return
    assert call.call == "call-1"
    start, end = parse_time(call.start), parse_time(call.end)
    assert datetime(2000, 1, 1, tzinfo=UTC) <= start <= end < datetime(2100, 1, 1, tzinfo=UTC)
    assert all(isinstance(b, str) and b for b in call.supervisors)


# -- third-party MQTT mapping -----------------------------------------------------------------

MAPPING = parse_mapping_config(
    [
        {"topic": "zigbee2mqtt/+/contact", "device": "{1}", "type": "door.opened", "when": "ON"},
        {
            "topic": "zigbee2mqtt/+",
            "device": "{1}",
            "devices": {"hatch_sensor": "hatch-1"},
            "json_path": "contact",
            "values": {True: "door.closed", False: "door.opened"},
        },
        {
            "topic": "detectors/+/rssi",
            "device": "pd-{1}",
            "type": "phone.detected",
            "fields": {"rssi_dbm": "{value}", "band": "{$.band}", "note": "band {$.band}"},
            "json_path": "rssi",
        },
        {
            "topic": "panels/#",
            "device": ["{$.id}", "panel-{1}"],
            "type": "alarm.panel",
            "fields": {"armed": "{$.state.armed}", "first": "{$.list.0}", "raw": "{value}"},
        },
        {
            "topic": "frigate/available",
            "device": "cam",
            "type": "device.status",
            "when": ["online", "offline"],
            "fields": {"state": "{value}"},
        },
        {
            "topic": "frigate/events",
            "where": {"type": ["new", "update"], "after.label": "person"},
            "json_path": "after.camera",
            "device": "{value}",
            "type": "camera.object",
            "fields": {"label": "{$.after.label}", "zones": "{$.after.current_zones}"},
        },
    ]
)


def nested(depth: int, leaf: bytes = b"1") -> bytes:
    return b'{"rssi":' + b"[" * depth + leaf + b"]" * depth + b"}"


PAYLOADS = st.one_of(
    st.binary(max_size=100),
    JSON_VALUES.map(orjson.dumps),
    st.fixed_dictionaries(
        {},
        optional={
            "contact": JSON_VALUES,
            "rssi": JSON_VALUES,
            "band": JSON_VALUES,
            "id": JSON_VALUES,
            "state": st.one_of(JSON_VALUES, st.fixed_dictionaries({"armed": JSON_VALUES})),
            "list": st.lists(JSON_VALUES, max_size=3),
        },
    ).map(orjson.dumps),
    st.fixed_dictionaries(  # Frigate's frigate/events shape, with anything in its fields
        {"type": st.one_of(st.sampled_from(["new", "update", "end"]), JSON_VALUES)},
        optional={
            "after": st.fixed_dictionaries(
                {},
                optional={
                    "camera": JSON_VALUES,
                    "label": st.one_of(st.just("person"), JSON_VALUES),
                    "current_zones": JSON_VALUES,
                },
            )
        },
    ).map(orjson.dumps),
    st.sampled_from(
        [
            b"ON",
            b" ON \n",
            b"\xff\xfe",
            b"\xed\xa0\x80",  # an encoded surrogate: not UTF-8
            nested(300),
            nested(1100),
            b'{"id": ' + b"[" * 300 + b"]" * 300 + b"}",
            b'{"rssi": 1, "band": ' + b"[" * 300 + b"]" * 300 + b"}",
            b'{"rssi": 1e400}',
            b'{"rssi": 123456789012345678901234567890}',
            b'{"rssi": "' + b"x" * 300_000 + b'"}',
        ]
    ),
)
TOPICS = st.one_of(
    st.sampled_from(
        [
            "zigbee2mqtt/door1/contact",
            "frigate/events",
            "zigbee2mqtt/hatch_sensor",
            "zigbee2mqtt/",
            "detectors/work/rssi",
            "detectors//rssi",
            "panels/a",
            "panels/a/b/c",
            "frigate/available",
        ]
    ),
    st.builds(
        lambda a, b: f"{a}/{b}/rssi",
        st.just("detectors"),
        st.text(st.characters(codec="utf-8", exclude_characters="/"), max_size=300),
    ),
)


@settings(max_examples=1000, deadline=None)
@given(topic=TOPICS, payload=PAYLOADS)
def test_any_payload_maps_to_events_or_a_rejection(topic: str, payload: bytes) -> None:
    result = map_message(MAPPING, topic, payload)
    if isinstance(result, Rejection):
        assert result.reason.startswith(topic[:200])
        assert "cannot map" not in result.reason  # the last-resort guard was not needed
        assert len(result.reason) < 2000
        orjson.dumps(result.reason)
        return
    if isinstance(result, Ignored):
        assert result.reason.startswith(topic[:200]) and len(result.reason) < 2000
        return
    assert isinstance(result, list)
    for event in result:
        assert event["type"] in EVENT_TYPES
        assert isinstance(event["device"], str) and event["device"]
        orjson.dumps(event)


CONFIG_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.text(max_size=12),
        st.sampled_from(["door.opened", "{1}", "{$.a}", "a/+/b", "#", "a/#", "{9}"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=500, deadline=None)
@given(
    raw=st.one_of(
        CONFIG_VALUES,
        st.lists(
            st.fixed_dictionaries(
                {},
                optional={k: CONFIG_VALUES for k in RULE_KEYS} | {"colour": CONFIG_VALUES},
            ),
            max_size=3,
        ),
    )
)
def test_any_mapping_config_is_read_or_refused_with_paths(raw: Any) -> None:
    try:
        rules = parse_mapping_config(raw)
    except MappingError as exc:
        assert exc.errors and all(e.startswith("daemon.mqtt_mappings") for e in exc.errors)
        return
    for rule in rules:
        map_message(rules, rule.topic.replace("+", "x").replace("#", "y"), b'{"a": 1}')


# -- the last-resort guards: a failing sink ends no loop ---------------------------------------


@pytest.mark.slow
async def test_a_sink_that_raises_does_not_end_a_folder_scan(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    segment(tmp_path / "nvr" / "cam-r" / "2027-05-25", NOW - timedelta(minutes=5))
    sink = FlakySink(fail=3)
    async with RecordingsWatcher(rec_site(), sink, tmp_path, interval_s=0.01) as watcher:
        await sink.wait_for(lambda s: len(s.of_type("recording.inventory")) >= 2)
    assert watcher.errors == 3
    assert sum("scan failed" in r.getMessage() for r in caplog.records) == 1  # rate-limited


@pytest.mark.slow
async def test_a_sink_that_raises_does_not_end_a_camera_monitor() -> None:
    sink = FlakySink(fail=2)
    async with HostileCamera() as srv:
        cam = Camera("cam-h", "hall", snapshot=srv.url("snap.jpg"))
        async with camera_monitor(cam, sink, heartbeat_s=0.2) as mon:
            await sink.wait_for(lambda s: len(s.of_type("camera.status")) >= 2)
    assert mon.errors >= 1 and sink.fail == 0
