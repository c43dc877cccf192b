"""References between the entries of a Bundle (http://hl7.org/fhir/R4/bundle.html#references).

A transaction's POST entries are given their ids before any entry runs, so every
``fullUrl`` (``urn:uuid:``, ``urn:oid:`` or an absolute URL) maps to the new
``Type/id`` and references between new resources resolve whatever the order.
Conditional references (``Patient?identifier=sys|val``) are searched and must match
exactly one resource the caller may see (http://hl7.org/fhir/R4/http.html#trules).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from service.access import policy
from service.errors import BadRequest, Issue, PreconditionFailed
from service.fhir.references import map_references, reference_set
from service.rest.context import Context
from service.rest.interactions import require_type
from service.rest.search import find

PLACEHOLDERS = ("urn:uuid:", "urn:oid:")
_CONDITIONAL = re.compile(r"^([A-Z][A-Za-z]+)\?(.+)$")


def rewrite(
    ctx: Context, resource: dict[str, Any], mapping: dict[str, str], *, strict: bool
) -> dict[str, Any]:
    """A copy of ``resource`` with every ``reference`` resolved.

    ``strict`` (transactions): a ``urn:`` reference that names no entry is an error,
    since it could never resolve once stored. Batches leave such references alone.
    """
    resolved: dict[str, str] = {}

    def ref(value: str) -> str:
        if value in mapping:
            return mapping[value]
        if value.startswith(PLACEHOLDERS):
            if strict:
                raise BadRequest(
                    f"Reference '{value}' names no entry of this transaction",
                    issues=[
                        Issue(
                            code="not-found", diagnostics=f"Reference '{value}' names no entry of this Bundle"
                        )
                    ],
                )
            return value
        match = _CONDITIONAL.match(value)
        if match is None:
            return value
        if value not in resolved:
            resolved[value] = _resolve_conditional(ctx, match.group(1), match.group(2))
        return resolved[value]

    result: dict[str, Any] = map_references(resource, ref)
    return result


def rewrite_url(url: str, mapping: dict[str, str]) -> str:
    """Placeholders inside an entry's request URL (e.g. ``Consent?patient=urn:uuid:...``)."""
    if "?" not in url:
        return mapping.get(url, url)
    path, _, query = url.partition("?")
    for placeholder, target in mapping.items():
        query = query.replace(placeholder, target)
    return f"{path}?{query}"


def _resolve_conditional(ctx: Context, resource_type: str, query: str) -> str:
    require_type(resource_type, "search-type")
    policy.authorize(ctx.caller, resource_type, "search-type")
    params = parse_qsl(query, keep_blank_values=False)
    if not params:
        raise BadRequest(f"A conditional reference to {resource_type} has no search criteria")
    matches = find(ctx, resource_type, params)
    if len(matches) != 1:
        found = "no" if not matches else "more than one"
        # The criteria are not echoed: they usually carry identifiers (NHS numbers).
        raise PreconditionFailed(
            f"A conditional reference matched {found} {resource_type}; it must match exactly one"
        )
    return f"{resource_type}/{matches[0].id}"


def creation_order(
    order: list[int], new_refs: dict[int, str], resources: dict[int, dict[str, Any] | None]
) -> list[int]:
    """Entries ordered so a new resource is written before the new resources that reference it.

    Validation rules check that references resolve, so the spec's "regardless of order"
    needs the referenced resource stored first. Stable (Kahn's algorithm, request order
    among the ready); a reference cycle falls back to request order and fails its rule.
    """
    owner = {ref: index for index, ref in new_refs.items()}
    needs = {i: {owner[r] for r in reference_set(resources.get(i)) if r in owner} - {i} for i in order}
    done: set[int] = set()
    ordered: list[int] = []
    remaining = list(order)
    while remaining:
        ready = next((i for i in remaining if needs[i] <= done), remaining[0])
        remaining.remove(ready)
        done.add(ready)
        ordered.append(ready)
    return ordered
