"""Which index table each kind of index row goes to, and its column values."""

from __future__ import annotations

from typing import Any

from sqlmodel import SQLModel

from service.search.types import DateRow, IndexRow, NumberRow, ReferenceRow, StringRow, TokenRow, UriRow
from service.storage.tables import IdxDate, IdxNumber, IdxReference, IdxString, IdxToken, IdxUri

ROW_TABLES: dict[type[Any], type[SQLModel]] = {
    TokenRow: IdxToken,
    StringRow: IdxString,
    DateRow: IdxDate,
    ReferenceRow: IdxReference,
    NumberRow: IdxNumber,
    UriRow: IdxUri,
}


def row_table(row: IndexRow) -> type[SQLModel]:
    return ROW_TABLES[type(row)]


def row_values(row: IndexRow, rid: int, resource_type: str) -> dict[str, Any]:
    """Column values for inserting ``row`` into ``row_table(row)``.

    The row dataclasses' fields are the table's columns; ``vars`` is a shallow copy
    (``dataclasses.asdict`` deep-copies, several times slower on the write path).
    """
    return {"rid": rid, "resource_type": resource_type, **vars(row)}
