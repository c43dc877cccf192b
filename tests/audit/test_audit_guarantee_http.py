"""No response before its AuditEvent is committed, over real HTTP (ADR 0012).

A read-only interaction runs in a read transaction and its AuditEvent goes to the process's
audit writer; the response waits for that batch's commit. If the commit fails the client gets
503 and none of the data. Concurrent reads share a commit and every one of them is searchable.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from service.audit.writer import AuditWriter
from service.storage.database import Database
from tests.audit._audit_faults import read_event, refused_audit, wait_for, write_commits, writes_held
from tests.referrals._workflow_hub import NHS, Hub, ok
from tests.support.clients import Client, FhirClients

FAMILY = "Unaudited-Zeta"
REST = "http://hl7.org/fhir/restful-interaction"


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "transient"
    assert FAMILY not in response.text
    assert NHS not in response.text


def _patient(clinic: Client, nhs: str = "9000000009") -> str:
    body = {
        "resourceType": "Patient",
        "identifier": [{"system": NHS, "value": nhs}],
        "name": [{"family": FAMILY}],
    }
    return f"Patient/{ok(clinic.post('/fhir/Patient', json=body), 201)['id']}"


def _trail(admin: Client, query: str) -> list[dict[str, Any]]:
    bundle = ok(admin.get(f"/fhir/AuditEvent?{query}&_count=100"))
    return [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def test_a_read_whose_audit_cannot_commit_gets_503_and_no_data(
    fhir: FhirClients, clean_database: Database
) -> None:
    hub = Hub.build(fhir)
    patient = _patient(hub.clinic)
    with refused_audit(clean_database):
        for response in (
            hub.clinic.get(f"/fhir/{patient}"),
            hub.clinic.get(f"/fhir/{patient}/_history/1"),
            hub.clinic.get(f"/fhir/{patient}/_history"),
            hub.clinic.get(f"/fhir/Patient?family={FAMILY}"),
            hub.clinic.post(
                "/fhir/Patient/_search",
                content=f"family={FAMILY}",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            ),
            # A failure needs its audit too: the 404 becomes a 503.
            hub.clinic.get("/fhir/Patient/no-such-patient"),
        ):
            _refused(response)
    # None of the refused reads left an event; the next read answers and is audited.
    assert _trail(hub.admin, f"entity={patient}&subtype={REST}|read") == []
    assert ok(hub.clinic.get(f"/fhir/{patient}"))["name"] == [{"family": FAMILY}]
    assert len(_trail(hub.admin, f"entity={patient}&subtype={REST}|read")) == 1


@pytest.fixture
def own_server(clean_database: Database, settings: Any) -> Iterator[tuple[FastAPI, str]]:
    """A server of this test's own, so the test can watch its audit writer's queue."""
    from service.app import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = create_app(settings.model_copy(update={"base_url": base}), database=clean_database)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started, "the server to start")
    try:
        yield app, base
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def test_concurrent_reads_share_one_commit_and_are_all_searchable(
    own_server: tuple[FastAPI, str], clean_database: Database
) -> None:
    from service.bootstrap import load_definitions

    app, base = own_server
    load_definitions(clean_database)
    writer: AuditWriter = app.state.audit_writer
    with httpx.Client(base_url=base, timeout=60) as http:
        hub = Hub.build(FhirClients(http, clean_database, base))
        patients = [
            _patient(hub.clinic, nhs) for nhs in ("9000000009", "9434765919", "9434765870", "9876543210")
        ]
        with write_commits(clean_database.engine) as commits, ThreadPoolExecutor(len(patients)) as pool:
            with writes_held(clean_database):
                plug = writer.submit([read_event("plug")])
                wait_for(lambda: writer.queued() == 0, "the writer to take the first batch")
                reads = [pool.submit(hub.clinic.get, f"/fhir/{p}") for p in patients]
                # Every read has run its read transaction and waits for its audit, unanswered.
                wait_for(lambda: writer.queued() == len(patients), "every read to queue its audit")
                time.sleep(0.05)
                assert not any(r.done() for r in reads)
            responses = [r.result(60) for r in reads]
            plug.result(30)
        assert [r.status_code for r in responses] == [200] * len(patients)
        assert commits == [3]  # the held transaction, the plug's batch, one batch for every read
        events = [_trail(hub.admin, f"entity={p}&subtype={REST}|read") for p in patients]
        assert [len(found) for found in events] == [1] * len(patients)
        assert len({found[0]["meta"]["lastUpdated"] for found in events}) == 1
        agent = events[0][0]["agent"][0]
        assert agent["who"]["reference"] == hub.clinic.org_ref
