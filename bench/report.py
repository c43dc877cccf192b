"""Printing figures: one line per measurement, then the table against the ceiling and targets."""

from __future__ import annotations

from dataclasses import dataclass

from bench.driver import Stats


@dataclass(frozen=True)
class Target:
    """A target from issue 2: a minimum share of the ceiling, or a p95 bound in ms."""

    min_ratio: float | None = None
    max_p95_ms: float | None = None

    def describe(self) -> str:
        if self.min_ratio is not None:
            return f">= {self.min_ratio:.2f} x ceiling"
        return f"p95 <= {self.max_p95_ms:.0f} ms"

    def met(self, stats: Stats, ratio: float | None) -> bool:
        if self.min_ratio is not None:
            return ratio is not None and ratio >= self.min_ratio
        return self.max_p95_ms is not None and stats.percentile(95) <= self.max_p95_ms


@dataclass
class Row:
    database: str
    stats: Stats
    ceiling: Stats | None = None  # the matching ceiling measurement, taken right after
    target: Target | None = None

    @property
    def ratio(self) -> float | None:
        if self.ceiling is None or not self.ceiling.throughput:
            return None
        return self.stats.throughput / self.ceiling.throughput


def _pct(value: float | None) -> str:
    return "   -" if value is None else f"{value * 100:3.0f}%"


def line(stats: Stats) -> str:
    return (
        f"{stats.name:<44} {stats.throughput:8.0f} req/s  p50 {stats.percentile(50):7.2f}  "
        f"p95 {stats.percentile(95):7.2f}  p99 {stats.percentile(99):7.2f} ms  "
        f"n={stats.requests:<6} errors={stats.errors:<4} server CPU {_pct(stats.server_cpu)}  "
        f"driver CPU {_pct(stats.driver_cpu)}  load {stats.load_average:.1f}"
    )


def print_line(stats: Stats) -> None:
    print(line(stats), flush=True)
    if stats.sample_error:
        print(f"    first error: {stats.sample_error}", flush=True)


def table(rows: list[Row]) -> str:
    header = (
        "| database | scenario | req/s | p50 ms | p95 ms | p99 ms | errors | server CPU "
        "| ceiling req/s | ratio | target | verdict |"
    )
    out = [header, "|" + "---|" * 12]
    for row in rows:
        s = row.stats
        ceiling, ratio = row.ceiling, row.ratio
        ceiling_rps = f"{ceiling.throughput:.0f}" if ceiling else "-"
        ratio_text = f"{ratio:.3f}" if ratio is not None else "-"
        verdict = "-"
        if row.target is not None:
            verdict = "meets" if row.target.met(s, ratio) else "BELOW TARGET"
        out.append(
            f"| {row.database} | {s.name} | {s.throughput:.0f} | {s.percentile(50):.2f} | "
            f"{s.percentile(95):.2f} | {s.percentile(99):.2f} | {s.errors} | {_pct(s.server_cpu).strip()} | "
            f"{ceiling_rps} | {ratio_text} | "
            f"{row.target.describe() if row.target else '-'} | {verdict} |"
        )
    return "\n".join(out)
