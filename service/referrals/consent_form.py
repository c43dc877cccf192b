"""The shape of a Consent submitted to the hub: errors (422) beyond what the R4 model checks, and warnings.

Hub rules stricter than R4: `patient` is required (R4's ppc-2..5 invariants compare the scope system with
the placeholder 'something', so they never fire); every actor needs a literal reference so the hub can
match it; nested provisions need `type`. A root provision without `type` is only a warning: R4's own
examples omit it (all but consent-example-notOrg); ``consent`` infers it from `policyRule` to read its
exceptions, but such a Consent never unlocks a disclosure.

Warnings (reported with any error; they never refuse a write) say when a permit will not do what its
author may expect: a patient-privacy permit without `dateTime` never unlocks, and one without evidence
(`source[x]`) unlocks with a warning (docs/adr/0009-consent-evaluation.md).
"""

from __future__ import annotations

from typing import Any

from service.errors import Issue
from service.referrals._period import period_problem
from service.referrals.consent import (
    evidence_warning,
    inferred_root_type,
    is_disclosure_scope,
    normalise_reference,
)

CONSENT_STATUSES = frozenset({"draft", "proposed", "active", "rejected", "inactive", "entered-in-error"})


def consent_issues(consent: dict[str, Any]) -> list[Issue]:
    """Structural problems with a Consent (errors) and what it will not unlock (warnings)."""
    issues: list[Issue] = []
    status = consent.get("status")
    if not status:
        issues.append(_issue("required", "Consent.status is required", "Consent.status"))
    elif status not in CONSENT_STATUSES:
        issues.append(
            _issue("code-invalid", f"Consent.status {status!r} is not an R4 code", "Consent.status")
        )
    if not _non_empty_dict(consent.get("scope")):
        issues.append(_issue("required", "Consent.scope is required", "Consent.scope"))
    categories = consent.get("category")
    if not isinstance(categories, list) or not any(_non_empty_dict(c) for c in categories):
        issues.append(_issue("required", "Consent.category needs at least one entry", "Consent.category"))
    issues.extend(_patient_issues(consent.get("patient")))
    if not consent.get("policy") and not consent.get("policyRule"):
        issues.append(_issue("invariant", "ppc-1: a Consent needs a policy or a policyRule", "Consent"))
    root = consent.get("provision")
    if not isinstance(root, dict) or root.get("type") is None:
        inferred = inferred_root_type(consent)
        issues.append(
            _warning(
                "required",
                "Consent.provision.type is missing: the hub reads it as "
                + (f"{inferred!r} from policyRule" if inferred else "not applicable to referrals")
                + "; only a stated permit can permit a disclosure",
                "Consent.provision.type",
            )
        )
    if isinstance(root, dict):
        issues.extend(_provision_issues(root, "Consent.provision", root=True))
        if root.get("type") == "permit" and is_disclosure_scope(consent):
            issues.extend(_permit_warnings(consent))
    return issues


def _permit_warnings(consent: dict[str, Any]) -> list[Issue]:
    warnings: list[Issue] = []
    if not consent.get("dateTime"):
        warnings.append(
            _warning(
                "required",
                "Consent.dateTime is missing: a permit that does not say when it was given never permits a "
                "disclosure",
                "Consent.dateTime",
            )
        )
    evidence = evidence_warning(consent)
    if evidence:
        warnings.append(_warning("informational", evidence, "Consent.source[x]"))
    return warnings


def _non_empty_dict(value: object) -> bool:
    return isinstance(value, dict) and bool(value)


def _issue(code: str, message: str, expression: str) -> Issue:
    return Issue(code=code, diagnostics=message, expression=(expression,))


def _warning(code: str, message: str, expression: str) -> Issue:
    return Issue(code=code, severity="warning", diagnostics=message, expression=(expression,))


def _patient_issues(patient: object) -> list[Issue]:
    reference = patient.get("reference") if isinstance(patient, dict) else None
    if not isinstance(reference, str) or not reference.strip():
        return [
            _issue(
                "required",
                "Consent.patient must reference the Patient the consent is about",
                "Consent.patient",
            )
        ]
    if not reference.startswith(("urn:uuid:", "#")) and not normalise_reference(reference).startswith(
        "Patient/"
    ):
        return [_issue("value", "Consent.patient must reference a Patient", "Consent.patient.reference")]
    return []


def _provision_issues(provision: dict[str, Any], path: str, *, root: bool = False) -> list[Issue]:
    issues: list[Issue] = []
    kind = provision.get("type")
    if kind is None and root:
        pass  # a warning from consent_issues: the root type is inferred from policyRule
    elif kind is None:
        issues.append(_issue("required", f"{path}.type (permit or deny) is required", f"{path}.type"))
    elif kind not in ("permit", "deny"):
        issues.append(_issue("code-invalid", f"{path}.type must be permit or deny", f"{path}.type"))
    period = provision.get("period")
    if period is not None:
        problem = period_problem(period)
        if problem:
            issues.append(_issue("value", f"{path}.period: {problem}", f"{path}.period"))
    for index, actor in enumerate(provision.get("actor") or []):
        where = f"{path}.actor[{index}]"
        if not isinstance(actor, dict) or not _non_empty_dict(actor.get("role")):
            issues.append(_issue("required", f"{where}.role is required", f"{where}.role"))
        reference = actor.get("reference") if isinstance(actor, dict) else None
        if not isinstance(reference, dict) or not isinstance(reference.get("reference"), str):
            issues.append(
                _issue(
                    "required",
                    f"{where}.reference needs a literal reference (e.g. 'Organization/id') so the hub "
                    "can match it",
                    f"{where}.reference",
                )
            )
    for index, child in enumerate(provision.get("provision") or []):
        if isinstance(child, dict):
            issues.extend(_provision_issues(child, f"{path}.provision[{index}]"))
    return issues
