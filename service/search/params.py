"""The search parameters Wraparound supports, as defined by FHIR R4 (and SDOH Clinical Care).

Names, types and FHIRPath expressions follow the R4 SearchParameter resources
(http://hl7.org/fhir/R4/searchparameter-registry.html); a shared definition such as
``clinical-patient`` keeps its canonical URL but only the expression branch of the
resource it is listed under. ``where(resolve() is Patient)`` is evaluated from the
reference's type prefix (see ``_fhirpath``). ``_id`` and ``_lastUpdated`` are columns
of ``resource``, so their expression is empty and ``compile`` handles them directly.
"""

from __future__ import annotations

from service.search.types import ParamType, SearchParam

_R4 = "http://hl7.org/fhir/SearchParameter/"
_SDOHCC = "http://hl7.org/fhir/us/sdoh-clinicalcare/SearchParameter/"


def _p(
    name: str, type_: ParamType, expression: str, *targets: str, url: str = "", desc: str = ""
) -> SearchParam:
    base = expression.split(".", 1)[0].lstrip("(")
    return SearchParam(
        name=name,
        type=type_,
        expression=expression,
        targets=targets,
        url=url or f"{_R4}{base}-{name}",
        description=desc,
    )


_COMMON = (
    SearchParam("_id", "token", "", url=f"{_R4}Resource-id", description="Logical id of this artifact"),
    SearchParam(
        "_lastUpdated", "date", "", url=f"{_R4}Resource-lastUpdated", description="When the resource changed"
    ),
    _p("_tag", "token", "Resource.meta.tag", url=f"{_R4}Resource-tag"),
    _p("_profile", "uri", "Resource.meta.profile", url=f"{_R4}Resource-profile"),
    _p("_security", "token", "Resource.meta.security", url=f"{_R4}Resource-security"),
)

_PATIENT = f"{_R4}clinical-patient"
_CODE = f"{_R4}clinical-code"
_IDENTIFIER = f"{_R4}clinical-identifier"
_DATE = f"{_R4}clinical-date"
_ANY = ()  # reference to any resource type

# R4 conformance-url/-version/-name/-status/-title cover these bases (ConceptMap and
# OperationDefinition included), so canonical references always resolve through idx_uri.
_CONFORMANCE = (
    "CodeSystem",
    "ValueSet",
    "StructureDefinition",
    "SearchParameter",
    "ConceptMap",
    "OperationDefinition",
)


def _conformance(base: str) -> list[SearchParam]:
    return [
        _p("url", "uri", f"{base}.url", url=f"{_R4}conformance-url"),
        _p("version", "token", f"{base}.version", url=f"{_R4}conformance-version"),
        _p("name", "string", f"{base}.name", url=f"{_R4}conformance-name"),
        _p("status", "token", f"{base}.status", url=f"{_R4}conformance-status"),
        _p("title", "string", f"{base}.title", url=f"{_R4}conformance-title"),
    ]


_DEFINITIONS: dict[str, list[SearchParam]] = {
    "ServiceRequest": [
        _p(
            "patient",
            "reference",
            "ServiceRequest.subject.where(resolve() is Patient)",
            "Patient",
            url=_PATIENT,
        ),
        _p("subject", "reference", "ServiceRequest.subject", "Device", "Group", "Location", "Patient"),
        _p("status", "token", "ServiceRequest.status"),
        _p("intent", "token", "ServiceRequest.intent"),
        _p("authored", "date", "ServiceRequest.authoredOn"),
        _p(
            "requester",
            "reference",
            "ServiceRequest.requester",
            "Device",
            "Organization",
            "Patient",
            "Practitioner",
            "PractitionerRole",
            "RelatedPerson",
        ),
        _p(
            "performer",
            "reference",
            "ServiceRequest.performer",
            "CareTeam",
            "Device",
            "HealthcareService",
            "Organization",
            "Patient",
            "Practitioner",
            "PractitionerRole",
            "RelatedPerson",
        ),
        _p("code", "token", "ServiceRequest.code", url=_CODE),
        _p("category", "token", "ServiceRequest.category"),
        _p("identifier", "token", "ServiceRequest.identifier", url=_IDENTIFIER),
        _p(
            "based-on",
            "reference",
            "ServiceRequest.basedOn",
            "CarePlan",
            "MedicationRequest",
            "ServiceRequest",
        ),
        _p("occurrence", "date", "ServiceRequest.occurrence"),
        _p("priority", "token", "ServiceRequest.priority"),
        _p(
            "supporting-info",
            "reference",
            "ServiceRequest.supportingInfo",
            *_ANY,
            url=f"{_SDOHCC}ServiceRequest-supporting-info",
        ),
    ],
    "Task": [
        _p("focus", "reference", "Task.focus"),
        _p(
            "owner",
            "reference",
            "Task.owner",
            "CareTeam",
            "Device",
            "HealthcareService",
            "Organization",
            "Patient",
            "Practitioner",
            "PractitionerRole",
            "RelatedPerson",
        ),
        _p(
            "requester",
            "reference",
            "Task.requester",
            "Device",
            "Organization",
            "Patient",
            "Practitioner",
            "PractitionerRole",
            "RelatedPerson",
        ),
        _p("status", "token", "Task.status"),
        _p("business-status", "token", "Task.businessStatus"),
        _p("code", "token", "Task.code"),
        _p("intent", "token", "Task.intent"),
        _p("patient", "reference", "Task.for.where(resolve() is Patient)", "Patient"),
        _p("subject", "reference", "Task.for"),
        _p("identifier", "token", "Task.identifier"),
        _p("authored-on", "date", "Task.authoredOn"),
        _p("modified", "date", "Task.lastModified"),
        _p("period", "date", "Task.executionPeriod"),
        _p("part-of", "reference", "Task.partOf", "Task"),
        _p("based-on", "reference", "Task.basedOn"),
        _p(
            "output",
            "reference",
            "Task.output.value.ofType(Reference)",
            url=f"{_SDOHCC}Task-output-reference",
        ),
    ],
    "Patient": [
        _p("identifier", "token", "Patient.identifier"),
        _p("name", "string", "Patient.name"),
        _p("family", "string", "Patient.name.family", url=f"{_R4}individual-family"),
        _p("given", "string", "Patient.name.given", url=f"{_R4}individual-given"),
        _p("birthdate", "date", "Patient.birthDate", url=f"{_R4}individual-birthdate"),
        _p("gender", "token", "Patient.gender", url=f"{_R4}individual-gender"),
        _p("telecom", "token", "Patient.telecom", url=f"{_R4}individual-telecom"),
        _p("phone", "token", "Patient.telecom.where(system='phone')", url=f"{_R4}individual-phone"),
        _p("email", "token", "Patient.telecom.where(system='email')", url=f"{_R4}individual-email"),
        _p("address", "string", "Patient.address", url=f"{_R4}individual-address"),
        _p(
            "address-postalcode",
            "string",
            "Patient.address.postalCode",
            url=f"{_R4}individual-address-postalcode",
        ),
        _p("active", "token", "Patient.active"),
        _p(
            "general-practitioner",
            "reference",
            "Patient.generalPractitioner",
            "Organization",
            "Practitioner",
            "PractitionerRole",
        ),
        _p("organization", "reference", "Patient.managingOrganization", "Organization"),
    ],
    "Consent": [
        _p("patient", "reference", "Consent.patient", "Patient", url=_PATIENT),
        _p("status", "token", "Consent.status"),
        _p(
            "actor",
            "reference",
            "Consent.provision.actor.reference",
            "CareTeam",
            "Device",
            "Group",
            "Organization",
            "Patient",
            "Practitioner",
            "PractitionerRole",
            "RelatedPerson",
        ),
        _p("period", "date", "Consent.provision.period"),
        _p("category", "token", "Consent.category"),
        _p("scope", "token", "Consent.scope"),
        _p("organization", "reference", "Consent.organization", "Organization"),
        _p("action", "token", "Consent.provision.action"),
        _p("data", "reference", "Consent.provision.data.reference"),
        _p("date", "date", "Consent.dateTime", url=_DATE),
        _p("identifier", "token", "Consent.identifier", url=_IDENTIFIER),
    ],
    "Questionnaire": [
        _p("url", "uri", "Questionnaire.url"),
        _p("version", "token", "Questionnaire.version"),
        _p("status", "token", "Questionnaire.status"),
        _p("name", "string", "Questionnaire.name"),
        _p("title", "string", "Questionnaire.title"),
        _p("identifier", "token", "Questionnaire.identifier"),
        _p("code", "token", "Questionnaire.item.code"),
    ],
    "QuestionnaireResponse": [
        _p("subject", "reference", "QuestionnaireResponse.subject"),
        _p("patient", "reference", "QuestionnaireResponse.subject.where(resolve() is Patient)", "Patient"),
        _p("questionnaire", "reference", "QuestionnaireResponse.questionnaire", "Questionnaire"),
        _p("status", "token", "QuestionnaireResponse.status"),
        _p("authored", "date", "QuestionnaireResponse.authored"),
        _p(
            "author",
            "reference",
            "QuestionnaireResponse.author",
            "Device",
            "Organization",
            "Patient",
            "Practitioner",
            "PractitionerRole",
            "RelatedPerson",
        ),
        _p("based-on", "reference", "QuestionnaireResponse.basedOn", "CarePlan", "ServiceRequest"),
        _p("identifier", "token", "QuestionnaireResponse.identifier"),
    ],
    "Organization": [
        _p("name", "string", "Organization.name | Organization.alias"),
        _p("identifier", "token", "Organization.identifier"),
        _p("type", "token", "Organization.type"),
        _p("active", "token", "Organization.active"),
        _p("endpoint", "reference", "Organization.endpoint", "Endpoint"),
        _p("partof", "reference", "Organization.partOf", "Organization"),
    ],
    "HealthcareService": [
        _p("organization", "reference", "HealthcareService.providedBy", "Organization"),
        _p("name", "string", "HealthcareService.name"),
        _p("service-category", "token", "HealthcareService.category"),
        _p("service-type", "token", "HealthcareService.type"),
        _p("specialty", "token", "HealthcareService.specialty"),
        _p("characteristic", "token", "HealthcareService.characteristic"),
        _p("program", "token", "HealthcareService.program"),
        _p("active", "token", "HealthcareService.active"),
        _p("endpoint", "reference", "HealthcareService.endpoint", "Endpoint"),
        _p("identifier", "token", "HealthcareService.identifier"),
        _p("location", "reference", "HealthcareService.location", "Location"),
        _p("coverage-area", "reference", "HealthcareService.coverageArea", "Location"),
    ],
    "Location": [
        _p("name", "string", "Location.name | Location.alias"),
        _p("identifier", "token", "Location.identifier"),
        _p("organization", "reference", "Location.managingOrganization", "Organization"),
        _p("address", "string", "Location.address"),
        _p("address-postalcode", "string", "Location.address.postalCode"),
        _p("status", "token", "Location.status"),
        _p("type", "token", "Location.type"),
    ],
    "Endpoint": [
        _p("organization", "reference", "Endpoint.managingOrganization", "Organization"),
        _p("connection-type", "token", "Endpoint.connectionType"),
        _p("status", "token", "Endpoint.status"),
        _p("identifier", "token", "Endpoint.identifier"),
        _p("name", "string", "Endpoint.name"),
    ],
    "Practitioner": [
        _p("identifier", "token", "Practitioner.identifier"),
        _p("name", "string", "Practitioner.name"),
        _p("family", "string", "Practitioner.name.family", url=f"{_R4}individual-family"),
        _p("given", "string", "Practitioner.name.given", url=f"{_R4}individual-given"),
        _p("telecom", "token", "Practitioner.telecom", url=f"{_R4}individual-telecom"),
    ],
    "PractitionerRole": [
        _p("practitioner", "reference", "PractitionerRole.practitioner", "Practitioner"),
        _p("organization", "reference", "PractitionerRole.organization", "Organization"),
        _p("identifier", "token", "PractitionerRole.identifier"),
        _p("role", "token", "PractitionerRole.code"),
        _p("service", "reference", "PractitionerRole.healthcareService", "HealthcareService"),
        _p("active", "token", "PractitionerRole.active"),
    ],
    "AuditEvent": [
        _p("entity", "reference", "AuditEvent.entity.what"),
        # R4 AuditEvent-altid: the hub puts the SMART client id in agent.altId, so admins can
        # search the trail by client as well as by organisation.
        _p("altid", "token", "AuditEvent.agent.altId"),
        _p(
            "agent",
            "reference",
            "AuditEvent.agent.who",
            "Device",
            "Organization",
            "Patient",
            "Practitioner",
            "PractitionerRole",
            "RelatedPerson",
        ),
        _p("date", "date", "AuditEvent.recorded"),
        _p("type", "token", "AuditEvent.type"),
        _p("action", "token", "AuditEvent.action"),
        _p("outcome", "token", "AuditEvent.outcome"),
        _p("subtype", "token", "AuditEvent.subtype"),
        _p(
            "source",
            "reference",
            "AuditEvent.source.observer",
            "Device",
            "Organization",
            "Patient",
            "Practitioner",
            "PractitionerRole",
            "RelatedPerson",
        ),
        _p(
            "patient",
            "reference",
            "AuditEvent.agent.who.where(resolve() is Patient)"
            " | AuditEvent.entity.what.where(resolve() is Patient)",
            "Patient",
        ),
    ],
    "Observation": [
        _p("subject", "reference", "Observation.subject", "Device", "Group", "Location", "Patient"),
        _p(
            "patient", "reference", "Observation.subject.where(resolve() is Patient)", "Patient", url=_PATIENT
        ),
        _p("code", "token", "Observation.code", url=_CODE),
        _p("status", "token", "Observation.status"),
        _p("date", "date", "Observation.effective", url=_DATE),
        _p("derived-from", "reference", "Observation.derivedFrom"),
        _p("category", "token", "Observation.category"),
        _p(
            "value-quantity",
            "quantity",
            "(Observation.value as Quantity) | (Observation.value as SampledData)",
        ),
        _p("identifier", "token", "Observation.identifier", url=_IDENTIFIER),
        _p("based-on", "reference", "Observation.basedOn"),
        _p("focus", "reference", "Observation.focus"),
    ],
    # R4 Flag search parameters (http://hl7.org/fhir/R4/flag.html#search) plus ``status``, which R4 does
    # not define: Wraparound's own SearchParameter (fhir_profiles/data/SearchParameter-Flag-status.json).
    "Flag": [
        _p("patient", "reference", "Flag.subject.where(resolve() is Patient)", "Patient", url=_PATIENT),
        _p(
            "subject",
            "reference",
            "Flag.subject",
            "Group",
            "Location",
            "Medication",
            "Organization",
            "Patient",
            "PlanDefinition",
            "Practitioner",
            "PractitionerRole",
            "Procedure",
        ),
        _p("date", "date", "Flag.period", url=_DATE),
        _p(
            "author",
            "reference",
            "Flag.author",
            "Device",
            "Organization",
            "Patient",
            "Practitioner",
            "PractitionerRole",
        ),
        _p("identifier", "token", "Flag.identifier", url=_IDENTIFIER),
        _p("encounter", "reference", "Flag.encounter", "Encounter"),
        _p(
            "status",
            "token",
            "Flag.status",
            url="https://wraparound.org.uk/fhir/SearchParameter/Flag-status",
            desc="active | inactive | entered-in-error",
        ),
    ],
    **{t: _conformance(t) for t in _CONFORMANCE},
}
_DEFINITIONS["StructureDefinition"].append(_p("type", "uri", "StructureDefinition.type"))
_DEFINITIONS["SearchParameter"] += [
    _p("base", "token", "SearchParameter.base"),
    _p("code", "token", "SearchParameter.code"),
]

SEARCH_PARAMS: dict[str, dict[str, SearchParam]] = {
    rtype: {p.name: p for p in (*_COMMON, *params)} for rtype, params in _DEFINITIONS.items()
}


def params_for(resource_type: str) -> dict[str, SearchParam]:
    """The parameters of a type; types without definitions still get the common ones."""
    return SEARCH_PARAMS.get(resource_type) or {p.name: p for p in _COMMON}
