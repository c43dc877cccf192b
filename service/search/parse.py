"""Parsing a FHIR search query string into a ``SearchQuery``.

http://hl7.org/fhir/R4/search.html: a repeated parameter is an AND, a comma inside one
value is an OR (``\\,`` is a literal comma). Unknown parameters and modifiers we do
not support are collected in ``SearchQuery.unknown`` rather than failing: the caller
reports them (OperationOutcome) or refuses them under ``Prefer: handling=strict``.
Malformed values always fail with 400 naming the parameter.
"""

from __future__ import annotations

from typing import cast

from service.errors import BadRequest, Issue
from service.fhir.strings import has_control_characters
from service.search import _parse_values as pv
from service.search._escape import split_unescaped
from service.search._query import (
    DEFAULT_COUNT,
    MAX_COUNT,
    NO_SYSTEM,
    PREFIXES,
    DateValue,
    Filter,
    Include,
    NumberValue,
    Prefix,
    ReferenceValue,
    SearchQuery,
    SearchValue,
    StringValue,
    Summary,
    TokenValue,
    Total,
    UriValue,
)
from service.search.params import SEARCH_PARAMS, params_for
from service.search.types import SearchParam

__all__ = [
    "DEFAULT_COUNT",
    "MAX_COUNT",
    "NO_SYSTEM",
    "PREFIXES",
    "DateValue",
    "Filter",
    "Include",
    "NumberValue",
    "Prefix",
    "ReferenceValue",
    "SearchQuery",
    "SearchValue",
    "StringValue",
    "TokenValue",
    "UriValue",
    "parse_search",
]

_IGNORED = frozenset({"_format", "_pretty"})
_TOTALS = frozenset({"none", "estimate", "accurate"})
_SUMMARIES = frozenset({"true", "count", "text", "data", "false"})
# Modifiers per parameter type, besides :missing (all types) and :Type (reference).
_MODIFIERS: dict[str, frozenset[str]] = {
    "token": frozenset({"not", "text"}),
    "string": frozenset({"exact", "contains"}),
    "uri": frozenset({"below", "above"}),
}


def _bad(param: str, message: str) -> BadRequest:
    diagnostics = f"Invalid value for search parameter '{param}': {message}"
    return BadRequest(diagnostics, issues=[Issue("invalid", diagnostics, expression=(param,))])


def _value(param: SearchParam, modifier: str | None, raw: str) -> SearchValue:
    if param.type == "token":
        return pv.token(raw, modifier == "text")
    if param.type == "string":
        return pv.string(raw)
    if param.type == "date":
        return pv.date(raw)
    if param.type == "reference":
        return pv.reference(raw, modifier)
    if param.type in ("number", "quantity"):
        return pv.number(raw, param.type == "quantity")
    return pv.uri(raw)


def _modifier_ok(param: SearchParam, modifier: str) -> bool:
    if not param.expression:  # _id and _lastUpdated are resource columns: always present
        return param.name == "_id" and modifier == "not"
    if param.type == "reference" and modifier[:1].isupper():
        return modifier.isalpha() and (not param.targets or modifier in param.targets)
    return modifier == "missing" or modifier in _MODIFIERS.get(param.type, frozenset())


def _filter(param: SearchParam, modifier: str | None, raw: str, key: str) -> Filter | None:
    if modifier == "missing":
        if raw not in ("true", "false"):
            raise _bad(key, f":missing takes true or false, not {raw!r}")
        return Filter(param, "missing", (), raw == "true")
    try:
        values = tuple(_value(param, modifier, part) for part in split_unescaped(raw, ",") if part)
    except ValueError as exc:
        raise _bad(key, str(exc)) from exc
    return Filter(param, modifier, values) if values else None  # an empty value is ignored (spec)


def _include(query: SearchQuery, key: str, raw: str) -> None:
    iterate = key.endswith((":iterate", ":recurse"))
    parts = raw.split(":")
    source = parts[0]
    params = SEARCH_PARAMS.get(source, {})
    foreign = not iterate and key.startswith("_include") and source != query.resource_type
    if len(parts) not in (2, 3) or foreign:
        query.unknown.append(f"{key}={raw}")
        return
    names = [n for n, p in params.items() if p.type == "reference"] if parts[1] == "*" else [parts[1]]
    target = parts[2] if len(parts) == 3 else None
    found = False
    for name in names:
        param = params.get(name)
        if param is None or param.type != "reference":
            continue
        if target and param.targets and target not in param.targets:
            continue
        found = True
        entry = Include(source, name, target, iterate)
        (query.includes if key.startswith("_include") else query.revincludes).append(entry)
    if not found:
        query.unknown.append(f"{key}={raw}")


def _int(key: str, raw: str) -> int:
    if not raw.isdigit():
        raise _bad(key, f"expected a non-negative integer, not {raw!r}")
    return int(raw)


def _control(query: SearchQuery, key: str, raw: str, defs: dict[str, SearchParam]) -> None:
    name = key.split(":", 1)[0]
    if name == "_count":
        query.count = min(_int(key, raw), MAX_COUNT)
    elif name == "_offset":
        query.offset = _int(key, raw)
    elif name == "_cursor":
        query.cursor = raw
    elif name == "_sort":
        for item in (s.strip() for s in raw.split(",") if s.strip()):
            field = item.removeprefix("-")
            if field in defs:
                query.sort.append((field, item.startswith("-")))
            else:
                query.unknown.append(f"_sort={field}")
    elif name in ("_include", "_revinclude"):
        _include(query, key, raw)
    elif name == "_total":
        if raw not in _TOTALS:
            raise _bad(key, "expected none, estimate or accurate")
        query.total = cast(Total, raw)
    elif name == "_summary":
        if raw not in _SUMMARIES:
            raise _bad(key, "expected true, count, text, data or false")
        query.summary = cast(Summary, raw)
    elif name == "_elements":
        query.elements.extend(e.strip() for e in raw.split(",") if e.strip())


_CONTROLS = frozenset(
    {"_count", "_offset", "_cursor", "_sort", "_include", "_revinclude", "_total", "_summary", "_elements"}
)


def _refuse_control_characters(key: str, raw: str) -> None:
    # Search values are FHIR strings: no control characters but tab, CR and LF
    # (http://hl7.org/fhir/R4/datatypes.html#string). Checked before anything else, so a NUL
    # never reaches the database (a 500 on PostgreSQL, a silent match on SQLite). The value
    # is never echoed; the name only when it is clean.
    if has_control_characters(key):
        raise _bad("?", "a search parameter name must not contain control characters")
    if has_control_characters(raw):
        raise _bad(key, "search values must not contain control characters (U+0000-U+001F)")


def parse_search(resource_type: str, params: list[tuple[str, str]]) -> SearchQuery:
    query = SearchQuery(resource_type)
    defs = params_for(resource_type)
    for key, raw in params:
        _refuse_control_characters(key, raw)
        name, _, modifier = key.partition(":")
        if name in _IGNORED:
            continue
        if name in _CONTROLS:
            _control(query, key, raw, defs)
            continue
        param = defs.get(name)  # chained names (subject.name) are not definitions, so land in unknown
        if param is None or (modifier and not _modifier_ok(param, modifier)):
            query.unknown.append(key)
            continue
        if found := _filter(param, modifier or None, raw, key):
            query.filters.append(found)
    return query
