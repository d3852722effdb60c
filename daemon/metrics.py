"""Prometheus metrics in the text exposition format, without a client library."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Family:
    name: str
    kind: str  # counter | gauge
    help: str
    labels: tuple[str, ...]
    values: dict[tuple[str, ...], float] = field(default_factory=dict)
    read: Callable[[], float | dict[tuple[str, ...], float]] | None = None


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    """Counters and gauges with fixed label names; gauges may be read when scraped."""

    def __init__(self) -> None:
        self._families: dict[str, _Family] = {}

    def counter(
        self,
        name: str,
        help: str,
        labels: tuple[str, ...] = (),
        read: Callable[[], float | dict[tuple[str, ...], float]] | None = None,
    ) -> None:
        self._families[name] = _Family(name, "counter", help, labels, read=read)

    def gauge(
        self,
        name: str,
        help: str,
        labels: tuple[str, ...] = (),
        read: Callable[[], float | dict[tuple[str, ...], float]] | None = None,
    ) -> None:
        self._families[name] = _Family(name, "gauge", help, labels, read=read)

    def inc(self, name: str, *labels: str, by: float = 1.0) -> None:
        values = self._families[name].values
        values[labels] = values.get(labels, 0.0) + by

    def set(self, name: str, value: float, *labels: str) -> None:
        self._families[name].values[labels] = value

    def get(self, name: str, *labels: str) -> float:
        return self._families[name].values.get(labels, 0.0)

    def total(self, name: str) -> float:
        return sum(self._families[name].values.values())

    def by_label(self, name: str) -> dict[tuple[str, ...], float]:
        return dict(self._families[name].values)

    def read(self, name: str) -> dict[tuple[str, ...], float]:
        """A family's current values (a gauge that is read when scraped: read now)."""
        return self._values(self._families[name])

    def unlabelled(self) -> dict[str, float]:
        """Every family without labels and its current value (for telemetry)."""
        out = {}
        for f in self._families.values():
            if not f.labels:
                out[f.name] = self._values(f).get((), 0.0)
        return out

    @staticmethod
    def _values(f: _Family) -> dict[tuple[str, ...], float]:
        if f.read is None:
            return dict(f.values)
        got = f.read()
        return got if isinstance(got, dict) else {(): float(got)}

    def render(self) -> str:
        out: list[str] = []
        for f in self._families.values():
            values = self._values(f)
            out.append(f"# HELP {f.name} {f.help}")
            out.append(f"# TYPE {f.name} {f.kind}")
            for labels, value in sorted(values.items()):
                tag = ",".join(f'{k}="{_escape(v)}"' for k, v in zip(f.labels, labels, strict=True))
                out.append(f"{f.name}{{{tag}}} {value:g}" if tag else f"{f.name} {value:g}")
        return "\n".join(out) + "\n"
