import json
from pathlib import Path
from typing import Any

from service.referrals.nhs_number import NHS_NUMBER_SYSTEM
from service.referrals.patient_identity import check_patient_identifiers

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "fhir-r4-core"
CLINIC_SYSTEM = "https://clinic.example.org/Id/clinic-number"


def _patient(*identifiers: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Patient", "identifier": list(identifiers)}


def test_valid_nhs_number_is_enough() -> None:
    assert check_patient_identifiers(_patient({"system": NHS_NUMBER_SYSTEM, "value": "9434765919"})) == []


def test_clinic_local_identifier_is_enough() -> None:
    assert check_patient_identifiers(_patient({"system": CLINIC_SYSTEM, "value": "GUM-0042"})) == []


def test_invalid_check_digit_is_a_value_issue_that_does_not_echo_the_number() -> None:
    issues = check_patient_identifiers(_patient({"system": NHS_NUMBER_SYSTEM, "value": "9434765918"}))
    assert len(issues) == 1
    issue = issues[0]
    assert issue.code == "value"
    assert issue.expression == ("Patient.identifier[0].value",)
    assert "modulus-11" in issue.diagnostics
    assert "Patient.identifier[0]" in issue.diagnostics
    assert "9434765918" not in issue.diagnostics
    assert "943 476 5918" not in issue.diagnostics


def test_spaced_nhs_number_is_rejected_with_its_own_message() -> None:
    issues = check_patient_identifiers(_patient({"system": NHS_NUMBER_SYSTEM, "value": "943 476 5919"}))
    assert [(i.code, i.expression) for i in issues] == [("value", ("Patient.identifier[0].value",))]
    assert "exactly 10 digits with no spaces" in issues[0].diagnostics
    assert "943" not in issues[0].diagnostics


def test_invalid_nhs_number_is_reported_even_beside_a_local_identifier() -> None:
    issues = check_patient_identifiers(
        _patient(
            {"system": CLINIC_SYSTEM, "value": "GUM-0042"}, {"system": NHS_NUMBER_SYSTEM, "value": "123"}
        )
    )
    assert [(i.code, i.expression) for i in issues] == [("value", ("Patient.identifier[1].value",))]


def test_nhs_identifier_without_value_is_required() -> None:
    issues = check_patient_identifiers(_patient({"system": NHS_NUMBER_SYSTEM}))
    assert [(i.code, i.expression) for i in issues] == [("required", ("Patient.identifier[0].value",))]


def test_no_identifier_at_all_is_required() -> None:
    issues = check_patient_identifiers({"resourceType": "Patient", "name": [{"family": "Chalmers"}]})
    assert [(i.code, i.expression) for i in issues] == [("required", ("Patient.identifier",))]


def test_identifiers_without_system_or_value_do_not_count() -> None:
    issues = check_patient_identifiers(
        _patient({"value": "GUM-0042"}, {"system": CLINIC_SYSTEM}, {"system": CLINIC_SYSTEM, "value": "  "})
    )
    assert [(i.code, i.expression) for i in issues] == [("required", ("Patient.identifier",))]


def test_r4_example_patient_has_a_local_identifier() -> None:
    patient = json.loads((FIXTURES / "Patient-example.json").read_text())
    assert check_patient_identifiers(patient) == []
