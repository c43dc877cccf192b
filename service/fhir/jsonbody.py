"""Parsing request bodies: size, depth and width limits before anything else sees them.

orjson itself refuses nesting deeper than 1024 without exhausting the stack; the
walk below applies the (much lower) configured limits without recursion.
"""

from __future__ import annotations

from typing import Any

import orjson

from service.errors import BadRequest, Issue


def parse_json(body: bytes, *, max_depth: int, max_items: int) -> Any:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc}") from None
    _check_shape(value, max_depth=max_depth, max_items=max_items)
    return value


def _check_shape(value: Any, *, max_depth: int, max_items: int) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    seen = 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > max_items:
            raise BadRequest(
                "Request body has too many JSON values",
                issues=[Issue(code="too-costly", diagnostics=f"More than {max_items} JSON values")],
            )
        if depth > max_depth:
            raise BadRequest(
                "Request body is nested too deeply",
                issues=[Issue(code="too-costly", diagnostics=f"JSON nesting deeper than {max_depth} levels")],
            )
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)
