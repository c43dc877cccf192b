"""The parsed form of a search: filters with typed values, plus the result controls.

Re-exported by ``service.search.parse``; import from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal, NamedTuple

from service.search.types import SearchParam

Prefix = Literal["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"]
PREFIXES: frozenset[str] = frozenset({"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"})
Total = Literal["none", "estimate", "accurate"]
Summary = Literal["true", "count", "text", "data", "false"]

DEFAULT_COUNT = 20
MAX_COUNT = 200

# TokenValue.system: None = any system; NO_SYSTEM ("|code") = the code must have no system.
NO_SYSTEM = ""


@dataclass(frozen=True)
class TokenValue:
    system: str | None
    code: str | None
    text: str | None = None  # :text search, already normalised


@dataclass(frozen=True)
class StringValue:
    value: str  # as given (for :exact)
    normalised: str


@dataclass(frozen=True)
class DateValue:
    prefix: Prefix
    low: datetime  # inclusive UTC range of the value at its precision
    high: datetime


@dataclass(frozen=True)
class ReferenceValue:
    type: str | None  # None: any type ("id" alone)
    id: str | None
    url: str | None = None  # absolute or canonical URL, without |version
    version: str | None = None


@dataclass(frozen=True)
class NumberValue:
    prefix: Prefix
    value: Decimal
    low: Decimal  # implicit range from the value's precision (eq/ne), http://hl7.org/fhir/R4/search.html#number
    high: Decimal  # exclusive
    system: str | None = None
    code: str | None = None  # quantity: matches code, or unit when no system is given


@dataclass(frozen=True)
class UriValue:
    value: str


SearchValue = TokenValue | StringValue | DateValue | ReferenceValue | NumberValue | UriValue


@dataclass(frozen=True)
class Filter:
    """One search parameter occurrence: its values are OR'ed; filters are AND'ed."""

    param: SearchParam
    modifier: str | None  # "not", "text", "exact", "contains", "below", "above", "missing", or a type name
    values: tuple[SearchValue, ...] = ()
    missing: bool | None = None  # set when modifier == "missing"


class Include(NamedTuple):
    source_type: str
    param: str
    target_type: str | None
    iterate: bool


@dataclass
class SearchQuery:
    resource_type: str
    filters: list[Filter] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    offset: int = 0
    cursor: str | None = None  # _cursor, opaque, kept raw
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (param name, descending)
    includes: list[Include] = field(default_factory=list)
    revincludes: list[Include] = field(default_factory=list)
    total: Total | None = None  # None: not asked for
    summary: Summary | None = None
    elements: list[str] = field(default_factory=list)
    # Ignored parameters, as "name", "name:modifier", "_sort=name" or "_include=value":
    # reported in an OperationOutcome, or a 400 under Prefer: handling=strict.
    unknown: list[str] = field(default_factory=list)
