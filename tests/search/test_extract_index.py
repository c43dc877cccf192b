import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from service.search._dates import MAX_DATETIME
from service.search.extract import extract_index_rows
from service.search.types import DateRow, IndexRow, NumberRow, ReferenceRow, StringRow, TokenRow, UriRow
from service.storage.index_rows import row_table, row_values
from service.storage.tables import IdxReference, IdxToken

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def _of(rows: list[IndexRow], param: str) -> list[IndexRow]:
    return [r for r in rows if r.param == param]


def test_service_request_example() -> None:
    rows = extract_index_rows(_load("fhir-r4-core/ServiceRequest-example.json"))
    assert _of(rows, "patient") == [ReferenceRow("patient", "Patient", "example")]
    assert _of(rows, "subject") == [ReferenceRow("subject", "Patient", "example")]
    assert _of(rows, "status") == [TokenRow("status", None, "completed")]
    assert _of(rows, "code") == [
        TokenRow("code", "http://snomed.info/sct", "303653007", "computed tomography of head")
    ]
    assert _of(rows, "category") == [
        TokenRow("category", "http://snomed.info/sct", "103693007", "diagnostic procedure (procedure)"),
        TokenRow("category", None, None, "diagnostics procedure"),
    ]


def test_patient_names_identifiers_and_telecom() -> None:
    rows = extract_index_rows(_load("fhir-r4-core/Patient-example.json"))
    assert TokenRow("identifier", "urn:oid:1.2.36.146.595.217.0.1", "12345") in rows
    assert {r.exact for r in _of(rows, "family") if isinstance(r, StringRow)} == {"Chalmers", "Windsor"}
    assert StringRow("given", "jim", "Jim") in rows
    assert StringRow("name", "chalmers", "Chalmers") in rows
    assert TokenRow("telecom", "phone", "(03) 5555 6473") in rows
    assert TokenRow("gender", None, "male") in rows
    assert TokenRow("active", None, "true") in rows
    assert _of(rows, "birthdate") == [
        DateRow(
            "birthdate",
            datetime(1974, 12, 25, tzinfo=UTC),
            datetime(1974, 12, 25, 23, 59, 59, 999999, tzinfo=UTC),
        )
    ]
    assert StringRow("address-postalcode", "3999", "3999") in rows
    assert not _of(rows, "email")  # where(system='email') filters the phones out


def test_task_focus_owner_dates_and_open_period() -> None:
    rows = extract_index_rows(_load("fhir-r4-core/Task-example1.json"))
    assert _of(rows, "focus") == [ReferenceRow("focus", "ServiceRequest", "lipid")]
    assert _of(rows, "owner") == [
        ReferenceRow("owner", "Organization", "1832473e-2fe0-452d-abe9-3cdb9879522f")
    ]
    assert _of(rows, "patient") == [ReferenceRow("patient", "Patient", "example")]
    # authoredOn 2016-10-31T08:25:05+10:00, to the second, in UTC
    authored = _of(rows, "authored-on")
    assert authored == [
        DateRow(
            "authored-on",
            datetime(2016, 10, 30, 22, 25, 5, tzinfo=UTC),
            datetime(2016, 10, 30, 22, 25, 5, 999999, tzinfo=UTC),
        )
    ]
    period = _of(rows, "period")
    assert len(period) == 1
    assert isinstance(period[0], DateRow)
    assert period[0].high == MAX_DATETIME  # an ongoing Period has no end
    assert TokenRow("business-status", None, None, "waiting for specimen") in rows


def test_questionnaire_response_canonical_is_split_into_url_and_version() -> None:
    qr = {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "questionnaire": "https://wraparound.org.uk/fhir/Questionnaire/needs|1.2.0",
        "subject": {"reference": "Patient/p1"},
        "author": {"reference": "https://hub.example/fhir/Practitioner/d1/_history/3"},
        "basedOn": [
            {"reference": "#contained"},
            {"reference": "urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427"},
        ],
    }
    rows = extract_index_rows(qr)
    assert _of(rows, "questionnaire") == [
        ReferenceRow(
            "questionnaire", None, None, "https://wraparound.org.uk/fhir/Questionnaire/needs", "1.2.0"
        )
    ]
    assert _of(rows, "author") == [
        ReferenceRow("author", "Practitioner", "d1", "https://hub.example/fhir/Practitioner/d1")
    ]
    assert _of(rows, "patient") == [ReferenceRow("patient", "Patient", "p1")]
    assert _of(rows, "based-on") == []  # contained and unresolved urn:uuid references are skipped


def test_meta_tags_profiles_and_sdoh_task_output() -> None:
    task = {
        "resourceType": "Task",
        "meta": {
            "tag": [{"system": "https://wraparound.org.uk/tag", "code": "urgent"}],
            "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}],
            "profile": [
                "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/SDOHCC-TaskForReferralManagement"
            ],
        },
        "status": "completed",
        "output": [
            {"type": {"text": "x"}, "valueReference": {"reference": "Procedure/done"}},
            {"type": {"text": "y"}, "valueString": "not a reference"},
        ],
    }
    rows = extract_index_rows(task)
    assert TokenRow("_tag", "https://wraparound.org.uk/tag", "urgent") in rows
    assert TokenRow("_security", "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "R") in rows
    assert _of(rows, "_profile") == [
        UriRow(
            "_profile",
            "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/SDOHCC-TaskForReferralManagement",
        )
    ]
    assert _of(rows, "output") == [ReferenceRow("output", "Procedure", "done")]


def test_observation_quantity_and_effective_choice() -> None:
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
        "effectiveDateTime": "2024-03-05",
        "valueQuantity": {
            "value": 12.50,
            "system": "http://unitsofmeasure.org",
            "code": "{score}",
            "unit": "score",
        },
    }
    rows = extract_index_rows(obs)
    assert _of(rows, "value-quantity") == [
        NumberRow("value-quantity", Decimal("12.5"), "http://unitsofmeasure.org", "{score}", "score")
    ]
    assert _of(rows, "date") == [
        DateRow(
            "date", datetime(2024, 3, 5, tzinfo=UTC), datetime(2024, 3, 5, 23, 59, 59, 999999, tzinfo=UTC)
        )
    ]


def test_identifier_type_text_and_accented_names() -> None:
    patient = {
        "resourceType": "Patient",
        "identifier": [
            {
                "system": "https://fhir.nhs.uk/Id/nhs-number",
                "value": "9000000009",
                "type": {"text": "NHS Number"},
            }
        ],
        "name": [{"family": "Núñez", "given": ["Zoë"]}],
        "birthDate": "not-a-date",
    }
    rows = extract_index_rows(patient)
    assert TokenRow("identifier", "https://fhir.nhs.uk/Id/nhs-number", "9000000009", "nhs number") in rows
    assert StringRow("family", "nunez", "Núñez") in rows
    assert StringRow("given", "zoe", "Zoë") in rows
    assert not _of(rows, "birthdate")  # malformed dates are not indexed (validation rejects them earlier)


@pytest.mark.parametrize("path", sorted(p.name for p in (FIXTURES / "fhir-r4-core").glob("*.json")))
def test_every_core_fixture_extracts(path: str) -> None:
    resource = _load(f"fhir-r4-core/{path}")
    rows = extract_index_rows(resource)
    assert len(rows) == len(set(rows))
    for row in rows:
        assert row.param
        if isinstance(row, DateRow):
            assert row.low <= row.high
            assert row.low.tzinfo is not None


def test_row_table_and_values() -> None:
    row = ReferenceRow("subject", "Patient", "p1")
    assert row_table(row) is IdxReference
    assert row_table(TokenRow("status", None, "active")) is IdxToken
    assert row_values(row, 7, "ServiceRequest") == {
        "rid": 7,
        "resource_type": "ServiceRequest",
        "param": "subject",
        "target_type": "Patient",
        "target_id": "p1",
        "url": None,
        "version": None,
    }


def test_unknown_resource_types_index_common_parameters_only() -> None:
    rows = extract_index_rows(
        {"resourceType": "Basic", "meta": {"tag": [{"code": "x"}]}, "code": {"text": "b"}}
    )
    assert rows == [TokenRow("_tag", None, "x")]
