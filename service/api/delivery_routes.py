"""Delivery operations: rotate a webhook secret, and see where deliveries stand."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from service.access.caller import Caller
from service.api import examples
from service.api.deps import get_caller, run, settings_of
from service.api.responses import FhirResponse
from service.delivery import operations
from service.delivery.secrets import SecretBox

router = APIRouter(prefix="/fhir", tags=["Delivery"], responses=examples.ERROR_RESPONSES)

CallerDep = Annotated[Caller, Depends(get_caller)]
IdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9\-\.]{1,64}$", description="Logical id")]


@router.post(
    "/Endpoint/{resource_id}/$rotate-secret",
    summary="a new Standard Webhooks signing secret for a webhook Endpoint (admin; shown once)",
    response_class=FhirResponse,
)
def rotate_secret(request: Request, caller: CallerDep, resource_id: IdPath) -> FhirResponse:
    box: SecretBox = request.app.state.secret_box
    overlap = settings_of(request).webhook_secret_overlap_seconds
    result = run(request, caller, lambda ctx: operations.rotate_secret(ctx, resource_id, box, overlap))
    # The secret is shown once: nothing may cache this response.
    return FhirResponse(result, headers={"Cache-Control": "no-store"})


@router.get(
    "/Task/{resource_id}/$delivery-status",
    summary="the deliveries queued about a Task and where each stands",
    response_class=FhirResponse,
)
def task_delivery_status(request: Request, caller: CallerDep, resource_id: IdPath) -> FhirResponse:
    return FhirResponse(run(request, caller, lambda ctx: operations.task_deliveries(ctx, resource_id)))


@router.get(
    "/Task/$delivery-status",
    summary="deliveries across the hub, e.g. state=dead for dead letters (admin)",
    response_class=FhirResponse,
)
def hub_delivery_status(
    request: Request,
    caller: CallerDep,
    state: Annotated[str | None, Query(description="pending, delivered, pull, cancelled or dead")] = None,
) -> FhirResponse:
    return FhirResponse(run(request, caller, lambda ctx: operations.hub_deliveries(ctx, state)))
