"""The items of a populated QuestionnaireResponse (SDC $populate), built from the Questionnaire tree.

Per item, the first source that gives answers wins:

1. the previous response, for items inside a carried subtree (``carried`` linkIds), when the item
   still has the same type in the target version as in the version the previous response answered;
2. ``sdc-questionnaire-initialExpression``, FHIRPath over ``%patient``/``%subject``
   (http://hl7.org/fhir/uv/sdc/expressions.html#initialExpression);
3. ``item.initial`` and ``answerOption.initialSelected`` (http://hl7.org/fhir/R4/questionnaire.html).

Only answered items are emitted (SDC allows omitting unanswered ones); a question's children sit
under its ``answer.item`` (http://hl7.org/fhir/R4/questionnaireresponse.html#notes), so children of
an unanswered question cannot be placed and are left out. Problems become warnings in ``issues``.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from fhirpathpy import evaluate
from fhirpathpy.models import models

from service.assessment._questionnaire import JsonDict, child_defs, extension_value, value_x
from service.errors import Issue

INITIAL_EXPRESSION = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-initialExpression"

_PRIMITIVE = {
    "boolean": "valueBoolean",
    "decimal": "valueDecimal",
    "integer": "valueInteger",
    "date": "valueDate",
    "dateTime": "valueDateTime",
    "time": "valueTime",
    "string": "valueString",
    "text": "valueString",
    "url": "valueUri",
}
_COMPLEX = {"attachment": "valueAttachment", "reference": "valueReference", "quantity": "valueQuantity"}
_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
_DATE_TIME = re.compile(r"\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?")
_TIME = re.compile(r"\d{2}:\d{2}(:\d{2}(\.\d+)?)?")


def types_by_link_id(questionnaire: JsonDict) -> dict[str, str]:
    out: dict[str, str] = {}

    def walk(defs: list[JsonDict]) -> None:
        for defn in defs:
            if isinstance(defn.get("linkId"), str) and isinstance(defn.get("type"), str):
                out.setdefault(defn["linkId"], defn["type"])
            walk(child_defs(defn))

    walk(child_defs(questionnaire))
    return out


class Prefill:
    """One population run: its FHIRPath environment, the previous response and collected issues."""

    def __init__(
        self,
        env: dict[str, Any],
        *,
        carried: frozenset[str] = frozenset(),
        previous_items: list[JsonDict] | None = None,
        previous_types: dict[str, str] | None = None,
    ) -> None:
        self.env = env
        self.carried = carried
        self.previous_items = previous_items or []
        self.previous_types = previous_types or {}
        self.issues: list[Issue] = []

    def items(self, questionnaire: JsonDict) -> list[JsonDict]:
        return self._items(child_defs(questionnaire), self.previous_items, False, "Questionnaire")

    def _items(self, defs: list[JsonDict], previous: list[Any], carry: bool, path: str) -> list[JsonDict]:
        out: list[JsonDict] = []
        for i, defn in enumerate(defs):
            link_id, kind, here = defn.get("linkId"), defn.get("type"), f"{path}.item[{i}]"
            if not isinstance(link_id, str) or kind == "display":
                continue
            carry_here = carry or link_id in self.carried
            matches = [p for p in previous if isinstance(p, dict) and p.get("linkId") == link_id]
            if not carry_here:
                matches = []
            if kind == "group":
                instances: list[JsonDict | None] = [
                    *(matches if defn.get("repeats") is True else matches[:1])
                ]
                for instance in instances or [None]:
                    below = instance.get("item", []) if instance is not None else []
                    children = self._items(child_defs(defn), below, carry_here, here)
                    if children:
                        out.append(_item(defn, item=children))
                continue
            answers = self._carried_answers(defn, matches) if matches else []
            source: list[Any] = [a for m in matches for a in m.get("answer", []) if isinstance(a, dict)]
            if not answers:
                answers, source = self._fresh_answers(defn, here), []
            for j, answer in enumerate(answers):
                below = source[j].get("item", []) if j < len(source) else []
                children = self._items(child_defs(defn), below, carry_here, here)
                if children:
                    answer["item"] = children
            if answers:
                out.append(_item(defn, answer=answers))
        return out

    def _carried_answers(self, defn: JsonDict, matches: list[JsonDict]) -> list[JsonDict]:
        # An item whose type changed between versions means something else now: never copied.
        if self.previous_types.get(defn["linkId"]) != defn.get("type"):
            return []
        answers = []
        for match in matches:
            for answer in match.get("answer", []):
                found = value_x(answer, "value") if isinstance(answer, dict) else None
                if found is not None:
                    answers.append({found[0]: found[1]})
        return answers

    def _fresh_answers(self, defn: JsonDict, path: str) -> list[JsonDict]:
        expression = extension_value(defn, INITIAL_EXPRESSION)
        if isinstance(expression, dict) and isinstance(expression.get("expression"), str):
            return self._expression_answers(defn, expression, path)
        answers = []
        for initial in defn.get("initial", []):
            found = value_x(initial, "value") if isinstance(initial, dict) else None
            if found is not None:
                answers.append({found[0]: found[1]})
        for option in defn.get("answerOption", []):
            found = value_x(option, "value") if isinstance(option, dict) else None
            if found is not None and option.get("initialSelected") is True:
                answers.append({found[0]: _strip(found[1])})
        return answers

    def _expression_answers(self, defn: JsonDict, expression: JsonDict, path: str) -> list[JsonDict]:
        link_id = defn["linkId"]
        language = expression.get("language")
        if language not in (None, "text/fhirpath"):
            self._warn(link_id, path, f"initialExpression language '{language}' is not supported")
            return []
        try:
            values = evaluate(self.env.get("patient") or {}, expression["expression"], self.env, models["r4"])
        except Exception as exc:  # fhirpathpy raises assorted types for bad or unsupported expressions
            self._warn(link_id, path, f"initialExpression could not be evaluated ({exc})")
            return []
        values = [v for v in values if v is not None]
        if len(values) > 1 and defn.get("repeats") is not True:
            self._warn(link_id, path, f"initialExpression gave {len(values)} values for a non-repeating item")
            return []
        answers = []
        for value in values:
            answer = _answer(defn, value)
            if answer is None:
                self._warn(
                    link_id, path, f"initialExpression value {value!r} does not fit a {defn.get('type')} item"
                )
                return []
            answers.append(answer)
        return answers

    def _warn(self, link_id: str, path: str, message: str) -> None:
        diagnostics = f"linkId '{link_id}': not prefilled: {message}"
        self.issues.append(
            Issue(code="processing", diagnostics=diagnostics, severity="warning", expression=(path,))
        )


def _item(defn: JsonDict, **content: Any) -> JsonDict:
    item: JsonDict = {"linkId": defn["linkId"]}
    if isinstance(defn.get("text"), str):
        item["text"] = defn["text"]
    item.update(content)
    return item


def _strip(value: Any) -> Any:
    # answerOption codings carry ordinalValue extensions that belong to the Questionnaire.
    return {k: v for k, v in value.items() if k != "extension"} if isinstance(value, dict) else value


def _answer(defn: JsonDict, value: Any) -> JsonDict | None:
    """A FHIRPath result as an answer of the item's type (SDC: types must match or convert)."""
    kind = defn.get("type")
    if isinstance(value, Decimal):
        value = int(value) if kind == "integer" and value == value.to_integral_value() else float(value)
    if kind in ("choice", "open-choice"):
        return _choice(defn, value)
    if kind in _COMPLEX:
        return {_COMPLEX[kind]: value} if isinstance(value, dict) else None
    key = _PRIMITIVE.get(str(kind))
    if key is None:
        return None
    if kind == "boolean":
        ok = isinstance(value, bool)
    elif kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "decimal":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        value = (
            value if isinstance(value, str) else str(value) if kind in ("date", "dateTime", "time") else value
        )
        ok = isinstance(value, str) and _fits_text(str(kind), value)
        if ok and kind == "date" and "T" in value:
            value = value.split("T", 1)[0]
    return {key: value} if ok else None


def _fits_text(kind: str, value: str) -> bool:
    if kind == "date":
        return _DATE.fullmatch(value.split("T", 1)[0]) is not None
    if kind == "dateTime":
        return _DATE_TIME.fullmatch(value) is not None
    if kind == "time":
        return _TIME.fullmatch(value) is not None
    return bool(value)


def _choice(defn: JsonDict, value: Any) -> JsonDict | None:
    if isinstance(value, dict) and isinstance(value.get("code"), str):
        return {
            "valueCoding": {k: v for k, v in value.items() if k in ("system", "version", "code", "display")}
        }
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    for option in defn.get("answerOption", []):
        found = value_x(option, "value") if isinstance(option, dict) else None
        if found is None:
            continue
        key, option_value = found
        if key == "valueCoding" and isinstance(option_value, dict) and option_value.get("code") == value:
            return {"valueCoding": _strip(option_value)}
        if option_value == value:
            return {key: option_value}
    if defn.get("type") == "open-choice" and isinstance(value, str):
        return {"valueString": value}
    return None
