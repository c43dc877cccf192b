"""A database outage answers 503 with Retry-After (not 500), and the hub recovers without a restart.

PostgreSQL only: the test takes a database of its own away from the running hub
(``ALLOW_CONNECTIONS false`` plus ``pg_terminate_backend``) and gives it back; SQLite has no server to lose.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.storage.database import Database
from service.storage.engine import normalise_url
from tests.support.clients import FhirClients
from tests.support.live import LiveServer

pytestmark = pytest.mark.postgres


@pytest.fixture
def own_database(database_url: str) -> Iterator[str]:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite has no server to lose (CI runs the PostgreSQL suite)")
    url = make_url(normalise_url(database_url))
    name = f"{url.database}_outage_{os.getpid()}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _cut(admin_url: str, name: str, allow: bool) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"true" if allow else "false"}'))
        if not allow:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
            )
    admin.dispose()


def test_an_outage_is_503_with_retry_after_and_the_hub_recovers(own_database: str) -> None:
    from service.bootstrap import load_definitions

    db = Database(own_database)
    db.upgrade()
    load_definitions(db)
    name = str(make_url(own_database).database)
    admin_url = make_url(own_database).set(database="postgres").render_as_string(hide_password=False)
    try:
        with LiveServer.start(db) as live, httpx.Client(base_url=live.base_url, timeout=30) as http:
            clinic = FhirClients(http, db, live.base_url).client("clinic", "outage-clinic")
            assert clinic.get("/fhir/Patient").status_code == 200
            _cut(admin_url, name, allow=False)
            down = [clinic.get("/fhir/Patient") for _ in range(3)]
            token = http.post("/auth/token", data={"grant_type": "client_credentials"})
            for response in [*down, token]:
                assert response.status_code == 503, response.text
                assert response.headers["Retry-After"] == "5"
                assert response.json()["issue"][0]["code"] == "transient"
            _cut(admin_url, name, allow=True)
            deadline = time.monotonic() + 20
            statuses = []
            while time.monotonic() < deadline:
                statuses.append(clinic.get("/fhir/Patient").status_code)
                if statuses[-1] == 200:
                    break
                time.sleep(0.2)
            assert statuses[-1] == 200, statuses  # back without restarting the hub
            assert set(statuses) <= {200, 503}
    finally:
        db.dispose()
