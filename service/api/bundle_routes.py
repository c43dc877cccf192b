"""POST to the base: batch and transaction Bundles (http://hl7.org/fhir/R4/http.html#transaction)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request

from service.access.caller import Caller
from service.api import examples
from service.api.deps import get_caller, json_body, run
from service.api.responses import FhirResponse
from service.rest import bundle

router = APIRouter(prefix="/fhir", tags=["FHIR batch/transaction"], responses=examples.ERROR_RESPONSES)

CallerDep = Annotated[Caller, Depends(get_caller)]
BodyDep = Annotated[Any, Depends(json_body)]
Prefer = Annotated[
    str | None,
    Header(description="return=minimal | representation | OperationOutcome, applied to each entry"),
]

_EXAMPLES = examples.BUNDLE_EXAMPLES


@router.post(
    "",
    summary="batch or transaction",
    description=(
        "A `transaction` Bundle is atomic: entries run in FHIR order (DELETE, POST, PUT, GET), `urn:uuid:` "
        "references between entries are resolved, and any failing entry rolls back all of them (the "
        "OperationOutcome names `Bundle.entry[i]`). A `batch` runs each entry on its own; failures are "
        "reported in that entry's `response`. At most 1000 entries."
    ),
    response_class=FhirResponse,
    openapi_extra={"requestBody": {"content": {"application/fhir+json": {"examples": _EXAMPLES}}}},
)
def batch_or_transaction(
    request: Request, caller: CallerDep, body: BodyDep, prefer: Prefer = None
) -> FhirResponse:
    result = run(request, caller, lambda ctx: bundle.process(ctx, body, prefer=prefer))
    return FhirResponse(result)
