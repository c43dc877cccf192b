"""Index rows for a resource: every search parameter of its type, evaluated once per write.

The storage layer writes these rows to the per-type index tables in the write's
transaction (docs/adr/0002-storage-layout.md); ``row_table``/``row_values`` map a row
to its table and insert values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from sqlmodel import SQLModel

from service.search._fhirpath import compile_expression
from service.search._values import date_rows, number_rows, reference_rows, string_rows, token_rows, uri_rows
from service.search.params import params_for
from service.search.types import (
    DateRow,
    IndexRow,
    NumberRow,
    ParamType,
    ReferenceRow,
    StringRow,
    TokenRow,
    UriRow,
)
from service.storage.tables import IdxDate, IdxNumber, IdxReference, IdxString, IdxToken, IdxUri

_ROWS: dict[ParamType, Callable[[str, Any, str | None], Iterator[IndexRow]]] = {
    "token": token_rows,
    "string": lambda p, v, _h: string_rows(p, v),
    "date": lambda p, v, _h: date_rows(p, v),
    "reference": lambda p, v, _h: reference_rows(p, v),
    "quantity": lambda p, v, _h: number_rows(p, v),
    "number": lambda p, v, _h: number_rows(p, v),
    "uri": lambda p, v, _h: uri_rows(p, v),
}

_TABLES: dict[type[Any], type[SQLModel]] = {
    TokenRow: IdxToken,
    StringRow: IdxString,
    DateRow: IdxDate,
    ReferenceRow: IdxReference,
    NumberRow: IdxNumber,
    UriRow: IdxUri,
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


def row_table(row: IndexRow) -> type[SQLModel]:
    return _TABLES[type(row)]


def row_values(row: IndexRow, rid: int, resource_type: str) -> dict[str, Any]:
    """Column values for inserting ``row`` into ``row_table(row)``."""
    return {"rid": rid, "resource_type": resource_type, **dataclasses.asdict(row)}
