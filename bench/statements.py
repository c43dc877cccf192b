"""``python bench/statements.py``: SQL statements, transactions and commits per request, over real HTTP.

Counts are deterministic where timing is not: the real app runs under uvicorn in this process
(so a SQLAlchemy event listener sees every statement, the audit writer's included) on a fresh
SQLite file or the PostgreSQL URL given with ``--database`` (dropped and re-created). Sequential
requests give the cost of one request alone; ``--concurrency`` requests at once show what the
audit writer's group commit shares between them. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, event

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import world
from service.bootstrap import load_definitions
from service.settings import Settings
from service.storage.database import Database


class Counts:
    def __init__(self, db: Database) -> None:
        self.counter: Counter[str] = Counter()
        self.lock = threading.Lock()

        for engine in db.engines:  # on PostgreSQL reads have an engine of their own (ADR 0021)
            self._listen(engine, reads=engine is not db.engine)

    def _listen(self, engine: Engine, *, reads: bool) -> None:
        @event.listens_for(engine, "before_cursor_execute")
        def _statement(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            words = statement.split(None, 2)
            # BEGIN IMMEDIATE (a SQLite writer) and BEGIN DEFERRED (a reader) are told apart.
            verb = " ".join(words[:2]).upper() if words[0].upper() == "BEGIN" else words[0].upper()
            with self.lock:
                self.counter["statements"] += 1
                self.counter[verb] += 1

        @event.listens_for(engine, "commit")
        def _commit(conn: Any) -> None:
            options = conn.get_execution_options()
            # A read transaction's commit ends a snapshot (on PostgreSQL's reads engine, in
            # autocommit, it sends nothing); only a writer's commit makes data durable.
            read = reads or (engine.dialect.name == "sqlite" and options.get("sqlite_begin") != "IMMEDIATE")
            with self.lock:
                self.counter["read commits" if read else "write commits"] += 1

    def take(self) -> Counter[str]:
        with self.lock:
            out = Counter(self.counter)
            self.counter.clear()
        return out


@contextmanager
def _server(db: Database) -> Iterator[str]:
    import uvicorn

    from service.app import create_app
    from service.delivery.secrets import generate_key

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = Settings(
        database_url=db.url,
        base_url=base,
        allow_private_endpoints=True,
        rate_limit="100000000/minute",
        token_rate_limit="100000/minute",
        secret_key=generate_key(),
        log_level="WARNING",
    )
    server = uvicorn.Server(uvicorn.Config(create_app(settings, database=db), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _fresh(url: str | None) -> Database:
    if url is None:
        return Database(f"sqlite:///{Path(tempfile.mkdtemp()) / 'statements.db'}")
    from bench.cli import _fresh_postgres

    return Database(_fresh_postgres(url))


def _report(label: str, counts: Counter[str], requests: int) -> None:
    detail = ", ".join(
        f"{verb} {counts[verb] / requests:.2f}"
        for verb in sorted(counts)
        if verb not in ("statements", "read commits", "write commits")
    )
    print(
        f"  {label:<34} {counts['statements'] / requests:6.2f} statements, "
        f"{counts['write commits'] / requests:5.2f} write + {counts['read commits'] / requests:4.2f} read "
        f"commits per request  ({detail})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", help="PostgreSQL URL to drop and re-create (default: fresh SQLite)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    db = _fresh(args.database)
    db.upgrade()
    load_definitions(db)
    world.seed_directory(db)
    clients = world.Clients(db)
    clients.register("bench-clinic-client", world.CLINIC, "clinic")
    counts = Counts(db)
    with _server(db) as base:
        token = clients.token(base, "bench-clinic-client")
        http = httpx.Client(base_url=base, headers=world.headers(token), timeout=60)
        ids: list[str] = []

        def create(n: int) -> None:
            response = http.post("/fhir/Patient", content=world.body(world.patient(n)))
            response.raise_for_status()
            ids.append(response.json()["id"])

        def read(n: int) -> None:
            http.get(f"/fhir/Patient/{ids[n % len(ids)]}").raise_for_status()

        def search(_n: int) -> None:
            http.get("/fhir/Patient?gender=female&_count=5").raise_for_status()

        def missing(n: int) -> None:
            assert http.get(f"/fhir/Patient/missing-{n}").status_code == 404

        scenarios: list[tuple[str, Callable[[int], None]]] = [
            ("create Patient", create),
            ("read Patient", read),
            ("search Patient (gender, _count=5)", search),
            ("read a missing Patient (404)", missing),
        ]
        print(f"{db.engine.dialect.name}: {args.requests} requests per line")
        for mode, workers in (("one at a time", 1), (f"{args.concurrency} at once", args.concurrency)):
            print(f" {mode}:")
            for label, run in scenarios:
                counts.take()
                if workers == 1:
                    for n in range(args.requests):
                        run(n)
                else:
                    with ThreadPoolExecutor(workers) as pool:
                        list(pool.map(run, range(args.requests)))
                _report(label, counts.take(), args.requests)
        http.close()
    db.dispose()


if __name__ == "__main__":
    main()
