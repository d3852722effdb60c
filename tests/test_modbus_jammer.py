"""The Modbus jammer adapter against real pymodbus servers (tests/support/modbus_server.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pymodbus.constants import ExcCodes

from adapters.modbus_jammer import JammerHub, JammerPoller, plan_reads
from policies.site import Band, Jammer, Modbus, RegisterField, RegisterMap
from tests.support.collecting_sink import CollectingSink, eventually
from tests.support.modbus_server import JammerServer, SilentServer, s16
from tests.support.mosquitto import free_port

BANDS = (
    Band(0, "cdma800", 30.0),
    Band(1, "gsm900", 30.0),
    Band(2, "dcs1800", 27.0),
    Band(3, "lte2100", 27.0),
    Band(4, "nr3500", 24.0),
)
FIVE_BANDS = {0: 33.0, 1: 31.5, 2: 28.2, 3: 27.9, 4: 25.0}


def jammer(
    port: int,
    *,
    bands: tuple[Band, ...] = BANDS,
    rmap: RegisterMap | None = None,
    jid: str = "jam-work",
    timeout_s: float = 1.0,
) -> Jammer:
    return Jammer(
        jid,
        "work",
        bands,
        Modbus("127.0.0.1", port, 1, poll_s=0.05, timeout_s=timeout_s, map=rmap or RegisterMap()),
    )


def statuses(sink: CollectingSink) -> list[dict[str, object]]:
    return sink.of_type("jammer.status")


def test_reference_map_is_read_in_one_request() -> None:
    plan = plan_reads(RegisterMap(), range(5))
    assert plan.blocks == ((0, 35),)
    exact = plan_reads(RegisterMap(), range(5), merge_gap=0)
    assert exact.blocks == ((0, 6), (10, 5), (30, 5))


@pytest.mark.slow
async def test_reference_map_decodes_into_a_jammer_status() -> None:
    sink = CollectingSink()
    async with JammerServer() as srv:
        srv.set_reference(
            bands=FIVE_BANDS,
            reflected={0: 12.5, 4: -3.0},
            temperature_c=-4.5,
            uptime_s=86400 * 3 + 7,
        )
        async with JammerPoller(jammer(srv.port), sink):
            await sink.wait_for(lambda s: len(statuses(s)) >= 1)
    status = statuses(sink)[0]
    assert status["device"] == "jam-work"
    assert status["output"] is True
    assert status["bands"] == {
        "cdma800": 33.0,
        "gsm900": 31.5,
        "dcs1800": 28.2,
        "lte2100": 27.9,
        "nr3500": 25.0,
    }
    assert status["reflected"] == {
        "cdma800": 12.5,
        "gsm900": 0.0,
        "dcs1800": 0.0,
        "lte2100": 0.0,
        "nr3500": -3.0,
    }
    assert status["faults"] == []
    assert status["temperature_c"] == -4.5
    assert status["uptime_s"] == 86400 * 3 + 7
    assert str(status["ts"]).endswith("+00:00")
    assert sink.states("jam-work") == ["online"]
    assert sink.rejections == []


@pytest.mark.slow
async def test_band_below_floor_and_missing_band_are_reported_as_read() -> None:
    sink = CollectingSink()
    async with JammerServer() as srv:
        # The device reports 3 bands: nr3500 (index 4) is missing; gsm900 is far below floor.
        srv.set_reference(bands={0: 33.0, 1: -12.3, 2: 28.0}, band_count=3)
        async with JammerPoller(jammer(srv.port), sink):
            await sink.wait_for(lambda s: len(statuses(s)) >= 1)
    assert statuses(sink)[0]["bands"] == {"cdma800": 33.0, "gsm900": -12.3, "dcs1800": 28.0}


@pytest.mark.slow
async def test_output_off_and_every_fault_bit_are_named() -> None:
    sink = CollectingSink()
    async with JammerServer() as srv:
        srv.set_reference(bands=FIVE_BANDS, output=False, faults=0b1111110)
        async with JammerPoller(jammer(srv.port), sink):
            await sink.wait_for(lambda s: len(statuses(s)) >= 1)
        status = statuses(sink)[0]
        assert status["output"] is False
        assert status["faults"] == [
            "over_temperature",
            "vswr",
            "fan",
            "enclosure_tamper",
            "mains_lost",
            "on_battery",
        ]

        srv.set_reference(bands=FIVE_BANDS, faults=0b0001000)  # fan only, output on
        sink2 = CollectingSink()
        async with JammerPoller(jammer(srv.port), sink2):
            await sink2.wait_for(lambda s: len(statuses(s)) >= 1)
        assert statuses(sink2)[0]["output"] is True
        assert statuses(sink2)[0]["faults"] == ["fan"]


@pytest.mark.slow
async def test_custom_map_with_holding_registers_scales_and_32_bit_little_word_order() -> None:
    rmap = RegisterMap(
        function="holding",
        version=RegisterField(40),
        band_count=RegisterField(41),
        status=RegisterField(42),
        temperature=RegisterField(43, scale=0.5, signed=False),
        uptime=RegisterField(44, words=2, word_order="little"),
        forward=RegisterField(50, scale=0.01, signed=True, words=2, word_order="little"),
        reflected=RegisterField(20, scale=1.0, signed=True),
        status_bits={
            "output": 8,
            "over_temperature": 1,
            "vswr": 2,
            "fan": 3,
            "enclosure_tamper": 4,
            "mains_lost": 5,
            "on_battery": 9,
        },
    )
    bands = (Band(0, "gsm900", 30.0), Band(1, "lte2100", 27.0))
    sink = CollectingSink()
    async with JammerServer() as srv:
        r = [0] * 64
        r[40], r[41] = 1, 2
        r[42] = (1 << 8) | (1 << 9)  # output on, on battery; bit 0 means nothing here
        r[43] = 90  # 45.0 °C, unsigned half degrees
        r[44], r[45] = 0x86A0, 0x0001  # 100000 s, low word first
        r[50], r[51] = 0x0CE4, 0x0000  # +33.00 dBm (3300)
        r[52], r[53] = 0xFF38, 0xFFFF  # -2.00 dBm (-200), 32-bit two's complement
        r[20], r[21] = s16(7, 1.0), s16(-5, 1.0)
        srv.regs = r
        async with JammerPoller(jammer(srv.port, bands=bands, rmap=rmap), sink):
            await sink.wait_for(lambda s: len(statuses(s)) >= 1)
    status = statuses(sink)[0]
    assert status["bands"] == {"gsm900": 33.0, "lte2100": -2.0}
    assert status["reflected"] == {"gsm900": 7.0, "lte2100": -5.0}
    assert status["output"] is True
    assert status["faults"] == ["on_battery"]
    assert status["temperature_c"] == 45.0
    assert status["uptime_s"] == 100000


@pytest.mark.slow
async def test_exception_responses_are_rejected_and_polling_goes_on() -> None:
    sink = CollectingSink()
    async with JammerServer() as srv:
        srv.set_reference(bands=FIVE_BANDS)
        srv.exception = ExcCodes.DEVICE_FAILURE
        async with JammerPoller(jammer(srv.port), sink):
            await sink.wait_for(lambda s: len(s.rejections) >= 3)
            assert statuses(sink) == []
            srv.exception = None
            await sink.wait_for(lambda s: len(statuses(s)) >= 1)
    assert all("exception response" in reason for _, _, reason in sink.rejections)
    assert sink.rejections[0][0] == "modbus:jam-work"
    # A device that answers, even with garbage, is online.
    assert sink.states("jam-work") == ["online"]


@pytest.mark.slow
async def test_device_refusing_reads_across_unused_registers_is_read_field_by_field() -> None:
    sink = CollectingSink()
    async with JammerServer() as srv:
        srv.set_reference(bands=FIVE_BANDS)
        srv.holes = set(range(6, 10)) | set(range(15, 30))
        async with JammerPoller(jammer(srv.port), sink) as poller:
            await sink.wait_for(lambda s: len(statuses(s)) >= 2)
            assert poller.decoder.plan.blocks == ((0, 6), (10, 5), (30, 5))
    bands = statuses(sink)[0]["bands"]
    assert isinstance(bands, dict) and bands["nr3500"] == 25.0


@pytest.mark.slow
async def test_wrong_register_count_is_rejected() -> None:
    sink = CollectingSink()
    async with JammerServer() as srv:
        srv.set_reference(bands=FIVE_BANDS)
        srv.truncate_to = 3
        async with JammerPoller(jammer(srv.port), sink):
            await sink.wait_for(lambda s: len(s.rejections) >= 2)
    assert statuses(sink) == []
    assert "asked for 35 registers at 0, got 3" in sink.rejections[0][2]
    assert sink.rejections[0][1] == "0001 0005 0001"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ({"band_count": 17}, "band count 17"),
        ({"version": 2}, "register map version 2, expected 1"),
        (
            {"bands": {**FIVE_BANDS, 2: 3276.7}},
            "implausible forward power 3276.7 dBm on band dcs1800",
        ),
        ({"temperature_c": -3000.0}, "implausible temperature"),
    ],
)
async def test_implausible_registers_are_rejected_not_reported(
    setup: dict[str, object], reason: str
) -> None:
    sink = CollectingSink()
    async with JammerServer() as srv:
        srv.set_reference(**{"bands": FIVE_BANDS, **setup})  # type: ignore[arg-type]
        async with JammerPoller(jammer(srv.port), sink):
            await sink.wait_for(lambda s: len(s.rejections) >= 1)
    assert statuses(sink) == []
    assert reason in sink.rejections[0][2]


@pytest.mark.slow
async def test_silent_device_goes_offline_once_and_is_retried() -> None:
    sink = CollectingSink()
    async with SilentServer() as srv:
        j = jammer(srv.port, timeout_s=0.1)
        async with JammerPoller(j, sink, backoff_cap_s=0.3) as poller:
            await sink.wait_for(lambda s: s.states("jam-work") == ["offline"])
            # It keeps trying: reconnects after the timeout, and stays offline quietly.
            await eventually(lambda: poller.stats.failures >= 4 and srv.connections >= 3)
    assert sink.states("jam-work") == ["offline"]
    assert statuses(sink) == [] and sink.rejections == []


@pytest.mark.slow
async def test_connection_drop_reports_offline_then_online_when_it_answers_again() -> None:
    sink = CollectingSink()
    srv = JammerServer()
    srv.set_reference(bands=FIVE_BANDS)
    await srv.start()
    try:
        async with JammerPoller(jammer(srv.port, timeout_s=0.2), sink, backoff_cap_s=0.3):
            await sink.wait_for(lambda s: len(statuses(s)) >= 2)
            await srv.stop()
            await sink.wait_for(lambda s: s.states("jam-work") == ["online", "offline"])
            seen = len(statuses(sink))
            await srv.start()
            await sink.wait_for(lambda s: len(statuses(s)) >= seen + 2)
    finally:
        await srv.stop()
    assert sink.states("jam-work") == ["online", "offline", "online"]
    offline = sink.of_type("device.status")[1]
    assert offline["reason"]


@pytest.mark.slow
async def test_nothing_listening_is_offline_from_the_start() -> None:
    sink = CollectingSink()
    async with JammerPoller(
        jammer(free_port(), timeout_s=0.2), sink, offline_after=1, backoff_cap_s=0.2
    ) as poller:
        await sink.wait_for(lambda s: s.states("jam-work") == ["offline"])
        await eventually(lambda: poller.stats.failures >= 3)
    assert sink.states("jam-work") == ["offline"]


@pytest.mark.slow
async def test_hub_polls_every_jammer_and_skips_those_without_modbus() -> None:
    sink = CollectingSink()
    servers = [JammerServer() for _ in range(3)]
    for i, s in enumerate(servers):
        s.set_reference(bands={**FIVE_BANDS, 0: 30.0 + i})
        await s.start()
    try:
        jammers = [jammer(s.port, jid=f"jam-{i}") for i, s in enumerate(servers)]
        jammers.append(replace(jammers[0], id="jam-manual", modbus=None))
        async with JammerHub(jammers, sink) as hub:
            assert set(hub.pollers) == {"jam-0", "jam-1", "jam-2"}
            await sink.wait_for(
                lambda s: all(len(s.of_type("jammer.status", f"jam-{i}")) >= 2 for i in range(3))
            )
    finally:
        for s in servers:
            await s.stop()
    for i in range(3):
        assert sink.of_type("jammer.status", f"jam-{i}")[0]["bands"]["cdma800"] == 30.0 + i
    assert hub.stats().statuses >= 6
