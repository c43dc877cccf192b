"""Unauthenticated endpoints: CapabilityStatement, SMART configuration, health."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from service.api.deps import database_of, settings_of
from service.api.responses import FhirResponse
from service.rest import registry
from service.rest.capability import capability_statement

router = APIRouter()


def software_version() -> str:
    try:
        return version("wraparound")
    except PackageNotFoundError:
        return "0.0.0"


def token_url(request: Request) -> str:
    return settings_of(request).fhir_base().removesuffix("/fhir") + "/auth/token"


# The two public discovery documents only; everything else answers without CORS headers.
PUBLIC_CORS = {"Access-Control-Allow-Origin": "*"}


@router.get(
    "/fhir/metadata", tags=["Conformance"], summary="CapabilityStatement", response_class=FhirResponse
)
def metadata(request: Request) -> FhirResponse:
    return FhirResponse(
        capability_statement(settings_of(request).fhir_base(), token_url(request), software_version()),
        headers=PUBLIC_CORS,
    )


@router.get("/fhir/.well-known/smart-configuration", tags=["Authentication"], summary="SMART configuration")
def smart_configuration(request: Request) -> JSONResponse:
    # SMART App Launch 2.x, conformance/#using-well-known; Backend Services capabilities. Public, so
    # browsers' discovery (and Inferno) may read it cross-origin; nothing else carries CORS.
    return JSONResponse(_smart_document(request), headers=PUBLIC_CORS)


def _smart_document(request: Request) -> dict[str, Any]:
    return {
        "token_endpoint": token_url(request),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"]
        + (["RS512"] if settings_of(request).allow_rs512 else []),
        "scopes_supported": ["system/*.cruds", "system/*.rs"] + [f"system/{t}.cruds" for t in registry.TYPES],
        "capabilities": ["client-confidential-asymmetric", "permission-v2", "permission-v1"],
    }


@router.get("/healthz", tags=["Operations"], summary="Liveness")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", tags=["Operations"], summary="Readiness: database reachable, migrations current")
def readyz(request: Request) -> JSONResponse:
    ok, reason = database_of(request).ready()
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "detail": reason}, status_code=200 if ok else 503
    )
