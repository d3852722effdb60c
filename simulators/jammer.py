"""A phone jammer as its maker ships it: a Modbus TCP server with the reference map (CONTRACT §6).

Input registers (function 04), all 16-bit, signed values in two's complement:

    0 map version (1) · 1 band count · 2 status bits · 3 temperature 0.1 °C
    4–5 uptime s (u32, high word first) · 10+i forward 0.1 dBm · 30+i reflected 0.1 dBm

A jammer whose site entry says `map: {function: holding}` serves the same values as holding
registers instead. Register values are refreshed twice a second and on every action, so a
`band_down` is visible to the very next poll.

Fault modes for tests: `garbage` answers every other read with a Modbus exception
(DEVICE_FAILURE) and the others with one register fewer than asked; `silent` (device.silence)
keeps the TCP connection but never answers; `disconnect` closes the listener and every
connection, `reconnect` listens again on the same port.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import zlib
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from policies.site import Jammer

log = logging.getLogger("sealwatch.simulators.jammer")

MAP_VERSION = 1
REGISTER_COUNT = 46  # addresses 0..45: the reference map up to reflected power of band 15
FORWARD_BASE, REFLECTED_BASE = 10, 30
STATUS_BITS = {
    "output": 0,
    "over_temperature": 1,
    "vswr": 2,
    "fan": 3,
    "enclosure_tamper": 4,
    "mains_lost": 5,
    "on_battery": 6,
}
BAND_DOWN_DBM = 9.5
REFRESH_S = 0.5


def _u16(value: float, scale: float = 10.0) -> int:
    """A signed value in 0.1 units as a 16-bit register (two's complement)."""
    raw = max(-32768, min(32767, round(value * scale)))
    return raw & 0xFFFF


@dataclass
class JammerState:
    """What the jammer's firmware knows; `registers()` turns it into the register map."""

    jammer: Jammer
    output: bool = True
    bands_down: dict[str, float] = field(default_factory=dict)  # band id -> forced dBm
    faults: set[str] = field(default_factory=set)
    started: float = field(default_factory=time.monotonic)
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        seed = zlib.crc32(self.jammer.id.encode())
        self.rng.seed(seed)
        # Each band runs a little differently above its floor, as real power amplifiers do.
        self.margin = {b.id: 2.5 + (seed >> b.index) % 20 / 10.0 for b in self.jammer.bands}

    def forward_dbm(self, band_id: str, min_dbm: float) -> float:
        if not self.output:
            return 0.0
        if band_id in self.bands_down:
            return self.bands_down[band_id]
        return min_dbm + self.margin[band_id] + self.rng.gauss(0.0, 0.15)

    def temperature_c(self, now: float) -> float:
        if "over_temperature" in self.faults:
            return 78.0 + self.rng.gauss(0.0, 0.1)
        return 40.0 + 2.0 * math.sin((now - self.started) / 600.0) + self.rng.gauss(0.0, 0.05)

    def registers(self, now: float | None = None) -> list[int]:
        now = time.monotonic() if now is None else now
        regs = [0] * REGISTER_COUNT
        regs[0] = MAP_VERSION
        regs[1] = max((b.index for b in self.jammer.bands), default=-1) + 1
        bits = 1 << STATUS_BITS["output"] if self.output else 0
        for fault in self.faults:
            bits |= 1 << STATUS_BITS[fault]
        regs[2] = bits
        regs[3] = _u16(self.temperature_c(now))
        uptime = int(now - self.started) & 0xFFFFFFFF
        regs[4], regs[5] = uptime >> 16, uptime & 0xFFFF
        for band in self.jammer.bands:
            fwd = self.forward_dbm(band.id, band.min_dbm)
            regs[FORWARD_BASE + band.index] = _u16(fwd)
            refl = 0.0 if not self.output else fwd - 15.0 + self.rng.gauss(0.0, 0.2)
            regs[REFLECTED_BASE + band.index] = _u16(refl)
        return regs

    def describe(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "bands_down": dict(self.bands_down),
            "faults": sorted(self.faults),
        }


class JammerSim:
    """One jammer: a pymodbus TCP server at host:port serving `JammerState`."""

    def __init__(
        self, jammer: Jammer, host: str, port: int, unit: int = 1, function: str = "input"
    ) -> None:
        self.id = jammer.id
        self.host, self.port, self.unit = host, port, unit
        self.function_code = 4 if function == "input" else 3
        self.state = JammerState(jammer)
        self.mode = "normal"  # normal | garbage
        self.silent = False
        self.reads = 0
        self._regs = self.state.registers()
        self._server: ModbusTcpServer | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._refresher: asyncio.Task[None] | None = None

    async def __aenter__(self) -> JammerSim:
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        await self.listen()
        self._refresher = self._tg.create_task(self._refresh(), name=f"jammer-{self.id}-refresh")
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
        assert self._tg is not None and self._refresher is not None
        self._refresher.cancel()
        await self._tg.__aexit__(et, exc, tb)

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def listen(self) -> None:
        """Serve on host:port (again, after `close`)."""
        if self._server is not None:
            return
        blank_bits = [SimData(0, datatype=DataType.BITS)]
        regs = [SimData(0, count=REGISTER_COUNT, values=0, datatype=DataType.REGISTERS)]
        other = [SimData(0, count=1, values=0, datatype=DataType.INVALID)]
        device = SimDevice(
            id=self.unit,
            simdata=(
                blank_bits,
                list(blank_bits),
                regs if self.function_code == 3 else other,
                regs if self.function_code == 4 else other,
            ),
            action=self._on_access,
        )
        server = ModbusTcpServer(
            device,
            address=(self.host, self.port),
            trace_pdu=self._trace_pdu,
            trace_packet=self._trace_packet,
        )
        await server.serve_forever(background=True)
        self._server = server
        log.info(
            "jammer %s serving Modbus on %s:%d unit %d", self.id, self.host, self.port, self.unit
        )

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()  # type: ignore[no-untyped-call]
            log.info("jammer %s stopped serving on %s:%d", self.id, self.host, self.port)

    async def _refresh(self) -> None:
        while True:
            self._regs = self.state.registers()
            await asyncio.sleep(REFRESH_S)

    def refresh(self) -> None:
        self._regs = self.state.registers()

    # -- pymodbus hooks ----------------------------------------------------------------------

    async def _on_access(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current: list[int],
        set_values: Any,
    ) -> ExcCodes | None:
        if set_values is not None:
            return ExcCodes.ILLEGAL_FUNCTION  # the map is read-only
        self.reads += 1
        if self.mode == "garbage" and self.reads % 2:
            return ExcCodes.DEVICE_FAILURE
        for i in range(count):
            reg = address + i
            if 0 <= reg < REGISTER_COUNT:
                current[reg - start_address] = self._regs[reg]
        return None

    def _trace_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        registers = getattr(pdu, "registers", None)
        if sending and self.mode == "garbage" and registers:
            pdu.registers = registers[:-1]  # a reply one register short of what was asked
        return pdu

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        return b"" if sending and self.silent else data

    # -- actions -------------------------------------------------------------------------------

    async def perform(self, action: str, step: dict[str, Any]) -> None:
        state = self.state
        if action == "band_down":
            state.bands_down[step["band"]] = float(step.get("dbm", BAND_DOWN_DBM))
        elif action == "band_up":
            state.bands_down.pop(step["band"], None)
        elif action in ("output_off", "output_on"):
            state.output = action == "output_on"
        elif action == "fault":
            state.faults.add(step["fault"])
        elif action == "clear":
            state.faults.discard(step["fault"])
        elif action in ("garbage", "normal"):
            self.mode = action
        elif action == "disconnect":
            await self.close()
        elif action == "reconnect":
            await self.listen()
        elif action == "silence":
            self.silent = True
        elif action == "resume":
            self.silent = False
        else:
            raise ValueError(f"jammer has no action '{action}'")
        self.refresh()

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "jammer",
            "address": f"{self.host}:{self.port}",
            "unit": self.unit,
            "listening": self.listening,
            "mode": self.mode,
            "silent": self.silent,
            **self.state.describe(),
        }
