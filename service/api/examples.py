"""Worked examples for /docs: requests a newcomer can send as they are."""

from __future__ import annotations

from typing import Any

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "identifier": [
        {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"},
        {"system": "https://demo-clinic-north.example/Id/clinic-number", "value": "GUM-10442"},
    ],
    "name": [{"family": "Example", "given": ["Alex"]}],
    "gender": "other",
    "birthDate": "1988-04-12",
}

CONSENT: dict[str, Any] = {
    "resourceType": "Consent",
    "status": "active",
    "scope": {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
        ]
    },
    "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
    "patient": {"reference": "Patient/PATIENT_ID"},
    "dateTime": "2026-11-20T10:00:00Z",
    "organization": [{"reference": "Organization/CLINIC_ORG_ID"}],
    "policyRule": {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]
    },
    "provision": {
        "type": "permit",
        "period": {"start": "2026-11-20", "end": "2027-11-20"},
        "actor": [
            {
                "role": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            "code": "IRCP",
                        }
                    ]
                },
                "reference": {"reference": "Organization/PARTNER_ORG_ID"},
            }
        ],
    },
}

SERVICE_REQUEST: dict[str, Any] = {
    "resourceType": "ServiceRequest",
    "status": "active",
    "intent": "order",
    "code": {
        "coding": [
            {
                "system": "http://snomed.info/sct",
                "code": "871731000000106",
                "display": "Referral to social prescribing service",
            }
        ]
    },
    "subject": {"reference": "Patient/PATIENT_ID"},
    "requester": {"reference": "Organization/CLINIC_ORG_ID"},
    "performer": [{"reference": "HealthcareService/SERVICE_ID"}],
    "authoredOn": "2026-11-20T10:05:00Z",
    "reasonCode": [{"text": "Housing: at risk of eviction"}],
    "supportingInfo": [{"reference": "Consent/CONSENT_ID"}],
}

TRANSACTION: dict[str, Any] = {
    "resourceType": "Bundle",
    "type": "transaction",
    "entry": [
        {
            "fullUrl": "urn:uuid:1d9c3c6e-0a4f-4a57-9d1c-1a0c1e7c2b01",
            "resource": PATIENT,
            "request": {
                "method": "POST",
                "url": "Patient",
                "ifNoneExist": "identifier=https://fhir.nhs.uk/Id/nhs-number|9000000009",
            },
        },
        {
            "fullUrl": "urn:uuid:1d9c3c6e-0a4f-4a57-9d1c-1a0c1e7c2b02",
            "resource": {
                **CONSENT,
                "patient": {"reference": "urn:uuid:1d9c3c6e-0a4f-4a57-9d1c-1a0c1e7c2b01"},
            },
            "request": {"method": "POST", "url": "Consent"},
        },
        {
            "fullUrl": "urn:uuid:1d9c3c6e-0a4f-4a57-9d1c-1a0c1e7c2b03",
            "resource": {
                **SERVICE_REQUEST,
                "subject": {"reference": "urn:uuid:1d9c3c6e-0a4f-4a57-9d1c-1a0c1e7c2b01"},
                "supportingInfo": [{"reference": "urn:uuid:1d9c3c6e-0a4f-4a57-9d1c-1a0c1e7c2b02"}],
            },
            "request": {"method": "POST", "url": "ServiceRequest"},
        },
    ],
}

QUESTIONNAIRE_RESPONSE: dict[str, Any] = {
    "resourceType": "QuestionnaireResponse",
    "questionnaire": "https://wraparound.org.uk/fhir/Questionnaire/wellbeing-needs-assessment|1.0.0",
    "status": "completed",
    "subject": {"reference": "Patient/PATIENT_ID"},
    "author": {"reference": "Organization/CLINIC_ORG_ID"},
    "authored": "2026-11-20T10:00:00Z",
    "item": [
        {
            "linkId": "ons4",
            "item": [
                {"linkId": "ons4-satisfied", "answer": [{"valueInteger": 6}]},
                {"linkId": "ons4-worthwhile", "answer": [{"valueInteger": 7}]},
                {"linkId": "ons4-happy", "answer": [{"valueInteger": 5}]},
                {"linkId": "ons4-anxious", "answer": [{"valueInteger": 6}]},
            ],
        }
    ],
}

QUESTIONNAIRE: dict[str, Any] = {
    "resourceType": "Questionnaire",
    "url": "https://wraparound.org.uk/fhir/Questionnaire/example-short-form",
    "version": "0.1.0",
    "name": "ExampleShortForm",
    "status": "draft",
    "item": [{"linkId": "q1", "text": "How are you today?", "type": "string"}],
}

TASK_ACCEPT: dict[str, Any] = {
    "resourceType": "Task",
    "id": "TASK_ID",
    "status": "accepted",
    "intent": "order",
    "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]},
    "focus": {"reference": "ServiceRequest/SERVICE_REQUEST_ID"},
    "for": {"reference": "Patient/PATIENT_ID"},
    "requester": {"reference": "Organization/CLINIC_ORG_ID"},
    "owner": {"reference": "Organization/PARTNER_ORG_ID"},
    "authoredOn": "2026-11-20T10:05:00Z",
}

CREATE_EXAMPLES: dict[str, Any] = {
    "referral": {
        "summary": "A referral ServiceRequest (POST /fhir/ServiceRequest)",
        "value": SERVICE_REQUEST,
    },
    "patient": {"summary": "A Patient with an NHS number and a clinic number", "value": PATIENT},
    "consent": {"summary": "Consent permitting disclosure to one partner", "value": CONSENT},
    "assessment": {"summary": "A needs assessment QuestionnaireResponse", "value": QUESTIONNAIRE_RESPONSE},
    "questionnaire": {"summary": "A Questionnaire (admin)", "value": QUESTIONNAIRE},
}
UPDATE_EXAMPLES: dict[str, Any] = {
    "accept": {
        "summary": (
            "Partner accepts a referral Task (PUT /fhir/Task/{id} with If-Match): send the Task as "
            "read with its status changed; a partner may change only status, businessStatus, "
            "statusReason, output and note"
        ),
        "value": TASK_ACCEPT,
    },
}
BUNDLE_EXAMPLES: dict[str, Any] = {
    "referral-transaction": {
        "summary": "Patient + Consent + referral in one transaction",
        "value": TRANSACTION,
    },
}
ERROR_EXAMPLE: dict[str, Any] = {
    "resourceType": "OperationOutcome",
    "issue": [
        {
            "severity": "error",
            "code": "business-rule",
            "diagnostics": "opt-in service requires an active permit Consent naming the partner",
        }
    ],
}


def _outcome(code: str, diagnostics: str) -> dict[str, Any]:
    return {
        "content": {
            "application/fhir+json": {
                "example": {
                    "resourceType": "OperationOutcome",
                    "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
                }
            }
        }
    }


# OperationOutcome examples for /docs: every error is one of these shapes.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "Malformed request or invalid FHIR",
        **_outcome("structure", "Patient.gender: Input should be 'male', 'female', 'other' or 'unknown'"),
    },
    401: {
        "description": "No or invalid access token",
        **_outcome("login", "A bearer access token is required"),
    },
    403: {
        "description": "Scope or role does not allow this",
        **_outcome("forbidden", "The access token's scopes do not allow 'create' on Patient"),
    },
    404: {
        "description": "Unknown, or not visible to the caller",
        **_outcome("not-found", "Patient/123 is not known"),
    },
    409: {
        "description": "Concurrent change",
        **_outcome("conflict", "Task/abc was changed by another request; read it again and retry"),
    },
    412: {
        "description": "If-Match does not match the current version",
        **_outcome("conflict", 'If-Match W/"1" does not match the current version 2 of Task/abc'),
    },
    422: {
        "description": "Valid FHIR that breaks a business rule",
        **_outcome(
            "business-rule",
            "consent check failed: opt-in service requires an active permit Consent naming the partner",
        ),
    },
}


# -- per-type examples for the generated document (service/api/openapi_doc.py) -------------------
# Each succeeds as sent once the UPPER_CASE ids are replaced by real ones (tests/api/test_openapi_doc.py
# POSTs every one). Directory and definition resources are written by an admin client.
_PARTNER_ORG = {"reference": "Organization/PARTNER_ORG_ID"}
_DIRECTORY: dict[str, dict[str, Any]] = {
    "Organization": {"resourceType": "Organization", "active": True, "name": "Example Peer Support Charity"},
    "HealthcareService": {
        "resourceType": "HealthcareService",
        "active": True,
        "name": "Peer support (opt-out)",
        "providedBy": _PARTNER_ORG,
        "extension": [
            {
                "url": "https://wraparound.org.uk/fhir/StructureDefinition/consent-model",
                "valueCode": "opt-out",
            }
        ],
    },
    "Location": {"resourceType": "Location", "status": "active", "name": "Camden"},
    "Endpoint": {
        "resourceType": "Endpoint",
        "status": "active",
        "name": "Example charity webhook",
        "connectionType": {
            "system": "https://wraparound.org.uk/fhir/CodeSystem/endpoint-connection-type",
            "code": "webhook",
        },
        "payloadType": [{"text": "referral notification"}],
        "address": "https://partner.example.org/wraparound/webhook",
    },
    "Practitioner": {"resourceType": "Practitioner", "name": [{"family": "Example", "given": ["Sam"]}]},
    "PractitionerRole": {"resourceType": "PractitionerRole", "active": True, "organization": _PARTNER_ORG},
    "CodeSystem": {
        "resourceType": "CodeSystem",
        "url": "https://partner.example.org/fhir/CodeSystem/example-codes",
        "version": "0.1.0",
        "name": "ExampleCodes",
        "status": "draft",
        "content": "complete",
        "concept": [{"code": "a", "display": "A"}],
    },
    "ValueSet": {
        "resourceType": "ValueSet",
        "url": "https://partner.example.org/fhir/ValueSet/example-codes",
        "version": "0.1.0",
        "name": "ExampleCodes",
        "status": "draft",
        "compose": {"include": [{"system": "https://partner.example.org/fhir/CodeSystem/example-codes"}]},
    },
}
_CREATE_BY_TYPE: dict[str, tuple[str, dict[str, Any]]] = {
    "Patient": ("A Patient with an NHS number and a clinic number (clinic)", PATIENT),
    "Consent": ("Consent permitting disclosure to one partner (clinic)", CONSENT),
    "ServiceRequest": ("A referral to a partner's HealthcareService (clinic)", SERVICE_REQUEST),
    "QuestionnaireResponse": ("A needs assessment (clinic)", QUESTIONNAIRE_RESPONSE),
    "Questionnaire": ("A Questionnaire (admin)", QUESTIONNAIRE),
    **{name: (f"A {name} (admin)", body) for name, body in _DIRECTORY.items()},
}
CREATE_NOTES: dict[str, str] = {
    "ServiceRequest": (
        "The consent check runs on create: an opt-in service needs an active permit Consent naming "
        "the partner (create the Consent first), an opt-out one only the absence of a deny. "
        "The hub then creates the referral's Task."
    ),
    "Task": "Tasks are created by the hub for each referral; partners update them (PUT or PATCH).",
    "Observation": "Server-created from assessments.",
}


def create_example(resource_type: str) -> dict[str, Any] | None:
    found = _CREATE_BY_TYPE.get(resource_type)
    return found[1] if found else None


def create_examples(resource_type: str) -> dict[str, Any]:
    found = _CREATE_BY_TYPE.get(resource_type)
    return {"example": {"summary": found[0], "value": found[1]}} if found else {}


def update_examples(resource_type: str) -> dict[str, Any]:
    if resource_type == "Task":
        return UPDATE_EXAMPLES
    found = _CREATE_BY_TYPE.get(resource_type)
    if not found:
        return {}
    body = {**found[1], "id": "ID"}
    return {"example": {"summary": f"The whole {resource_type}, with the id of the URL", "value": body}}


PATCH_EXAMPLES: dict[str, Any] = {
    "accept": {
        "summary": "Partner accepts a referral Task (PATCH /fhir/Task/{id} with If-Match)",
        "value": [{"op": "replace", "path": "/status", "value": "accepted"}],
    }
}

_ASSESSMENT = "https://wraparound.org.uk/fhir/Questionnaire/wellbeing-needs-assessment|1.0.0"
_SUBJECT = {"name": "subject", "valueReference": {"reference": "Patient/PATIENT_ID"}}
_PREFILLED = {
    "resourceType": "QuestionnaireResponse",
    "questionnaire": _ASSESSMENT,
    "status": "in-progress",
    "subject": {"reference": "Patient/PATIENT_ID"},
}
_DELIVERIES = {
    "resourceType": "Parameters",
    "parameter": [
        {
            "name": "delivery",
            "part": [
                {"name": "id", "valueString": "1"},
                {"name": "event", "valueCode": "referral"},
                {"name": "recipient", "valueReference": {"reference": "Organization/PARTNER_ORG_ID"}},
                {"name": "task", "valueReference": {"reference": "Task/TASK_ID"}},
                {"name": "state", "valueCode": "delivered"},
                {"name": "attempts", "valueInteger": 1},
                {"name": "created", "valueInstant": "2026-11-20T10:05:00Z"},
            ],
        }
    ],
}


def _parameters_example(summary: str, *parameter: dict[str, Any]) -> dict[str, Any]:
    value = {"resourceType": "Parameters", "parameter": list(parameter)}
    return {"example": {"summary": summary, "value": value}}


# path -> (method, tag, request examples, response schema) for each operation route.
OPERATIONS: dict[str, tuple[str, str, dict[str, Any], str]] = {
    "/fhir/Questionnaire/$populate": (
        "post",
        "Questionnaire",
        _parameters_example(
            "Prefill the needs assessment for a Patient",
            _SUBJECT,
            {"name": "canonical", "valueCanonical": _ASSESSMENT},
        ),
        "Parameters",
    ),
    "/fhir/Questionnaire/{resource_id}/$populate": (
        "post",
        "Questionnaire",
        _parameters_example("Prefill this Questionnaire for a Patient", _SUBJECT),
        "Parameters",
    ),
    "/fhir/QuestionnaireResponse/{resource_id}/$suggest-referrals": (
        "post",
        "QuestionnaireResponse",
        _parameters_example("Services covering Camden", {"name": "area", "valueString": "Camden"}),
        "Parameters",
    ),
    "/fhir/Endpoint/{resource_id}/$rotate-secret": (
        "post",
        "Endpoint",
        {"example": {"summary": "No input parameters", "value": {"resourceType": "Parameters"}}},
        "Parameters",
    ),
    "/fhir/Task/{resource_id}/$delivery-status": ("get", "Task", {}, "Parameters"),
    "/fhir/Task/$delivery-status": ("get", "Task", {}, "Parameters"),
}
OPERATION_RESULTS: dict[str, Any] = {
    "/fhir/Questionnaire/$populate": {
        "resourceType": "Parameters",
        "parameter": [{"name": "response", "resource": _PREFILLED}],
    },
    "/fhir/Questionnaire/{resource_id}/$populate": {
        "resourceType": "Parameters",
        "parameter": [{"name": "response", "resource": _PREFILLED}],
    },
    "/fhir/QuestionnaireResponse/{resource_id}/$suggest-referrals": {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "suggestion",
                "part": [
                    {"name": "service", "valueReference": {"reference": "HealthcareService/SERVICE_ID"}},
                    {"name": "consentModel", "valueCode": "opt-in"},
                ],
            }
        ],
    },
    "/fhir/Endpoint/{resource_id}/$rotate-secret": {
        "resourceType": "Parameters",
        "parameter": [{"name": "secret", "valueString": "whsec_<base64 of 32 random bytes, shown once>"}],
    },
    "/fhir/Task/{resource_id}/$delivery-status": _DELIVERIES,
    "/fhir/Task/$delivery-status": _DELIVERIES,
}
TOKEN_REQUEST: dict[str, str] = {
    "grant_type": "client_credentials",
    "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    "client_assertion": "SIGNED_JWT",
    "scope": "system/ServiceRequest.cruds system/Patient.cruds",
}
