"""The condition for one search value against one index row, per parameter type (as data: _spec).

Prefix semantics over ranges follow http://hl7.org/fhir/R4/search.html#prefix with the
parameter range [pl, ph] and the resource range [rl, rh], both inclusive:
eq: [rl, rh] within [pl, ph]; ne: not eq; gt: rh > ph; lt: rl < pl;
ge: gt or eq; le: lt or eq; sa: rl > ph; eb: rh < pl; ap: the ranges overlap once the
parameter range is widened (``_dates.approximate``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from service.search._dates import approximate
from service.search._query import NO_SYSTEM, DateValue, NumberValue, ReferenceValue, TokenValue, UriValue
from service.search._spec import FALSE, Col, Spec
from service.search._spec import and_spec as and_
from service.search._spec import not_spec as not_
from service.search._spec import or_spec as or_


def date_condition(rl: Col, rh: Col, value: DateValue, now: datetime) -> Spec:
    pl, ph = value.low, value.high
    within = and_(rl >= pl, rh <= ph)
    match value.prefix:
        case "eq":
            return within
        case "ne":
            return not_(within)
        case "gt":
            return rh > ph
        case "lt":
            return rl < pl
        case "ge":
            return or_(rh > ph, within)
        case "le":
            return or_(rl < pl, within)
        case "sa":
            return rl > ph
        case "eb":
            return rh < pl
        case _:  # ap
            wide_low, wide_high = approximate(pl, ph, now)
            return and_(rl <= wide_high, rh >= wide_low)


def number_condition(col: Col, value: NumberValue) -> Spec:
    v = value.value
    match value.prefix:
        case "eq":
            return and_(col >= value.low, col < value.high)
        case "ne":
            return or_(col < value.low, col >= value.high)
        case "gt" | "sa":
            return col > v
        case "lt" | "eb":
            return col < v
        case "ge":
            return col >= v
        case "le":
            return col <= v
        case _:  # ap: within 10% of the value (http://hl7.org/fhir/R4/search.html#prefix)
            margin = abs(v) / Decimal(10)
            return and_(col >= v - margin, col <= v + margin)


def quantity_unit_condition(system: Col, code: Col, unit: Col, value: NumberValue) -> Spec | None:
    if value.code is None and value.system is None:
        return None
    conds: list[Spec] = []
    if value.system is not None:
        conds.append(system == value.system)
        if value.code is not None:
            conds.append(code == value.code)
    elif (
        value.code is not None
    ):  # number||code: the code or the unit (http://hl7.org/fhir/R4/search.html#quantity)
        conds.append(or_(code == value.code, unit == value.code))
    return and_(*conds)


def token_condition(system: Col, code: Col, text: Col, value: TokenValue) -> Spec:
    if value.text is not None:  # :text: starts a word of the display/text
        word = " " + value.text
        return or_(text.startswith(value.text), text.contains(word))
    conds: list[Spec] = []
    if value.code is not None:
        conds.append(code == value.code)
    if value.system == NO_SYSTEM:
        conds.append(system.is_(None))
    elif value.system is not None:
        conds.append(system == value.system)
    return and_(*conds) if conds else FALSE


def reference_condition(
    target_type: Col, target_id: Col, url: Col, version: Col, value: ReferenceValue, base_url: str | None
) -> Spec:
    by_id: Spec | None = None
    if value.id is not None:
        by_id = target_id == value.id
        if value.type is not None:
            by_id = and_(by_id, target_type == value.type)
    if value.url is None:
        return by_id if by_id is not None else FALSE
    by_url: Spec = url == value.url
    if value.version is not None:
        by_url = and_(by_url, version == value.version)
    # An absolute URL on this server is the same as the relative Type/id reference.
    local = base_url is not None and value.url.startswith(base_url.rstrip("/") + "/")
    if by_id is not None and local and value.version is None:
        return or_(by_url, by_id)
    return by_url


def uri_condition(col: Col, value: UriValue, modifier: str | None) -> Spec:
    if modifier == "below":
        return col.startswith(value.value)
    if modifier == "above":  # any indexed URI that is a path prefix of the value
        parts = value.value.split("/")
        return col.in_(["/".join(parts[:i]) for i in range(1, len(parts) + 1)])
    return col == value.value
