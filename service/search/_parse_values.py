"""Parsing one search value per parameter type (http://hl7.org/fhir/R4/search.html#ptypes).

Each parser gets the raw value (``\\`` escapes intact, already split on ``,``) and
raises ``ValueError`` with a message; ``parse`` turns that into a 400 naming the parameter.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import cast

from service.search._dates import date_range
from service.search._escape import split_unescaped, unescape
from service.search._normalise import normalise
from service.search._query import (
    NO_SYSTEM,
    PREFIXES,
    DateValue,
    NumberValue,
    Prefix,
    ReferenceValue,
    StringValue,
    TokenValue,
    UriValue,
)

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_RELATIVE = re.compile(r"(?:(?P<type>[A-Z][A-Za-z]+)/)?(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?")
_ABSOLUTE_TAIL = re.compile(r"/(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def _prefix(raw: str) -> tuple[Prefix, str]:
    if len(raw) >= 2 and raw[:2].isalpha():
        if raw[:2] not in PREFIXES:
            raise ValueError(f"unknown prefix {raw[:2]!r} (expected one of {', '.join(sorted(PREFIXES))})")
        return cast(Prefix, raw[:2]), raw[2:]
    return "eq", raw


def token(raw: str, text_modifier: bool) -> TokenValue:
    if text_modifier:
        return TokenValue(None, None, normalise(unescape(raw)))
    parts = split_unescaped(raw, "|")
    if len(parts) == 1:
        return TokenValue(None, unescape(parts[0]))
    if len(parts) > 2:
        raise ValueError(f"too many '|' in token {raw!r} (escape a literal '|' as '\\|')")
    system, code = unescape(parts[0]), unescape(parts[1])
    if not system and not code:
        raise ValueError("a token needs a system or a code")
    return TokenValue(system or NO_SYSTEM, code or None)


def string(raw: str) -> StringValue:
    value = unescape(raw)
    return StringValue(value, normalise(value))


def date(raw: str) -> DateValue:
    prefix, rest = _prefix(raw)
    low, high = date_range(rest)
    return DateValue(prefix, low, high)


def _decimal(text: str) -> Decimal:
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"not a number: {text!r}")
    try:
        return Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the regex already checked
        raise ValueError(f"not a number: {text!r}") from exc


def number(raw: str, quantity: bool) -> NumberValue:
    prefix, rest = _prefix(raw)
    parts = split_unescaped(rest, "|") if quantity else [rest]
    if len(parts) not in (1, 3):
        raise ValueError(f"a quantity is number, number|system|code or number||code, not {raw!r}")
    value = _decimal(unescape(parts[0]))
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite: the regex allows no NaN/Infinity
    # 100 means [99.5, 100.5): half a unit of the last significant digit either side.
    half = Decimal(5).scaleb(exponent - 1)
    system, code = (None, None)
    if len(parts) == 3:
        system, code = unescape(parts[1]) or None, unescape(parts[2]) or None
    return NumberValue(prefix, value, value - half, value + half, system, code)


def reference(raw: str, type_modifier: str | None) -> ReferenceValue:
    if "://" in raw or raw.startswith("urn:"):  # absolute or canonical, with an optional |version
        url, *version = split_unescaped(raw, "|")
        url = unescape(url)
        tail = _ABSOLUTE_TAIL.search(url)
        ref_type, ref_id = (tail["type"], tail["id"]) if tail else (None, None)
        return ReferenceValue(ref_type, ref_id, url, unescape("|".join(version)) or None)
    m = _RELATIVE.fullmatch(unescape(raw))
    if m is None:
        raise ValueError(f"not a reference (Type/id, id or an absolute URL): {raw!r}")
    ref_type = m["type"] or type_modifier
    if m["type"] and type_modifier and m["type"] != type_modifier:
        raise ValueError(f"reference {raw!r} contradicts the :{type_modifier} modifier")
    return ReferenceValue(ref_type, m["id"])


def uri(raw: str) -> UriValue:
    return UriValue(unescape(raw))
