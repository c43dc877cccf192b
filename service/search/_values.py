"""Turning FHIR datatype values into index rows, one function per search parameter type.

The mapping of datatypes to index content follows http://hl7.org/fhir/R4/search.html
(token table, string, date, reference, quantity). Values are JSON as stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from service.search._dates import MAX_DATETIME, MIN_DATETIME, date_range
from service.search._normalise import normalise
from service.search.types import DateRow, NumberRow, ReferenceRow, StringRow, TokenRow, UriRow

# HumanName and Address parts searched by a string parameter on the whole datatype.
_STRING_PARTS = (
    "text",
    "family",
    "given",
    "prefix",
    "suffix",
    "line",
    "city",
    "district",
    "state",
    "postalCode",
    "country",
)
_RELATIVE = re.compile(r"(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?")
_ABSOLUTE_TAIL = re.compile(r"/(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def _text(value: Any) -> str | None:
    return normalise(value) if isinstance(value, str) and value else None


def token_rows(param: str, value: Any, hint: str | None) -> Iterator[TokenRow]:
    if isinstance(value, bool):
        yield TokenRow(param, None, "true" if value else "false")
    elif isinstance(value, str | int | float):
        yield TokenRow(param, None, str(value))
    elif not isinstance(value, dict):
        return
    elif hint == "telecom":  # ContactPoint: the value, with ContactPoint.system as the system
        if isinstance(value.get("value"), str):
            yield TokenRow(param, value.get("system"), value["value"])
    elif "coding" in value or ("text" in value and "code" not in value and "value" not in value):
        for coding in value.get("coding") or ():
            if isinstance(coding, dict) and (coding.get("code") or coding.get("system")):
                yield TokenRow(param, coding.get("system"), coding.get("code"), _text(coding.get("display")))
        if text := _text(value.get("text")):  # CodeableConcept.text, for :text
            yield TokenRow(param, None, None, text)
    elif "code" in value or ("system" in value and "value" not in value):  # Coding
        yield TokenRow(param, value.get("system"), value.get("code"), _text(value.get("display")))
    elif isinstance(value.get("value"), str):  # Identifier; :text searches Identifier.type.text
        id_type = value.get("type")
        text = _text(id_type.get("text")) if isinstance(id_type, dict) else None
        yield TokenRow(param, value.get("system"), value["value"], text)


def string_rows(param: str, value: Any) -> Iterator[StringRow]:
    if isinstance(value, str):
        if value:
            yield StringRow(param, normalise(value), value)
        return
    if not isinstance(value, dict):
        return
    for part in _STRING_PARTS:
        found = value.get(part)
        for item in found if isinstance(found, list) else (found,):
            if isinstance(item, str) and item:
                yield StringRow(param, normalise(item), item)


def date_rows(param: str, value: Any) -> Iterator[DateRow]:
    try:
        if isinstance(value, str):
            yield DateRow(param, *date_range(value))
        elif isinstance(value, dict) and ("start" in value or "end" in value):  # Period: open ends unbounded
            low = date_range(value["start"])[0] if value.get("start") else MIN_DATETIME
            high = date_range(value["end"])[1] if value.get("end") else MAX_DATETIME
            yield DateRow(param, low, high)
        elif isinstance(value, dict):  # Timing: each event
            for event in value.get("event") or ():
                yield DateRow(param, *date_range(event))
    except (ValueError, TypeError):
        return  # the validator rejects malformed dates; indexing never fails a write


def reference_rows(param: str, value: Any) -> Iterator[ReferenceRow]:
    if isinstance(value, str):  # canonical: url|version
        url, _, version = value.partition("|")
        yield ReferenceRow(param, None, None, url, version or None)
        return
    ref = value.get("reference") if isinstance(value, dict) else None
    # Contained (#x) and unresolved urn:uuid/urn:oid references are not searchable.
    if not isinstance(ref, str) or ref.startswith(("#", "urn:")):
        return
    if "://" in ref:
        tail = _ABSOLUTE_TAIL.search(ref)
        url = ref.split("/_history/", 1)[0]
        yield ReferenceRow(param, tail["type"] if tail else None, tail["id"] if tail else None, url)
    elif m := _RELATIVE.fullmatch(ref):
        yield ReferenceRow(param, m["type"], m["id"])


def number_rows(param: str, value: Any) -> Iterator[NumberRow]:
    quantity = value if isinstance(value, dict) else {"value": value}
    number = quantity.get("value")
    if isinstance(number, bool) or not isinstance(number, int | float | str):
        return
    try:
        decimal = Decimal(str(number))
    except InvalidOperation:
        return
    if decimal.is_finite():
        yield NumberRow(param, decimal, quantity.get("system"), quantity.get("code"), quantity.get("unit"))


def uri_rows(param: str, value: Any) -> Iterator[UriRow]:
    if isinstance(value, str) and value:
        yield UriRow(param, value)
