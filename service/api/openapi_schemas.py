"""JSON schemas for the OpenAPI document: fhir.resources' own, corrected to what FHIR JSON allows.

The models' ``model_json_schema()`` is used whole, with three corrections that make it tell the
truth about what the hub sends and accepts (schemathesis validates every response against it):

- FHIR JSON has no ``null`` (http://hl7.org/fhir/R4/json.html): the models' optional fields are
  ``anyOf [T, null]``; the ``null`` branch and its ``default: null`` are dropped.
- FHIR dates and dateTimes may be partial (``2026``, ``2026-11``, ``2026-11-22``), which JSON
  Schema's ``format: date-time`` and ``date`` refuse: those become the R4 regular expressions.
- Arrays are never empty in FHIR JSON: ``minItems: 1``.

Nested elements are typed loosely (``{}``) by the models rather than expanding every datatype;
that keeps the document small (~260 KB of schemas for 24 types) and is accurate, if not strict.
The library's private keywords (``element_property`` and the like) are removed; its
``enum_values`` become a real ``enum``.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from service.fhir.models import model_class

_PRIVATE_KEYWORDS = (
    "element_property",
    "element_required",
    "summary_element_property",
    "enum_reference_types",
    "enum_values",
    "one_of_many",
    "one_of_many_required",
    "union_mode",
    "union_key",
)

# http://hl7.org/fhir/R4/datatypes.html#date, #dateTime (instants match it too), #time
_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_DATE = _YEAR + r"(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
_ZONE = r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_DATE_TIME = _YEAR + r"(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T" + _TIME + _ZONE + r")?)?)?"
_FORMATS = {"date": _DATE, "date-time": _DATE_TIME, "time": _TIME}


@lru_cache(maxsize=64)
def _schema(name: str) -> dict[str, Any]:
    schema = model_class(name).model_json_schema()
    props = schema.setdefault("properties", {})
    props.pop("resource_type", None)
    props["resourceType"] = {"type": "string", "const": name, "description": "Always " + name}
    schema["required"] = ["resourceType", *[r for r in schema.get("required", []) if r in props]]
    # Responses may carry elements the models name differently (primitive extensions `_x`):
    # a strict additionalProperties=false would call a valid resource wrong.
    schema.pop("additionalProperties", None)
    schema["properties"] = {k: _clean(v) for k, v in props.items()}
    schema["title"] = name
    return schema


def resource_schema(name: str) -> dict[str, Any]:
    return copy.deepcopy(_schema(name))


def _clean(prop: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in prop.items() if k not in _PRIVATE_KEYWORDS}
    if out.get("default", ...) is None:
        del out["default"]
    branches = [_fhir_json(b) for b in out.pop("anyOf", []) if b.get("type") != "null"]
    enum = prop.get("enum_values")
    if enum:
        for branch in branches:
            if branch.get("type") == "string":
                branch["enum"] = list(enum)
    if len(branches) == 1:
        out.update(branches[0])
    elif branches:
        out["anyOf"] = branches
    return _fhir_json(out)


def _fhir_json(schema: dict[str, Any]) -> dict[str, Any]:
    out = dict(schema)
    fmt = out.get("format")
    if fmt in _FORMATS and out.get("type") == "string":
        del out["format"]
        out["pattern"] = f"^{_FORMATS[fmt]}$"
    if out.get("type") == "array":
        out.setdefault("minItems", 1)
    return out
