"""Instance and type interactions: read, vread, create, update, delete, history."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Request

from service.access.caller import Caller
from service.api import examples
from service.api.deps import get_caller, json_body, patch_body, run
from service.api.responses import FhirResponse, respond
from service.rest import conditional, history, interactions, registry
from service.rest import patch as patching
from service.rest.context import Context
from service.rest.interactions import Result
from service.rest.patch import PatchDocument

ResourceType = Enum("ResourceType", {name: name for name in registry.TYPES}, type=str)  # type: ignore[misc]

router = APIRouter(prefix="/fhir", tags=["FHIR resources"], responses=examples.ERROR_RESPONSES)

CallerDep = Annotated[Caller, Depends(get_caller)]
BodyDep = Annotated[Any, Depends(json_body)]
IdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9\-\.]{1,64}$", description="Logical id")]
Prefer = Annotated[str | None, Header(description="return=minimal | representation | OperationOutcome")]
IfMatch = Annotated[str | None, Header(description='W/"<versionId>" for optimistic locking')]
IfNoneExist = Annotated[
    str | None, Header(description="Conditional create: a search query, e.g. identifier=sys|val")
]

_DOC_BODY = Body(openapi_examples=examples.CREATE_EXAMPLES, media_type="application/fhir+json")


def type_name(value: Any) -> str:
    return str(value.value if isinstance(value, Enum) else value)


# Literal path segments (_history) must be routed before /{id}.
@router.get("/{resource_type}/_history", summary="type history", response_class=FhirResponse)
def type_history(request: Request, caller: CallerDep, resource_type: ResourceType) -> FhirResponse:
    params = list(request.query_params.multi_items())
    bundle = run(request, caller, lambda ctx: history.type_(ctx, type_name(resource_type), params))
    return FhirResponse(bundle)


@router.get("/{resource_type}/{resource_id}", summary="read", response_class=FhirResponse)
def read(
    request: Request,
    caller: CallerDep,
    resource_type: ResourceType,
    resource_id: IdPath,
    if_none_match: Annotated[str | None, Header(description='W/"<versionId>": 304 if unchanged')] = None,
) -> FhirResponse:
    return read_response(
        run(request, caller, read_work(type_name(resource_type), resource_id)), if_none_match
    )


def read_work(rtype: str, resource_id: str) -> Callable[[Context], Result]:
    return lambda ctx: interactions.read(ctx, rtype, resource_id)


def read_response(result: Result, if_none_match: str | None) -> FhirResponse:
    # Conditional read (http://hl7.org/fhir/R4/http.html#cread): the access is audited either way.
    if if_none_match and result.stored and _etag_matches(if_none_match, result.stored.version_id):
        return respond(304, None, stored=result.stored)
    return respond(result.status, result.body, stored=result.stored)


def _etag_matches(header: str, version_id: int) -> bool:
    tags = {t.strip().removeprefix("W/").strip('"') for t in header.split(",")}
    return "*" in tags or str(version_id) in tags


@router.get(
    "/{resource_type}/{resource_id}/_history/{version_id}", summary="vread", response_class=FhirResponse
)
def vread(
    request: Request, caller: CallerDep, resource_type: ResourceType, resource_id: IdPath, version_id: str
) -> FhirResponse:
    result = run(
        request,
        caller,
        lambda ctx: interactions.vread(ctx, type_name(resource_type), resource_id, version_id),
    )
    return respond(result.status, result.body, stored=result.stored)


@router.post(
    "/{resource_type}",
    summary="create (conditional with If-None-Exist)",
    status_code=201,
    response_class=FhirResponse,
    openapi_extra={
        "requestBody": {"content": {"application/fhir+json": {"examples": examples.CREATE_EXAMPLES}}}
    },
)
def create(
    request: Request,
    caller: CallerDep,
    resource_type: ResourceType,
    body: BodyDep,
    prefer: Prefer = None,
    if_none_exist: IfNoneExist = None,
) -> FhirResponse:
    criteria = create_criteria(request, if_none_exist)
    result = run(request, caller, create_work(type_name(resource_type), body, criteria))
    return write_response(result, prefer)


def create_criteria(request: Request, if_none_exist: str | None) -> str | None:
    """A create's conditional criteria, if it has any: search parameters on a create POST are its
    criteria (ADR 0010), else the If-None-Exist header's."""
    return conditional.query_criteria(list(request.query_params.multi_items()), if_none_exist)


def create_work(rtype: str, body: Any, criteria: str | None) -> Callable[[Context], Result]:
    if criteria:
        return lambda ctx: conditional.create(ctx, rtype, body, criteria)
    return lambda ctx: interactions.create(ctx, rtype, body)


def write_response(result: Result, prefer: str | None) -> FhirResponse:
    return respond(result.status, result.body, stored=result.stored, headers=result.headers, prefer=prefer)


@router.put(
    "/{resource_type}/{resource_id}",
    summary="update (If-Match for optimistic locking)",
    response_class=FhirResponse,
    openapi_extra={
        "requestBody": {"content": {"application/fhir+json": {"examples": examples.UPDATE_EXAMPLES}}}
    },
)
def update(
    request: Request,
    caller: CallerDep,
    resource_type: ResourceType,
    resource_id: IdPath,
    body: BodyDep,
    prefer: Prefer = None,
    if_match: IfMatch = None,
) -> FhirResponse:
    result = run(request, caller, update_work(type_name(resource_type), resource_id, body, if_match))
    return write_response(result, prefer)


def update_work(rtype: str, resource_id: str, body: Any, if_match: str | None) -> Callable[[Context], Result]:
    return lambda ctx: interactions.update(ctx, rtype, resource_id, body, if_match)


@router.patch(
    "/{resource_type}/{resource_id}",
    summary="patch (JSON Patch, RFC 6902; If-Match for optimistic locking)",
    response_class=FhirResponse,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json-patch+json": {
                    "schema": {"type": "array", "items": {"type": "object"}},
                    "examples": examples.PATCH_EXAMPLES,
                }
            },
        }
    },
)
def patch(
    request: Request,
    caller: CallerDep,
    resource_type: ResourceType,
    resource_id: IdPath,
    document: Annotated[PatchDocument, Depends(patch_body)],
    prefer: Prefer = None,
    if_match: IfMatch = None,
) -> FhirResponse:
    rtype = type_name(resource_type)
    result = run(request, caller, lambda ctx: patching.patch(ctx, rtype, resource_id, document, if_match))
    return respond(result.status, result.body, stored=result.stored, headers=result.headers, prefer=prefer)


@router.put(
    "/{resource_type}",
    summary="conditional update (by search, e.g. ?identifier=)",
    response_class=FhirResponse,
)
def conditional_update(
    request: Request,
    caller: CallerDep,
    resource_type: ResourceType,
    body: BodyDep,
    prefer: Prefer = None,
    if_match: IfMatch = None,
) -> FhirResponse:
    rtype = type_name(resource_type)
    query = list(request.query_params.multi_items())
    result = run(request, caller, lambda ctx: conditional.update(ctx, rtype, query, body, if_match))
    return respond(result.status, result.body, stored=result.stored, headers=result.headers, prefer=prefer)


@router.delete(
    "/{resource_type}/{resource_id}", summary="delete (soft; later reads answer 410)", status_code=204
)
def delete(
    request: Request,
    caller: CallerDep,
    resource_type: ResourceType,
    resource_id: IdPath,
    if_match: IfMatch = None,
) -> FhirResponse:
    result = run(
        request, caller, lambda ctx: interactions.delete(ctx, type_name(resource_type), resource_id, if_match)
    )
    return FhirResponse(
        None, status_code=204, headers={"ETag": f'W/"{result.stored.version_id}"'} if result.stored else {}
    )


@router.get(
    "/{resource_type}/{resource_id}/_history", summary="instance history", response_class=FhirResponse
)
def instance_history(
    request: Request, caller: CallerDep, resource_type: ResourceType, resource_id: IdPath
) -> FhirResponse:
    params = list(request.query_params.multi_items())
    bundle = run(
        request, caller, lambda ctx: history.instance(ctx, type_name(resource_type), resource_id, params)
    )
    return FhirResponse(bundle)
