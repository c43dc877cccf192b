"""Broken object level authorisation (issue 3 "Scopes and tenancy"), over real HTTP with real tokens.

Clinic A refers a patient to partner A with consent; clinic B refers its own patient to partner B.
Clinic B and partner B then try every way the REST API offers to reach A's records: read, vread,
history, searches (by id, identifier, focus, subject), includes, totals, batch and transaction
entries, conditional create and update, update and delete. Each must answer exactly as it would for
a record that does not exist (CONTRACT.md: "404 on read and silently absent from searches").
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from fhir_profiles import ASSESSMENT_URL, ASSESSMENT_VERSION
from tests.referrals._workflow_hub import NHS, Hub, consent_body, entries, ok, permit
from tests.support.clients import Client, FhirClients

LOCAL = "https://clinic-a.example.org/Id/patient"
A_NHS, B_NHS = "9000000009", "9434765919"


@dataclass
class World:
    a: Hub  # clinic A, partner A (a.partner), partner A's opt-in service
    b: Hub  # clinic B, partner B (b.partner), partner B's service
    refs: dict[str, str]  # A's records: "Patient" -> "Patient/<id>", ...
    b_refs: dict[str, str]  # B's records


def _scored_assessment(hub: Hub, patient: str) -> str:
    """A completed assessment (the server derives score Observations from it)."""
    ons = {"ons4-satisfied": 7, "ons4-worthwhile": 8, "ons4-happy": 5, "ons4-anxious": 2}
    body = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{ASSESSMENT_URL}|{ASSESSMENT_VERSION}",
        "status": "completed",
        "subject": {"reference": patient},
        "author": {"reference": hub.clinic.org_ref},
        "item": [
            {
                "linkId": "ons4",
                "item": [{"linkId": k, "answer": [{"valueInteger": v}]} for k, v in ons.items()],
            }
        ],
    }
    return f"QuestionnaireResponse/{ok(hub.clinic.post('/fhir/QuestionnaireResponse', json=body), 201)['id']}"


def _patient(hub: Hub, nhs: str, local: str) -> str:
    body = {
        "resourceType": "Patient",
        "identifier": [{"system": NHS, "value": nhs}, {"system": LOCAL, "value": local}],
        "name": [{"family": "Doe"}],
    }
    return f"Patient/{ok(hub.clinic.post('/fhir/Patient', json=body), 201)['id']}"


def _records(hub: Hub, nhs: str, local: str) -> dict[str, str]:
    patient = _patient(hub, nhs, local)
    consent = hub.consent(patient, permit(hub.partner.org_ref))
    assessment = _scored_assessment(hub, patient)
    request_id, task = hub.referred(
        patient, hub.opt_in, supportingInfo=[{"reference": consent}, {"reference": assessment}]
    )
    observations = entries(hub.clinic.get(f"/fhir/Observation?derived-from={assessment}"))
    assert observations, "a completed assessment yields score Observations"
    return {
        "Patient": patient,
        "Consent": consent,
        "QuestionnaireResponse": assessment,
        "ServiceRequest": f"ServiceRequest/{request_id}",
        "Task": f"Task/{task['id']}",
        "Observation": f"Observation/{observations[0]['id']}",
    }


def build_world(fhir: FhirClients) -> World:
    a = Hub.build(fhir)
    clinic_b = ok(
        a.admin.post("/fhir/Organization", json={"resourceType": "Organization", "name": "Clinic B"}), 201
    )
    service_b = {
        "resourceType": "HealthcareService",
        "active": True,
        "name": "Partner B advice",
        "providedBy": {"reference": a.other_partner.org_ref},
    }
    b_service = f"HealthcareService/{ok(a.admin.post('/fhir/HealthcareService', json=service_b), 201)['id']}"
    b = dataclasses.replace(
        a,
        clinic=fhir.client("clinic", clinic_b["id"]),
        partner=a.other_partner,
        other_partner=a.partner,
        opt_in=b_service,
        opt_out=b_service,
    )
    return World(a, b, _records(a, A_NHS, "CA-0001"), _records(b, B_NHS, "CB-0001"))


@pytest.fixture
def world(fhir: FhirClients) -> World:
    return build_world(fhir)


def intruders(world: World) -> list[Client]:
    return [world.b.clinic, world.b.partner]


def _id(reference: str) -> str:
    return reference.split("/")[1]


def _as_missing(response: httpx.Response, real_id: str, status: int = 404) -> dict[str, Any]:
    # Ids are UUIDs: put a placeholder where the id is echoed so bodies compare whole.
    assert response.status_code == status, response.text
    parsed: dict[str, Any] = json.loads(response.text.replace(real_id, "ID"))
    return parsed


def assert_like_missing(
    client: Client, path: str, real_id: str, method: str = "GET", status: int = 404, **kw: Any
) -> None:
    """``path`` (holding ``{id}``) answers for A's id exactly as for an id that does not exist."""
    fake = str(uuid.uuid4())
    body = kw.pop("json", None)
    headers = client._h(kw.pop("headers", None))

    def call(rid: str) -> httpx.Response:
        # A body naming the id (an update) names the id of the URL.
        sent = {**body, "id": rid} if isinstance(body, dict) and "id" in body else body
        return client.http.request(method, path.format(id=rid), headers=headers, json=sent, **kw)

    theirs, missing = call(real_id), call(fake)
    assert _as_missing(theirs, real_id, status) == _as_missing(missing, fake, status), (path, theirs.text)
    assert theirs.headers.get("content-type") == missing.headers.get("content-type")


def _search_ids(client: Client, query: str) -> tuple[set[str], int | None]:
    # Strict handling: a parameter the server ignored would widen the search and prove nothing.
    bundle = ok(client.get(f"/fhir/{query}", headers={"Prefer": "handling=strict"}))
    found = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle.get("entry", [])}
    return found, bundle.get("total")


# -- reads ---------------------------------------------------------------------------------------------


READ_TYPES = ["Patient", "ServiceRequest", "Consent", "QuestionnaireResponse", "Task", "Observation"]


@pytest.mark.parametrize("resource_type", READ_TYPES)
def test_read_vread_and_history_of_a_records_answer_as_missing(world: World, resource_type: str) -> None:
    real = _id(world.refs[resource_type])
    # The owner sees it, so the 404s below are about tenancy and not a broken fixture.
    owner = world.a.clinic
    assert owner.get(f"/fhir/{resource_type}/{real}").status_code == 200
    for client in intruders(world):
        assert_like_missing(client, f"/fhir/{resource_type}/{{id}}", real)
        assert_like_missing(client, f"/fhir/{resource_type}/{{id}}/_history/1", real)
        assert_like_missing(client, f"/fhir/{resource_type}/{{id}}/_history", real)


def test_type_history_holds_only_own_records(world: World) -> None:
    for client, own in ((world.b.partner, "Task"), (world.b.clinic, "Task"), (world.b.clinic, "Patient")):
        found, total = _search_ids(client, f"{own}/_history")
        assert found == {world.b_refs[own]}, (client.role, own, found)
        assert total == len(ok(client.get(f"/fhir/{own}/_history")).get("entry", []))
    found, _ = _search_ids(world.b.partner, "Patient/_history")
    assert found == {world.b_refs["Patient"]}


# -- searches ------------------------------------------------------------------------------------------


def _searches(world: World) -> list[str]:
    refs = world.refs
    return [
        f"Patient?_id={_id(refs['Patient'])}",
        f"Patient?identifier={NHS}|{A_NHS}",
        f"Patient?identifier={A_NHS}",
        f"Patient?identifier={LOCAL}|CA-0001",
        f"ServiceRequest?_id={_id(refs['ServiceRequest'])}",
        f"ServiceRequest?subject={refs['Patient']}",
        f"ServiceRequest?patient={refs['Patient']}",
        f"Task?focus={refs['ServiceRequest']}",
        f"Task?_id={_id(refs['Task'])}",
        f"Task?patient={refs['Patient']}",
        f"Consent?patient={refs['Patient']}",
        f"QuestionnaireResponse?subject={refs['Patient']}",
        f"Observation?derived-from={refs['QuestionnaireResponse']}",
        f"Observation?subject={refs['Patient']}",
        f"Task?owner={world.a.partner.org_ref}",
        f"Task?requester={world.a.clinic.org_ref}",
        f"ServiceRequest?requester={world.a.clinic.org_ref}",
        f"ServiceRequest?performer={world.a.opt_in}",
        f"Task?focus={refs['ServiceRequest']}&_summary=count",
        f"Patient?identifier={NHS}|{A_NHS}&_total=accurate",
    ]


def test_searches_aimed_at_a_find_nothing_and_count_nothing(world: World) -> None:
    for client in intruders(world):
        for query in _searches(world):
            found, total = _search_ids(client, query)
            assert found == set(), (client.role, query, found)
            assert total in (0, None), (client.role, query, total)
            if "_summary=count" in query or "_total" in query:
                assert total == 0
    # Several ids at once, and POST _search: only B's own comes back.
    both = f"{_id(world.refs['Patient'])},{_id(world.b_refs['Patient'])}"
    assert _search_ids(world.b.clinic, f"Patient?_id={both}") == ({world.b_refs["Patient"]}, 1)
    posted = world.b.clinic.post(
        "/fhir/Patient/_search",
        content=f"identifier={NHS}|{A_NHS}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert ok(posted)["total"] == 0
    # The same searches from A's side do find A's records: the criteria are right.
    found, _ = _search_ids(world.a.clinic, f"Patient?identifier={NHS}|{A_NHS}")
    assert found == {world.refs["Patient"]}


def test_same_person_at_two_clinics_is_two_separate_records(world: World) -> None:
    # Clinic B registers a patient with A's NHS number: each clinic sees only its own record.
    theirs = _patient(world.b, A_NHS, "CB-0002")
    found, total = _search_ids(world.b.clinic, f"Patient?identifier={NHS}|{A_NHS}")
    assert (found, total) == ({theirs}, 1)
    found, total = _search_ids(world.a.clinic, f"Patient?identifier={NHS}|{A_NHS}")
    assert (found, total) == ({world.refs["Patient"]}, 1)


def test_totals_count_only_own_records(world: World) -> None:
    # Clinic B's assessment yields several score Observations (A's as many again); partners get none.
    scores = len(
        entries(world.b.clinic.get(f"/fhir/Observation?derived-from={world.b_refs['QuestionnaireResponse']}"))
    )
    for client, kind in ((world.b.clinic, "clinic"), (world.b.partner, "partner")):
        for resource_type in READ_TYPES:
            expected = 1
            if resource_type == "Observation":
                expected = scores if kind == "clinic" else 0
            bundle = ok(client.get(f"/fhir/{resource_type}?_summary=count"))
            assert bundle["total"] == expected, (kind, resource_type, bundle)
            assert "entry" not in bundle
            assert ok(client.get(f"/fhir/{resource_type}"))["total"] == expected


def test_includes_never_pull_a_records(world: World) -> None:
    b, refs, b_refs = world.b, world.refs, world.b_refs
    for client in intruders(world):
        found, _ = _search_ids(client, "Task?_include=Task:focus&_include=Task:patient&_include=Task:owner")
        assert world.refs["ServiceRequest"] not in found
        assert refs["Patient"] not in found
        assert {b_refs["Task"], b_refs["ServiceRequest"], b_refs["Patient"]} <= found, found
        found, _ = _search_ids(
            client,
            (
                "ServiceRequest?_include=ServiceRequest:subject&_include=ServiceRequest:requester"
                "&_include=ServiceRequest:performer&_include:iterate=Patient:organization"
            ),
        )
        assert not {refs[t] for t in READ_TYPES} & found, found
        for query in (
            "Patient?_revinclude=ServiceRequest:subject&_revinclude=Task:patient"
            "&_revinclude=Consent:patient&_revinclude=QuestionnaireResponse:subject",
            "ServiceRequest?_revinclude=Task:focus",
            "Patient?_revinclude:iterate=ServiceRequest:subject&_revinclude:iterate=Task:focus",
        ):
            found, _ = _search_ids(client, query)
            assert not {refs[t] for t in READ_TYPES} & found, (query, found)
            assert b_refs["Patient"] in found or query.startswith("ServiceRequest"), (query, found)
    # Partner B's Task pulls partner B's referral: includes work, just not across tenants.
    found, _ = _search_ids(b.partner, "Task?_include=Task:focus")
    assert b_refs["ServiceRequest"] in found


# -- Bundles -------------------------------------------------------------------------------------------


def _get_entries(world: World) -> list[str]:
    refs = world.refs
    return [
        refs["Patient"],
        refs["Task"],
        f"{refs['ServiceRequest']}/_history",
        f"{refs['Consent']}/_history/1",
        f"Task?focus={refs['ServiceRequest']}",
        f"Patient?identifier={NHS}|{A_NHS}",
    ]


def test_batch_get_entries_find_nothing(world: World) -> None:
    urls = _get_entries(world)
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": u}} for u in urls],
    }
    for client in intruders(world):
        response = ok(client.post("/fhir", json=bundle))
        statuses = [e["response"]["status"] for e in response["entry"]]
        assert statuses == ["404 Not Found"] * 4 + ["200 OK"] * 2, statuses
        for entry in response["entry"][4:]:
            assert entry["resource"]["total"] == 0
            assert "entry" not in entry["resource"]


def test_transaction_get_entry_fails_as_for_a_missing_id(world: World) -> None:
    for client in intruders(world):
        for resource_type in ("Patient", "Task", "QuestionnaireResponse"):
            real = _id(world.refs[resource_type])
            fake = str(uuid.uuid4())

            def transaction(
                rid: str, client: Client = client, resource_type: str = resource_type
            ) -> httpx.Response:
                entry = {"request": {"method": "GET", "url": f"{resource_type}/{rid}"}}
                return client.post(
                    "/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
                )

            assert _as_missing(transaction(real), real) == _as_missing(transaction(fake), fake)


# -- conditional create and update ---------------------------------------------------------------------


def _patient_body(nhs: str, local: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": NHS, "value": nhs}, {"system": LOCAL, "value": local}],
        "name": [{"family": "Roe"}],
    }


def test_conditional_create_does_not_reveal_a_patient(world: World) -> None:
    clinic_b = world.b.clinic
    for criteria in (
        f"identifier={NHS}|{A_NHS}",
        f"identifier={LOCAL}|CA-0001",
        f"_id={_id(world.refs['Patient'])}",
    ):
        created = clinic_b.post(
            "/fhir/Patient", json=_patient_body(A_NHS, "CA-0001"), headers={"If-None-Exist": criteria}
        )
        assert created.status_code == 201, (criteria, created.text)
        assert created.json()["id"] != _id(world.refs["Patient"])
        assert created.json()["name"] == [{"family": "Roe"}]
        # The new record is clinic B's own; A's is untouched.
        assert ok(clinic_b.get(f"/fhir/Patient/{created.json()['id']}"))["id"] == created.json()["id"]
        clinic_b.delete(f"/fhir/Patient/{created.json()['id']}")
    assert ok(world.a.clinic.get(f"/fhir/{world.refs['Patient']}"))["name"] == [{"family": "Doe"}]
    # A transaction's conditional create behaves the same.
    entry = {
        "fullUrl": f"urn:uuid:{uuid.uuid4()}",
        "resource": _patient_body(A_NHS, "CA-0001"),
        "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={NHS}|{A_NHS}"},
    }
    result = ok(
        clinic_b.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": [entry]})
    )
    assert result["entry"][0]["response"]["status"] == "201 Created"
    assert not result["entry"][0]["response"]["location"].startswith(world.refs["Patient"])


def test_conditional_update_does_not_touch_a_patient(world: World) -> None:
    response = world.b.clinic.put(
        f"/fhir/Patient?identifier={NHS}|{A_NHS}", json=_patient_body(A_NHS, "CB-0009")
    )
    assert response.status_code == 201, response.text
    assert response.json()["id"] != _id(world.refs["Patient"])
    assert ok(world.a.clinic.get(f"/fhir/{world.refs['Patient']}"))["meta"]["versionId"] == "1"


# -- writes to A's records -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "resource_type", ["Patient", "ServiceRequest", "Consent", "QuestionnaireResponse", "Task"]
)
def test_update_and_delete_of_a_records_answer_as_missing(world: World, resource_type: str) -> None:
    real = _id(world.refs[resource_type])
    body = ok(world.a.clinic.get(f"/fhir/{world.refs[resource_type]}"))
    clinic_b = world.b.clinic
    if resource_type == "Task":
        # Clinics cannot create Tasks, so a made-up id is 404 (no update-as-create): so is A's.
        assert_like_missing(clinic_b, "/fhir/Task/{id}", real, "PUT", json=body)
        # Partners update (never create) Tasks: another partner's Task answers as a made-up id.
        accepted = {**body, "status": "accepted"}
        assert_like_missing(world.b.partner, "/fhir/Task/{id}", real, "PUT", json=accepted)
        # Partners never delete: refused for the type (403) before any id is looked at.
        assert_like_missing(world.b.partner, "/fhir/Task/{id}", real, "DELETE", 403)
    else:
        # A made-up id would be created (updateCreate); A's id is taken, so 404 and nothing written.
        theirs = clinic_b.put(f"/fhir/{resource_type}/{real}", json=body)
        assert theirs.status_code == 404, theirs.text
    # Nobody deletes a Task (403 for the type, before any id is looked at); other types answer as missing.
    delete_status = 403 if resource_type == "Task" else 404
    assert_like_missing(clinic_b, f"/fhir/{resource_type}/{{id}}", real, "DELETE", delete_status)
    # With If-Match a missing id is 412 (nothing to match): so is a hidden one.
    assert_like_missing(
        clinic_b, f"/fhir/{resource_type}/{{id}}", real, "PUT", 412, json=body, headers={"If-Match": 'W/"1"'}
    )
    after = ok(world.a.clinic.get(f"/fhir/{world.refs[resource_type]}"))
    assert after["meta"]["versionId"] == body["meta"]["versionId"]


def test_a_deleted_record_cannot_be_revived_by_another_clinic(world: World) -> None:
    a_clinic, b_clinic = world.a.clinic, world.b.clinic
    spare = _patient(world.a, "9434765870", "CA-0002")
    body = ok(a_clinic.get(f"/fhir/{spare}"))
    assert a_clinic.delete(f"/fhir/{spare}").status_code == 204
    assert_like_missing(b_clinic, "/fhir/Patient/{id}", _id(spare))  # not 410: that would tell
    revived = b_clinic.put(f"/fhir/{spare}", json={**body, "name": [{"family": "Intruder"}]})
    assert revived.status_code == 404, revived.text
    assert a_clinic.get(f"/fhir/{spare}").status_code == 410


def test_operation_on_a_assessment_answers_as_missing(world: World) -> None:
    real = _id(world.refs["QuestionnaireResponse"])
    assert world.a.clinic.post(f"/fhir/QuestionnaireResponse/{real}/$suggest-referrals").status_code == 200
    assert_like_missing(
        world.b.clinic, "/fhir/QuestionnaireResponse/{id}/$suggest-referrals", real, method="POST"
    )
    assert_like_missing(
        world.b.partner, "/fhir/QuestionnaireResponse/{id}/$suggest-referrals", real, method="POST"
    )


def test_clinic_b_cannot_link_its_referral_to_a_records(world: World) -> None:
    b = world.b
    response = b.refer(world.refs["Patient"], b.opt_in, supportingInfo=[{"reference": world.refs["Consent"]}])
    assert response.status_code == 422, response.text
    text = response.text
    assert "reference not found" in text


# -- partner A after consent withdrawal -----------------------------------------------------------------


def test_partner_a_loses_the_clinical_records_but_keeps_its_task(world: World) -> None:
    a, refs = world.a, world.refs
    shared = ["Patient", "ServiceRequest", "Consent", "QuestionnaireResponse"]
    assert [a.partner.get(f"/fhir/{refs[t]}").status_code for t in shared] == [200] * 4
    consent = ok(a.clinic.get(f"/fhir/{refs['Consent']}"))
    ok(a.clinic.put(f"/fhir/{refs['Consent']}", json={**consent, "status": "inactive"}))
    for resource_type in shared:
        for suffix in ("", "/_history/1", "/_history"):
            assert_like_missing(a.partner, f"/fhir/{resource_type}/{{id}}{suffix}", _id(refs[resource_type]))
        _, total = _search_ids(a.partner, f"{resource_type}?_summary=count")
        assert total == 0, (resource_type, total)
        assert _search_ids(a.partner, f"{resource_type}/_history") == (set(), 0)
    task = ok(a.partner.get(f"/fhir/{refs['Task']}"))
    assert task["status"] == "cancelled"
    found, _ = _search_ids(a.partner, "Task?_include=Task:focus&_include=Task:patient")
    assert found == {refs["Task"]}
    # The clinic keeps everything it wrote.
    assert [a.clinic.get(f"/fhir/{refs[t]}").status_code for t in shared] == [200] * 4


# -- write-side rules -----------------------------------------------------------------------------------


def test_server_owned_fields_from_the_client_are_ignored(world: World) -> None:
    clinic = world.a.clinic
    body = {
        **_patient_body("9434765870", "CA-0003"),
        "meta": {"versionId": "99", "lastUpdated": "2001-01-01T00:00:00Z"},
    }
    created = ok(clinic.post("/fhir/Patient", json=body), 201)
    assert created["meta"]["versionId"] == "1"
    assert not created["meta"]["lastUpdated"].startswith("2001")
    updated = ok(clinic.put(f"/fhir/Patient/{created['id']}", json={**created, "meta": body["meta"]}))
    assert updated["meta"]["versionId"] == "2"
    assert not updated["meta"]["lastUpdated"].startswith("2001")
    read = clinic.get(f"/fhir/Patient/{created['id']}")
    assert read.headers["etag"] == 'W/"2"'


def test_clinic_cannot_author_as_another_organisation(world: World) -> None:
    a, b = world.a, world.b
    other = b.clinic.org_ref
    refused = a.refer(world.refs["Patient"], a.opt_in, requester={"reference": other})
    assert refused.status_code == 422, refused.text
    assert "ServiceRequest.requester" in refused.text
    consent = consent_body(world.refs["Patient"], permit(a.partner.org_ref), other)
    assert a.clinic.post("/fhir/Consent", json=consent).status_code == 422
    qr = a.assessment(world.refs["Patient"], author=other)
    assert qr.status_code == 422, qr.text
