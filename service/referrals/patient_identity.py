"""A referred Patient must be identifiable: by NHS number or by a clinic-local identifier.

Many people attending sexual health and HIV clinics are known by a clinic number rather than an NHS
number, so either is enough; an NHS number that is present must pass its check digit.
UK Core NHS number identifier: https://simplifier.net/hl7fhirukcorer4/ukcorepatient
"""

from __future__ import annotations

from typing import Any

from service.errors import Issue
from service.referrals.nhs_number import NHS_NUMBER_SYSTEM, is_valid_nhs_number


def check_patient_identifiers(patient: dict[str, Any]) -> list[Issue]:
    """Issues for a Patient that has neither a valid NHS number nor a clinic-local identifier.

    Messages never echo the NHS number itself: OperationOutcomes end up in logs and partner systems.
    """
    issues: list[Issue] = []
    identified = False
    nhs_number_present = False
    identifiers = patient.get("identifier")
    if not isinstance(identifiers, list):
        identifiers = []
    for index, identifier in enumerate(identifiers):
        if not isinstance(identifier, dict):
            continue
        system = identifier.get("system")
        value = identifier.get("value")
        where = f"Patient.identifier[{index}]"
        if system == NHS_NUMBER_SYSTEM:
            nhs_number_present = True
            problem = _nhs_number_problem(value, where)
            if problem is None:
                identified = True
            else:
                issues.append(problem)
        elif isinstance(system, str) and system and isinstance(value, str) and value.strip():
            identified = True
    if not identified and not nhs_number_present:
        issues.append(
            Issue(
                code="required",
                diagnostics=(
                    "a Patient needs an NHS number identifier (system "
                    f"{NHS_NUMBER_SYSTEM}) or a clinic-local identifier with a system and a value"
                ),
                expression=("Patient.identifier",),
            )
        )
    return issues


def _nhs_number_problem(value: object, where: str) -> Issue | None:
    if not isinstance(value, str) or not value:
        return Issue(
            code="required",
            diagnostics=f"the NHS number identifier in {where} has no value",
            expression=(f"{where}.value",),
        )
    if len(value) != 10 or not value.isascii() or not value.isdigit():
        return Issue(
            code="value",
            diagnostics=f"the NHS number in {where} must be exactly 10 digits with no spaces",
            expression=(f"{where}.value",),
        )
    if not is_valid_nhs_number(value):
        return Issue(
            code="value",
            diagnostics=f"the NHS number in {where} fails the modulus-11 check digit",
            expression=(f"{where}.value",),
        )
    return None
