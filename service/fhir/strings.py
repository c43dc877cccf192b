"""What a FHIR string may hold, checked once for bodies and search values alike.

Below U+0020 only tab, CR and LF are allowed (http://hl7.org/fhir/R4/datatypes.html#string).
PostgreSQL cannot even store or compare U+0000 in text, so letting one through turns
bad input into a 500 there and a silent match on SQLite.
"""

from __future__ import annotations

import re

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def has_control_characters(text: str) -> bool:
    return _CONTROL.search(text) is not None
