"""The fast evaluator must agree with fhirpathpy on every expression we define."""

import json
from pathlib import Path
from typing import Any

import pytest
from fhirpathpy import compile as fp_compile
from fhirpathpy.models import models

from service.search._fhirpath import _compile_fast, compile_expression
from service.search.params import SEARCH_PARAMS

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"

OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
    "subject": {"reference": "Patient/p1"},
    "effectivePeriod": {"start": "2024-03-01", "end": "2024-03-02"},
    "valueQuantity": {"value": 12, "system": "http://unitsofmeasure.org", "code": "{score}"},
}
TASK = {
    "resourceType": "Task",
    "status": "completed",
    "intent": "order",
    "for": {"reference": "Group/g1"},
    "output": [
        {"type": {"text": "result"}, "valueReference": {"reference": "Procedure/x"}},
        {"type": {"text": "note"}, "valueString": "done"},
    ],
}


def _resources() -> list[dict[str, Any]]:
    found = [json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*/*.json"))]
    return [r for r in found if r.get("resourceType") in SEARCH_PARAMS] + [OBSERVATION, TASK]


def _expressions() -> list[str]:
    return sorted({p.expression for ps in SEARCH_PARAMS.values() for p in ps.values() if p.expression})


@pytest.mark.parametrize("expression", _expressions())
def test_every_expression_is_in_the_fast_subset(expression: str) -> None:
    assert callable(_compile_fast(expression))


@pytest.mark.parametrize("expression", [e for e in _expressions() if "resolve()" not in e])
def test_fast_evaluator_agrees_with_fhirpathpy(expression: str) -> None:
    fast = compile_expression(expression)
    for resource in _resources():
        # fhirpathpy does not let the base type "Resource" match a Patient; servers do.
        concrete = expression.replace("Resource.", f"{resource['resourceType']}.")
        found = fp_compile(concrete, models["r4"])(resource, {})
        expected = [v if isinstance(v, dict | str | bool | int | float) else str(v) for v in found]
        assert [v for v, _hint in fast(resource)] == expected, resource.get("id")


def test_resolve_is_answered_from_the_reference_type() -> None:
    patient = compile_expression("Task.for.where(resolve() is Patient)")
    assert patient(TASK) == []
    assert patient({**TASK, "for": {"reference": "https://x.org/fhir/Patient/p9/_history/2"}}) == [
        ({"reference": "https://x.org/fhir/Patient/p9/_history/2"}, "for")
    ]


def test_choice_elements_carry_their_type() -> None:
    assert compile_expression("Task.output.value.ofType(Reference)")(TASK) == [
        ({"reference": "Procedure/x"}, "Reference")
    ]
    assert compile_expression("Observation.effective")(OBSERVATION) == [
        ({"start": "2024-03-01", "end": "2024-03-02"}, "Period")
    ]


def test_unsupported_expressions_fall_back_to_fhirpathpy() -> None:
    evaluate = compile_expression("Patient.name.given.first()")
    assert evaluate({"resourceType": "Patient", "name": [{"given": ["Ann", "Bo"]}]}) == [("Ann", None)]
