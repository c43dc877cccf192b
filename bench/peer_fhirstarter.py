"""The same-stack peer: a minimal fhirstarter provider, run in its own venv by the benchmark.

Patient and ServiceRequest with create, read and search, stored in SQLite in WAL mode with
``synchronous=NORMAL`` (the hub's SQLite settings). No auth, no audit, no tenancy, no
referral workflow: what a competent first FHIR server on FastAPI + fhir.resources looks like.
It is written to be fast rather than elaborate, so "3x the peer" is not measured against a
straw man: async handlers on one SQLite connection (no threadpool hop), a commit per create,
and search over a small token table with an index.

fhirstarter speaks STU3, R4B or R5, not R4; R4B is the nearest (Patient and ServiceRequest
are the same as in R4), so ``FHIR_SEQUENCE=R4B`` is set before fhirstarter is imported.

This file runs only in the peer's venv (``bench/peer_venv.py``); it imports nothing from
the hub. Handlers are registered by calling the provider's register functions rather than
with decorator syntax, because fhirstarter is not installed where mypy runs.
"""

import argparse
import os
import sqlite3
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import uvicorn

os.environ.setdefault("FHIR_SEQUENCE", "R4B")

from fhir.resources.R4B.bundle import Bundle  # noqa: TID251 (the peer, not the hub)
from fhir.resources.R4B.meta import Meta  # noqa: TID251 (the peer, not the hub)
from fhir.resources.R4B.patient import Patient  # noqa: TID251 (the peer, not the hub)
from fhir.resources.R4B.servicerequest import ServiceRequest  # noqa: TID251 (the peer, not the hub)
from fhirstarter import FHIRProvider, FHIRStarter, InteractionContext  # type: ignore[import-not-found]
from fhirstarter.exceptions import FHIRResourceNotFoundError  # type: ignore[import-not-found]

SCHEMA = """
CREATE TABLE IF NOT EXISTS resource (
    resource_type TEXT NOT NULL, id TEXT NOT NULL, content TEXT NOT NULL,
    PRIMARY KEY (resource_type, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS token (
    resource_type TEXT NOT NULL, param TEXT NOT NULL, value TEXT NOT NULL, id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS token_lookup ON token (resource_type, param, value, id);
"""


class Store:
    """One SQLite connection, used from the event loop only (handlers are async)."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def create(self, resource_type: str, content: dict[str, Any], tokens: list[tuple[str, str]]) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute(
                "INSERT INTO resource VALUES (?, ?, ?)",
                (resource_type, content["id"], orjson.dumps(content).decode()),
            )
            self.db.executemany(
                "INSERT INTO token VALUES (?, ?, ?, ?)",
                [(resource_type, param, value, content["id"]) for param, value in tokens],
            )
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def read(self, resource_type: str, resource_id: str) -> str | None:
        row = self.db.execute(
            "SELECT content FROM resource WHERE resource_type = ? AND id = ?", (resource_type, resource_id)
        ).fetchone()
        return None if row is None else str(row[0])

    def search(self, resource_type: str, criteria: list[tuple[str, str]], count: int) -> list[str]:
        """Resources matching every (param, value) criterion, at most ``count``."""
        sql = "SELECT content FROM resource r WHERE r.resource_type = ?"
        args: list[Any] = [resource_type]
        for param, value in criteria:
            sql += " AND r.id IN (SELECT id FROM token WHERE resource_type = ? AND param = ? AND value = ?)"
            args += [resource_type, param, value]
        rows = self.db.execute(f"{sql} ORDER BY r.id LIMIT ?", [*args, count]).fetchall()
        return [str(row[0]) for row in rows]


def _stamp(resource: Any) -> dict[str, Any]:
    resource.id = str(uuid.uuid4())
    resource.meta = Meta(versionId="1", lastUpdated=datetime.now(UTC))
    content: dict[str, Any] = orjson.loads(resource.model_dump_json(exclude_none=True))
    return content


def _reference(value: dict[str, Any] | None) -> str | None:
    return None if value is None else value.get("reference")


def _bundle(found: list[str]) -> Bundle:
    entries = [{"resource": orjson.loads(content)} for content in found]
    return Bundle.model_validate({"type": "searchset", "total": len(found), "entry": entries or None})


def _page_size(value: str | None) -> int:
    return min(100, int(value)) if value and value.isdigit() else 20


def create_app(store: Store) -> Any:
    app = FHIRStarter(title="fhirstarter peer", openapi_url=None, docs_url=None, redoc_url=None)
    provider = FHIRProvider()

    async def patient_create(context: InteractionContext, resource: Patient) -> Patient:
        content = _stamp(resource)
        tokens = [
            ("identifier", f"{i.get('system', '')}|{i.get('value', '')}")
            for i in content.get("identifier", [])
        ]
        store.create("Patient", content, tokens)
        return resource

    async def patient_read(context: InteractionContext, id_: str) -> Patient:
        content = store.read("Patient", id_)
        if content is None:
            raise FHIRResourceNotFoundError
        return Patient.model_validate_json(content)

    async def patient_search(
        context: InteractionContext, identifier: str | None, _count: str | None
    ) -> Bundle:
        criteria = [("identifier", identifier)] if identifier else []
        return _bundle(store.search("Patient", criteria, _page_size(_count)))

    async def service_request_create(context: InteractionContext, resource: ServiceRequest) -> ServiceRequest:
        content = _stamp(resource)
        tokens = [("status", str(content["status"]))]
        subject = _reference(content.get("subject"))
        if subject:
            tokens.append(("subject", subject))
        tokens += [("performer", ref) for p in content.get("performer", []) if (ref := _reference(p))]
        store.create("ServiceRequest", content, tokens)
        return resource

    async def service_request_read(context: InteractionContext, id_: str) -> ServiceRequest:
        content = store.read("ServiceRequest", id_)
        if content is None:
            raise FHIRResourceNotFoundError
        return ServiceRequest.model_validate_json(content)

    async def service_request_search(
        context: InteractionContext,
        performer: str | None,
        status: str | None,
        subject: str | None,
        _count: str | None,
    ) -> Bundle:
        given = {"performer": performer, "status": status, "subject": subject}
        criteria = [(param, value) for param, value in given.items() if value]
        return _bundle(store.search("ServiceRequest", criteria, _page_size(_count)))

    # Not decorators: fhirstarter is untyped where mypy runs (see the module docstring).
    provider.create(Patient)(patient_create)
    provider.read(Patient)(patient_read)
    provider.search_type(Patient)(patient_search)
    provider.create(ServiceRequest)(service_request_create)
    provider.read(ServiceRequest)(service_request_read)
    provider.search_type(ServiceRequest)(service_request_search)
    app.add_providers(provider)

    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.get("/healthz")(healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="fhirstarter peer for the benchmark.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True, help="SQLite file")
    args = parser.parse_args()
    # The same call as the ceiling server (bench/ceiling.py) and `wraparound serve`.
    uvicorn.run(create_app(Store(args.db)), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
