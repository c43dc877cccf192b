"""The hot path (service/api/hotpath.py, ADR 0014): read, create, update and search by GET are
answered without FastAPI's router, with the same answers; everything else still reaches it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from sqlalchemy import make_url

from service.api import hotpath
from service.rest import conditional, interactions, search, validation
from service.rest.search import bounded_by_page
from tests.support.clients import FhirClients
from tests.support.live import LiveServer


@pytest.fixture
def routed(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The requests that reached FastAPI's router, as "METHOD path"."""
    seen: list[str] = []
    router = server.app.router
    inner = router.middleware_stack

    async def spy(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append(f"{scope['method']} {scope['path']}")
        await inner(scope, receive, send)

    monkeypatch.setattr(router, "middleware_stack", spy)
    return seen


def test_hot_interactions_skip_the_router_and_answer_as_before(fhir: FhirClients, routed: list[str]) -> None:
    clinic = fhir.client("clinic")
    routed.clear()  # the client's token request
    body = {
        "resourceType": "Patient",
        "identifier": [{"system": "https://clinic.example.org/Id/local", "value": "hot-1"}],
        "name": [{"family": "Hot"}],
    }
    created = clinic.post("/fhir/Patient", json=body)
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    assert created.headers["ETag"] == 'W/"1"'
    assert created.headers["Location"].endswith(f"/fhir/Patient/{pid}/_history/1")

    read = clinic.get(f"/fhir/Patient/{pid}")
    assert read.status_code == 200
    assert read.json()["name"] == [{"family": "Hot"}]
    assert read.headers["content-type"] == "application/fhir+json"
    assert clinic.get(f"/fhir/Patient/{pid}", headers={"If-None-Match": 'W/"1"'}).status_code == 304

    updated = clinic.put(f"/fhir/Patient/{pid}", json={**body, "id": pid}, headers={"If-Match": 'W/"1"'})
    assert updated.status_code == 200
    assert updated.json()["meta"]["versionId"] == "2"
    stale = clinic.put(f"/fhir/Patient/{pid}", json={**body, "id": pid}, headers={"If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"

    found = clinic.get("/fhir/Patient", params={"family": "Hot"})
    assert found.status_code == 200
    assert [e["resource"]["id"] for e in found.json()["entry"]] == [pid]
    other = {**body, "identifier": [{"system": "https://clinic.example.org/Id/local", "value": "hot-2"}]}
    minimal = clinic.post("/fhir/Patient", json=other, headers={"Prefer": "return=minimal"})
    assert minimal.status_code == 201
    assert minimal.content == b""
    assert routed == []

    # Not a hot shape: FastAPI answers.
    assert clinic.get(f"/fhir/Patient/{pid}/_history").status_code == 200
    assert clinic.delete(f"/fhir/Patient/{pid}").status_code == 204
    assert routed == [f"GET /fhir/Patient/{pid}/_history", f"DELETE /fhir/Patient/{pid}"]


def test_errors_on_the_hot_path_are_the_apps_operation_outcomes(fhir: FhirClients, routed: list[str]) -> None:
    clinic = fhir.client("clinic")
    anonymous = fhir.anonymous()
    routed.clear()  # the client's token request
    no_token = anonymous.get("/fhir/Patient/abc")
    assert no_token.status_code == 401
    assert no_token.headers["WWW-Authenticate"].startswith("Bearer")
    assert no_token.json()["issue"][0]["code"] == "login"
    wrong_scheme = anonymous.get("/fhir/Patient/abc", headers={"Authorization": "Basic abc"})
    assert wrong_scheme.status_code == 401
    xml = clinic.get("/fhir/Patient/abc", params={"_format": "xml"})
    assert xml.status_code == 415
    assert xml.json()["resourceType"] == "OperationOutcome"
    missing = clinic.get("/fhir/Patient/does-not-exist")
    assert missing.status_code == 404
    assert missing.json()["issue"][0]["code"] == "not-found"
    not_json = clinic.post("/fhir/Patient", content=b"{", headers={"Content-Type": "application/fhir+json"})
    assert not_json.status_code == 400
    assert not_json.json()["resourceType"] == "OperationOutcome"
    wrong_type = clinic.post("/fhir/Patient", json={"resourceType": "Observation"})
    assert wrong_type.status_code == 400
    assert routed == []
    # An id FastAPI's pattern refuses, and an unknown type, still get FastAPI's answers.
    assert clinic.get("/fhir/Patient/" + "x" * 65).status_code == 400
    assert clinic.get("/fhir/Unicorn/1").status_code == 404
    assert len(routed) == 2


@pytest.mark.parametrize(
    ("method", "path", "hot"),
    [
        ("GET", "/fhir/Patient/abc", "_read"),
        ("PUT", "/fhir/Patient/abc", "_update"),
        ("GET", "/fhir/Task", "_search"),
        ("POST", "/fhir/ServiceRequest", "_create"),
        ("DELETE", "/fhir/Patient/abc", None),
        ("PATCH", "/fhir/Patient/abc", None),
        ("GET", "/fhir/metadata", None),
        ("GET", "/fhir/Patient/_history", None),
        ("GET", "/fhir/Patient/abc/_history/1", None),
        ("POST", "/fhir/Patient/_search", None),
        ("POST", "/fhir/Patient/$validate", None),
        ("GET", "/fhir/Patient/a_b", None),
        ("GET", "/fhir/Unicorn", None),
        ("GET", "/app/inbox", None),
    ],
)
def test_which_requests_take_the_hot_path(method: str, path: str, hot: str | None) -> None:
    route = hotpath._route({"type": "http", "method": method, "path": path})
    assert (route[0].__name__ if route else None) == hot


@pytest.mark.parametrize(
    ("rtype", "query", "bounded"),
    [
        ("Task", "owner=Organization/p&status=requested&_count=20", True),
        ("Task", "focus=ServiceRequest/x", True),
        ("Task", "owner:Organization=p&_cursor=abc&_elements=status", True),
        ("Patient", "_id=a,b", True),
        ("Task", "", False),  # no filter: every Task of the type, in rid order
        ("Task", "requester=Organization/c&_lastUpdated=gt2026-11-01", False),
        ("Task", "owner=Organization/p&_total=accurate", False),
        ("Task", "owner=Organization/p&_count=0", False),
        ("Task", "owner=Organization/p&_sort=-authored-on", False),
        ("Task", "owner=Organization/p&_include=Task:focus", False),
        ("Task", "status:not=completed", False),
        ("Task", "owner:missing=false", False),
        ("Patient", "name=smi", False),  # a string prefix scans the type's names
        ("Patient", "birthdate=ge1988", False),
        ("Organization", "type:text=charity", False),
        ("Task", "unknown=1", False),
    ],
)
def test_which_searches_are_bounded_by_their_page(rtype: str, query: str, bounded: bool) -> None:
    assert bounded_by_page(rtype, parse_qsl(query, keep_blank_values=True)) is bounded


def test_on_sqlite_a_bounded_search_runs_on_the_loop_and_others_on_a_thread(
    fhir: FhirClients, server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[bool] = []  # per search: whether it ran on the event loop's thread
    real = search.search

    def spy(*args: Any, **kwargs: Any) -> Any:
        ran.append(_on_the_loop())
        return real(*args, **kwargs)

    monkeypatch.setattr(search, "search", spy)
    clinic = fhir.client("clinic")
    for query in ("Task?focus=ServiceRequest/x", "Task?focus=ServiceRequest/x&_total=accurate"):
        assert clinic.get(f"/fhir/{query}").status_code == 200
    sqlite = server.settings.database_url.startswith("sqlite")
    assert ran == [sqlite, False]


def _on_the_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _patient(value: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "https://clinic.example.org/Id/local", "value": value}],
        "name": [{"family": "Inline"}],
    }


@pytest.fixture
def writes_ran(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """Per create or update that reached the service layer: (what, whether it ran on the loop)."""
    ran: list[tuple[str, bool]] = []
    for module, name in ((interactions, "create"), (interactions, "update"), (conditional, "create")):
        what = f"{module.__name__.rsplit('.', 1)[-1]}.{name}"

        def spy(*args: Any, _real: Any = getattr(module, name), _what: str = what, **kwargs: Any) -> Any:
            ran.append((_what, _on_the_loop()))
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    return ran


def test_on_sqlite_a_write_runs_on_the_loop_unless_it_may_wait(
    fhir: FhirClients, server: LiveServer, writes_ran: list[tuple[str, bool]]
) -> None:
    """ADR 0020: a create or update runs on the loop; a conditional create (its search may read every
    match) and a write of a type whose rules wait on the network (an Endpoint's DNS) keep a thread."""
    clinic = fhir.client("clinic")
    created = clinic.post("/fhir/Patient", json=_patient("inline-1"))
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    assert clinic.put(f"/fhir/Patient/{pid}", json={**_patient("inline-1"), "id": pid}).status_code == 200
    conditional_create = clinic.post(
        "/fhir/Patient",
        json=_patient("inline-2"),
        headers={"If-None-Exist": "identifier=https://clinic.example.org/Id/local|inline-2"},
    )
    assert conditional_create.status_code == 201
    endpoint = {
        "resourceType": "Endpoint",
        "status": "active",
        "connectionType": {
            "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
            "code": "hl7-fhir-rest",
        },
        "payloadType": [{"text": "referral"}],
        "address": "https://partner.example.org/fhir",
    }
    clinic.post("/fhir/Endpoint", json=endpoint)  # refused or not, it reached the service layer
    sqlite = server.settings.database_url.startswith("sqlite")
    assert writes_ran == [
        ("interactions.create", sqlite),
        ("interactions.update", sqlite),
        ("conditional.create", False),
        ("interactions.create", False),  # the conditional create's own, inside it
        ("interactions.create", False),
    ]
    assert validation.waits_on_network("Endpoint")
    assert not validation.waits_on_network("Patient")


def test_on_sqlite_a_write_finding_the_lock_held_waits_on_a_thread_while_the_loop_serves(
    fhir: FhirClients, server: LiveServer, writes_ran: list[tuple[str, bool]]
) -> None:
    """The loop never waits for SQLite's write lock: a create that finds it held elsewhere goes to a
    thread, which waits for it, and the loop answers other requests meanwhile."""
    if not server.settings.database_url.startswith("sqlite"):
        pytest.skip("SQLite only: on PostgreSQL every write runs on a thread (CI runs both)")
    clinic = fhir.client("clinic")
    path = make_url(server.settings.database_url).database
    assert path
    other = sqlite3.connect(path, isolation_level=None, timeout=30)  # another process, as far as locks go
    answers: list[httpx.Response] = []
    try:
        other.execute("BEGIN IMMEDIATE")
        poster = threading.Thread(
            target=lambda: answers.append(clinic.post("/fhir/Patient", json=_patient("held")))
        )
        poster.start()
        time.sleep(0.5)  # the create has found the lock held, and waits on a thread for it
        with httpx.Client(base_url=server.base_url, timeout=5) as meanwhile:
            assert meanwhile.get("/healthz").status_code == 200  # the loop is not blocked
        assert poster.is_alive()  # not answered before its commit
        assert not answers
        assert writes_ran == []  # nothing begun yet: a thread's BEGIN IMMEDIATE waits for the lock
        other.execute("COMMIT")
        poster.join(30)
    finally:
        other.close()
    assert [a.status_code for a in answers] == [201]
    assert writes_ran == [("interactions.create", False)]  # it ran on that thread
    pid = answers[0].json()["id"]
    assert clinic.get(f"/fhir/Patient/{pid}").json()["identifier"][0]["value"] == "held"
