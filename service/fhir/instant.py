"""FHIR ``instant`` text (http://hl7.org/fhir/R4/datatypes.html#instant) from a timezone-aware datetime."""

from __future__ import annotations

from datetime import UTC, datetime


def fhir_instant(moment: datetime) -> str:
    """UTC, millisecond precision, ``Z`` suffix: the form every timestamp the hub writes takes."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
