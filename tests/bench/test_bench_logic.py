"""The benchmark's pure logic: verdicts, pinning choices, scenario names, the inbox targets, the
seeder's row builder. The benchmark itself prints figures and asserts nothing; these check that
what it prints is computed right."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench import inbox, seed
from bench.cli import parse_scenarios
from bench.driver import Stats
from bench.pinning import choose
from bench.report import Row, Target, table


def _stats(rps: float, p95_ms: float = 5.0) -> Stats:
    # 100 requests over 100/rps seconds, all taking p95_ms.
    return Stats("s", 100 / rps, [p95_ms] * 100)


READ = Target(min_ratio=0.35, min_peer_ratio=3.0)


@pytest.mark.parametrize(
    ("hub", "ceiling", "peer", "verdict"),
    [
        (400, 1000, 100, "meets"),
        (400, 1000, 200, "BELOW TARGET"),  # 2x the peer
        (300, 1000, 50, "BELOW TARGET"),  # 0.30 of the ceiling
        (400, 1000, None, "meets (no peer figure)"),
        (300, 1000, None, "BELOW TARGET (no peer figure)"),
    ],
)
def test_verdict_needs_every_measured_part(
    hub: float, ceiling: float, peer: float | None, verdict: str
) -> None:
    row = Row("sqlite", _stats(hub), _stats(ceiling), READ, _stats(peer) if peer else None)
    assert row.verdict == verdict


def test_ratios_and_table_columns() -> None:
    row = Row("postgresql", _stats(400), _stats(1000), READ, _stats(100))
    assert row.ratio == pytest.approx(0.4)
    assert row.peer_ratio == pytest.approx(4.0)
    header, _, line = table([row]).splitlines()
    cells = [c.strip() for c in line.strip("|").split("|")]
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert dict(zip(columns, cells, strict=True)) | {"p50 ms": "-"} == {
        "database": "postgresql", "scenario": "s", "req/s": "400", "p50 ms": "-", "p95 ms": "5.00",
        "p99 ms": "5.00", "errors": "0", "server CPU": "-", "ceiling req/s": "1000", "x ceiling": "0.400",
        "peer req/s": "100", "x peer": "4.00", "target": ">= 0.35 x ceiling, >= 3 x peer", "verdict": "meets",
        "x ceiling /CPU": "-", "x peer /CPU": "-",
    }  # fmt: skip


def test_ratios_per_cpu_second() -> None:
    hub, ceiling, peer = _stats(400), _stats(1000), _stats(100)
    hub.server_cpu, ceiling.server_cpu, peer.server_cpu = 0.8, 0.5, 0.25
    row = Row("sqlite", hub, ceiling, READ, peer)
    assert row.cpu_ratio == pytest.approx((400 / 0.8) / (1000 / 0.5))
    assert row.peer_cpu_ratio == pytest.approx((400 / 0.8) / (100 / 0.25))
    ceiling.server_cpu = None
    assert row.cpu_ratio is None


def test_p95_bound_and_an_empty_measurement() -> None:
    bound = Target(max_p95_ms=20.0)
    assert bound.verdict(_stats(100, p95_ms=19.0), None, None) == "meets"
    assert bound.verdict(_stats(100, p95_ms=21.0), None, None) == "BELOW TARGET"
    assert bound.verdict(Stats("none", 1.0, []), None, None) == "BELOW TARGET"


def test_inbox_targets() -> None:
    assert inbox.target("sqlite", 100_000, loaded=False) is None
    assert inbox.target("sqlite", 1_000_000, loaded=True) == Target(min_ratio=0.15)
    assert inbox.target("postgresql", 100_000, loaded=True) == Target(min_ratio=0.15)
    assert inbox.target("postgresql", 1_000_000, loaded=True) == Target(min_ratio=0.15, max_p95_ms=20.0)
    assert inbox.target("postgresql", 1_000_000, loaded=False) == Target(max_p95_ms=20.0)
    assert [inbox.label(n) for n in (2000, 10_000, 1_000_000, 1_500_000)] == ["2k", "10k", "1M", "1500k"]


def test_pinning_choice() -> None:
    assert choose(True, {0, 1}, "/usr/bin/taskset").prefix() == ["taskset", "-c", "0"]
    assert choose(True, {2, 3, 5}, "/usr/bin/taskset").driver_core == 3
    for plan, reason in [
        (choose(False, {0, 1}, "/usr/bin/taskset"), "--no-pin"),
        (choose(True, {0, 1}, None), "taskset not found"),
        (choose(True, {0}, "/usr/bin/taskset"), "only 1 CPU available"),
    ]:
        assert plan.prefix() == []
        assert plan.describe() == f"no CPU pinning ({reason})"


def test_scenario_names() -> None:
    assert parse_scenarios("inbox, read-patient") == frozenset({"inbox", "read-patient"})
    with pytest.raises(ValueError, match="unknown read"):
        parse_scenarios("read,inbox")
    with pytest.raises(ValueError, match="none given"):
        parse_scenarios(" , ")


def test_seed_builder_matches_the_store() -> None:
    """The fast row builder writes what extract_index_rows and the store's mapping would."""
    seed.check_builder(datetime.now(UTC), range(40))


def test_seed_builder_check_catches_a_drift(monkeypatch: pytest.MonkeyPatch) -> None:
    real = seed.task_rows

    def drifted(n: int, rid: int, now: datetime) -> seed.Rows:
        rows = real(n, rid, now)
        rows[seed.TOK.name].pop()
        return rows

    monkeypatch.setattr(seed, "task_rows", drifted)
    with pytest.raises(RuntimeError, match="out of step"):
        seed.check_builder(datetime.now(UTC), range(2))
