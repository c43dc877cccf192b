"""Index rows for a resource: every search parameter of its type, evaluated once per write.

The storage layer writes these rows to the per-type index tables in the write's
transaction (docs/adr/0002-storage-layout.md; ``service.storage.index_rows`` maps a row
to its table).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from service.search._fhirpath import compile_expression
from service.search._values import date_rows, number_rows, reference_rows, string_rows, token_rows, uri_rows
from service.search.params import params_for
from service.search.types import IndexRow, ParamType

_ROWS: dict[ParamType, Callable[[str, Any, str | None], Iterator[IndexRow]]] = {
    "token": token_rows,
    "string": lambda p, v, _h: string_rows(p, v),
    "date": lambda p, v, _h: date_rows(p, v),
    "reference": lambda p, v, _h: reference_rows(p, v),
    "quantity": lambda p, v, _h: number_rows(p, v),
    "number": lambda p, v, _h: number_rows(p, v),
    "uri": lambda p, v, _h: uri_rows(p, v),
}


def extract_index_rows(resource: dict[str, Any]) -> list[IndexRow]:
    """All index rows for ``resource`` (duplicates removed, order kept)."""
    rows: dict[IndexRow, None] = {}
    for param in params_for(str(resource.get("resourceType", ""))).values():
        if not param.expression:  # _id, _lastUpdated: columns of resource
            continue
        make = _ROWS[param.type]
        for value, hint in compile_expression(param.expression)(resource):
            for row in make(param.name, value, hint):
                rows[row] = None
    return list(rows)
