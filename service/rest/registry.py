"""The resource types Wraparound serves and what may be done with each.

The CapabilityStatement is derived from this table and the search parameter
registry, never written by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

ALL = (
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)
READ_ONLY = ("read", "vread", "history-instance", "history-type", "search-type")


@dataclass(frozen=True)
class TypeInfo:
    name: str
    interactions: tuple[str, ...]
    kind: str  # clinical | directory | definition | audit
    documentation: str = ""


_TYPES = [
    TypeInfo("Patient", ALL, "clinical", "A person referred; NHS number or clinic-local identifier."),
    TypeInfo("ServiceRequest", ALL, "clinical", "A consent-based referral to a partner service."),
    TypeInfo("Task", ALL, "clinical", "Tracks one referral; the partner moves it through its states."),
    TypeInfo("Consent", ALL, "clinical", "The person's consent to share with a partner."),
    TypeInfo("QuestionnaireResponse", ALL, "clinical", "A completed wellbeing and needs assessment."),
    TypeInfo("Observation", READ_ONLY, "clinical", "Scores computed from assessments (server-created)."),
    TypeInfo(
        "Flag",
        READ_ONLY,
        "clinical",
        "Follow-up alerts the hub raises for the submitting clinic, e.g. a positive PHQ-4 screen "
        "(server-created; never visible to partners).",
    ),
    TypeInfo("Practitioner", ALL, "directory"),
    TypeInfo("PractitionerRole", ALL, "directory"),
    TypeInfo("Organization", ALL, "directory", "Clinics and voluntary-sector partners."),
    TypeInfo("HealthcareService", ALL, "directory", "What a partner offers, with its consent model."),
    TypeInfo("Location", ALL, "directory"),
    TypeInfo("Endpoint", ALL, "directory", "A partner's delivery route."),
    TypeInfo("Questionnaire", ALL, "definition"),
    TypeInfo("CodeSystem", ALL, "definition"),
    TypeInfo("ValueSet", ALL, "definition"),
    TypeInfo("ConceptMap", ALL, "definition"),
    TypeInfo("StructureDefinition", ALL, "definition"),
    TypeInfo("SearchParameter", ALL, "definition"),
    TypeInfo(
        "OperationDefinition", READ_ONLY, "definition", "Wraparound's own operations (loaded at start-up)."
    ),
    TypeInfo("AuditEvent", READ_ONLY, "audit", "Append-only record of every access."),
]

TYPES: dict[str, TypeInfo] = {t.name: t for t in _TYPES}


def supports(resource_type: str, interaction: str) -> bool:
    info = TYPES.get(resource_type)
    return info is not None and interaction in info.interactions
