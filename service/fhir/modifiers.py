"""Modifier extensions the hub understands: none.

A modifierExtension changes the meaning of the element holding it, and "an application
that does not understand it SHALL reject" the resource rather than process it as if
it were absent (http://hl7.org/fhir/R4/extensibility.html#modifierExtension). Wraparound
has no modifier extensions of its own, so every one, anywhere, is refused (422). To
support one, add its URL here.
"""

from __future__ import annotations

from typing import Any

from service.fhir._walk import members

UNDERSTOOD: frozenset[str] = frozenset()


def unknown_modifier_extensions(resource: dict[str, Any]) -> list[str]:
    """The locations of modifier extensions the hub does not understand."""
    found: list[str] = []
    for where, key, value in members(resource):
        if key == "modifierExtension" and isinstance(value, list):
            found.extend(
                f"{where}[{i}]"
                for i, ext in enumerate(value)
                if not (isinstance(ext, dict) and ext.get("url") in UNDERSTOOD)
            )
    return sorted(found)
