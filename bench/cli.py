"""``python bench/run.py``: the hub on SQLite and/or PostgreSQL against the stack's ceiling and a peer.

The peer is fhirstarter (FastAPI + fhir.resources, no auth, no audit, no tenancy) in its own
venv. Benchmarks print figures; they never assert. See docs/PERFORMANCE.md for the method.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson

from bench import inbox, peer_venv, pinning, profiling, report, scenarios, seed, servers, world
from bench.driver import peak_rss_mb
from bench.scenarios import PEER_SCENARIOS, SCENARIOS, Load
from service.storage.database import Database

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/bench"
QUICK = {"duration": 2.0, "warmup": 0.5, "tasks": "2000"}
DEFAULTS = {"duration": 10.0, "warmup": 1.0, "tasks": "10000,100000"}


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--duration", type=float, help="measured seconds per scenario (default 10)")
    parser.add_argument("--warmup", type=float, help="unmeasured seconds before each scenario (default 1)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent connections (default 16)")
    parser.add_argument(
        "--tasks", help="Task counts to seed for the inbox search (default 10000,100000; add 1000000 for 1M)"
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated subset of {','.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument(
        "--postgres-url", default=POSTGRES_URL, help="database to drop and re-create for the run"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 s scenarios, 2k Tasks")
    parser.add_argument("--no-peer", action="store_true", help="skip the fhirstarter peer")
    parser.add_argument(
        "--peer-venv", type=Path, default=peer_venv.default_location(), help="where the peer's venv lives"
    )
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin servers and driver to separate CPUs"
    )
    parser.add_argument(
        "--driver",
        choices=("raw", "httpx"),
        default="raw",
        help="load client: a minimal asyncio HTTP/1.1 client (default; lighter) or httpx.AsyncClient",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="API processes for the hub (serve --workers N); with N > 1 use --no-pin, or all share CPU 0",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="sample the hub with py-spy during each hub scenario into this directory, and print a summary",
    )
    args = parser.parse_args()
    for name, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.selected = parse_scenarios(args.scenarios, parser.error)
    args.task_counts = sorted({int(t) for t in args.tasks.split(",") if t.strip()})
    return args


def parse_scenarios(text: str, error: Any = None) -> frozenset[str]:
    chosen = frozenset(s.strip() for s in text.split(",") if s.strip())
    unknown = chosen - set(SCENARIOS)
    if unknown or not chosen:
        named = ", ".join(sorted(unknown)) or "(none given)"
        message = f"--scenarios: unknown {named}; choose from {', '.join(SCENARIOS)}"
        if error is None:
            raise ValueError(message)
        error(message)
    return chosen


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


def _run_database(
    label: str,
    url: str,
    args: argparse.Namespace,
    load: Load,
    pins: pinning.Pinning,
    peer: Path | None,
    tmp: Path,
) -> list[report.Row]:
    print(f"\n== {label}: {url}", flush=True)
    db, clients = _prepare(url)
    rows: list[report.Row] = []
    seeded = 0
    try:
        with ExitStack() as stack:
            ceiling = stack.enter_context(servers.ceiling(pins))
            peer_server = (
                stack.enter_context(servers.peer(peer, tmp / f"peer-{label}.db", pins)) if peer else None
            )
            server = stack.enter_context(servers.hub(url, pins, args.workers))
            hub = scenarios.prepare(
                server, ceiling, peer_server, clients, label, load, report.print_line, report.print_ratios
            )
            rows += scenarios.writes_and_reads(hub, args.selected)
            if "transaction" in args.selected:
                rows += scenarios.transaction(hub)
            for count in args.task_counts if "inbox" in args.selected else []:
                took = seed.seed_tasks(db, count, start=seeded)
                print(
                    f"seeded Tasks {seeded}..{count - 1} in {took:.1f} s "
                    f"({seed.inbox_matches(count)} of them in the searched inbox)",
                    flush=True,
                )
                seeded = count
                rows += inbox.run(hub, count)
            peaks = peak_rss_mb(server.pid)
            print(
                "hub peak RSS (VmHWM) per process: "
                + ", ".join(f"pid {pid} {mb:.0f} MB" for pid, mb in sorted(peaks.items())),
                flush=True,
            )
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
        duration=args.duration,
        concurrency=args.concurrency,
        warmup=args.warmup,
        raw=args.driver == "raw",
        profile=args.profile,
    )
    if args.profile is not None and not profiling.available():
        raise SystemExit("--profile needs py-spy on PATH (pip install py-spy)")
    pins = pinning.apply(not args.no_pin)
    machine = _machine()
    print(f"machine: {machine}")
    print(f"pinning: {pins.describe()}")
    wanted = not args.no_peer and bool(args.selected & PEER_SCENARIOS)
    peer = peer_venv.ensure(args.peer_venv) if wanted else None
    versions = peer_venv.versions(peer) if peer else {}
    no_peer = "none (--no-peer)" if args.no_peer else "not started (no selected scenario has one)"
    print("peer: " + (", ".join(f"{k} {v}" for k, v in versions.items()) if peer else no_peer))
    print(
        f"load: {load.duration:g} s per scenario after {load.warmup:g} s warm-up, "
        f"{load.concurrency} connections, {args.driver} driver, hub with {args.workers} API process(es); "
        "each hub figure is followed by its ceiling figure and, where the peer has the scenario, the peer's"
    )
    rows: list[report.Row] = []
    with tempfile.TemporaryDirectory(prefix="wraparound-bench-") as tmp:
        if args.db in ("sqlite", "both"):
            rows += _run_database("sqlite", f"sqlite:///{tmp}/bench.db", args, load, pins, peer, Path(tmp))
        if args.db in ("postgres", "both"):
            url = _fresh_postgres(args.postgres_url)
            rows += _run_database("postgresql", url, args, load, pins, peer, Path(tmp))
    print(f"\n{pins.describe()}; {load.concurrency} connections, {load.duration:g} s per measurement\n")
    print(report.table(rows))
    if args.json:
        document = {
            "machine": machine,
            "pinning": pins.describe(),
            "load": {"duration": load.duration, "warmup": load.warmup, "concurrency": load.concurrency},
            "peer": versions or None,
            "rows": report.as_json(rows),
        }
        args.json.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
