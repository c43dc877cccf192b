"""FHIR operations ($name)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from service.access.caller import Caller
from service.api import examples
from service.api.deps import get_caller, json_body, run
from service.api.responses import FhirResponse
from service.assessment import operations as assessment_operations
from service.assessment import populate as assessment_populate
from service.errors import BadRequest, Issue

router = APIRouter(prefix="/fhir", tags=["FHIR operations"], responses=examples.ERROR_RESPONSES)

CallerDep = Annotated[Caller, Depends(get_caller)]
IdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9\-\.]{1,64}$", description="Logical id")]


async def optional_body(request: Request) -> Any:
    """The Parameters body when there is one (operations may be invoked with an empty POST)."""
    if request.headers.get("content-length", "0") == "0" and "transfer-encoding" not in request.headers:
        return None
    body = await json_body(request)
    # http://hl7.org/fhir/R4/operations.html#request: the input is a Parameters resource, whose
    # `parameter` is an array of objects; checked here once, so no operation trips over another shape.
    parameter = body.get("parameter", []) if isinstance(body, dict) else None
    if (
        not isinstance(body, dict)
        or body.get("resourceType") != "Parameters"
        or not isinstance(parameter, list)
        or not all(isinstance(p, dict) for p in parameter)
    ):
        raise BadRequest(
            "The request body must be a Parameters resource",
            issues=[Issue(code="structure", diagnostics="expected a Parameters resource")],
        )
    return body


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


@router.post(
    "/Questionnaire/$populate",
    summary="SDC $populate: an in-progress QuestionnaireResponse prefilled for a Patient (not stored)",
    response_class=FhirResponse,
)
def populate_questionnaire(
    request: Request, caller: CallerDep, body: Annotated[Any, Depends(optional_body)]
) -> FhirResponse:
    return FhirResponse(run(request, caller, lambda ctx: assessment_populate.populate(ctx, body)))


@router.post(
    "/Questionnaire/{resource_id}/$populate",
    summary="SDC $populate for one Questionnaire: an in-progress QuestionnaireResponse (not stored)",
    response_class=FhirResponse,
)
def populate_questionnaire_instance(
    request: Request, caller: CallerDep, resource_id: IdPath, body: Annotated[Any, Depends(optional_body)]
) -> FhirResponse:
    return FhirResponse(
        run(request, caller, lambda ctx: assessment_populate.populate(ctx, body, resource_id))
    )
