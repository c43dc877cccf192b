"""Search by GET and by POST ``_search`` (http://hl7.org/fhir/R4/search.html#Introduction)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Header, Request
from starlette.concurrency import run_in_threadpool

from service.access.caller import Caller
from service.api import examples
from service.api.deps import get_caller, run, settings_of
from service.api.resource_routes import ResourceType, type_name
from service.api.responses import FhirResponse
from service.errors import PayloadTooLarge, UnsupportedMediaType
from service.rest import search
from service.rest.context import Context

router = APIRouter(prefix="/fhir", tags=["FHIR search"], responses=examples.ERROR_RESPONSES)

CallerDep = Annotated[Caller, Depends(get_caller)]
PreferHandling = Annotated[
    str | None, Header(alias="Prefer", description="handling=strict refuses unknown parameters with 400")
]


def _strict(prefer: str | None) -> bool:
    return bool(prefer) and "handling=strict" in (prefer or "").replace(" ", "")


@router.get(
    "/{resource_type}",
    summary="search",
    response_class=FhirResponse,
    description=(
        "Search with the parameters listed in the CapabilityStatement. Examples: the partner inbox "
        "`Task?owner=Organization/{id}&status=requested&_count=20`; a clinic following its referrals "
        "`Task?requester=Organization/{id}&_lastUpdated=gt2026-11-01T00:00:00Z` or "
        "`Task?focus=ServiceRequest/{id}`. Paging links (`next`, `previous`) use an opaque `_cursor`."
    ),
)
def search_get(
    request: Request, caller: CallerDep, resource_type: ResourceType, prefer: PreferHandling = None
) -> FhirResponse:
    params = list(request.query_params.multi_items())
    return FhirResponse(run(request, caller, search_work(type_name(resource_type), params, prefer)))


def search_work(
    rtype: str, params: list[tuple[str, str]], prefer: str | None
) -> Callable[[Context], dict[str, Any]]:
    return lambda ctx: search.search(ctx, rtype, params, strict=_strict(prefer))


@router.post("/{resource_type}/_search", summary="search (POST, form-encoded)", response_class=FhirResponse)
async def search_post(
    request: Request, caller: CallerDep, resource_type: ResourceType, prefer: PreferHandling = None
) -> FhirResponse:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and content_type != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType("POST _search takes application/x-www-form-urlencoded parameters")
    body = await request.body()
    if len(body) > settings_of(request).max_body_bytes:
        raise PayloadTooLarge("Search body too large")
    # As on GET (Starlette keeps blank values): a parameter with no value is still a parameter.
    form = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    params = list(request.query_params.multi_items()) + form
    bundle = await run_in_threadpool(
        run, request, caller, search_work(type_name(resource_type), params, prefer)
    )
    return FhirResponse(bundle)
