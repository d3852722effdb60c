"""No input of any shape ends an adapter: hostile devices, folders and payloads.

Real servers where there is a protocol (pymodbus behind a mangling TCP proxy, aiohttp camera
servers), real directories for the folders, hypothesis for every pure decoder. Each case
asserts what the adapter made of it (a rejection or a health event, with a reason), that it
kept going, and that it recovered once the device was good again; `errors` counts what the
adapters' last-resort guards caught, and it stays 0: nothing here is allowed to reach them.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymodbus.constants import ExcCodes

from adapters.modbus_jammer import JammerDecoder, JammerGarbage, JammerPoller
from policies.site import Band, Jammer, Modbus, RegisterField, RegisterMap
from tests.support.collecting_sink import CollectingSink, eventually
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
    assert poller.stats.errors >= 4  # the online event and statuses that could not be given
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
