"""The shapes shared by search definitions, the indexer and the SQL compiler.

Index rows are what the storage layer writes to the per-type index tables on every
write, in the same transaction (see docs/adr/0002-storage-layout.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

ParamType = Literal["token", "string", "date", "reference", "quantity", "number", "uri"]


@dataclass(frozen=True)
class SearchParam:
    """One search parameter of one resource type (R4 SearchParameter, reduced)."""

    name: str
    type: ParamType
    expression: str  # FHIRPath, as in the R4 SearchParameter definition
    targets: tuple[str, ...] = ()  # reference targets
    url: str = ""  # canonical URL of the SearchParameter definition
    description: str = ""


@dataclass(frozen=True)
class TokenRow:
    param: str
    system: str | None
    code: str | None
    text: str | None = None  # normalised display/text, for :text


@dataclass(frozen=True)
class StringRow:
    param: str
    value: str  # normalised: casefolded, accents stripped
    exact: str  # as written


@dataclass(frozen=True)
class DateRow:
    param: str
    low: datetime  # inclusive, UTC, naive-free (tz-aware)
    high: datetime  # inclusive upper bound of the implicit range, UTC


@dataclass(frozen=True)
class ReferenceRow:
    param: str
    target_type: str | None  # for relative "Type/id" references
    target_id: str | None
    url: str | None = None  # absolute or canonical URL (canonical: without |version)
    version: str | None = None  # canonical |version part


@dataclass(frozen=True)
class NumberRow:
    """Quantity and number values."""

    param: str
    value: Decimal
    system: str | None = None
    code: str | None = None
    unit: str | None = None


@dataclass(frozen=True)
class UriRow:
    param: str
    value: str


IndexRow = TokenRow | StringRow | DateRow | ReferenceRow | NumberRow | UriRow
