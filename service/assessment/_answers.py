"""Checks on one item's answers: value type, answerOption/answerValueSet membership and constraints.

R4 item types and their answer[x]: http://hl7.org/fhir/R4/codesystem-item-type.html
Constraint extensions: minValue, maxValue, minLength, regex (http://hl7.org/fhir/R4/extensibility-registry.html)
and Questionnaire.item.maxLength.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from service.assessment import _values
from service.assessment._questionnaire import (
    MAX_VALUE,
    MIN_LENGTH,
    MIN_VALUE,
    REGEX,
    JsonDict,
    extension_value,
    value_x,
)
from service.errors import Issue

ValueSetCodes = Callable[[str], set[tuple[str | None, str]] | None]

_VALUE_KEYS: dict[str, frozenset[str]] = {
    "boolean": frozenset({"valueBoolean"}),
    "decimal": frozenset({"valueDecimal"}),
    "integer": frozenset({"valueInteger"}),
    "date": frozenset({"valueDate"}),
    "dateTime": frozenset({"valueDateTime"}),
    "time": frozenset({"valueTime"}),
    "string": frozenset({"valueString"}),
    "text": frozenset({"valueString"}),
    "url": frozenset({"valueUri"}),
    "choice": frozenset({"valueCoding"}),
    "open-choice": frozenset({"valueCoding", "valueString"}),
    "attachment": frozenset({"valueAttachment"}),
    "reference": frozenset({"valueReference"}),
    "quantity": frozenset({"valueQuantity"}),
}

_COMPLEX = frozenset({"valueCoding", "valueQuantity", "valueReference", "valueAttachment"})
_DATE = r"\d{4}(-\d{2}(-\d{2})?)?"
_TIME = r"\d{2}:\d{2}:\d{2}(\.\d+)?"
_SHAPES: dict[str, Callable[[Any], bool]] = {
    "valueBoolean": lambda v: isinstance(v, bool),
    "valueInteger": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "valueDecimal": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "valueDate": lambda v: isinstance(v, str) and re.fullmatch(_DATE, v) is not None,
    "valueDateTime": lambda v: (
        isinstance(v, str) and re.fullmatch(rf"{_DATE}(T{_TIME}(Z|[+-]\d{{2}}:\d{{2}}))?", v) is not None
    ),
    "valueTime": lambda v: isinstance(v, str) and re.fullmatch(_TIME, v) is not None,
    "valueString": lambda v: isinstance(v, str) and v != "",
    "valueUri": lambda v: isinstance(v, str) and v != "",
}

# Item types whose answerOption value type decides the answer type (R4 "choice" allows
# integer/date/time/string/Coding/Reference options).
_OPTION_DRIVEN = frozenset({"choice", "open-choice"})


def _expand_contains(contains: list[Any], out: set[tuple[str | None, str]]) -> None:
    for entry in contains:
        if isinstance(entry, dict):
            if isinstance(entry.get("code"), str):
                out.add((entry.get("system"), entry["code"]))
            _expand_contains(entry.get("contains", []), out)


def contained_value_set_codes(value_set: JsonDict) -> set[tuple[str | None, str]] | None:
    """Codes of a ValueSet we hold in full (an expansion or enumerated concepts), else None."""
    codes: set[tuple[str | None, str]] = set()
    if isinstance(value_set.get("expansion"), dict):
        _expand_contains(value_set["expansion"].get("contains", []), codes)
        return codes
    compose = value_set.get("compose")
    if not isinstance(compose, dict) or compose.get("exclude"):
        return None
    for include in compose.get("include", []):
        if not isinstance(include, dict) or include.get("filter") or include.get("valueSet"):
            return None
        concepts = include.get("concept")
        if not concepts:
            return None  # a whole code system: cannot enumerate here
        codes.update((include.get("system"), c["code"]) for c in concepts if isinstance(c.get("code"), str))
    return codes


class AnswerChecker:
    def __init__(self, questionnaire: JsonDict, value_set_codes: ValueSetCodes) -> None:
        self._value_set_codes = value_set_codes
        self._contained = {
            r.get("id"): r
            for r in questionnaire.get("contained", [])
            if isinstance(r, dict) and r.get("resourceType") == "ValueSet"
        }

    def check(self, defn: JsonDict, path: str) -> Callable[[int, JsonDict], list[Issue]]:
        """A checker for each answer of one item (value-set lookups are done once per item)."""
        link_id = defn.get("linkId")
        item_type = defn.get("type")
        options = [value_x(o, "value") for o in defn.get("answerOption", []) if isinstance(o, dict)]
        option_values = [o for o in options if o is not None]
        allowed = set(_VALUE_KEYS.get(str(item_type), frozenset()))
        if option_values and item_type in _OPTION_DRIVEN:
            allowed = {k for k, _ in option_values}
            if item_type == "open-choice":
                allowed.add("valueString")
        value_set = self._value_set(defn)

        def one(j: int, answer: JsonDict) -> list[Issue]:
            here = f"{path}.answer[{j}]"

            def issue(message: str, severity: Any = "error") -> Issue:
                return Issue(
                    code="value",
                    severity=severity,
                    diagnostics=f"linkId '{link_id}': {message}",
                    expression=(here,),
                )

            keys = [k for k in answer if k.startswith("value") and k[5:6].isupper()]
            if len(keys) > 1:
                return [issue(f"answer has more than one value ({', '.join(keys)})")]
            if not keys:
                return []
            key, value = keys[0], answer[keys[0]]
            if key not in allowed:
                want = " or ".join(sorted(allowed)) or "no value"
                return [issue(f"answer {key} does not match item type '{item_type}' (expected {want})")]
            shape = _SHAPES.get(key)
            if shape is not None and not shape(value):
                return [issue(f"answer {key} {value!r} is not a valid {key[5:]}")]
            if key in _COMPLEX and not isinstance(value, dict):
                return [issue(f"answer {key} must be an object")]
            free_text = item_type == "open-choice" and key == "valueString"
            found: list[Issue] = []
            if option_values and not free_text:
                found += _option_membership(key, value, option_values, issue)
            elif value_set is not None and key == "valueCoding":
                found += _coding_membership(value, value_set, issue)
            found += _constraints(defn, key, value, issue)
            return found

        return one

    def value_set_warning(self, defn: JsonDict, path: str) -> Issue | None:
        """A warning when the item's answerValueSet cannot be resolved locally or by the caller."""
        url = defn.get("answerValueSet")
        if isinstance(url, str) and not defn.get("answerOption") and self._value_set(defn) is None:
            return Issue(
                code="value",
                severity="warning",
                expression=(path,),
                diagnostics=f"linkId '{defn.get('linkId')}': answerValueSet '{url}' is not known; "
                "answers were not checked against it",
            )
        return None

    def _value_set(self, defn: JsonDict) -> set[tuple[str | None, str]] | None:
        url = defn.get("answerValueSet")
        if not isinstance(url, str):
            return None
        if url.startswith("#"):
            contained = self._contained.get(url[1:])
            return None if contained is None else contained_value_set_codes(contained)
        for value_set in self._contained.values():
            if value_set.get("url") == url.split("|")[0]:
                return contained_value_set_codes(value_set)
        return self._value_set_codes(url)


def _coding_membership(
    coding: JsonDict, allowed: set[tuple[str | None, str]], issue: Callable[..., Issue]
) -> list[Issue]:
    system, code = coding.get("system"), coding.get("code")
    if (system, code) in allowed:
        return []
    if system is None and any(c == code for _, c in allowed):
        return [issue(f"Coding '{code}' has no system; matched on code alone", "warning")]
    return [issue(f"the code {system}::{code} is not one of the allowed options")]


def _option_membership(
    key: str, value: Any, options: list[tuple[str, Any]], issue: Callable[..., Issue]
) -> list[Issue]:
    if key == "valueCoding":
        codings = {(v.get("system"), v.get("code")) for k, v in options if k == key and isinstance(v, dict)}
        return _coding_membership(value, {(s, c) for s, c in codings if isinstance(c, str)}, issue)
    temporal = _values.is_temporal_key(key)
    if any(k == key and _values.same(value, v, temporal=temporal) for k, v in options):
        return []
    return [issue(f"answer {value!r} is not one of the allowed options")]


def _constraints(defn: JsonDict, key: str, value: Any, issue: Callable[..., Issue]) -> list[Issue]:
    found: list[Issue] = []
    temporal = _values.is_temporal_key(key)
    low, high = extension_value(defn, MIN_VALUE), extension_value(defn, MAX_VALUE)
    if low is not None and (_values.compare(value, low, temporal=temporal) or 0) < 0:
        found.append(issue(f"answer {value!r} is below the minimum {low!r}"))
    if high is not None and (_values.compare(value, high, temporal=temporal) or 0) > 0:
        found.append(issue(f"answer {value!r} is above the maximum {high!r}"))
    if not isinstance(value, str) or key not in ("valueString", "valueUri"):
        return found
    max_length, min_length = defn.get("maxLength"), extension_value(defn, MIN_LENGTH)
    if isinstance(max_length, int) and len(value) > max_length:
        found.append(issue(f"answer is {len(value)} characters, more than maxLength {max_length}"))
    if isinstance(min_length, int) and len(value) < min_length:
        found.append(issue(f"answer is {len(value)} characters, fewer than minLength {min_length}"))
    pattern = extension_value(defn, REGEX)
    if isinstance(pattern, str):
        try:
            if re.fullmatch(pattern, value) is None:
                found.append(issue(f"answer {value!r} does not match the pattern {pattern!r}"))
        except re.error:
            found.append(issue(f"the regex {pattern!r} is not a valid regular expression", "warning"))
    return found
