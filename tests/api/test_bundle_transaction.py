"""Transaction Bundles over HTTP (http://hl7.org/fhir/R4/http.html#transaction)."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest

from service.api import examples
from tests.support.clients import Client, FhirClients

NHS = "https://fhir.nhs.uk/Id/nhs-number"


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _patient(nhs: str = "9000000009") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": NHS, "value": nhs}],
        "name": [{"family": "Example", "given": ["Alex"]}],
    }


def _consent(patient_ref: str, clinic: str, partner: str) -> dict[str, Any]:
    consent = copy.deepcopy(examples.CONSENT)
    consent["patient"] = {"reference": patient_ref}
    consent["organization"] = [{"reference": clinic}]
    consent["provision"]["actor"][0]["reference"] = {"reference": partner}
    return consent


def _tx(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def _post(resource: dict[str, Any], full_url: str | None = None, **request: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"], **request},
    }
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def _count(client: Client, query: str) -> int:
    found = client.get(f"/fhir/{query}")
    assert found.status_code == 200, found.text
    return int(found.json()["total"])


@pytest.fixture
def clinic(fhir: FhirClients) -> Client:
    admin = fhir.client("admin", "hub")
    org = admin.post("/fhir/Organization", json={"resourceType": "Organization", "name": "North Clinic"})
    assert org.status_code == 201, org.text
    return fhir.client("clinic", org.json()["id"])


@pytest.fixture
def partner_ref(fhir: FhirClients) -> str:
    admin = fhir.client("admin", "hub")
    org = admin.post("/fhir/Organization", json={"resourceType": "Organization", "name": "Housing Partner"})
    assert org.status_code == 201, org.text
    return f"Organization/{org.json()['id']}"


def test_transaction_links_new_resources_by_urn(clinic: Client, partner_ref: str) -> None:
    patient_urn, practitioner_urn = _urn(), _urn()
    bundle = _tx(
        # The Consent and PractitionerRole come first: references resolve whatever the order.
        _post(_consent(patient_urn, clinic.org_ref, partner_ref), _urn()),
        _post(
            {
                "resourceType": "PractitionerRole",
                "practitioner": {"reference": practitioner_urn},
                "active": True,
            },
            _urn(),
        ),
        _post(_patient(), patient_urn),
        _post({"resourceType": "Practitioner", "name": [{"family": "Nurse"}]}, practitioner_urn),
    )
    response = clinic.post("/fhir", json=bundle)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "transaction-response"
    entries = body["entry"]
    # Response entries follow the request order.
    assert [e["resource"]["resourceType"] for e in entries] == [
        "Consent",
        "PractitionerRole",
        "Patient",
        "Practitioner",
    ]
    assert all(e["response"]["status"] == "201 Created" for e in entries)
    consent, role, patient, practitioner = (e["resource"] for e in entries)
    assert consent["patient"]["reference"] == f"Patient/{patient['id']}"
    assert role["practitioner"]["reference"] == f"Practitioner/{practitioner['id']}"
    assert entries[2]["response"]["location"] == f"Patient/{patient['id']}/_history/1"
    assert entries[2]["response"]["etag"] == 'W/"1"'
    assert entries[2]["response"]["lastModified"]
    assert entries[2]["fullUrl"].endswith(f"/fhir/Patient/{patient['id']}")
    read = clinic.get(f"/fhir/Consent/{consent['id']}")
    assert read.status_code == 200, read.text
    assert read.json()["patient"]["reference"] == f"Patient/{patient['id']}"
    assert clinic.get(f"/fhir/Patient/{patient['id']}").status_code == 200


def test_failing_last_entry_rolls_back_everything(clinic: Client, partner_ref: str) -> None:
    patient_urn = _urn()
    bundle = _tx(
        _post(_patient("9000000017"), patient_urn),
        _post(_consent(patient_urn, clinic.org_ref, partner_ref), _urn()),
        _post({"resourceType": "Practitioner", "name": "not a list of HumanName"}, _urn()),
    )
    response = clinic.post("/fhir", json=bundle)
    assert response.status_code == 400, response.text
    issue = response.json()["issue"][0]
    assert issue["expression"][0] == "Bundle.entry[2]"
    # The entry resource's own path is kept, re-rooted in the Bundle.
    assert any(x.startswith("Bundle.entry[2].resource.name") for x in issue["expression"]), issue
    assert _count(clinic, f"Patient?identifier={NHS}|9000000017") == 0
    assert _count(clinic, "Consent") == 0


def test_entry_error_keeps_its_status(clinic: Client) -> None:
    bundle = _tx(
        _post(_patient("9000000025"), _urn()),
        {"request": {"method": "GET", "url": "Patient/does-not-exist"}},
    )
    response = clinic.post("/fhir", json=bundle)
    assert response.status_code == 404, response.text
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[1]"]
    assert _count(clinic, f"Patient?identifier={NHS}|9000000025") == 0


def test_unknown_urn_reference_is_refused(clinic: Client, partner_ref: str) -> None:
    bundle = _tx(_post(_consent(_urn(), clinic.org_ref, partner_ref), _urn()))
    response = clinic.post("/fhir", json=bundle)
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["expression"][0] == "Bundle.entry[0]"


def test_if_none_exist_makes_no_duplicate(clinic: Client, partner_ref: str) -> None:
    def bundle() -> dict[str, Any]:
        patient_urn = _urn()
        return _tx(
            _post(_patient("9000000033"), patient_urn, ifNoneExist=f"identifier={NHS}|9000000033"),
            _post(_consent(patient_urn, clinic.org_ref, partner_ref), _urn()),
        )

    first = clinic.post("/fhir", json=bundle())
    assert first.status_code == 200, first.text
    assert first.json()["entry"][0]["response"]["status"] == "201 Created"
    patient_id = first.json()["entry"][0]["resource"]["id"]
    second = clinic.post("/fhir", json=bundle())
    assert second.status_code == 200, second.text
    entries = second.json()["entry"]
    assert entries[0]["response"]["status"] == "200 OK"
    assert entries[0]["resource"]["id"] == patient_id
    # The second Consent points at the existing Patient.
    assert entries[1]["resource"]["patient"]["reference"] == f"Patient/{patient_id}"
    assert _count(clinic, f"Patient?identifier={NHS}|9000000033") == 1


def test_delete_runs_before_post(clinic: Client) -> None:
    old = clinic.post("/fhir/Patient", json=_patient("9000000041"))
    assert old.status_code == 201
    old_id = old.json()["id"]
    bundle = _tx(
        # POST first in the request, but the DELETE is processed first, so If-None-Exist finds nothing.
        _post(_patient("9000000041"), _urn(), ifNoneExist=f"identifier={NHS}|9000000041"),
        {"request": {"method": "DELETE", "url": f"Patient/{old_id}"}},
    )
    response = clinic.post("/fhir", json=bundle)
    assert response.status_code == 200, response.text
    created, deleted = response.json()["entry"]
    assert created["response"]["status"] == "201 Created"
    assert created["resource"]["id"] != old_id
    assert deleted["response"]["status"] == "204 No Content"
    assert clinic.get(f"/fhir/Patient/{old_id}").status_code == 410


def test_put_with_if_match_and_prefer_minimal(clinic: Client) -> None:
    created = clinic.post("/fhir/Patient", json=_patient("9000000068"))
    patient = created.json()
    patient["gender"] = "female"
    stale = _tx(
        {
            "resource": patient,
            "request": {"method": "PUT", "url": f"Patient/{patient['id']}", "ifMatch": 'W/"9"'},
        }
    )
    refused = clinic.post("/fhir", json=stale)
    assert refused.status_code == 412, refused.text
    fresh = _tx(
        {
            "resource": patient,
            "request": {"method": "PUT", "url": f"Patient/{patient['id']}", "ifMatch": 'W/"1"'},
        }
    )
    done = clinic.post("/fhir", json=fresh, headers={"Prefer": "return=minimal"})
    assert done.status_code == 200, done.text
    entry = done.json()["entry"][0]
    assert "resource" not in entry
    assert entry["response"]["status"] == "200 OK"
    assert entry["response"]["etag"] == 'W/"2"'


def test_conditional_reference_resolves_by_search(clinic: Client, partner_ref: str) -> None:
    created = clinic.post("/fhir/Patient", json=_patient("9000000076"))
    patient_id = created.json()["id"]
    bundle = _tx(_post(_consent(f"Patient?identifier={NHS}|9000000076", clinic.org_ref, partner_ref), _urn()))
    response = clinic.post("/fhir", json=bundle)
    assert response.status_code == 200, response.text
    assert response.json()["entry"][0]["resource"]["patient"]["reference"] == f"Patient/{patient_id}"
    missing = _tx(
        _post(_consent(f"Patient?identifier={NHS}|9999999999", clinic.org_ref, partner_ref), _urn())
    )
    assert clinic.post("/fhir", json=missing).status_code == 412


def test_two_entries_for_one_resource_are_refused(clinic: Client) -> None:
    created = clinic.post("/fhir/Patient", json=_patient("9000000084")).json()
    bundle = _tx(
        {"resource": created, "request": {"method": "PUT", "url": f"Patient/{created['id']}"}},
        {"request": {"method": "DELETE", "url": f"Patient/{created['id']}"}},
    )
    response = clinic.post("/fhir", json=bundle)
    assert response.status_code == 400, response.text
    assert clinic.get(f"/fhir/Patient/{created['id']}").status_code == 200


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"resourceType": "Bundle", "type": "collection", "entry": []}, 400),
        ({"resourceType": "Patient"}, 400),
        (_tx({"resource": {"resourceType": "Patient"}}), 400),
        (_tx({"request": {"method": "PATCH", "url": "Patient/x"}}), 400),
        (_tx(*[{"request": {"method": "GET", "url": "Patient"}}] * 1001), 413),
    ],
    ids=["wrong-type", "not-a-bundle", "no-request", "patch", "too-many"],
)
def test_malformed_bundles_are_refused(clinic: Client, body: dict[str, Any], status: int) -> None:
    response = clinic.post("/fhir", json=body)
    assert response.status_code == status, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


def test_partner_cannot_create_through_a_transaction(fhir: FhirClients) -> None:
    partner = fhir.client("partner")
    response = partner.post("/fhir", json=_tx(_post(_patient("9000000092"), _urn())))
    assert response.status_code == 403, response.text
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[0]"]
