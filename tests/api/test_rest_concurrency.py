"""Racing writers over real HTTP: exactly one wins a versioned race, and no update is ever lost
(http://hl7.org/fhir/R4/http.html#concurrency)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx

from tests.support.clients import Client, FhirClients

LOCAL = "https://clinic.example.org/Id/local"
WRITERS = 6


def _patient(pid: str | None = None, family: str = "Race") -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": LOCAL, "value": "race-1"}],
        "name": [{"family": family}],
    }
    if pid:
        body["id"] = pid
    return body


def _race(
    client: Client, base_url: str, count: int, request: Callable[[httpx.Client, int], httpx.Response]
) -> list[httpx.Response]:
    """Run ``count`` requests at once, each on its own connection, released together."""
    barrier = threading.Barrier(count)
    results: list[httpx.Response | None] = [None] * count
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            with httpx.Client(base_url=base_url, timeout=60, headers=client._h(None)) as http:
                barrier.wait()
                results[i] = request(http, i)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return [r for r in results if r is not None]


def test_same_if_match_exactly_one_wins(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    pid = clinic.post("/fhir/Patient", json=_patient()).json()["id"]
    responses = _race(
        clinic,
        fhir.base_url,
        WRITERS,
        lambda http, i: http.put(
            f"/fhir/Patient/{pid}", json=_patient(pid, f"Writer{i}"), headers={"If-Match": 'W/"1"'}
        ),
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, [r.text for r in responses]
    assert all(s in (409, 412) for s in statuses if s != 200), statuses
    for r in responses:
        if r.status_code != 200:
            assert r.json()["resourceType"] == "OperationOutcome"
    winner = next(r for r in responses if r.status_code == 200).json()
    current = clinic.get(f"/fhir/Patient/{pid}").json()
    assert current["meta"]["versionId"] == "2"
    assert current["name"] == winner["name"]
    assert clinic.get(f"/fhir/Patient/{pid}/_history").json()["total"] == 2


def test_unconditional_updates_all_succeed_without_lost_updates(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    pid = clinic.post("/fhir/Patient", json=_patient()).json()["id"]
    responses = _race(
        clinic,
        fhir.base_url,
        2,
        lambda http, i: http.put(f"/fhir/Patient/{pid}", json=_patient(pid, f"Writer{i}")),
    )
    assert sorted(r.status_code for r in responses) == [200, 200], [r.text for r in responses]
    versions = sorted(r.json()["meta"]["versionId"] for r in responses)
    assert versions == ["2", "3"]
    current = clinic.get(f"/fhir/Patient/{pid}").json()
    assert current["meta"]["versionId"] == "3"
    history = clinic.get(f"/fhir/Patient/{pid}/_history").json()
    assert history["total"] == 3
    assert sorted(e["response"]["etag"] for e in history["entry"]) == ['W/"1"', 'W/"2"', 'W/"3"']
    # The last writer's content is the current version.
    last = next(r for r in responses if r.json()["meta"]["versionId"] == "3").json()
    assert current["name"] == last["name"]


def test_many_unconditional_writers_make_consecutive_versions(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    pid = clinic.post("/fhir/Patient", json=_patient()).json()["id"]
    responses = _race(
        clinic,
        fhir.base_url,
        WRITERS,
        lambda http, i: http.put(f"/fhir/Patient/{pid}", json=_patient(pid, f"Writer{i}")),
    )
    assert [r.status_code for r in responses] == [200] * WRITERS, [r.text for r in responses]
    assert sorted(int(r.json()["meta"]["versionId"]) for r in responses) == list(range(2, WRITERS + 2))
    history = clinic.get(f"/fhir/Patient/{pid}/_history").json()
    assert history["total"] == WRITERS + 1


def test_racing_conditional_creates_make_one_resource(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    responses = _race(
        clinic,
        fhir.base_url,
        WRITERS,
        lambda http, i: http.post(
            "/fhir/Patient", json=_patient(), headers={"If-None-Exist": f"identifier={LOCAL}|race-1"}
        ),
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * (WRITERS - 1) + [201], [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert clinic.get("/fhir/Patient", params={"identifier": f"{LOCAL}|race-1"}).json()["total"] == 1


def test_racing_update_as_create_with_one_client_id(fhir: FhirClients) -> None:
    admin = fhir.client("admin", "hub")
    responses = _race(
        admin,
        fhir.base_url,
        WRITERS,
        lambda http, i: http.put(
            "/fhir/Organization/race-own-id",
            json={"resourceType": "Organization", "id": "race-own-id", "name": f"Writer{i}"},
        ),
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1, [r.text for r in responses]
    assert all(s in (200, 409) for s in statuses if s != 201), statuses
    history = admin.get("/fhir/Organization/race-own-id/_history").json()
    assert history["total"] == statuses.count(200) + 1


def test_racing_delete_and_update(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    pid = clinic.post("/fhir/Patient", json=_patient()).json()["id"]

    def act(http: httpx.Client, i: int) -> httpx.Response:
        if i == 0:
            return http.delete(f"/fhir/Patient/{pid}", headers={"If-Match": 'W/"1"'})
        return http.put(f"/fhir/Patient/{pid}", json=_patient(pid, "Updater"), headers={"If-Match": 'W/"1"'})

    responses = _race(clinic, fhir.base_url, 2, act)
    statuses = sorted(r.status_code for r in responses)
    assert statuses in ([200, 409], [200, 412], [204, 409], [204, 412]), statuses
    history = clinic.get(f"/fhir/Patient/{pid}/_history").json()
    assert history["total"] == 2
