"""Typed equality and ordering of answer values, shared by enableWhen and minValue/maxValue.

FHIR dates and times may be partial ("2020", "2020-05"); values of different precision compare
as uncertain (None) when they agree on their common prefix, as FHIRPath does
(http://hl7.org/fhirpath/N1/#comparison).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

_TEMPORAL_SUFFIXES = ("Date", "DateTime", "Time", "Instant")
_ZONED = re.compile(r"T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")


def is_temporal_key(key: str) -> bool:
    return key.endswith(_TEMPORAL_SUFFIXES)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _sign(diff: float) -> int:
    return (diff > 0) - (diff < 0)


def _compare_temporal(a: str, b: str) -> int | None:
    if _ZONED.search(a) and _ZONED.search(b):
        try:
            return _sign((datetime.fromisoformat(a) - datetime.fromisoformat(b)).total_seconds())
        except ValueError:
            return None
    if len(a) == len(b):
        return (a > b) - (a < b)
    common = min(len(a), len(b))
    head_a, head_b = a[:common], b[:common]
    if head_a != head_b:
        return (head_a > head_b) - (head_a < head_b)
    return None


def _same_coding(a: dict[str, Any], b: dict[str, Any]) -> bool:
    # A missing system on either side matches on code alone; both present must agree.
    if a.get("system") and b.get("system") and a["system"] != b["system"]:
        return False
    return a.get("code") is not None and a.get("code") == b.get("code")


def _quantity_units_match(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a.get("code") is not None or b.get("code") is not None:
        return a.get("system") == b.get("system") and a.get("code") == b.get("code")
    return a.get("unit") == b.get("unit")


def compare(a: Any, b: Any, *, temporal: bool = False) -> int | None:
    """-1, 0 or 1 when a and b are ordered values of one kind; None when they cannot be ordered."""
    if _is_number(a) and _is_number(b):
        return _sign(a - b)
    if isinstance(a, str) and isinstance(b, str):
        return _compare_temporal(a, b) if temporal else (a > b) - (a < b)
    if (
        isinstance(a, dict)
        and isinstance(b, dict)
        and _is_number(a.get("value"))
        and _is_number(b.get("value"))
        and _quantity_units_match(a, b)
    ):
        return _sign(a["value"] - b["value"])
    return None


def same(a: Any, b: Any, *, temporal: bool = False) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, dict) and isinstance(b, dict):
        if "value" in a or "value" in b:  # Quantity
            return compare(a, b) == 0
        if "code" in a or "code" in b:  # Coding
            return _same_coding(a, b)
        if "reference" in a or "reference" in b:  # Reference
            return a.get("reference") is not None and a.get("reference") == b.get("reference")
        return a == b
    if _is_number(a) or isinstance(a, str):
        return compare(a, b, temporal=temporal) == 0
    return bool(a == b)
