"""``python bench/inprocess.py``: the service layer's own cost per read and per create, without HTTP.

Runs ``interactions.create`` and ``interactions.read`` for a Patient inside
``Database.transaction`` (each with its AuditEvent), as a request would, on a fresh
SQLite file or a PostgreSQL URL given with ``--database``. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from service.access.caller import Caller
from service.bootstrap import load_definitions
from service.rest import interactions
from service.rest.context import Context
from service.storage.database import Database
from service.wiring import wire

CALLER = Caller(
    client_id="bench", organization_id="bench-clinic", role="clinic", scopes="system/*.cruds", jti="j"
)


def _patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [
            {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"},
            {"system": "https://bench.wraparound.org.uk/Id/clinic-number", "value": uuid.uuid4().hex},
        ],
        "name": [{"family": "Bench", "given": ["Pat"]}],
        "gender": "female",
        "birthDate": "1980-02-03",
        "address": [{"line": ["1 Road"], "city": "London", "postalCode": "E1 1AA"}],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", help="SQLAlchemy URL (default: a fresh SQLite file)")
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    url = args.database or f"sqlite:///{Path(tempfile.mkdtemp()) / 'inprocess.db'}"
    wire()
    db = Database(url)
    db.upgrade()
    load_definitions(db)

    def create() -> str:
        with db.transaction() as conn:
            ctx = Context(conn=conn, caller=CALLER, base_url="http://bench/fhir")
            stored = interactions.create(ctx, "Patient", _patient()).stored
            assert stored is not None
            return stored.id

    def read(resource_id: str) -> None:
        with db.transaction() as conn:
            interactions.read(
                Context(conn=conn, caller=CALLER, base_url="http://bench/fhir"), "Patient", resource_id
            )

    ids = [create() for _ in range(50)]
    started = time.perf_counter()
    for _ in range(args.count):
        create()
    create_ms = (time.perf_counter() - started) / args.count * 1000
    started = time.perf_counter()
    for i in range(args.count):
        read(ids[i % len(ids)])
    read_ms = (time.perf_counter() - started) / args.count * 1000
    print(
        f"{db.engine.dialect.name}: create Patient {create_ms:.2f} ms, read Patient {read_ms:.2f} ms "
        f"(service layer, one thread, {args.count} each, AuditEvent included)"
    )
    db.dispose()


if __name__ == "__main__":
    main()
