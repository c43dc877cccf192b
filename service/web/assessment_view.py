"""A QuestionnaireResponse as people read it: questions and answers, not JSON.

It renders exactly the view the caller was given (a partner's minimised one, ``access.minimise``): what
is not in the resource is not shown. Question texts come from the response's Questionnaire (the shipped
needs assessment, by its canonical) and fall back to the response's own ``item.text``, then the linkId.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from fhir_profiles import load_by_url
from service.assessment._items import walk_items

URGENCY_RANK = {"now": 0, "soon": 1, "not-urgent": 2}


@dataclass(frozen=True)
class Node:
    """A group (``answers`` empty, ``children`` its items) or a question with its answers."""

    text: str
    answers: list[str] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)


@cache
def _texts(canonical: str) -> dict[str, str]:
    try:
        questionnaire = load_by_url(canonical)
    except KeyError:
        return {}
    return {str(i["linkId"]): str(i.get("text", "")) for i in walk_items(questionnaire.get("item") or [])}


def answer_text(answer: dict[str, Any]) -> str:
    for key, value in answer.items():
        if not key.startswith("value"):
            continue
        if key == "valueBoolean":
            return "Yes" if value else "No"
        if key == "valueCoding" and isinstance(value, dict):
            return str(value.get("display") or value.get("code") or "")
        if key == "valueQuantity" and isinstance(value, dict):
            return f"{value.get('value', '')} {value.get('unit', '')}".strip()
        if key == "valueReference" and isinstance(value, dict):
            return str(value.get("display") or "(a linked record)")
        if key == "valueAttachment" and isinstance(value, dict):
            return str(value.get("title") or "(an attachment)")
        return str(value)
    return ""


def render(response: dict[str, Any]) -> list[Node]:
    texts = _texts(str(response.get("questionnaire") or ""))
    return _nodes(response.get("item") or [], texts)


def _nodes(items: list[Any], texts: dict[str, str]) -> list[Node]:
    nodes: list[Node] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        link_id = str(item.get("linkId", ""))
        text = texts.get(link_id) or str(item.get("text") or link_id)
        answers = [a for a in item.get("answer") or [] if isinstance(a, dict)]
        children = _nodes(item.get("item") or [], texts)
        for answer in answers:
            children.extend(_nodes(answer.get("item") or [], texts))
        shown = [t for a in answers if (t := answer_text(a))]
        if shown or children:
            nodes.append(Node(text, shown, children))
    return nodes


def urgency(response: dict[str, Any] | None) -> str | None:
    """The most urgent ``*-urgency`` answer in the response as given (None when none is visible)."""
    found: list[str] = []
    for item in walk_items((response or {}).get("item") or []):
        if str(item.get("linkId", "")).endswith("-urgency"):
            for answer in item.get("answer") or []:
                code = (answer.get("valueCoding") or {}).get("code")
                if code in URGENCY_RANK:
                    found.append(code)
    return min(found, key=URGENCY_RANK.__getitem__) if found else None
