"""``python bench/run.py``: measure the hub on SQLite and/or PostgreSQL against the stack's ceiling.

Benchmarks print figures; they never assert. See docs/PERFORMANCE.md for the method and results.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

import orjson

from bench import report, scenarios, seed, servers, world
from bench.driver import Stats
from bench.scenarios import Load
from service.storage.database import Database

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/bench"


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per scenario")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each scenario")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent connections")
    parser.add_argument("--tasks", default="10000,100000", help="Task counts to seed for the inbox search")
    parser.add_argument(
        "--postgres-url", default=POSTGRES_URL, help="database to drop and re-create for the run"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 2 s scenarios, 8 connections, 2k Tasks"
    )
    parser.add_argument(
        "--driver",
        choices=("raw", "httpx"),
        default="raw",
        help="load client: a minimal asyncio HTTP/1.1 client (default; lighter) or httpx.AsyncClient",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup, args.concurrency, args.tasks = 2.0, 0.5, 8, "2000"
    return args


def _fresh_postgres(url: str) -> str:
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    name = parsed.database or "bench"
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url


def _prepare(url: str) -> tuple[Database, world.Clients]:
    db = Database(url)
    db.upgrade()
    world.seed_directory(db)
    clients = world.Clients(db)
    clients.register("bench-clinic-client", world.CLINIC, "clinic")
    clients.register("bench-partner-client", world.PARTNER, "partner")
    return db, clients


def _run_database(label: str, url: str, load: Load, task_counts: list[int]) -> list[report.Row]:
    print(f"\n== {label}: {url}", flush=True)
    db, clients = _prepare(url)
    rows: list[report.Row] = []
    seeded = 0
    try:
        with servers.ceiling() as ceiling, servers.hub(url) as server:
            hub = scenarios.prepare(server, ceiling, clients, label, load, report.print_line)
            rows += scenarios.writes_and_reads(hub)
            for count in task_counts:
                took = seed.seed_tasks(db, count, start=seeded)
                print(
                    f"seeded Tasks {seeded}..{count - 1} in {took:.1f} s "
                    f"({seed.inbox_matches(count)} of them in the searched inbox)",
                    flush=True,
                )
                seeded = count
                rows += scenarios.inbox(hub, count)
    finally:
        db.dispose()
    return rows


def _machine() -> str:
    load1, load5, _ = os.getloadavg()
    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {load1:.2f} / {load5:.2f} at start"
    )


def main() -> None:
    args = _args()
    load = Load(
        duration=args.duration, concurrency=args.concurrency, warmup=args.warmup, raw=args.driver == "raw"
    )
    task_counts = sorted(int(t) for t in args.tasks.split(",") if t.strip())
    machine = _machine()
    print(f"machine: {machine}")
    print(
        f"load: {load.duration:g} s per scenario after {load.warmup:g} s warm-up, "
        f"{load.concurrency} connections, {args.driver} driver; "
        "each hub figure is followed by its ceiling figure"
    )
    rows: list[report.Row] = []
    with tempfile.TemporaryDirectory(prefix="wraparound-bench-") as tmp:
        if args.db in ("sqlite", "both"):
            rows += _run_database("sqlite", f"sqlite:///{tmp}/bench.db", load, task_counts)
        if args.db in ("postgres", "both"):
            rows += _run_database("postgresql", _fresh_postgres(args.postgres_url), load, task_counts)
    print("\n" + report.table(rows))
    if args.json:
        args.json.write_bytes(orjson.dumps(_as_json(machine, rows), option=orjson.OPT_INDENT_2))


def _figures(stats: Stats) -> dict[str, Any]:
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
    }


def _as_json(machine: str, rows: list[report.Row]) -> dict[str, Any]:
    return {
        "machine": machine,
        "rows": [
            {
                "database": r.database,
                "ratio": r.ratio,
                **_figures(r.stats),
                "ceiling": _figures(r.ceiling) if r.ceiling else None,
            }
            for r in rows
        ],
    }
