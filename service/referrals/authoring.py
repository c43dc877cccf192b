"""Write-side tenancy for clinics: a clinic authors only as itself and links only to what it may see.

CONTRACT.md "Who may see and do what" and issue 3 "Scopes and tenancy": a clinic's records say who
wrote them (ServiceRequest.requester, QuestionnaireResponse.author, Consent.organization / performer),
and that must be the clinic's own Organization or one of its PractitionerRoles. A reference from a
clinic's resource to clinical data (Patient, Consent, QuestionnaireResponse, ...) must point at something
the clinic can see: otherwise a clinic could attach another clinic's Patient to its referral.

Both are refused with 422 rather than 403: the request is authorised for the type, it is its content
that breaks a business rule, and the message says which element. A reference outside the clinic's
reach gets the same "reference not found" as a missing one (no existence oracle).
"""

from __future__ import annotations

from typing import Any

from service.errors import Issue
from service.fhir.references import as_list, reference_of, references_in
from service.referrals._refs import local_parts, local_ref, resolve_visible
from service.referrals.patient_identity import check_patient_identifiers
from service.rest import registry
from service.rest.context import Context
from service.storage.resources import Stored

CLINICAL_TYPES = frozenset(name for name, info in registry.TYPES.items() if info.kind == "clinical")

# The elements that say which organisation wrote a clinic's resource.
AUTHOR_ELEMENTS: dict[str, tuple[str, ...]] = {
    "ServiceRequest": ("requester",),
    "QuestionnaireResponse": ("author",),
    "Consent": ("organization", "performer"),
    "PractitionerRole": ("organization",),
}


def clinic_authoring_rule(ctx: Context, new: dict[str, Any], old: Stored | None) -> list[Issue]:
    """Issues for a clinic writing as another organisation or linking to clinical data it cannot see."""
    if ctx.caller.role != "clinic":
        return []
    resource_type = str(new.get("resourceType"))
    issues: list[Issue] = []
    for element_name in AUTHOR_ELEMENTS.get(resource_type, ()):
        value = new.get(element_name)
        for index, element in enumerate(as_list(value)):
            where = f"{resource_type}.{element_name}" + (f"[{index}]" if isinstance(value, list) else "")
            if not _authored_by_caller(ctx, new, element_name, element):
                allowed = f"the calling clinic's Organization ({ctx.caller.organization_ref})"
                if resource_type != "PractitionerRole":
                    allowed += " or one of its PractitionerRoles"
                issues.append(
                    Issue(code="business-rule", diagnostics=f"{where} must be {allowed}", expression=(where,))
                )
    issues.extend(reference_issues(ctx, new))
    return issues


def reference_issues(ctx: Context, resource: dict[str, Any]) -> list[Issue]:
    """'reference not found' for each local reference to clinical data the caller cannot see."""
    issues: list[Issue] = []
    for path, reference in references_in(resource, str(resource.get("resourceType"))):
        parts = local_parts(ctx, reference)
        if parts is None or parts[0] not in CLINICAL_TYPES:
            continue
        if resolve_visible(ctx, reference, (parts[0],)) is None:
            issues.append(
                Issue(
                    code="not-found",
                    diagnostics=f"{path}: reference not found ({parts[0]}/{parts[1]})",
                    expression=(path,),
                )
            )
    return issues


def patient_identity_rule(ctx: Context, new: dict[str, Any], old: Stored | None) -> list[Issue]:
    """Patients written by clinics need a valid NHS number or a clinic-local identifier."""
    if ctx.caller.role != "clinic":
        return []
    return check_patient_identifiers(new)


def _authored_by_caller(ctx: Context, resource: dict[str, Any], element_name: str, element: object) -> bool:
    ref = local_ref(ctx, reference_of(element))
    if ref is None:
        return False
    if ref == ctx.caller.organization_ref:
        return True
    if resource.get("resourceType") == "PractitionerRole":
        return False  # a clinic's PractitionerRoles belong to the clinic itself
    if ref.startswith("PractitionerRole/"):
        role = resolve_visible(ctx, ref, ("PractitionerRole",))
        org = (
            local_ref(ctx, reference_of(role.content.get("organization"))) if role and role.content else None
        )
        return org == ctx.caller.organization_ref
    # Consent.performer is "who is agreeing": usually the patient, which the clinic records on their behalf.
    if resource.get("resourceType") == "Consent" and element_name == "performer":
        patient = local_ref(ctx, reference_of(resource.get("patient")))
        return patient is not None and ref == patient
    return False
