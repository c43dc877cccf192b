"""FHIR operations ($name)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from service.access.caller import Caller
from service.api import examples
from service.api.deps import get_caller, json_body, run
from service.api.responses import FhirResponse
from service.assessment import operations as assessment_operations

router = APIRouter(prefix="/fhir", tags=["FHIR operations"], responses=examples.ERROR_RESPONSES)

CallerDep = Annotated[Caller, Depends(get_caller)]
IdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9\-\.]{1,64}$", description="Logical id")]


async def optional_body(request: Request) -> Any:
    """The JSON body when there is one (operations may be invoked with an empty POST)."""
    if request.headers.get("content-length", "0") == "0" and "transfer-encoding" not in request.headers:
        return None
    return await json_body(request)


@router.post(
    "/QuestionnaireResponse/{resource_id}/$suggest-referrals",
    summary="needs found by an assessment and the active services that could meet them",
    response_class=FhirResponse,
)
def suggest_referrals(
    request: Request,
    caller: CallerDep,
    resource_id: IdPath,
    body: Annotated[Any, Depends(optional_body)],
    area: Annotated[str | None, Query(description="place name or Location reference (coverageArea)")] = None,
) -> FhirResponse:
    wanted = assessment_operations.area_from(body, area)
    return FhirResponse(
        run(request, caller, lambda ctx: assessment_operations.suggest_referrals(ctx, resource_id, wanted))
    )
