"""A fast evaluator for the FHIRPath subset used by Wraparound's search parameters.

The SearchParameter expressions in ``params.py`` stay the source of truth, but running
them through fhirpathpy costs ~10 µs each, which is too slow to index every write. The
expressions are fixed and simple, so they are compiled here into plain dict walks:

* ``Type.a.b`` paths (lists flattened, choice elements ``value[x]`` found by prefix);
* ``X | Y`` unions, ``(X as T)`` and ``X.ofType(T)`` on choice elements;
* ``X.where(resolve() is T)``, answered from the reference's ``Type/`` prefix instead
  of resolving (http://hl7.org/fhir/R4/search.html#table: the same reading servers use);
* ``X.where(field = 'literal')``.

Anything else falls back to fhirpathpy (compiled once per expression).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

# An evaluated item: the JSON value and a type hint (the choice suffix such as
# "Reference"/"Quantity", or else the name of the element it came from).
Node = tuple[Any, str | None]
Evaluator = Callable[[dict[str, Any]], list[Node]]

# Choice elements ([x]) our expressions walk into; only these are matched by prefix.
CHOICE_ELEMENTS = frozenset({"value", "effective", "occurrence", "source", "deceased", "multipleBirth"})
ANY_RESOURCE = frozenset({"Resource", "DomainResource"})

_AS = re.compile(r"^\(?\s*(?P<path>[\w.]+)\s+as\s+(?P<type>\w+)\s*\)?$")
_WHERE_RESOLVE = re.compile(r"^where\(\s*resolve\(\)\s+is\s+(?P<type>\w+)\s*\)$")
_WHERE_EQ = re.compile(r"^where\(\s*(?P<field>\w+)\s*=\s*'(?P<lit>[^']*)'\s*\)$")
_OF_TYPE = re.compile(r"^ofType\((?P<type>\w+)\)$")
_NAME = re.compile(r"^[A-Za-z]\w*$")
_REF_TYPE = re.compile(r"(?:^|/)(?P<type>[A-Z][A-Za-z]+)/[^/]+(?:/_history/[^/]+)?$")


class Unsupported(ValueError):
    """The expression is outside the subset; use fhirpathpy."""


Step = tuple[str, str, str]  # (kind, name, literal)


def _split_top(text: str, sep: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def _compile_path(text: str) -> tuple[str, list[Step]]:
    as_match = _AS.match(text)
    suffix: list[Step] = []
    if as_match:
        text = as_match["path"]
        suffix = [("oftype", as_match["type"], "")]
    segments = _split_top(text, ".")
    root, steps = segments[0], []
    if not _NAME.match(root) or not root[0].isupper():
        raise Unsupported(text)
    for seg in segments[1:]:
        if m := _OF_TYPE.match(seg):
            steps.append(("oftype", m["type"], ""))
        elif m := _WHERE_RESOLVE.match(seg):
            steps.append(("resolve", m["type"], ""))
        elif m := _WHERE_EQ.match(seg):
            steps.append(("eq", m["field"], m["lit"]))
        elif _NAME.match(seg):
            steps.append(("field", seg, ""))
        else:
            raise Unsupported(seg)
    return root, steps + suffix


def _field(nodes: list[Node], name: str) -> list[Node]:
    out: list[Node] = []
    for value, _hint in nodes:
        if not isinstance(value, dict):
            continue
        found = value.get(name)
        hint: str | None = name
        if found is None and name in CHOICE_ELEMENTS:
            for key, candidate in value.items():
                if key.startswith(name) and len(key) > len(name) and key[len(name)].isupper():
                    found, hint = candidate, key[len(name) :]
                    break
        if found is None:
            continue
        if isinstance(found, list):
            out.extend((item, hint) for item in found)
        else:
            out.append((found, hint))
    return out


def reference_type(value: Any) -> str | None:
    """The resource type a Reference points at, from its ``Type/id`` tail."""
    ref = value.get("reference") if isinstance(value, dict) else None
    if not isinstance(ref, str):
        return None
    m = _REF_TYPE.search(ref)
    return m["type"] if m else None


def _apply(nodes: list[Node], step: Step) -> list[Node]:
    kind, name, literal = step
    if kind == "field":
        return _field(nodes, name)
    if kind == "oftype":
        wanted = name[:1].upper() + name[1:]
        return [n for n in nodes if n[1] == wanted]
    if kind == "resolve":
        return [n for n in nodes if reference_type(n[0]) == name]
    return [n for n in nodes if isinstance(n[0], dict) and n[0].get(name) == literal]


def _compile_fast(expression: str) -> Evaluator:
    paths = [_compile_path(part) for part in _split_top(expression, "|")]

    def evaluate(resource: dict[str, Any]) -> list[Node]:
        rtype = resource.get("resourceType")
        out: list[Node] = []
        for root, steps in paths:
            if root != rtype and root not in ANY_RESOURCE:
                continue
            nodes: list[Node] = [(resource, None)]
            for step in steps:
                nodes = _apply(nodes, step)
                if not nodes:
                    break
            out.extend(nodes)
        return out

    return evaluate


def _compile_fhirpathpy(expression: str) -> Evaluator:
    from fhirpathpy import compile as fp_compile
    from fhirpathpy.models import models

    compiled = fp_compile(expression, models["r4"])

    def evaluate(resource: dict[str, Any]) -> list[Node]:
        # FHIRPath date/time values come back as FP_* objects whose str() is the FHIR text.
        json_types = (dict, list, str, int, float, bool)
        return [(v if isinstance(v, json_types) else str(v), None) for v in compiled(resource, {})]

    return evaluate


@lru_cache(maxsize=1024)
def compile_expression(expression: str) -> Evaluator:
    try:
        return _compile_fast(expression)
    except Unsupported:
        return _compile_fhirpathpy(expression)
