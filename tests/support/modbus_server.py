"""Real pymodbus TCP servers for the jammer adapter's tests, written from CONTRACT §6.

`JammerServer` serves one register bank (64 registers, readable with function 03 and 04) and
can misbehave on request: answer with a Modbus exception, answer with fewer (or more)
registers than asked, or stop and start again on the same port. `SilentServer` accepts
connections and never answers (a wedged device). `HostileProxy` sits in front of a
`JammerServer` and mangles the TCP conversation on request: swallow requests, close the
connection mid-request, send half an answer, answer late, answer with junk bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from tests.support.mosquitto import free_port

SIZE = 64


def s16(value: float, scale: float = 0.1) -> int:
    """A signed 16-bit register holding `value` in units of `scale`."""
    return round(value / scale) & 0xFFFF


class JammerServer:
    """A jammer's Modbus TCP server; `regs` is what it answers with."""

    def __init__(self, port: int | None = None, unit: int = 1) -> None:
        self.port = port or free_port()
        self.unit = unit
        self.regs = [0] * SIZE
        self.exception: ExcCodes | None = None  # answer every read with this, if set
        self.truncate_to: int | None = None  # answer with this many registers, if set
        self.extra: int = 0  # answer with this many registers more than asked
        self.holes: set[int] = set()  # unimplemented addresses: reads touching them fail
        self.reads = 0
        self._server: ModbusTcpServer | None = None

    def set_reference(
        self,
        *,
        output: bool = True,
        faults: int = 0,
        bands: dict[int, float] | None = None,
        reflected: dict[int, float] | None = None,
        band_count: int = 5,
        temperature_c: float = 35.5,
        uptime_s: int = 123456,
        version: int = 1,
    ) -> None:
        """Fill the registers as the reference map (CONTRACT §6) lays them out."""
        r = [0] * SIZE
        r[0] = version
        r[1] = band_count
        r[2] = (1 if output else 0) | faults
        r[3] = s16(temperature_c)
        r[4], r[5] = uptime_s >> 16, uptime_s & 0xFFFF
        for i, dbm in (bands or {}).items():
            r[10 + i] = s16(dbm)
        for i, dbm in (reflected or {}).items():
            r[30 + i] = s16(dbm)
        self.regs = r

    async def _action(
        self, _fc: int, _start: int, address: int, count: int, current: list[int], _values: Any
    ) -> ExcCodes | None:
        self.reads += 1
        if self.exception is not None:
            return self.exception
        if self.holes.intersection(range(address, address + count)):
            return ExcCodes.ILLEGAL_ADDRESS
        current[:SIZE] = self.regs
        return None

    def _trace_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if sending and self.truncate_to is not None and getattr(pdu, "registers", None):
            pdu.registers = pdu.registers[: self.truncate_to]
        if sending and self.extra and getattr(pdu, "registers", None):
            pdu.registers = [*pdu.registers, *([0x0BAD] * self.extra)]
        return pdu

    async def start(self) -> JammerServer:
        device = SimDevice(
            self.unit,
            simdata=[SimData(0, count=SIZE, values=0, datatype=DataType.REGISTERS)],
            action=self._action,
        )
        self._server = ModbusTcpServer(
            device, address=("127.0.0.1", self.port), trace_pdu=self._trace_pdu
        )
        await self._server.serve_forever(background=True)
        return self

    async def stop(self) -> None:
        """Close the listener and every open connection (a device losing its network)."""
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None

    async def __aenter__(self) -> JammerServer:
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()


class SilentServer:
    """Accepts TCP connections, reads whatever comes, and never answers."""

    def __init__(self) -> None:
        self.port = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        while await reader.read(1024):
            pass

    async def __aenter__(self) -> SilentServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._server.close()
        for w in self._writers:
            w.close()
        await self._server.wait_closed()


HOSTILE_MODES = ("pass", "silent", "close", "half", "slow", "junk", "wrong_tid")


class HostileProxy:
    """A TCP proxy in front of a Modbus server whose behaviour `mode` switches at any time.

    pass: forward both ways. silent: swallow requests. close: drop the connection as a
    request arrives. half: forward, then send half the answer and drop the connection.
    slow: answer after `delay_s`. junk: answer with random bytes. wrong_tid: answer with
    another transaction id (an answer to somebody else's question).
    """

    def __init__(self, upstream_port: int, mode: str = "pass", delay_s: float = 0.5) -> None:
        assert mode in HOSTILE_MODES
        self.upstream_port = upstream_port
        self.mode = mode
        self.delay_s = delay_s
        self.port = 0
        self.requests = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def _answer(
        self, up_r: asyncio.StreamReader, up_w: asyncio.StreamWriter, request: bytes
    ) -> bytes:
        up_w.write(request)
        await up_w.drain()
        head = await up_r.readexactly(6)
        (length,) = struct.unpack(">H", head[4:6])
        return head + await up_r.readexactly(length)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        try:
            while True:
                head = await reader.readexactly(6)
                (length,) = struct.unpack(">H", head[4:6])
                request = head + await reader.readexactly(length)
                self.requests += 1
                mode = self.mode
                if mode == "silent":
                    continue
                if mode == "close":
                    return
                if mode == "junk":
                    writer.write(os.urandom(9 + len(request) % 7))
                    await writer.drain()
                    continue
                answer = await self._answer(up_r, up_w, request)
                if mode == "half":
                    writer.write(answer[: len(answer) // 2])
                    await writer.drain()
                    return
                if mode == "slow":
                    await asyncio.sleep(self.delay_s)
                if mode == "wrong_tid":
                    (tid,) = struct.unpack(">H", answer[:2])
                    answer = struct.pack(">H", (tid + 1) & 0xFFFF) + answer[2:]
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._tasks.discard(task)
            for w in (writer, up_w):
                w.close()

    async def __aenter__(self) -> HostileProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._server.close()
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await self._server.wait_closed()
