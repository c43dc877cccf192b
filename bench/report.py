"""Printing figures: one line per measurement, then the table against the ceiling, the peer and targets.

Verdicts use throughput ratios, as the targets do. Each ratio is also given per second of server
CPU (``x ceiling /CPU``, ``x peer /CPU``): on a shared machine a server with more runnable threads
(the hub's threadpool) gets more of a contended core than a single-threaded one (the ceiling and the
peer), which moves req/s ratios but not CPU cost. On PostgreSQL the hub's CPU excludes the database's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.driver import Stats


@dataclass(frozen=True)
class Target:
    """A target from issue 11: shares of the ceiling and of the peer, and a p95 bound in ms."""

    min_ratio: float | None = None  # hub / ceiling
    min_peer_ratio: float | None = None  # hub / fhirstarter
    max_p95_ms: float | None = None

    def describe(self) -> str:
        parts = []
        if self.min_ratio is not None:
            parts.append(f">= {self.min_ratio:.2f} x ceiling")
        if self.min_peer_ratio is not None:
            parts.append(f">= {self.min_peer_ratio:g} x peer")
        if self.max_p95_ms is not None:
            parts.append(f"p95 <= {self.max_p95_ms:g} ms")
        return ", ".join(parts) or "-"

    def verdict(self, stats: Stats, ratio: float | None, peer_ratio: float | None) -> str:
        """``meets`` or ``BELOW TARGET``; a part that could not be measured is named, not guessed."""
        missed, unmeasured = False, []
        if self.min_ratio is not None:
            if ratio is None:
                unmeasured.append("ceiling")
            else:
                missed |= ratio < self.min_ratio
        if self.min_peer_ratio is not None:
            if peer_ratio is None:
                unmeasured.append("peer")
            else:
                missed |= peer_ratio < self.min_peer_ratio
        if self.max_p95_ms is not None:
            p95 = stats.percentile(95)
            missed |= not p95 <= self.max_p95_ms  # NaN (no requests) is a miss
        verdict = "BELOW TARGET" if missed else "meets"
        return f"{verdict} (no {' or '.join(unmeasured)} figure)" if unmeasured else verdict


@dataclass
class Row:
    database: str
    stats: Stats
    ceiling: Stats | None = None  # the matching ceiling measurement, taken right after
    target: Target | None = None
    peer: Stats | None = None  # the matching fhirstarter measurement, where the peer has the scenario

    @property
    def ratio(self) -> float | None:
        return _ratio(self.stats, self.ceiling)

    @property
    def peer_ratio(self) -> float | None:
        return _ratio(self.stats, self.peer)

    @property
    def cpu_ratio(self) -> float | None:
        return _cpu_ratio(self.stats, self.ceiling)

    @property
    def peer_cpu_ratio(self) -> float | None:
        return _cpu_ratio(self.stats, self.peer)

    @property
    def verdict(self) -> str:
        return "-" if self.target is None else self.target.verdict(self.stats, self.ratio, self.peer_ratio)


def _ratio(stats: Stats, other: Stats | None) -> float | None:
    if other is None or not other.throughput:
        return None
    return stats.throughput / other.throughput


def per_cpu_second(stats: Stats) -> float | None:
    """Requests per second of server CPU: steadier than req/s when other work shares the core. The
    CPU the server spent settling after the load (background work left by the burst) is charged too."""
    if not stats.server_cpu:
        return None
    cpu_seconds = stats.server_cpu * stats.seconds + (stats.settle_cpu or 0.0)
    return stats.requests / cpu_seconds if cpu_seconds else None


def _cpu_ratio(stats: Stats, other: Stats | None) -> float | None:
    mine, theirs = per_cpu_second(stats), per_cpu_second(other) if other else None
    return mine / theirs if mine is not None and theirs else None


def _pct(value: float | None) -> str:
    return "   -" if value is None else f"{value * 100:3.0f}%"


def line(stats: Stats) -> str:
    return (
        f"{stats.name:<50} {stats.throughput:8.0f} req/s  p50 {stats.percentile(50):7.2f}  "
        f"p95 {stats.percentile(95):7.2f}  p99 {stats.percentile(99):7.2f} ms  "
        f"n={stats.requests:<6} errors={stats.errors:<4} server CPU {_pct(stats.server_cpu)}  "
        f"driver CPU {_pct(stats.driver_cpu)}  load {stats.load_average:.1f}"
        + (f"  then {stats.settle_cpu:.2f} CPU-s settling" if stats.settle_cpu else "")
    )


FEW = 20  # requests: below this a figure is mostly noise


def print_line(stats: Stats) -> None:
    print(line(stats), flush=True)
    if stats.requests < FEW:
        print(
            f"    only {stats.requests} requests measured: lengthen --duration for a usable figure",
            flush=True,
        )
    if stats.sample_error:
        print(f"    first error: {stats.sample_error}", flush=True)


def print_ratios(row: Row) -> None:
    """After a scenario's measurements: its ratios and verdict, so a long run reads as it goes."""
    parts = [f"x ceiling {_fmt(row.ratio, 3)}"]
    if row.peer is not None:
        parts.append(f"x peer {_fmt(row.peer_ratio, 2)}")
    if row.target is not None:
        parts.append(f"target {row.target.describe()}: {row.verdict}")
    per_cpu = f"x ceiling {_fmt(row.cpu_ratio, 3)}" + (
        f", x peer {_fmt(row.peer_cpu_ratio, 2)}" if row.peer else ""
    )
    print(f"    => {'; '.join(parts)}  (per server CPU-second: {per_cpu})", flush=True)


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


COLUMNS = (
    "database", "scenario", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "server CPU",
    "ceiling req/s", "x ceiling", "peer req/s", "x peer", "target", "verdict",
    "x ceiling /CPU", "x peer /CPU",
)  # fmt: skip


def table(rows: list[Row]) -> str:
    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        s = row.stats
        cells = [
            row.database,
            s.name,
            f"{s.throughput:.0f}",
            f"{s.percentile(50):.2f}",
            f"{s.percentile(95):.2f}",
            f"{s.percentile(99):.2f}",
            str(s.errors),
            _pct(s.server_cpu).strip(),
            f"{row.ceiling.throughput:.0f}" if row.ceiling else "-",
            _fmt(row.ratio, 3),
            f"{row.peer.throughput:.0f}" if row.peer else "-",
            _fmt(row.peer_ratio, 2),
            row.target.describe() if row.target else "-",
            row.verdict,
            _fmt(row.cpu_ratio, 3),
            _fmt(row.peer_cpu_ratio, 2),
        ]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def figures(stats: Stats) -> dict[str, Any]:
    return {
        "name": stats.name,
        "throughput": stats.throughput,
        "p50_ms": stats.percentile(50),
        "p95_ms": stats.percentile(95),
        "p99_ms": stats.percentile(99),
        "requests": stats.requests,
        "errors": stats.errors,
        "server_cpu": stats.server_cpu,
        "driver_cpu": stats.driver_cpu,
        "load_average": stats.load_average,
        "per_cpu_second": per_cpu_second(stats),
        "settle_cpu_seconds": stats.settle_cpu,
    }


def as_json(rows: list[Row]) -> list[dict[str, Any]]:
    return [
        {
            "database": r.database,
            **figures(r.stats),
            "ratio": r.ratio,
            "peer_ratio": r.peer_ratio,
            "cpu_ratio": r.cpu_ratio,
            "peer_cpu_ratio": r.peer_cpu_ratio,
            "ceiling": figures(r.ceiling) if r.ceiling else None,
            "peer": figures(r.peer) if r.peer else None,
            "target": r.target.describe() if r.target else None,
            "verdict": r.verdict if r.target else None,
        }
        for r in rows
    ]
