"""Every member of a FHIR JSON resource, with the path a diagnostic names it by."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def members(resource: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(path, key, value) for every object member at any depth, e.g. ``("Patient.text", "text", {...})``;
    array items are named ``path[i]``. Depth-first, without recursion (bodies may nest deeply)."""
    stack: list[tuple[Any, str]] = [(resource, str(resource.get("resourceType", "Resource")))]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                where = f"{path}.{key}"
                yield where, key, value
                stack.append((value, where))
        elif isinstance(node, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(node))
