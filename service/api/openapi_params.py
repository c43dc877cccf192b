"""Parameters and headers of the OpenAPI document, with schemas as exact as the hub's parsing.

Schemathesis sends whatever a schema allows and expects it accepted (and what it forbids,
refused), so each schema says what the hub really takes: FHIR strings without control
characters (``service/fhir/strings.py``), the result parameters' own value sets
(``service/search/parse.py``), entity tags as ``If-Match`` compares them.
"""

from __future__ import annotations

from typing import Any

from service.search.params import params_for
from service.search.types import SearchParam

# A FHIR string: below U+0020 only tab, LF and CR (http://hl7.org/fhir/R4/datatypes.html#string).
FHIR_STRING: dict[str, Any] = {"type": "string", "pattern": "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f]*$"}
ID: dict[str, Any] = {"type": "string", "pattern": r"^[A-Za-z0-9\-\.]{1,64}$"}

# How each FHIR search parameter type is written (http://hl7.org/fhir/R4/search.html#ptypes).
_TYPE_HELP = {
    "token": "token: `system|code`, `code` or `system|`",
    "string": "string: starts with, case- and accent-insensitive; `:exact`, `:contains`",
    "date": "date: `YYYY[-MM[-DD[Thh:mm:ssZ]]]` with an optional prefix `eq ne gt lt ge le sa eb ap`",
    "reference": "reference: `Type/id`",
    "quantity": "quantity: `[prefix]number|system|code`",
    "number": "number: with an optional prefix `eq ne gt lt ge le`",
    "uri": "uri: exact match; `:below`, `:above`",
    "composite": "composite: `value1$value2`",
}
# (name, schema, description) of the result parameters (http://hl7.org/fhir/R4/search.html#return).
_RESULT_PARAMS: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("_count", {"type": "integer", "minimum": 0}, "Page size; 0 for the total only (capped at 200)"),
    ("_sort", FHIR_STRING, "Comma-separated parameter names, `-` for descending, e.g. `-_lastUpdated`"),
    ("_include", FHIR_STRING, "e.g. `ServiceRequest:patient`: add the referenced resources"),
    ("_revinclude", FHIR_STRING, "e.g. `Task:focus`: add resources that reference the matches"),
    (
        "_total",
        {"type": "string", "enum": ["none", "estimate", "accurate"]},
        "`accurate` or `estimate` for an exact Bundle.total, `none` for none",
    ),
    (
        "_summary",
        {"type": "string", "enum": ["true", "false", "count", "data", "text"]},
        "`true`, `false`, `count`, `data` or `text`",
    ),
    ("_elements", FHIR_STRING, "Comma-separated element names to return"),
)


def header(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def path_id(name: str = "id") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": "Logical id", "schema": ID}


PATH_VID = {"name": "vid", "in": "path", "required": True, "description": "versionId", "schema": ID}
# A plain string, not an enum: with return=minimal the answer has no body, and OpenAPI cannot say
# that a status's content depends on a request header (schemathesis, rightly, reads the document
# as promising a body). Other values are ignored, as RFC 7240 §2 asks.
PREFER = header("Prefer", "return=minimal (no body) | representation | OperationOutcome")
# Entity tags are compared, not parsed: `W/"3"` (as the hub writes them), `"3"` and `3` all name
# version 3, and any other value simply does not match (412 for If-Match, a 200 for If-None-Match).
IF_MATCH = header("If-Match", 'W/"<versionId>" for optimistic locking (412 if it is not current)')
IF_NONE_MATCH = header("If-None-Match", 'W/"<versionId>": 304 if unchanged')
IF_NONE_EXIST = header(
    "If-None-Exist", "Conditional create: a search query, e.g. identifier=sys|val", FHIR_STRING
)
VERSION_HEADERS = {"ETag": 'W/"<versionId>"', "Last-Modified": "When this version was written"}


def search_parameters(name: str, *, criteria: bool = False) -> list[dict[str, Any]]:
    """A type's search parameters, then the result parameters (not for ``criteria`` of a write)."""
    out = [_search_parameter(p) for _, p in sorted(params_for(name).items())]
    if criteria:
        return out
    out += [
        {"name": n, "in": "query", "required": False, "description": d, "schema": schema}
        for n, schema, d in _RESULT_PARAMS
    ]
    return out


def _search_parameter(param: SearchParam) -> dict[str, Any]:
    what = param.description or (f"`{param.expression}`" if param.expression else param.name)
    targets = f" (to {', '.join(param.targets)})" if param.targets else ""
    return {
        "name": param.name,
        "in": "query",
        "required": False,
        "description": (
            f"{what}{targets}. FHIR {_TYPE_HELP.get(param.type, param.type)}. Definition: {param.url}"
        ),
        "schema": FHIR_STRING,
        "x-fhir-type": param.type,
    }


def search_form(name: str) -> dict[str, Any]:
    """``POST _search``: the same parameters, form-encoded; other names are ignored, as on GET."""
    return {
        "type": "object",
        "properties": {
            p["name"]: {**p["schema"], "description": p["description"]} for p in search_parameters(name)
        },
        "propertyNames": FHIR_STRING,
        "additionalProperties": FHIR_STRING,
    }
