"""The response entries of a batch-response or transaction-response Bundle."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from service.errors import FhirError, Issue
from service.errors import operation_outcome as outcome_of
from service.fhir.instant import fhir_instant
from service.rest.context import Context
from service.rest.interactions import Result


def response_entry(ctx: Context, outcome: Result | FhirError, method: str, prefer: str) -> dict[str, Any]:
    if isinstance(outcome, FhirError):
        status = f"{outcome.status} {HTTPStatus(outcome.status).phrase}"
        return {"response": {"status": status, "outcome": outcome.outcome()}}
    response: dict[str, Any] = {"status": f"{outcome.status} {HTTPStatus(outcome.status).phrase}"}
    entry: dict[str, Any] = {}
    stored = outcome.stored
    if stored is not None:
        if not stored.deleted:
            entry["fullUrl"] = f"{ctx.base_url}/{stored.resource_type}/{stored.id}"
        if method in ("POST", "PUT"):
            response["location"] = f"{stored.resource_type}/{stored.id}/_history/{stored.version_id}"
        response["etag"] = f'W/"{stored.version_id}"'
        response["lastModified"] = fhir_instant(stored.last_updated)
    body = outcome.body
    if body is not None and method != "HEAD":
        if method == "GET" or prefer == "representation":
            entry["resource"] = body
        elif prefer == "OperationOutcome":
            done = Issue("informational", f"Done: HTTP {outcome.status}", "information")
            response["outcome"] = outcome_of([done])
    entry["response"] = response
    return entry
