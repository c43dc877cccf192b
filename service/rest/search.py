"""Search (http://hl7.org/fhir/R4/search.html): parse, apply visibility, page, include.

Searches run over the index tables (``service.search.compile``) with the caller's
visibility as one more SQL condition, so totals and pages only ever count what the
caller may see.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import orjson
from sqlalchemy import ColumnElement

from service.access import policy
from service.access.minimise import caller_views
from service.access.visibility import filter_visible, reach_condition, reach_values, search_reach
from service.audit import record
from service.errors import BadRequest, Issue, operation_outcome
from service.rest.context import Context
from service.rest.interactions import require_type
from service.rest.subsetting import subset
from service.search.compile import compile_query, sort_expression
from service.search.params import params_for
from service.search.parse import SearchQuery, parse_search
from service.storage import search_sql
from service.storage.resources import R, Stored

MAX_INCLUDE_DEPTH = 3


def _encode(values: list[Any], direction: str) -> str:
    def enc(v: Any) -> Any:
        if isinstance(v, datetime):
            return ["dt", v.isoformat()]
        if isinstance(v, Decimal):
            return ["dec", str(v)]
        return v

    raw = orjson.dumps({"d": direction, "v": [enc(v) for v in values]})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[str, list[Any]]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        values: list[Any] = []
        for v in data["v"]:
            if isinstance(v, list) and v[0] == "dt":
                values.append(datetime.fromisoformat(v[1]))
            elif isinstance(v, list) and v[0] == "dec":
                values.append(Decimal(v[1]))
            else:
                values.append(v)
        direction = data["d"]
        if direction not in ("after", "before"):
            raise ValueError(direction)
        return direction, values
    except (ValueError, KeyError, TypeError, IndexError, binascii.Error, orjson.JSONDecodeError):
        raise BadRequest("The _cursor paging token is not valid; start again from the first page") from None


def _patients_of(resources: list[Stored]) -> list[str]:
    found: list[str] = []
    for s in resources:
        if s.resource_type == "Patient":
            found.append(f"Patient/{s.id}")
            continue
        content = s.content or {}
        for key in ("subject", "patient", "for"):
            ref = content.get(key)
            if isinstance(ref, dict) and str(ref.get("reference", "")).startswith("Patient/"):
                found.append(ref["reference"])
    return sorted(set(found))


def _includes(ctx: Context, query: SearchQuery, matches: list[Stored]) -> list[Stored]:
    seen = {(s.resource_type, s.id) for s in matches}
    included: list[Stored] = []
    frontier = matches
    for depth in range(MAX_INCLUDE_DEPTH):
        found: list[Stored] = []
        for inc in query.includes:
            if depth > 0 and not inc.iterate:
                continue
            sources = [s.rid for s in frontier if s.resource_type == inc.source_type]
            pairs = search_sql.referenced(ctx.conn, inc.source_type, sources, inc.param, inc.target_type)
            found.extend(search_sql.by_type_ids(ctx.conn, [p for p in pairs if p not in seen]))
        for rev in query.revincludes:
            if depth > 0 and not rev.iterate:
                continue
            targets = [(s.resource_type, s.id) for s in frontier]
            found.extend(search_sql.referencing(ctx.conn, rev.source_type, rev.param, targets))
        # The same scope, role and visibility checks as a direct search of each included type.
        allowed = [s for s in found if policy.may_search(ctx.caller, s.resource_type)]
        fresh = []
        for s in filter_visible(ctx.conn, ctx.caller, allowed):
            if (s.resource_type, s.id) not in seen:
                seen.add((s.resource_type, s.id))
                fresh.append(s)
        if not fresh:
            break
        included.extend(fresh)
        frontier = fresh
    return included


def search(
    ctx: Context, resource_type: str, params: list[tuple[str, str]], *, strict: bool = False
) -> dict[str, Any]:
    require_type(resource_type, "search-type")
    policy.authorize(ctx.caller, resource_type, "search-type")
    query = parse_search(resource_type, params)
    if query.offset:
        # Pages are keyset-linked by _cursor; an offset would be silently ignored, so say so.
        query.unknown.append("_offset")
    if query.unknown and strict:
        raise BadRequest(
            "Unknown or unsupported search parameters: " + ", ".join(query.unknown),
            issues=[
                Issue(code="not-supported", diagnostics=f"Unknown or unsupported search parameter '{u}'")
                for u in query.unknown
            ],
        )
    criteria = _criteria(ctx, query)
    self_params = [(k, v) for k, v in params if k not in ("_cursor",)]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    # Counting every match costs far more than a page (100 ms against 8 ms for a partner's
    # inbox at 100k Tasks), so an exact COUNT runs only when asked for (_total=accurate or
    # estimate, _summary=count). Otherwise a first page that holds every match states its
    # total for free, and a longer result set has none: Bundle.total is optional (0..1).
    # _count=0 asks for the total alone (http://hl7.org/fhir/R4/search.html#count).
    if query.total in ("accurate", "estimate") or query.summary == "count" or query.count == 0:
        bundle["total"] = search_sql.count(ctx.conn, criteria)
    links = [{"relation": "self", "url": _url(ctx, resource_type, params)}]
    entries: list[dict[str, Any]] = []
    matches: list[Stored] = []
    if query.summary != "count":
        after = before = None
        if query.cursor:
            direction, values = _decode(query.cursor)
            after, before = (values, None) if direction == "after" else (None, values)
            if len(values) != len(query.sort) + 1:
                raise BadRequest("The _cursor paging token does not fit this search's _sort")
        rows, keys = search_sql.page(ctx.conn, criteria, limit=query.count + 1, after=after, before=before)
        has_more = len(rows) > query.count
        if "total" not in bundle and query.total != "none" and query.cursor is None and not has_more:
            bundle["total"] = len(rows)
        if before is not None:
            rows, keys = (rows[1:], keys[1:]) if has_more else (rows, keys)
        else:
            rows, keys = rows[: query.count], keys[: query.count]
        matches = rows
        if rows and (has_more or before is not None):
            links.append(
                {
                    "relation": "next",
                    "url": _url(ctx, resource_type, [*self_params, ("_cursor", _encode(keys[-1], "after"))]),
                }
            )
        if rows and (query.cursor is not None and (after is not None or has_more)):
            links.append(
                {
                    "relation": "previous",
                    "url": _url(ctx, resource_type, [*self_params, ("_cursor", _encode(keys[0], "before"))]),
                }
            )
        found = [(s, "match") for s in rows] + [(s, "include") for s in _includes(ctx, query, rows)]
        # Matches and includes alike in the caller's view (access.minimise), before any _summary/_elements.
        contents = caller_views(ctx.conn, ctx.caller, [s for s, _ in found])
        for (s, mode), content in zip(found, contents, strict=True):
            entries.append(_entry(ctx, s, content, mode, query))
    if query.unknown:
        outcome = operation_outcome(
            [
                Issue(
                    code="not-supported",
                    severity="warning",
                    diagnostics=f"Search parameter '{u}' is not supported and was ignored",
                )
                for u in query.unknown
            ]
        )
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    bundle["link"] = links
    if entries:
        bundle["entry"] = entries
    record.access(
        ctx, "search", [], query=f"{resource_type}?{urlencode(params)}", patients=_patients_of(matches)
    )
    return bundle


def _entry(
    ctx: Context, stored: Stored, content: dict[str, Any] | None, mode: str, query: SearchQuery
) -> dict[str, Any]:
    content = content or {}
    if query.summary or query.elements:
        content = subset(content, query.summary, query.elements)
    return {
        "fullUrl": f"{ctx.base_url}/{stored.resource_type}/{stored.id}",
        "resource": content,
        "search": {"mode": mode},
    }


def _url(ctx: Context, resource_type: str, params: list[tuple[str, str]]) -> str:
    query = urlencode(params)
    return f"{ctx.base_url}/{resource_type}" + (f"?{query}" if query else "")


# Parameters that only shape the page they are given with: they add no work that grows with the table.
_PAGE_CONTROLS = frozenset({"_count", "_cursor", "_elements"})


def bounded_by_page(resource_type: str, params: list[tuple[str, str]]) -> bool:
    """Whether a search's database work is bounded by its page rather than by the table: every filter
    an equality on a token or reference index (or ``_id``), at least one of them, and no count,
    sort or include. Such a page is the first ``_count`` rids of one index range (search_sql's driven
    page), a few hundred microseconds; others can scan, sort or count every match."""
    defs = params_for(resource_type)
    positive = False
    for name, value in params:
        base, _, modifier = name.partition(":")
        if base in _PAGE_CONTROLS:
            if base == "_count" and value.strip() == "0":
                return False  # the total alone: a COUNT of every match
            continue
        if base == "_id" and not modifier:
            positive = True
            continue
        param = defs.get(base)
        if param is None or param.type not in ("token", "reference"):
            return False
        if modifier and not (param.type == "reference" and modifier[:1].isupper()):
            return False  # :not, :missing, :text, :above... scan or negate; :Type only narrows
        positive = True
    return positive


def find(ctx: Context, resource_type: str, params: list[tuple[str, str]], *, limit: int = 2) -> list[Stored]:
    """Visible current matches for a conditional interaction (no paging, no audit)."""
    query = parse_search(resource_type, params)
    if query.unknown:
        raise BadRequest("Conditional criteria use unknown parameters: " + ", ".join(query.unknown))
    if not query.filters:
        raise BadRequest("Conditional criteria must contain at least one search parameter")
    rows, _ = search_sql.page(ctx.conn, _criteria(ctx, query), limit=limit)
    return rows


def _criteria(ctx: Context, query: SearchQuery) -> search_sql.Criteria:
    """The query's filters, sort and the caller's visibility, as a shape and values: the SQL is
    built only for a shape not yet seen (search/compile.py, storage/search_sql.py)."""
    rtype = query.resource_type
    filters = compile_query(query, base_url=ctx.base_url, now=ctx.now)
    reach = search_reach(ctx.caller, rtype)
    values = {**filters.values, **reach_values(reach, ctx.caller.organization_id)}

    def conditions() -> list[ColumnElement[bool]]:
        found = filters.conditions(R)
        visible = reach_condition(reach, R.c.rid, ctx.caller.organization_id)
        return found if visible is None else [*found, visible]

    def sort() -> list[tuple[ColumnElement[Any], bool]]:
        return [(sort_expression(name, rtype, desc, R), desc) for name, desc in query.sort]

    shape = (filters.shape, reach, tuple(query.sort))
    return search_sql.Criteria(rtype, shape, values, conditions, sort)
