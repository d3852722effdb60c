"""Modbus TCP jammers (CONTRACT §6): poll each jammer's register map, emit `jammer.status`.

pymodbus lives behind `RegisterReader` (one real implementation, `PymodbusReader`): it
changes its API in minor releases, so this file is the only place that knows it, and its
exceptions are mapped here to our own three (`JammerError` and two subclasses).

Health is reported as events: `device.status` offline once a jammer stops answering, online
when it answers again. Anything a jammer sends that cannot be a status (exception responses,
wrong register counts, band count > 16, wrong map version, implausible values) becomes a
rejection through the sink, never a crash. `JammerDecoder.decode` raises nothing but
`JammerGarbage`, whatever the registers and the per-model map; the poll loop survives
anything else (counted in `PollStats.errors`, logged with its traceback, rate-limited).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from adapters.base import EventSink, RateLimitedLog, backoff_delay, printable
from policies.site import Jammer, RegisterField, RegisterMap

log = logging.getLogger(__name__)

# pymodbus logs every timeout and reconnect itself; we log on changes of state instead.
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

MAX_BANDS = 16  # CONTRACT §6
MAX_REGISTERS_PER_READ = 125  # Modbus limit for function 03/04
MERGE_GAP = 32  # read across a gap this small rather than send another request
ILLEGAL_DATA_ADDRESS = 2
FAULT_BITS = ("over_temperature", "vswr", "fan", "enclosure_tamper", "mains_lost", "on_battery")
PLAUSIBLE_DBM = (-100.0, 90.0)
PLAUSIBLE_TEMPERATURE_C = (-60.0, 150.0)
MAX_UPTIME_S = 2**53  # anything larger is no uptime (and not exact in JSON)


# -- our exceptions: the vendor's are mapped to these at the reader boundary -----------


class JammerError(Exception):
    """A jammer could not be read; `jammer` names it."""

    def __init__(self, jammer: str, message: str) -> None:
        super().__init__(f"{jammer}: {message}")
        self.jammer = jammer
        self.message = message


class JammerUnreachable(JammerError):
    """No connection, connection lost, or no answer in time: the device is gone for now."""


class JammerGarbage(JammerError):
    """The device answered, but not with a status we can use.

    `kind` names the sort of garbage (one log line per change of kind, not per poll):
    exception, short_read, frame, version, band_count, temperature, power, uptime, decode.
    """

    def __init__(
        self,
        jammer: str,
        message: str,
        *,
        code: int | None = None,
        payload: str = "",
        kind: str = "decode",
    ) -> None:
        super().__init__(jammer, message)
        self.code = code  # Modbus exception code, when the device sent one
        self.payload = payload
        self.kind = kind


class RegisterReader(Protocol):
    """The one cut-off point to a Modbus client library."""

    async def connect(self) -> None:
        """Open the connection; JammerUnreachable if that fails."""

    async def read(self, function: str, address: int, count: int) -> list[int]:
        """Read `count` registers (`function` input/holding); exactly `count` or raise."""

    def close(self) -> None:
        """Drop the connection (idempotent)."""


class PymodbusReader:
    """`RegisterReader` on pymodbus 3.16's AsyncModbusTcpClient."""

    def __init__(self, name: str, host: str, port: int, unit: int, timeout_s: float) -> None:
        self.name = name
        self.endpoint = f"{host}:{port} unit {unit}"
        self.unit = unit
        # retries=0 and reconnect_delay=0: the poller owns timing and reconnects with its
        # own jittered backoff; pymodbus' own retry loop would hide a dead device.
        self._client = AsyncModbusTcpClient(
            host, port=port, name=name, timeout=timeout_s, retries=0, reconnect_delay=0
        )

    async def connect(self) -> None:
        try:
            ok = await self._client.connect()
        except Exception as exc:  # ModbusException, OSError, or a vendor bug: all "not reached"
            raise JammerUnreachable(self.name, f"cannot connect to {self.endpoint}: {exc}") from exc
        if not ok:
            raise JammerUnreachable(self.name, f"cannot connect to {self.endpoint}")

    async def read(self, function: str, address: int, count: int) -> list[int]:
        call = (
            self._client.read_input_registers
            if function == "input"
            else self._client.read_holding_registers
        )
        try:
            response = await call(address, count=count, device_id=self.unit)
        except ConnectionException as exc:
            raise JammerUnreachable(self.name, f"connection to {self.endpoint} lost") from exc
        except ModbusIOException as exc:
            raise JammerUnreachable(self.name, f"no answer from {self.endpoint}") from exc
        except (TimeoutError, OSError) as exc:
            raise JammerUnreachable(self.name, f"{self.endpoint}: {exc!r}") from exc
        except ModbusException as exc:
            raise JammerGarbage(
                self.name, f"bad frame from {self.endpoint}: {exc}", kind="frame"
            ) from exc
        except Exception as exc:
            # A vendor bug tripped by a malformed frame must not end the poller.
            raise JammerUnreachable(self.name, f"{self.endpoint}: {exc!r}") from exc
        if response.isError():
            code = getattr(response, "exception_code", None)
            raise JammerGarbage(
                self.name,
                f"exception response (code {code}) reading {count} registers at {address}",
                code=code,
                payload=f"fc={response.function_code} code={code}",
                kind="exception",
            )
        registers = list(getattr(response, "registers", None) or [])
        if len(registers) != count:
            raise JammerGarbage(
                self.name,
                f"asked for {count} registers at {address}, got {len(registers)}",
                payload=_hex(registers),
                kind="short_read",
            )
        return registers

    def close(self) -> None:
        self._client.close()


# -- decoding: pure, on a list of registers --------------------------------------------


def _hex(registers: Iterable[int], limit: int = 128) -> str:
    regs = list(registers)
    text = " ".join(f"{r & 0xFFFF:04x}" for r in regs[:limit])
    return text + (f" … ({len(regs)} registers)" if len(regs) > limit else "")


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """Which register blocks to read; `pos[address]` indexes their concatenation."""

    function: str
    blocks: tuple[tuple[int, int], ...]  # (address, count)
    pos: Mapping[int, int]


def _field_addresses(f: RegisterField, base: int = 0) -> range:
    start = f.address + base * f.words
    return range(start, start + f.words)


def plan_reads(
    rmap: RegisterMap, band_indexes: Iterable[int], merge_gap: int = MERGE_GAP
) -> ReadPlan:
    """Cover every register the map needs in as few requests as Modbus allows."""
    needed: set[int] = set()
    for f in (rmap.version, rmap.band_count, rmap.status, rmap.temperature, rmap.uptime):
        needed.update(_field_addresses(f))
    for i in band_indexes:
        needed.update(_field_addresses(rmap.forward, i))
        needed.update(_field_addresses(rmap.reflected, i))
    blocks: list[list[int]] = []  # [start, end] inclusive
    for a in sorted(needed):
        if (
            blocks
            and a - blocks[-1][1] - 1 <= merge_gap
            and a - blocks[-1][0] < MAX_REGISTERS_PER_READ
        ):
            blocks[-1][1] = a
        else:
            blocks.append([a, a])
    pos: dict[int, int] = {}
    n = 0
    for start, end in blocks:
        for a in range(start, end + 1):
            pos[a] = n
            n += 1
    return ReadPlan(rmap.function, tuple((s, e - s + 1) for s, e in blocks), pos)


class JammerDecoder:
    """Turn one read of a jammer's registers into a `jammer.status` event (or raise)."""

    def __init__(
        self,
        jammer: Jammer,
        rmap: RegisterMap,
        expected_version: int = 1,
        merge_gap: int = MERGE_GAP,
    ) -> None:
        self.jammer = jammer
        self.rmap = rmap
        self.expected_version = expected_version
        self.plan = plan_reads(rmap, (b.index for b in jammer.bands), merge_gap)
        # Bits outside the map's names are ignored: vendors add their own.
        self._faults = tuple(
            (name, 1 << bit) for name, bit in rmap.status_bits.items() if name != "output"
        )
        self._output_mask = 1 << rmap.status_bits.get("output", 0)

    def value(self, regs: list[int], f: RegisterField, base: int = 0) -> float:
        pos = self.plan.pos
        a = f.address + base * f.words
        if f.words == 1:
            raw = regs[pos[a]] & 0xFFFF
            bits = 16
        else:
            hi, lo = regs[pos[a]] & 0xFFFF, regs[pos[a + 1]] & 0xFFFF
            if f.word_order == "little":
                hi, lo = lo, hi
            raw = (hi << 16) | lo
            bits = 32
        if f.signed and raw >= 1 << (bits - 1):
            raw -= 1 << bits
        return raw * f.scale

    def decode(self, regs: list[int], ts: str) -> dict[str, Any]:
        """The status event for `regs` (the plan's blocks, concatenated).

        Raises JammerGarbage and nothing else: registers missing from `regs`, a map whose
        scale makes a value NaN or infinite, anything implausible.
        """
        try:
            return self._decode(regs, ts)
        except JammerGarbage:
            raise
        except (LookupError, ValueError, ArithmeticError, TypeError) as exc:
            raise JammerGarbage(
                self.jammer.id, f"cannot decode: {exc!r}", payload=_hex(regs)
            ) from exc

    def _decode(self, regs: list[int], ts: str) -> dict[str, Any]:
        jid, rmap = self.jammer.id, self.rmap
        version = self.value(regs, rmap.version)
        if version != self.expected_version:
            raise JammerGarbage(
                jid,
                f"register map version {version:g}, expected {self.expected_version}",
                payload=_hex(regs),
                kind="version",
            )
        count_value = self.value(regs, rmap.band_count)
        if not 0 <= count_value <= MAX_BANDS or count_value != int(count_value):
            raise JammerGarbage(
                jid,
                f"band count {count_value:g} (at most {MAX_BANDS})",
                payload=_hex(regs),
                kind="band_count",
            )
        count = int(count_value)
        status = int(self.value(regs, rmap.status))
        temperature = round(self.value(regs, rmap.temperature), 3)
        if not PLAUSIBLE_TEMPERATURE_C[0] <= temperature <= PLAUSIBLE_TEMPERATURE_C[1]:
            raise JammerGarbage(
                jid,
                f"implausible temperature {temperature} °C",
                payload=_hex(regs),
                kind="temperature",
            )
        uptime = self.value(regs, rmap.uptime)
        if not 0 <= uptime < MAX_UPTIME_S:
            raise JammerGarbage(
                jid, f"implausible uptime {uptime} s", payload=_hex(regs), kind="uptime"
            )
        bands: dict[str, float] = {}
        reflected: dict[str, float] = {}
        lo, hi = PLAUSIBLE_DBM
        for band in self.jammer.bands:
            if band.index >= count:
                continue  # the device does not report it: "missing from a status"
            fwd = round(self.value(regs, rmap.forward, band.index), 3)
            ref = round(self.value(regs, rmap.reflected, band.index), 3)
            for what, v in (("forward", fwd), ("reflected", ref)):
                if not lo <= v <= hi:
                    raise JammerGarbage(
                        jid,
                        f"implausible {what} power {v} dBm on band {band.id}",
                        payload=_hex(regs),
                        kind="power",
                    )
            bands[band.id] = fwd
            reflected[band.id] = ref
        return {
            "ts": ts,
            "device": jid,
            "type": "jammer.status",
            "output": bool(status & self._output_mask),
            "bands": bands,
            "faults": [name for name, mask in self._faults if status & mask],
            "temperature_c": temperature,
            "reflected": reflected,
            "uptime_s": int(uptime),
            "band_count": count,
        }


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# -- polling ---------------------------------------------------------------------------


@dataclass(slots=True)
class PollStats:
    polls: int = 0
    statuses: int = 0
    rejections: int = 0
    failures: int = 0
    skipped: int = 0  # poll slots missed because a poll (or the loop) ran late
    errors: int = 0  # polls that raised (a bug, a failing sink): logged, survived
    states: list[str] = field(default_factory=list)


class JammerPoller:
    """Poll one jammer every `modbus.poll_s`; an async context manager with one TaskGroup."""

    def __init__(
        self,
        jammer: Jammer,
        sink: EventSink,
        *,
        reader: RegisterReader | None = None,
        expected_version: int = 1,
        offline_after: int = 2,
        backoff_cap_s: float = 5.0,
        start_jitter: bool = False,
    ) -> None:
        if jammer.modbus is None:
            raise ValueError(f"jammer '{jammer.id}' has no modbus settings")
        self.jammer = jammer
        self.modbus = jammer.modbus
        self.sink = sink
        self.source = f"modbus:{jammer.id}"
        self.reader: RegisterReader = reader or PymodbusReader(
            jammer.id, self.modbus.host, self.modbus.port, self.modbus.unit, self.modbus.timeout_s
        )
        self.decoder = JammerDecoder(jammer, self.modbus.map, expected_version)
        self._exact_plan = plan_reads(self.modbus.map, (b.index for b in jammer.bands), 0)
        # A single lost answer is not a lost device: offline after this many failed polls.
        self.offline_after = max(1, offline_after)
        # A jammer must be seen back within seconds (EXAM-2.7.8): retrying a dead Modbus
        # endpoint every few seconds costs nothing.
        self.backoff_cap_s = backoff_cap_s
        self.start_jitter = start_jitter
        self.state: str | None = None  # None until the first poll: online / offline
        self.stats = PollStats()
        self._connected = False
        self._failures = 0
        self._quiet = RateLimitedLog(log)
        self._bands_needed = max((b.index + 1 for b in jammer.bands), default=0)
        self._tg: asyncio.TaskGroup | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> JammerPoller:
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        self._task = self._tg.create_task(self.run(), name=f"jammer-poll:{self.jammer.id}")
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        assert self._tg is not None
        if self._task is not None:
            self._task.cancel()
        await self._tg.__aexit__(*exc_info)

    async def run(self) -> None:
        """Poll until cancelled, at a fixed rate that does not drift."""
        loop = asyncio.get_running_loop()
        period = self.modbus.poll_s
        attempt = 0
        due = loop.time() + (random.uniform(0, period) if self.start_jitter else 0.0)
        me = asyncio.current_task()
        try:
            while True:
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                try:
                    answered = await self.poll_once()
                except Exception:
                    # Not the device (poll_once turns all device trouble into events): a
                    # bug or a failing sink. Survive it, loudly, and start afresh.
                    self.stats.errors += 1
                    self._quiet.exception(
                        f"{self.jammer.id}:error", "jammer %s: poll failed", self.jammer.id
                    )
                    self.reader.close()
                    self._connected = False
                    answered = False
                if me is not None and me.cancelling():
                    # Python 3.11's asyncio.wait_for (inside pymodbus) swallows a cancel
                    # that lands as the answer arrives; honour it so shutdown never hangs.
                    raise asyncio.CancelledError
                if answered:
                    attempt = 0
                    due += period
                    now = loop.time()
                    if due < now:  # overran: skip the missed slots rather than burst
                        missed = int((now - due) // period) + 1
                        self.stats.skipped += missed
                        due += missed * period
                else:
                    attempt += 1
                    due = loop.time() + max(
                        backoff_delay(attempt, self.backoff_cap_s), min(period, 0.05)
                    )
        finally:
            self.reader.close()

    async def poll_once(self) -> bool:
        """One poll; True if the device answered (even with garbage)."""
        self.stats.polls += 1
        try:
            if not self._connected:
                await self.reader.connect()
                self._connected = True
            regs = await self._read(self.decoder.plan)
        except JammerGarbage as exc:
            if exc.code == ILLEGAL_DATA_ADDRESS and self.decoder.plan != self._exact_plan:
                # The device does not implement the gaps we read across: read exactly.
                log.info(
                    "jammer %s refuses reads across unused registers; reading fields "
                    "one block at a time",
                    self.jammer.id,
                )
                self.decoder.plan = self._exact_plan
                return await self.poll_once()
            await self._answered()
            await self._reject(exc)
            return True
        except JammerError as exc:
            self.reader.close()
            self._connected = False
            await self._failed(exc)
            return False
        await self._answered()
        try:
            event = self.decoder.decode(regs, now_rfc3339())
        except JammerGarbage as exc:
            await self._reject(exc)
            return True
        self._check_band_count(event["band_count"])
        self._quiet.settled(
            f"{self.jammer.id}:garbage", "jammer %s sends valid statuses again", self.jammer.id
        )
        self.stats.statuses += 1
        await self.sink.submit(event, source=self.source)
        return True

    def _check_band_count(self, count: int) -> None:
        """A device reporting fewer bands than configured is read as is (the policy sees the
        missing bands); it is logged on a change of the count, not per poll."""
        key = f"{self.jammer.id}:bands"
        if count < self._bands_needed:
            self._quiet.on_change(
                logging.WARNING,
                key,
                str(count),
                "jammer %s reports %d bands; the site configures band indexes up to %d",
                self.jammer.id,
                count,
                self._bands_needed - 1,
            )
        else:
            self._quiet.settled(key, "jammer %s reports all its bands again", self.jammer.id)

    async def _read(self, plan: ReadPlan) -> list[int]:
        if len(plan.blocks) == 1:
            address, count = plan.blocks[0]
            return await self.reader.read(plan.function, address, count)
        regs: list[int] = []
        for address, count in plan.blocks:
            regs.extend(await self.reader.read(plan.function, address, count))
        return regs

    async def _reject(self, exc: JammerGarbage) -> None:
        self.stats.rejections += 1
        self._quiet.on_change(
            logging.WARNING,
            f"{self.jammer.id}:garbage",
            exc.kind,
            "jammer %s sent garbage: %s",
            self.jammer.id,
            exc.message,
        )
        await self.sink.reject(self.source, printable(exc.payload), printable(exc.message))

    async def _answered(self) -> None:
        self._failures = 0
        if self.state != "online":
            if self.state == "offline":
                log.warning("jammer %s answers again", self.jammer.id)
            await self._set_state("online", None)

    async def _failed(self, exc: JammerError) -> None:
        self.stats.failures += 1
        self._failures += 1
        if self.state != "offline" and self._failures >= self.offline_after:
            log.warning("jammer %s offline: %s", self.jammer.id, exc.message)
            await self._set_state("offline", exc.message)

    async def _set_state(self, state: str, reason: str | None) -> None:
        event: dict[str, Any] = {
            "ts": now_rfc3339(),
            "device": self.jammer.id,
            "type": "device.status",
            "state": state,
        }
        if reason:
            event["reason"] = printable(reason)
        await self.sink.submit(event, source=self.source)
        # Only once delivered: a sink that raised gets the change again at the next poll.
        self.state = state
        self.stats.states.append(state)


class JammerHub:
    """Poll every Modbus jammer of a site from one TaskGroup: one long-lived task each."""

    def __init__(self, jammers: Iterable[Jammer], sink: EventSink, **poller_options: Any) -> None:
        poller_options.setdefault("start_jitter", True)  # spread the polls over the period
        self.pollers: dict[str, JammerPoller] = {}
        for j in jammers:
            if j.modbus is None:
                log.info("jammer %s has no modbus settings; not polled", j.id)
                continue
            self.pollers[j.id] = JammerPoller(j, sink, **poller_options)
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> JammerHub:
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        self._tasks = [
            self._tg.create_task(p.run(), name=f"jammer-poll:{jid}")
            for jid, p in self.pollers.items()
        ]
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        assert self._tg is not None
        for t in self._tasks:
            t.cancel()
        await self._tg.__aexit__(*exc_info)

    def stats(self) -> PollStats:
        """Totals over all pollers."""
        total = PollStats()
        for p in self.pollers.values():
            total.polls += p.stats.polls
            total.statuses += p.stats.statuses
            total.rejections += p.stats.rejections
            total.failures += p.stats.failures
            total.skipped += p.stats.skipped
        return total
