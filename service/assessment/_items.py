"""Walking Questionnaire and QuestionnaireResponse item trees."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def walk_items(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every item, depth first. R4 nests children under ``item.item`` (groups) or
    ``item.answer.item`` (questions); both are followed."""
    for item in items:
        yield item
        yield from walk_items(item.get("item", []))
        for answer in item.get("answer", []):
            yield from walk_items(answer.get("item", []))
