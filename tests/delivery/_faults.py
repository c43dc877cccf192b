"""Helpers for the delivery fault tests: real worker processes, database locks, a partner FHIR server.

A worker here is ``python -m service.cli worker`` in its own process (what operators run), pointed at
the test database with a short lease, so a test can ``kill -9`` it at a chosen moment and start
another. Its output goes to a file (a full pipe would block it) and is scanned for secrets at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, insert, select, text
from sqlalchemy.engine import make_url

from service.storage import outbox as outbox_sql
from service.storage.database import Database
from service.storage.outbox import ATTEMPT, OUTBOX, OutboxRow
from tests.support import logscan
from tests.support.fhir_receiver import FhirReceiver
from tests.support.live import TEST_SECRET_KEY
from tests.support.receiver import RecordedRequest, Reply

ROOT = Path(__file__).resolve().parents[2]

# Lease > deadline + 5 s (the Worker refuses less): a crashed claim comes back after 7 s.
LEASE_SECONDS = 7.0
DEADLINE_SECONDS = 1.5
# How long a worker process may take to start and act: generous, for a loaded 2-core machine
# (a timeout, never a measurement).
STARTUP_SECONDS = 60.0
WORKER_SETTINGS = {
    "DELIVERY_LEASE_SECONDS": LEASE_SECONDS,
    "DELIVERY_DEADLINE_SECONDS": DEADLINE_SECONDS,
    "DELIVERY_POLL_SECONDS": 0.1,
    "DELIVERY_BACKOFF_SECONDS": 0.1,
}


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def is_postgres(db: Database) -> bool:
    return db.engine.dialect.name == "postgresql"


def named_url(db: Database, application_name: str) -> str:
    """The database URL, tagged on PostgreSQL so pg_stat_activity shows which process is which."""
    if not is_postgres(db):
        return db.url
    url = make_url(db.url).update_query_dict({"application_name": application_name})
    return url.render_as_string(hide_password=False)


@dataclass
class WorkerProcess:
    """One standalone ``wraparound worker`` process started by a test."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill9(self) -> None:
        """kill -9: no signal handler, no drain, no release; whatever it held stays held."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float) -> tuple[int, float]:
        """SIGTERM (graceful shutdown); returns the exit code and how long the exit took."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - started

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def close(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait(timeout=10)


class Workers:
    """Starts worker processes for one test and makes sure none outlives it."""

    def __init__(self, db: Database, base_url: str, tmp_path: Path) -> None:
        self.db = db
        self.base_url = base_url
        self.tmp_path = tmp_path
        self.started: list[WorkerProcess] = []

    def start(self, **settings: float | int | str) -> WorkerProcess:
        name = f"fault-worker-{len(self.started) + 1}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("WRAPAROUND_")}
        values: dict[str, Any] = {**WORKER_SETTINGS, **settings}
        env.update({f"WRAPAROUND_{k.upper()}": str(v) for k, v in values.items()})
        env.update(
            WRAPAROUND_DATABASE_URL=named_url(self.db, name),
            # The key the live test server sealed the webhook secrets with.
            WRAPAROUND_SECRET_KEY=TEST_SECRET_KEY,
            WRAPAROUND_ALLOW_PRIVATE_ENDPOINTS="1",
            WRAPAROUND_BASE_URL=self.base_url,
        )
        log_path = self.tmp_path / f"{name}.log"
        with log_path.open("wb") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen(
                [sys.executable, "-m", "service.cli", "worker"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        worker = WorkerProcess(name, proc, log_path)
        self.started.append(worker)
        return worker

    def connected(self, worker: WorkerProcess) -> bool:
        """PostgreSQL only: the worker has a session open (it is up and polling)."""
        query = (
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = :name"
        )
        with self.db.transaction(write=False) as conn:
            return bool(conn.execute(text(query), {"name": worker.name}).scalar_one())

    def close(self) -> list[str]:
        """Stop whatever is still running; returns any secrets found in the workers' output."""
        found: list[str] = []
        for worker in self.started:
            worker.close()
            found += logscan.leaks(worker.output().splitlines())
        return sorted(set(found))


# -- the database, read and locked as a second party ------------------------------------------------


def outbox(db: Database) -> list[OutboxRow]:
    with db.transaction(write=False) as conn:
        return sorted(outbox_sql.listing(conn, limit=1_000_000), key=lambda r: r.id)


def attempts(db: Database) -> list[dict[str, Any]]:
    with db.transaction(write=False) as conn:
        return [dict(r._mapping) for r in conn.execute(select(ATTEMPT).order_by(ATTEMPT.c.id)).all()]


def pending(db: Database) -> int:
    with db.transaction(write=False) as conn:
        query = select(func.count()).select_from(OUTBOX).where(OUTBOX.c.state == "pending")
        return int(conn.execute(query).scalar_one())


def queue_notices(db: Database, organizations: list[str], task_ids: list[str], per_stream: int) -> None:
    """Queue ``per_stream`` Task notices for every (recipient, Task) pair straight into the outbox, as
    ``service.storage.referrals.add_outbox`` writes them but in one statement (thousands of rows).
    Each pair is its own ordered stream; a notice is sendable once its Task exists."""
    now = datetime.now(UTC)
    values = [
        {
            "kind": "task.updated",
            "organization_id": organization,
            "focus": f"Task/{task_id}",
            "payload": {},
            "state": "pending",
            "attempts": 0,
            "message_id": f"msg_{uuid.uuid4().hex}",
            "created_at": now,
            "due_at": now,
        }
        for _ in range(per_stream)
        for organization in organizations
        for task_id in task_ids
    ]
    with db.transaction() as conn:
        conn.execute(insert(OUTBOX), values)


@contextmanager
def settle_blocked(db: Database, row_id: int) -> Iterator[Connection]:
    """Hold a lock the worker's settle() needs, in a second connection, until the block exits.

    PostgreSQL: the outbox row itself, FOR UPDATE (settle's UPDATE, and the attempt row's foreign
    key check, wait for it). SQLite: the database's write lock (BEGIN IMMEDIATE); the worker's
    writer waits in SQLite's busy handler.
    """
    conn = db.engine.connect()
    if not is_postgres(db):
        conn = conn.execution_options(sqlite_begin="IMMEDIATE")
    tx = conn.begin()
    try:
        if is_postgres(db):
            conn.execute(text("SELECT id FROM outbox WHERE id = :id FOR UPDATE"), {"id": row_id})
        yield conn
    finally:
        tx.rollback()
        conn.close()


def someone_waits_on_a_lock(db: Database) -> bool:
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    )
    with db.engine.connect() as conn:
        return bool(conn.execute(text(query)).scalar_one())


def terminate_backends(db: Database, application_name: str) -> int:
    """pg_terminate_backend every other session of this database (never the server: it is shared);
    returns how many of them belonged to ``application_name``."""
    query = (
        "SELECT application_name, pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    with db.engine.connect() as conn:
        killed = conn.execute(text(query)).all()
        conn.rollback()
    # The test's own pooled connections were among them, in each of its engines (reads have their
    # own, ADR 0021): drop them, as the hub's pools drop their own on their first failure
    # (storage/engine.py), so the test's next query opens a live one.
    for engine in db.engines:
        engine.pool.dispose()
    return sum(1 for name, done in killed if done and name == application_name)


# -- a partner FHIR server with a hook ----------------------------------------------------------------


class PartnerFhir(FhirReceiver):
    """tests/support/fhir_receiver.py, with a hook called as each transaction arrives (before it is
    processed and answered): where a test takes the lock the worker's acknowledgement will need."""

    on_transaction: Callable[[RecordedRequest], None] | None = None

    @classmethod
    @contextmanager
    def serving(cls) -> Iterator[PartnerFhir]:
        with cls.start() as server:
            assert isinstance(server, cls)
            yield server

    def _transaction(self, request: RecordedRequest) -> Reply:
        if self.on_transaction is not None:
            self.on_transaction(request)
        return super()._transaction(request)
