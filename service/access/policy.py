"""Type-level permissions: roles (CONTRACT.md "Who may see and do what") and SMART scopes.

Instance-level visibility (which rows an organisation may see) is in ``visibility``.
"""

from __future__ import annotations

from auth.scopes import permits
from service.access.caller import Caller
from service.errors import Forbidden

PUBLIC_READ = frozenset(
    {
        "Organization",
        "HealthcareService",
        "Location",
        "Questionnaire",
        "ValueSet",
        "CodeSystem",
        "ConceptMap",
        "StructureDefinition",
        "SearchParameter",
        "OperationDefinition",
    }
)
ADMIN_WRITE = PUBLIC_READ | {"Endpoint", "Practitioner", "PractitionerRole"}
ADMIN_READ = ADMIN_WRITE | {"AuditEvent"}
CLINIC_CREATE = frozenset(
    {"Patient", "Consent", "QuestionnaireResponse", "ServiceRequest", "Practitioner", "PractitionerRole"}
)
# Flags (a positive PHQ-4 screen to follow up) are the submitting clinic's alone: a partner may not read
# the type at all (CONTRACT.md "What counts as consent"), so it is absent from PARTNER_READ.
CLINIC_READ = CLINIC_CREATE | {"Task", "Observation", "Flag"}
PARTNER_READ = frozenset(
    {"ServiceRequest", "Patient", "Consent", "QuestionnaireResponse", "Task", "Observation"}
)

# Interaction -> SMART v2 permission letter (SMART App Launch 2.x, scopes-and-launch-context).
LETTER = {
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "history-type": "r",
    "search-type": "s",
    "create": "c",
    "update": "u",
    "delete": "d",
}


def require_scope(caller: Caller, resource_type: str, interaction: str) -> None:
    letter = LETTER[interaction]
    if not permits(caller.scopes, resource_type, letter):
        raise Forbidden(f"The access token's scopes do not allow '{interaction}' on {resource_type}")


def may_read_type(caller: Caller, resource_type: str) -> bool:
    if resource_type in PUBLIC_READ:
        return True
    if caller.role == "admin":
        return resource_type in ADMIN_READ
    if caller.role == "clinic":
        return resource_type in CLINIC_READ
    return resource_type in PARTNER_READ


def may_write_type(caller: Caller, resource_type: str, interaction: str) -> bool:
    if caller.role == "admin":
        return resource_type in ADMIN_WRITE
    if caller.role == "clinic":
        if interaction in ("create", "delete"):
            return resource_type in CLINIC_CREATE
        # Clinics update their own clinical records and cancel their referrals' Tasks; a Task is
        # the hub's record of a referral and is never deleted by a client (cancel it instead).
        return resource_type in CLINIC_CREATE | {"Task"}
    # Partners update the Tasks they own (status and output only; see referrals.lifecycle), and may
    # record that the person withdrew: create a deny Consent naming only themselves
    # (referrals.recorded_withdrawal); never update or delete a Consent.
    if resource_type == "Consent":
        return interaction == "create"
    return resource_type == "Task" and interaction == "update"


def may_search(caller: Caller, resource_type: str) -> bool:
    """What a direct search of the type would allow (scope letter ``s`` and the role): resources that
    arrive through ``_include``/``_revinclude`` must pass it too, or a narrow token reads other types."""
    scoped = permits(caller.scopes, resource_type, LETTER["search-type"])
    return scoped and may_read_type(caller, resource_type)


def authorize(caller: Caller, resource_type: str, interaction: str) -> None:
    """Scope first, then role. Raises Forbidden (403)."""
    require_scope(caller, resource_type, interaction)
    allowed = may_write_type if interaction in ("create", "update", "delete") else None
    if allowed is not None:
        if not allowed(caller, resource_type, interaction):
            raise Forbidden(f"A {caller.role} client may not {interaction} {resource_type} resources")
    elif not may_read_type(caller, resource_type):
        raise Forbidden(f"A {caller.role} client may not read {resource_type} resources")
