"""Drop prefilled items the validator refuses, so a populated response always validates.

Prefilled answers can disagree with the target Questionnaire: a copied code the new version no
longer offers, an initial value on an item whose enableWhen is false, an initialExpression value
outside minValue/maxValue. Rather than return a response the client cannot save, each item the
validator reports an error on is removed (with its subtree) and the error is reported as a
warning in ``issues``. Removal can disable other items, so validation repeats a few times.
"""

from __future__ import annotations

import re
from typing import Any

from service.assessment._answers import ValueSetCodes
from service.assessment._questionnaire import JsonDict
from service.assessment.validate import validate_response
from service.errors import Issue

_MAX_PASSES = 5
_SEGMENT = re.compile(r"\.(item|answer)\[(\d+)\]")
_ROOT = "QuestionnaireResponse."


def prune(qr: JsonDict, questionnaire: JsonDict, value_set_codes: ValueSetCodes) -> list[Issue]:
    reported: list[Issue] = []
    for _ in range(_MAX_PASSES):
        errors = [
            i
            for i in validate_response(qr, questionnaire, value_set_codes=value_set_codes)
            if i.severity == "error" and i.expression and i.expression[0].startswith(_ROOT + "item[")
        ]
        if not errors:
            break
        targets = {_item_path(i.expression[0]) for i in errors}
        for path in sorted(targets, key=lambda p: tuple(i for _, i in p), reverse=True):
            _remove(qr, path)
        qr_items = _tidy(qr.get("item", []))
        if qr_items:
            qr["item"] = qr_items
        else:
            qr.pop("item", None)
        reported += [
            Issue(code=i.code, severity="warning", expression=i.expression,
                  diagnostics=f"not prefilled: {i.diagnostics}")
            for i in errors
        ]  # fmt: skip
    return reported


def _item_path(expression: str) -> tuple[tuple[str, int], ...]:
    segments = [(kind, int(index)) for kind, index in _SEGMENT.findall(expression)]
    while segments and segments[-1][0] != "item":
        segments.pop()
    return tuple(segments)


def _remove(qr: JsonDict, path: tuple[tuple[str, int], ...]) -> None:
    if not path:
        return
    holder: Any = qr
    for kind, index in path[:-1]:
        found = holder.get(kind) if isinstance(holder, dict) else None
        if not isinstance(found, list) or index >= len(found):
            return
        holder = found[index]
    items = holder.get("item") if isinstance(holder, dict) else None
    if isinstance(items, list) and path[-1][1] < len(items):
        # Blank rather than delete, so sibling indices still match the other reported paths.
        items[path[-1][1]] = None


def _tidy(items: list[Any]) -> list[JsonDict]:
    """Without removed entries, answers left without value, and groups/questions left empty."""
    out: list[JsonDict] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        if "answer" in item:
            answers = []
            for answer in item["answer"]:
                if isinstance(answer, dict) and "item" in answer:
                    below = _tidy(answer["item"])
                    answer = {k: v for k, v in answer.items() if k != "item"} | (
                        {"item": below} if below else {}
                    )
                answers.append(answer)
            if answers:
                out.append(item | {"answer": answers})
        elif "item" in item:
            below = _tidy(item["item"])
            if below:
                out.append(item | {"item": below})
    return out
