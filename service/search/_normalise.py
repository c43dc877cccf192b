"""String normalisation for FHIR string search.

R4 string search is "case- and accent-insensitive" by default
(http://hl7.org/fhir/R4/search.html#string), so both the indexed value and the
search value are folded the same way: casefold, then NFKD, then drop the
combining marks (``Zoë`` → ``zoe``, ``Straße`` → ``strasse``).
"""

from __future__ import annotations

import unicodedata


def normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))
