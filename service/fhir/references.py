"""Literal references inside FHIR JSON (http://hl7.org/fhir/R4/references.html#literal)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


def reference_of(element: object) -> str | None:
    """The literal reference of a Reference element, or None."""
    if not isinstance(element, dict):
        return None
    value = element.get("reference")
    return value if isinstance(value, str) and value.strip() else None


def references_in(resource: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every (FHIRPath-ish location, literal reference) in a resource, in document order."""
    if isinstance(resource, dict):
        value = resource.get("reference")
        if isinstance(value, str):
            yield f"{path}.reference", value
        for key, child in resource.items():
            if not (key == "reference" and isinstance(child, str)):
                yield from references_in(child, f"{path}.{key}")
    elif isinstance(resource, list):
        for index, child in enumerate(resource):
            yield from references_in(child, f"{path}[{index}]")


def as_list(value: object) -> list[Any]:
    """A FHIR element that may be a single value or a list, as a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def reference_set(resource: Any) -> set[str]:
    """Every literal reference in a resource."""
    return {reference for _, reference in references_in(resource, "")}


def map_references(resource: Any, change: Callable[[str], str]) -> Any:
    """A copy of ``resource`` with every literal ``reference`` passed through ``change``."""
    if isinstance(resource, dict):
        return {
            key: change(item)
            if key == "reference" and isinstance(item, str)
            else map_references(item, change)
            for key, item in resource.items()
        }
    if isinstance(resource, list):
        return [map_references(item, change) for item in resource]
    return resource


def _is_reference(key: str, value: Any) -> bool:
    return key == "reference" and isinstance(value, str)
