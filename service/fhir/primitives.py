"""JSON primitive types and required code bindings, which the models let through.

The fhir.resources models coerce in lax mode (``"active": "yes"`` becomes ``True``,
``"multipleBirthInteger": "3"`` becomes ``3``) and do not enforce required bindings
(``"gender": "robot"``). Wraparound stores the JSON as received, so both must be
refused up front: FHIR JSON represents booleans and numbers as JSON booleans and
numbers and everything else as strings (http://hl7.org/fhir/R4/json.html#primitive),
and a ``code`` with a required binding must come from its value set
(http://hl7.org/fhir/R4/terminologies.html#required). The walk runs after the model
has validated the structure, so it only looks at leaves.
"""

from __future__ import annotations

import typing
from decimal import Decimal
from functools import lru_cache
from typing import Any

from fhir_core.types import FhirBase

from service.fhir.models import FHIRAbstractModel, model_class
from service.fhir.strings import has_control_characters

# (JSON path, OperationOutcome issue code, what is wrong): never the offending value,
# which may be special-category data.
Problem = tuple[str, str, str]


class _Field(typing.NamedTuple):
    kind: str  # "bool" | "int" | "decimal" | "string" | "model" | "resource" | "any"
    model: type[FHIRAbstractModel] | None
    codes: frozenset[str] | None


def _unwrap(annotation: Any) -> Any:
    """The element type, without Optional/List/Annotated/Union-with-None."""
    while True:
        origin = typing.get_origin(annotation)
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if origin is typing.Annotated:
            annotation = args[0]
        elif origin in (list, typing.List, typing.Union, getattr(__import__("types"), "UnionType", None)):  # noqa: UP006
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


# The models list at most eight codes of a binding and end a longer list with "+";
# for those the complete R4 value sets the referral flow depends on are given here,
# and other truncated lists are not enforced.
_COMPLETE_CODES: dict[tuple[str, str], frozenset[str]] = {
    # http://hl7.org/fhir/R4/valueset-task-status.html
    ("Task", "status"): frozenset(
        (
            *("draft", "requested", "received", "accepted", "rejected", "ready", "cancelled"),
            *("in-progress", "on-hold", "failed", "completed", "entered-in-error"),
        )
    ),
    # http://hl7.org/fhir/R4/valueset-item-type.html
    ("QuestionnaireItem", "type"): frozenset(
        (
            *("group", "display", "question", "boolean", "decimal", "integer", "date", "dateTime", "time"),
            *("string", "text", "url", "choice", "open-choice", "attachment", "reference", "quantity"),
        )
    ),
}


def _codes(model: type[FHIRAbstractModel], alias: str, extra: Any) -> frozenset[str] | None:
    if (model.__name__, alias) in _COMPLETE_CODES:
        return _COMPLETE_CODES[(model.__name__, alias)]
    if not isinstance(extra, dict) or not isinstance(extra.get("enum_values"), list):
        return None
    codes = frozenset(str(v) for v in extra["enum_values"])
    return None if "+" in codes else codes


def _classify(annotation: Any, codes: frozenset[str] | None) -> _Field:
    base = _unwrap(annotation)
    if base is bool:
        return _Field("bool", None, None)
    if base is int:
        return _Field("int", None, None)
    if base in (Decimal, float):
        return _Field("decimal", None, None)
    if isinstance(base, type) and issubclass(base, FhirBase):
        klass = base.get_model_klass()
        if getattr(klass, "has_resource_base", lambda: False)() and klass.__name__ in (
            "Resource",
            "DomainResource",
        ):
            return _Field("resource", None, None)
        return _Field("model", klass, None)
    if isinstance(base, type) and base.__module__ in ("builtins", "datetime"):
        return _Field("string", None, codes)
    return _Field("any", None, None)


@lru_cache(maxsize=512)
def _fields(model: type[FHIRAbstractModel]) -> dict[str, _Field]:
    out: dict[str, _Field] = {}
    for name, info in model.model_fields.items():
        if name == "fhir_comments":
            continue
        alias = info.alias or name
        out[alias] = _classify(info.annotation, _codes(model, alias, info.json_schema_extra))
    return out


def _leaf(value: Any, spec: _Field, path: str) -> Problem | None:
    if value is None:
        return None  # nulls pair with "_element" extensions in primitive arrays
    if spec.kind == "bool" and not isinstance(value, bool):
        return path, "value", "must be a JSON boolean (true or false)"
    if spec.kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        return path, "value", "must be a JSON integer"
    if spec.kind == "decimal" and (isinstance(value, bool) or not isinstance(value, int | float)):
        return path, "value", "must be a JSON number"
    if spec.kind == "string":
        if not isinstance(value, str):
            return path, "value", "must be a JSON string"
        if spec.codes is not None and value not in spec.codes:
            return (
                path,
                "code-invalid",
                "is not a code from the required value set (" + ", ".join(sorted(spec.codes)) + ")",
            )
    return None


def _shape_problems(resource: dict[str, Any]) -> list[Problem]:
    """Empty objects, arrays and strings, nulls, and control characters, anywhere
    (http://hl7.org/fhir/R4/json.html: "empty objects and arrays are not allowed", and
    "null values are not allowed" except as the place-holders that line up a primitive
    array with its ``_name`` twin of ids and extensions)."""
    problems: list[Problem] = []
    # (node, path, whether it is an array whose null items are place-holders)
    stack: list[tuple[Any, str, bool]] = [(resource, str(resource["resourceType"]), False)]
    while stack:
        node, path, placeholders = stack.pop()
        if isinstance(node, dict):
            if not node:
                problems.append((path, "value", "must not be an empty object"))
            for k, v in node.items():
                twin = k[1:] if k.startswith("_") else f"_{k}"
                stack.append((v, f"{path}.{k}", isinstance(v, list) and twin in node))
        elif isinstance(node, list):
            if not node:
                problems.append((path, "value", "must not be an empty array"))
            stack.extend(
                (v, f"{path}[{i}]", False) for i, v in enumerate(node) if v is not None or not placeholders
            )
        elif node is None:
            problems.append((path, "structure", "must not be null"))
        elif isinstance(node, str):
            if not node.strip():
                problems.append((path, "value", "must not be empty or only whitespace"))
            elif has_control_characters(node):
                problems.append((path, "value", "must not contain control characters"))
    return problems


def _nested_contained(resource: dict[str, Any]) -> list[Problem]:
    # Contained resources SHALL NOT contain additional contained resources (dom-2).
    path = str(resource["resourceType"])
    return [
        (f"{path}.contained[{i}].contained", "invariant", "a contained resource must not contain resources")
        for i, item in enumerate(resource.get("contained") or [])
        if isinstance(item, dict) and "contained" in item
    ]


def primitive_problems(resource: dict[str, Any]) -> list[Problem]:
    """Every primitive with the wrong JSON type or outside its required binding,
    plus the JSON shapes FHIR forbids (empty values, control characters, nested contained)."""
    problems: list[Problem] = [*_shape_problems(resource), *_nested_contained(resource)]
    stack: list[tuple[dict[str, Any], type[FHIRAbstractModel], str]] = [
        (resource, model_class(str(resource["resourceType"])), str(resource["resourceType"]))
    ]
    while stack:
        node, model, path = stack.pop()
        fields = _fields(model)
        for key, value in node.items():
            spec = fields.get(key)
            if spec is None:
                continue
            items = value if isinstance(value, list) else [value]
            for i, item in enumerate(items):
                where = f"{path}.{key}" + (f"[{i}]" if isinstance(value, list) else "")
                if spec.kind == "model" and isinstance(item, dict) and spec.model is not None:
                    stack.append((item, spec.model, where))
                elif spec.kind == "resource" and isinstance(item, dict) and "resourceType" in item:
                    stack.append((item, model_class(str(item["resourceType"])), where))
                else:
                    problem = _leaf(item, spec, where)
                    if problem is not None:
                        problems.append(problem)
    return problems
