"""The ``Prefer: return=`` header (http://hl7.org/fhir/R4/http.html#ops), for single writes and bundles."""

from __future__ import annotations


def return_preference(prefer: str | None) -> str:
    """``minimal``, ``representation`` (the default) or ``OperationOutcome``."""
    for part in (prefer or "").split(","):
        key, _, value = part.strip().partition("=")
        if key.strip() == "return":
            return value.strip().strip('"')
    return "representation"
