"""The one place errors become HTTP responses: always an OperationOutcome."""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from service.api.responses import FhirResponse
from service.errors import FhirError, Issue, ServiceUnavailable, operation_outcome

log = logging.getLogger("wraparound.api")

_HTTP_CODES = {404: "not-found", 405: "not-supported", 413: "too-costly", 415: "not-supported", 401: "login"}


async def fhir_error(_request: Request, exc: Exception) -> FhirResponse:
    assert isinstance(exc, FhirError)
    return FhirResponse(exc.outcome(), status_code=exc.status, headers=exc.headers)


# /fhir/Patient/{id}/ServiceRequest: a compartment search (http://hl7.org/fhir/R4/compartmentdefinition.html),
# which some clients (fhir-kit-client) offer; the hub does not, so say what to send instead.
_COMPARTMENT = re.compile(r"^/fhir/([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})/([A-Z][A-Za-z]+)/?$")


def _not_found_hint(request: Request) -> str | None:
    found = _COMPARTMENT.match(request.url.path)
    if found is None:
        return None
    owner, owner_id, wanted = found.groups()
    return (
        f"Compartment search is not supported; search {wanted} by its reference instead, "
        f"e.g. {wanted}?subject={owner}/{owner_id} or {wanted}?patient={owner}/{owner_id}"
    )


async def http_error(request: Request, exc: Exception) -> FhirResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "processing")
    diagnostics = (exc.status_code == 404 and _not_found_hint(request)) or str(exc.detail)
    outcome = operation_outcome([Issue(code=code, diagnostics=diagnostics)])
    return FhirResponse(outcome, status_code=exc.status_code, headers=dict(exc.headers or {}))


async def validation_error(_request: Request, exc: Exception) -> FhirResponse:
    assert isinstance(exc, RequestValidationError)
    if any(tuple(err.get("loc", ())) == ("path", "resource_type") for err in exc.errors()):
        # An unsupported type is "not found" (http://hl7.org/fhir/R4/http.html#read), not a bad request.
        outcome = operation_outcome(
            [Issue(code="not-found", diagnostics="Resource type is not supported by this server")]
        )
        return FhirResponse(outcome, status_code=404)
    issues = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        issues.append(Issue(code="invalid", diagnostics=f"{where}: {err.get('msg', 'invalid')}"))
    return FhirResponse(
        operation_outcome(issues or [Issue(code="invalid", diagnostics="Bad request")]), status_code=400
    )


async def client_disconnected(request: Request, exc: Exception) -> FhirResponse:
    # A client that goes away mid-body is the client's fault and routine on bad networks (or
    # an attack): one line, no traceback, so it cannot flood the log. The path, not the query,
    # which may carry identifiers. Nobody is left to read the response.
    assert isinstance(exc, ClientDisconnect)
    log.warning(
        "client disconnected before the request body was read: %s %s", request.method, request.url.path
    )
    outcome = operation_outcome([Issue(code="incomplete", diagnostics="The request body was not completed")])
    return FhirResponse(outcome, status_code=400)


async def database_unavailable(request: Request, exc: Exception) -> FhirResponse:
    # A database outage (PostgreSQL restarting, the network to it cut) is not the client's fault and
    # not a bug: 503 with Retry-After, so integrations back off and retry; the pool reconnects by itself.
    # One line, type only (the message can carry the URL or SQL).
    log.warning("database unavailable: %s on %s %s", type(exc).__name__, request.method, request.url.path)
    error = ServiceUnavailable(
        "The hub's database is unavailable; retry the request later", headers={"Retry-After": "5"}
    )
    return FhirResponse(error.outcome(), status_code=error.status, headers=error.headers)


async def unexpected_error(_request: Request, exc: Exception) -> FhirResponse:
    # Log the type only: messages can carry request data (special-category data, tokens).
    log.error("unhandled error: %s", type(exc).__name__, exc_info=exc)
    outcome = operation_outcome([Issue(code="exception", diagnostics="Internal server error")])
    return FhirResponse(outcome, status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(FhirError, fhir_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ClientDisconnect, client_disconnected)
    app.add_exception_handler(OperationalError, database_unavailable)
    app.add_exception_handler(InterfaceError, database_unavailable)
    app.add_exception_handler(Exception, unexpected_error)
