"""Search semantics over real HTTP (http://hl7.org/fhir/R4/search.html)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support.clients import Client, FhirClients

LOCAL = "https://clinic.example.org/Id/local"
ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"


def _create(client: Client, body: dict[str, Any]) -> str:
    response = client.post(f"/fhir/{body['resourceType']}", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "searchset"
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def _patient(local: str, family: str, given: str, birth: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": LOCAL, "value": local}],
        "name": [{"family": family, "given": [given]}],
        **extra,
    }
    if birth:
        body["birthDate"] = birth
    return body


@pytest.fixture
def clinic(fhir: FhirClients) -> Client:
    return fhir.client("clinic")


@pytest.fixture
def people(clinic: Client) -> dict[str, str]:
    return {
        "zoe": _create(clinic, _patient("l-1", "Zoë", "Anna", "1988-04-15", gender="female")),
        "zola": _create(clinic, _patient("l-2", "Zola", "Ben", "1988-07-01", gender="male")),
        "okafor": _create(clinic, _patient("l-3", "Okafor", "Chidi", "1990-01-01")),
        "mac": _create(clinic, _patient("l-4", "MacZoe", "Dee", "1987-12-31", gender="other")),
    }


def test_token_forms(clinic: Client, people: dict[str, str]) -> None:
    assert _ids(clinic.get("/fhir/Patient", params={"identifier": f"{LOCAL}|l-1"})) == [people["zoe"]]
    assert _ids(clinic.get("/fhir/Patient", params={"identifier": "l-2"})) == [people["zola"]]
    assert _ids(clinic.get("/fhir/Patient", params={"identifier": "|l-2"})) == []
    assert _ids(clinic.get("/fhir/Patient", params={"identifier": "https://other.example/|l-2"})) == []
    assert _ids(clinic.get("/fhir/Patient", params={"gender": "female"})) == [people["zoe"]]
    not_female = _ids(clinic.get("/fhir/Patient", params={"gender:not": "female"}))
    # :not includes resources with no value at all (the spec's "not equal" semantics).
    assert set(not_female) == {people["zola"], people["okafor"], people["mac"]}


def test_token_system_less_code(fhir: FhirClients) -> None:
    admin = fhir.client("admin", "hub")
    bare = _create(admin, {"resourceType": "Organization", "name": "Bare", "identifier": [{"value": "X1"}]})
    _create(
        admin,
        {"resourceType": "Organization", "name": "Sys", "identifier": [{"system": LOCAL, "value": "X1"}]},
    )
    assert _ids(admin.get("/fhir/Organization", params={"identifier": "|X1"})) == [bare]
    assert len(_ids(admin.get("/fhir/Organization", params={"identifier": "X1"}))) == 2


def test_token_text_modifier(fhir: FhirClients) -> None:
    admin = fhir.client("admin", "hub")
    clinic_type = {"coding": [{"system": ORG_TYPE, "code": "prov", "display": "Healthcare Provider"}]}
    charity_type = {
        "coding": [{"system": ORG_TYPE, "code": "cg", "display": "Community Group"}],
        "text": "Charity",
    }
    prov = _create(admin, {"resourceType": "Organization", "name": "A", "type": [clinic_type]})
    cg = _create(admin, {"resourceType": "Organization", "name": "B", "type": [charity_type]})
    assert _ids(admin.get("/fhir/Organization", params={"type:text": "provider"})) == [prov]
    assert _ids(admin.get("/fhir/Organization", params={"type:text": "charity"})) == [cg]
    assert _ids(admin.get("/fhir/Organization", params={"type": f"{ORG_TYPE}|cg"})) == [cg]


def test_string_semantics(clinic: Client, people: dict[str, str]) -> None:
    assert set(_ids(clinic.get("/fhir/Patient", params={"family": "zo"}))) == {people["zoe"], people["zola"]}
    assert _ids(clinic.get("/fhir/Patient", params={"family": "zoe"})) == [people["zoe"]]
    assert _ids(clinic.get("/fhir/Patient", params={"family": "ZOE"})) == [people["zoe"]]
    assert _ids(clinic.get("/fhir/Patient", params={"family:exact": "Zoë"})) == [people["zoe"]]
    assert _ids(clinic.get("/fhir/Patient", params={"family:exact": "zoë"})) == []
    assert _ids(clinic.get("/fhir/Patient", params={"family:exact": "Zo"})) == []
    contains = set(_ids(clinic.get("/fhir/Patient", params={"family:contains": "zoe"})))
    assert contains == {people["zoe"], people["mac"]}
    # name covers given names too
    assert _ids(clinic.get("/fhir/Patient", params={"name": "chid"})) == [people["okafor"]]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1988", {"zoe", "zola"}),
        ("eq1988-04", {"zoe"}),
        ("1988-04-15", {"zoe"}),
        ("ne1988", {"okafor", "mac"}),
        ("gt1988", {"okafor"}),
        ("lt1988", {"mac"}),
        ("ge1988-05", {"zola", "okafor"}),
        ("le1988-04-15", {"zoe", "mac"}),
        ("sa1988-04-15", {"zola", "okafor"}),
        ("eb1988-04-15", {"mac"}),
    ],
)
def test_date_prefixes(clinic: Client, people: dict[str, str], value: str, expected: set[str]) -> None:
    found = set(_ids(clinic.get("/fhir/Patient", params={"birthdate": value})))
    assert found == {people[k] for k in expected}


def test_date_approximate_includes_the_value_and_nearby(clinic: Client, people: dict[str, str]) -> None:
    found = set(_ids(clinic.get("/fhir/Patient", params={"birthdate": "ap1988-04-15"})))
    assert people["zoe"] in found
    assert people["zola"] in found  # ten weeks away, well within "approximately"


def test_date_range_by_repetition_is_and(clinic: Client, people: dict[str, str]) -> None:
    params = [("birthdate", "ge1988-01-01"), ("birthdate", "lt1989-01-01")]
    assert set(_ids(clinic.get("/fhir/Patient", params=params))) == {people["zoe"], people["zola"]}


def test_last_updated(clinic: Client, people: dict[str, str]) -> None:
    time.sleep(0.05)
    cut = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    time.sleep(0.05)
    late = _create(clinic, _patient("l-9", "Late", "Eve"))
    assert _ids(clinic.get("/fhir/Patient", params={"_lastUpdated": f"gt{cut}"})) == [late]
    assert len(_ids(clinic.get("/fhir/Patient", params={"_lastUpdated": f"lt{cut}"}))) == 4


def test_or_by_comma_and_by_repetition(clinic: Client, people: dict[str, str]) -> None:
    either = set(_ids(clinic.get("/fhir/Patient", params={"gender": "female,male"})))
    assert either == {people["zoe"], people["zola"]}
    both = _ids(clinic.get("/fhir/Patient", params=[("family", "zo"), ("gender", "male")]))
    assert both == [people["zola"]]
    repeated = _ids(clinic.get("/fhir/Patient", params=[("family", "zo"), ("family", "zol")]))
    assert repeated == [people["zola"]]
    ids = f"{people['zoe']},{people['okafor']}"
    assert set(_ids(clinic.get("/fhir/Patient", params={"_id": ids}))) == {people["zoe"], people["okafor"]}


def test_missing_modifier(clinic: Client, people: dict[str, str]) -> None:
    assert _ids(clinic.get("/fhir/Patient", params={"gender:missing": "true"})) == [people["okafor"]]
    assert len(_ids(clinic.get("/fhir/Patient", params={"gender:missing": "false"}))) == 3


def test_sort_ascending_descending_and_multi(clinic: Client, people: dict[str, str]) -> None:
    by_birth = _ids(clinic.get("/fhir/Patient", params={"_sort": "birthdate"}))
    assert by_birth == [people["mac"], people["zoe"], people["zola"], people["okafor"]]
    desc = _ids(clinic.get("/fhir/Patient", params={"_sort": "-birthdate"}))
    assert desc == list(reversed(by_birth))
    _create(clinic, _patient("l-5", "Zola", "Aaron", "1970-01-01"))
    multi = clinic.get("/fhir/Patient", params={"_sort": "family,-birthdate"}).json()
    names = [(e["resource"]["name"][0]["family"], e["resource"].get("birthDate")) for e in multi["entry"]]
    # Strings sort by their accent- and case-folded form ("zoe" < "zola").
    assert names == [
        ("MacZoe", "1987-12-31"),
        ("Okafor", "1990-01-01"),
        ("Zoë", "1988-04-15"),
        ("Zola", "1988-07-01"),
        ("Zola", "1970-01-01"),
    ]


def test_references_in_every_form(fhir: FhirClients) -> None:
    admin = fhir.client("admin", "hub")
    org = _create(admin, {"resourceType": "Organization", "name": "Partner"})
    other = _create(admin, {"resourceType": "Organization", "name": "Other"})
    role = _create(
        admin, {"resourceType": "PractitionerRole", "organization": {"reference": f"Organization/{org}"}}
    )
    _create(
        admin, {"resourceType": "PractitionerRole", "organization": {"reference": f"Organization/{other}"}}
    )
    absolute = f"{fhir.base_url}/fhir/Organization/{org}"
    for value in (f"Organization/{org}", org, absolute):
        assert _ids(admin.get("/fhir/PractitionerRole", params={"organization": value})) == [role], value
    assert _ids(admin.get("/fhir/PractitionerRole", params={"organization:Organization": org})) == [role]
    # A role whose reference is absolute is found by the relative form as well.
    abs_role = _create(admin, {"resourceType": "PractitionerRole", "organization": {"reference": absolute}})
    found = set(_ids(admin.get("/fhir/PractitionerRole", params={"organization": f"Organization/{org}"})))
    assert found == {role, abs_role}


def test_canonical_url_and_version(fhir: FhirClients) -> None:
    admin = fhir.client("admin", "hub")
    url = "https://wraparound.example.org/Questionnaire/needs"
    v1 = _create(admin, {"resourceType": "Questionnaire", "url": url, "version": "1", "status": "active"})
    v2 = _create(admin, {"resourceType": "Questionnaire", "url": url, "version": "2", "status": "draft"})
    assert set(_ids(admin.get("/fhir/Questionnaire", params={"url": url}))) == {v1, v2}
    assert _ids(admin.get("/fhir/Questionnaire", params={"url": url, "version": "2"})) == [v2]
    assert _ids(admin.get("/fhir/Questionnaire", params={"url": url + "x"})) == []


def test_canonical_reference_with_version(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    pid = _create(clinic, _patient("q-1", "Quest", "Ann"))
    url = "https://wraparound.example.org/Questionnaire/cr"
    admin = fhir.client("admin", "hub")
    item = [{"linkId": "q1", "text": "How are you?", "type": "string"}]
    for version in ("1", "2"):
        _create(
            admin,
            {
                "resourceType": "Questionnaire",
                "url": url,
                "version": version,
                "status": "active",
                "item": item,
            },
        )
    responses = {}
    for version in ("1", "2"):
        body = {
            "resourceType": "QuestionnaireResponse",
            "questionnaire": f"{url}|{version}",
            "status": "in-progress",
            "subject": {"reference": f"Patient/{pid}"},
        }
        response = clinic.post("/fhir/QuestionnaireResponse", json=body)
        assert response.status_code == 201, response.text
        responses[version] = response.json()["id"]
    by_url = set(_ids(clinic.get("/fhir/QuestionnaireResponse", params={"questionnaire": url})))
    assert by_url == set(responses.values())
    by_version = _ids(clinic.get("/fhir/QuestionnaireResponse", params={"questionnaire": f"{url}|2"}))
    assert by_version == [responses["2"]]


def test_include_and_revinclude(fhir: FhirClients) -> None:
    admin = fhir.client("admin", "hub")
    org = _create(admin, {"resourceType": "Organization", "name": "Partner"})
    role = _create(
        admin, {"resourceType": "PractitionerRole", "organization": {"reference": f"Organization/{org}"}}
    )
    service = _create(
        admin,
        {
            "resourceType": "HealthcareService",
            "name": "Peer support",
            "providedBy": {"reference": f"Organization/{org}"},
        },
    )
    included = admin.get(
        "/fhir/PractitionerRole", params={"_include": "PractitionerRole:organization"}
    ).json()
    modes = {
        (e["resource"]["resourceType"], e["resource"]["id"]): e["search"]["mode"] for e in included["entry"]
    }
    assert modes == {("PractitionerRole", role): "match", ("Organization", org): "include"}
    assert included["total"] == 1  # includes are not counted
    rev = admin.get(
        "/fhir/Organization", params={"_id": org, "_revinclude": "HealthcareService:organization"}
    ).json()
    modes = {(e["resource"]["resourceType"], e["resource"]["id"]): e["search"]["mode"] for e in rev["entry"]}
    assert modes == {("Organization", org): "match", ("HealthcareService", service): "include"}


def test_include_never_widens_visibility(fhir: FhirClients) -> None:
    clinic, other = fhir.client("clinic"), fhir.client("clinic")
    admin = fhir.client("admin", "hub")
    org = _create(admin, {"resourceType": "Organization", "name": "Clinic org"})
    managed = {"reference": f"Organization/{org}"}
    _create(other, _patient("v-1", "Hidden", "Pat", managingOrganization=managed))
    mine = _create(clinic, _patient("v-2", "Mine", "Pat", managingOrganization=managed))
    rev = clinic.get("/fhir/Organization", params={"_id": org, "_revinclude": "Patient:organization"}).json()
    found = [(e["resource"]["resourceType"], e["resource"]["id"]) for e in rev["entry"]]
    assert found == [("Organization", org), ("Patient", mine)]
    # An admin may read the directory but never clinical data, so includes stay empty for it too.
    as_admin = admin.get(
        "/fhir/Organization", params={"_id": org, "_revinclude": "Patient:organization"}
    ).json()
    assert [e["resource"]["resourceType"] for e in as_admin["entry"]] == ["Organization"]


def test_total_and_summary(clinic: Client, people: dict[str, str]) -> None:
    counted = clinic.get("/fhir/Patient", params={"_summary": "count"}).json()
    assert counted["total"] == 4
    assert "entry" not in counted
    assert "total" not in clinic.get("/fhir/Patient", params={"_total": "none"}).json()
    assert clinic.get("/fhir/Patient", params={"_total": "accurate", "_count": "1"}).json()["total"] == 4
    summary = clinic.get("/fhir/Patient", params={"_summary": "true", "_id": people["zoe"]}).json()
    resource = summary["entry"][0]["resource"]
    assert resource["name"][0]["family"] == "Zoë"
    assert any(t["code"] == "SUBSETTED" for t in resource["meta"]["tag"])


def test_elements(clinic: Client, people: dict[str, str]) -> None:
    bundle = clinic.get("/fhir/Patient", params={"_elements": "gender", "_id": people["zoe"]}).json()
    resource = bundle["entry"][0]["resource"]
    assert resource["gender"] == "female"
    assert "name" not in resource
    assert resource["id"] == people["zoe"]
    assert any(t["code"] == "SUBSETTED" for t in resource["meta"]["tag"])
    # The stored resource is untouched.
    full = clinic.get(f"/fhir/Patient/{people['zoe']}").json()
    assert "name" in full
    assert "tag" not in full["meta"]


def test_unknown_parameter_warns_or_fails_under_strict(clinic: Client, people: dict[str, str]) -> None:
    lenient = clinic.get("/fhir/Patient", params={"colour": "blue", "gender": "female"})
    assert lenient.status_code == 200
    entries = lenient.json()["entry"]
    assert [e["resource"]["id"] for e in entries if e["search"]["mode"] == "match"] == [people["zoe"]]
    outcomes = [e["resource"] for e in entries if e["search"]["mode"] == "outcome"]
    assert len(outcomes) == 1
    assert outcomes[0]["resourceType"] == "OperationOutcome"
    assert outcomes[0]["issue"][0]["severity"] == "warning"
    assert "colour" in outcomes[0]["issue"][0]["diagnostics"]
    strict = clinic.get("/fhir/Patient", params={"colour": "blue"}, headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400
    assert strict.json()["resourceType"] == "OperationOutcome"
    unknown_sort = clinic.get(
        "/fhir/Patient", params={"_sort": "colour"}, headers={"Prefer": "handling=strict"}
    )
    assert unknown_sort.status_code == 400
    lenient_pref = clinic.get(
        "/fhir/Patient", params={"colour": "blue"}, headers={"Prefer": "handling=lenient"}
    )
    assert lenient_pref.status_code == 200


def test_bad_search_values_are_400(clinic: Client, people: dict[str, str]) -> None:
    for params in ({"birthdate": "not-a-date"}, {"birthdate": "xx1988"}, {"_count": "many"}):
        response = clinic.get("/fhir/Patient", params=params)
        assert response.status_code == 400, (params, response.text)
        assert response.json()["resourceType"] == "OperationOutcome"


def test_post_search_equals_get(clinic: Client, people: dict[str, str]) -> None:
    params = {"family": "zo", "_sort": "birthdate"}
    got = clinic.get("/fhir/Patient", params=params).json()
    posted = clinic.post(
        "/fhir/Patient/_search",
        content="family=zo&_sort=birthdate",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert posted.status_code == 200, posted.text
    assert [e["resource"] for e in posted.json()["entry"]] == [e["resource"] for e in got["entry"]]
    assert posted.json()["total"] == got["total"] == 2
    json_body = clinic.post("/fhir/Patient/_search", json={"family": "zo"})
    assert json_body.status_code == 415


def test_search_is_limited_to_visible_resources(
    clinic: Client, people: dict[str, str], fhir: FhirClients
) -> None:
    other = fhir.client("clinic")
    assert other.get("/fhir/Patient").json()["total"] == 0
    assert other.get("/fhir/Patient", params={"family": "zo"}).json()["total"] == 0
    assert clinic.get("/fhir/Patient").json()["total"] == 4


def test_include_iterate(fhir: FhirClients) -> None:
    admin = fhir.client("admin", "hub")
    endpoint = _create(
        admin,
        {
            "resourceType": "Endpoint",
            "status": "active",
            "connectionType": {
                "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                "code": "hl7-fhir-rest",
            },
            "payloadType": [{"text": "FHIR"}],
            "address": "https://partner.example.org/fhir",
        },
    )
    org = _create(
        admin,
        {
            "resourceType": "Organization",
            "name": "Linked",
            "endpoint": [{"reference": f"Endpoint/{endpoint}"}],
        },
    )
    role = _create(
        admin, {"resourceType": "PractitionerRole", "organization": {"reference": f"Organization/{org}"}}
    )
    params = [("_include", "PractitionerRole:organization"), ("_include:iterate", "Organization:endpoint")]
    bundle = admin.get("/fhir/PractitionerRole", params=params).json()
    found = {
        (e["resource"]["resourceType"], e["resource"]["id"], e["search"]["mode"]) for e in bundle["entry"]
    }
    assert found == {
        ("PractitionerRole", role, "match"),
        ("Organization", org, "include"),
        ("Endpoint", endpoint, "include"),
    }
    plain = admin.get(
        "/fhir/PractitionerRole", params=[*params[:1], ("_include", "Organization:endpoint")]
    ).json()
    assert "Endpoint" not in {e["resource"]["resourceType"] for e in plain["entry"]}
