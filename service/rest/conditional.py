"""Conditional create and update (http://hl7.org/fhir/R4/http.html#ccreate, #cond-update).

A retried create from an integration must not make a duplicate: the criteria are
searched under a transaction-scoped lock keyed by the criteria, so two concurrent
identical creates serialise and the second finds the first. Only resources visible
to the caller are matched, so the answer (200 vs 201) reveals nothing about other
organisations' records.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from service.access import policy
from service.errors import BadRequest, PreconditionFailed
from service.rest import interactions
from service.rest.context import Context
from service.rest.interactions import Result, require_type
from service.rest.search import find
from service.storage import locks


def _criteria(text: str) -> list[tuple[str, str]]:
    params = parse_qsl(text.lstrip("?"), keep_blank_values=False)
    if not params:
        raise BadRequest("If-None-Exist must hold search criteria, e.g. identifier=system|value")
    return params


def _lock(ctx: Context, resource_type: str, params: list[tuple[str, str]]) -> None:
    locks.lock(ctx.conn, f"conditional:{resource_type}:{sorted(params)}")


# Parameters that shape the response, never part of a condition (http.html#parameters).
FORMAT_PARAMS = ("_format", "_pretty")


def query_criteria(query: list[tuple[str, str]], if_none_exist: str | None) -> str | None:
    """Conditional create criteria from a create POST's query string (ADR 0010), else the header.

    fhirpy's ``get_or_create`` and ``create(identifier=...)`` send the criteria this way (as Aidbox
    accepts them); ignoring them would silently make a duplicate.
    """
    params = [(k, v) for k, v in query if k not in FORMAT_PARAMS]
    if not params:
        return if_none_exist
    if if_none_exist:
        raise BadRequest(
            "Conditional create criteria were sent both as If-None-Exist and in the URL; send them once"
        )
    return urlencode(params)


def create(ctx: Context, resource_type: str, body: Any, if_none_exist: str) -> Result:
    require_type(resource_type, "create")
    policy.authorize(ctx.caller, resource_type, "create")
    params = _criteria(if_none_exist)
    _lock(ctx, resource_type, params)
    matches = find(ctx, resource_type, params)
    if len(matches) > 1:
        raise PreconditionFailed(
            f"If-None-Exist matched more than one {resource_type}; the criteria are not selective"
        )
    if matches:
        found = matches[0]
        return Result(200, found, found.content)
    return interactions.create(ctx, resource_type, body)


def update(
    ctx: Context, resource_type: str, params: list[tuple[str, str]], body: Any, if_match: str | None
) -> Result:
    require_type(resource_type, "update")
    policy.authorize(ctx.caller, resource_type, "update")
    params = [(k, v) for k, v in params if k not in FORMAT_PARAMS]
    if not params:
        raise BadRequest(
            "A conditional update needs search criteria in the URL, e.g. ?identifier=system|value"
        )
    _lock(ctx, resource_type, params)
    matches = find(ctx, resource_type, params)
    if len(matches) > 1:
        raise PreconditionFailed(f"The criteria matched more than one {resource_type}")
    if not matches:
        if isinstance(body, dict) and "id" in body:
            return interactions.update(ctx, resource_type, str(body["id"]), body, if_match)
        return interactions.create(ctx, resource_type, body)
    target = matches[0]
    if isinstance(body, dict) and "id" in body and body["id"] != target.id:
        raise BadRequest(f"The resource id does not match the {resource_type} the criteria found")
    if isinstance(body, dict):
        body = {**body, "id": target.id}
    return interactions.update(ctx, resource_type, target.id, body, if_match)
