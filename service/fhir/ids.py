"""The FHIR id datatype (http://hl7.org/fhir/R4/datatypes.html#id): 1-64 of A-Z, a-z, 0-9, '-' and '.'."""

from __future__ import annotations

import re
from typing import Any

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def is_id(value: Any) -> bool:
    """True for a string that is a FHIR id, the whole of it."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None
