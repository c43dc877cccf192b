"""The CapabilityStatement, derived from the type registry, the search parameter
registry and the registered operations (http://hl7.org/fhir/R4/capabilitystatement.html)."""

from __future__ import annotations

from typing import Any

from service.fhir.models import FHIR_VERSION
from service.rest import registry
from service.search.params import SEARCH_PARAMS
from service.search.parse import DEFAULT_COUNT, MAX_COUNT

# Operations registered by domain modules: (resource type or None for system, name, definition URL).
OPERATIONS: list[tuple[str | None, str, str]] = []

_COMMON_SEARCH = ("_id", "_lastUpdated")
_SEARCH_RESULT = ["_count", "_sort", "_include", "_revinclude", "_total", "_summary", "_elements"]


def register_operation(resource_type: str | None, name: str, definition: str) -> None:
    if (resource_type, name, definition) not in OPERATIONS:
        OPERATIONS.append((resource_type, name, definition))


def capability_statement(base_url: str, token_url: str, software_version: str) -> dict[str, Any]:
    resources = []
    for name, info in registry.TYPES.items():
        params = SEARCH_PARAMS.get(name, {})
        entry: dict[str, Any] = {
            "type": name,
            "interaction": [{"code": code} for code in info.interactions],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": "update" in info.interactions and info.kind != "clinical",
            "conditionalCreate": "create" in info.interactions,
            "conditionalUpdate": "update" in info.interactions,
            "conditionalRead": "not-match",
            "conditionalDelete": "not-supported",
            "searchInclude": [f"{name}:{p.name}" for p in params.values() if p.type == "reference"],
            "searchRevInclude": sorted(
                f"{other}:{p.name}"
                for other, other_params in SEARCH_PARAMS.items()
                for p in other_params.values()
                if p.type == "reference" and (name in p.targets or not p.targets) and other in registry.TYPES
            ),
            "searchParam": [
                {
                    "name": p.name,
                    "type": p.type,
                    **({"definition": p.url} if p.url else {}),
                    **({"documentation": p.description} if p.description else {}),
                }
                for p in params.values()
                if p.name not in _COMMON_SEARCH
            ]
            + [
                {
                    "name": "_id",
                    "type": "token",
                    "definition": "http://hl7.org/fhir/SearchParameter/Resource-id",
                },
                {
                    "name": "_lastUpdated",
                    "type": "date",
                    "definition": "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated",
                },
            ],
        }
        if info.documentation:
            entry["documentation"] = info.documentation
        # FHIR JSON forbids empty arrays (R4 json.html): a type with no includes simply has none.
        for key in ("searchInclude", "searchRevInclude"):
            if not entry[key]:
                del entry[key]
        ops = [{"name": n, "definition": d} for t, n, d in OPERATIONS if t == name]
        if ops:
            entry["operation"] = ops
        resources.append(entry)
    rest: dict[str, Any] = {
        "mode": "server",
        "documentation": "Search result parameters: "
        + ", ".join(_SEARCH_RESULT)
        + f". _count defaults to {DEFAULT_COUNT} and is capped at {MAX_COUNT} entries per page; larger values"
        " are reduced to the cap. Pages are linked by an opaque _cursor (keyset paging), so next/previous"
        " links stay correct while data changes. Bundle.total is exact when asked for (_total=accurate,"
        " _summary=count) and when the first page holds every match; otherwise it is left out.",
        "security": {
            "cors": False,
            "service": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                            "code": "SMART-on-FHIR",
                        }
                    ]
                }
            ],
            "description": "SMART Backend Services (client_credentials with a private_key_jwt assertion).",
            "extension": [
                {
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [{"url": "token", "valueUri": token_url}],
                }
            ],
        },
        "resource": resources,
        "interaction": [{"code": "transaction"}, {"code": "batch"}],
    }
    system_ops = [{"name": n, "definition": d} for t, n, d in OPERATIONS if t is None]
    if system_ops:
        rest["operation"] = system_ops
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-22",
        "kind": "instance",
        "software": {"name": "Wraparound", "version": software_version},
        "implementation": {"description": "Wraparound FHIR referral hub", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [rest],
    }
