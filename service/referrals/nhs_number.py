"""NHS number check digit (modulus 11).

Algorithm: NHS Data Dictionary, "NHS Number" attribute
https://www.datadictionary.nhs.uk/attributes/nhs_number.html
"""

from __future__ import annotations

import re

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"

# The FHIR identifier value carries the bare 10 digits: UK Core's NHS number identifier has no spaces
# (the "943 476 5919" grouping is for display only), so spaces and hyphens are rejected, not stripped.
# [0-9] rather than \d: \d also matches non-ASCII digits such as Arabic-Indic ones.
_TEN_DIGITS = re.compile(r"[0-9]{10}")


def is_valid_nhs_number(value: str) -> bool:
    """True when ``value`` is exactly ten ASCII digits whose last digit is the modulus-11 check digit."""
    if not _TEN_DIGITS.fullmatch(value):
        return False
    # Weights 10 down to 2 for the first nine digits.
    total = sum(int(digit) * weight for digit, weight in zip(value[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    if check == 10:
        # No valid NHS number has a remainder giving 10: the number is invalid, whatever its last digit.
        return False
    return check == int(value[9])
