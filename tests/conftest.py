"""Shared fixtures: one migrated database per test worker (SQLite or PostgreSQL),
emptied before each test, and a real app with real SMART clients and tokens.

The database comes from ``WRAPAROUND_TEST_DATABASE_URL``: unset means a SQLite file
per worker; a PostgreSQL URL means one database per worker created beside it. Under
``CI=true`` an unreachable PostgreSQL is a failure, not a skip.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.settings import Settings
from service.storage.database import Database
from service.storage.engine import normalise_url
from tests.support.clients import FhirClients
from tests.support.live import LiveServer
from tests.support.logscan import Collector, leaks

SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURES = SHARED / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def no_secrets_in_logs() -> Iterator[None]:
    """Issue 3: no token, assertion or NHS number appears in the logs of the whole run."""
    collector = Collector()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(collector)
    root.setLevel(logging.DEBUG)
    yield
    root.removeHandler(collector)
    root.setLevel(previous)
    found = leaks(collector.lines)
    assert not found, f"secrets or identifiers reached the logs: {found}"


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "gw0")


def _postgres_url(base: str) -> str:
    url = make_url(normalise_url(base))
    # Unique per run (xdist's run id, else the pid) and per worker: concurrent runs never collide.
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getpid()))[:8]
    name = f"{url.database or 'test'}_{run}_{_worker()}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.exit(f"PostgreSQL at {url.render_as_string()} is required under CI: {exc}", returncode=1)
        raise
    finally:
        admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    configured = os.environ.get("WRAPAROUND_TEST_DATABASE_URL", "")
    if configured.startswith("postgres"):
        return _postgres_url(configured)
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'wraparound.db'}"


@pytest.fixture(scope="session")
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    db.upgrade()
    yield db
    db.dispose()
    if database_url.startswith("postgresql"):
        _drop_postgres(database_url)


def _drop_postgres(url_text: str) -> None:
    url = make_url(url_text)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


def empty_database(database: Database) -> None:
    # DELETE, not TRUNCATE: for the handful of rows a test leaves behind it is several
    # times faster on PostgreSQL, and the same statement serves SQLite.
    from sqlmodel import SQLModel

    with database.transaction() as conn:
        for table in reversed(SQLModel.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def clean_database(database: Database) -> Database:
    empty_database(database)
    return database


@pytest.fixture
def postgres_database(clean_database: Database) -> Database:
    """``clean_database`` for a test of PostgreSQL's own behaviour: skipped on the SQLite run."""
    if clean_database.dialect != "postgresql":
        pytest.skip("PostgreSQL only (CI runs the PostgreSQL suite too)")
    return clean_database


@pytest.fixture(scope="session")
def server(database: Database) -> Iterator[LiveServer]:
    """The real app under uvicorn on a loopback port, one per test worker."""
    with LiveServer.start(database) as live:
        yield live


@pytest.fixture
def settings(server: LiveServer) -> Settings:
    return server.settings


@pytest.fixture
def fhir(server: LiveServer, clean_database: Database) -> Iterator[FhirClients]:
    """A clean hub over real HTTP, with helpers to register clients and get tokens."""
    from service.bootstrap import load_definitions

    load_definitions(clean_database)
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        yield FhirClients(http, clean_database, server.base_url)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES
