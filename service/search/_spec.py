"""Search conditions as data, so a search's SQL is built once per shape (issue 11, ADR 0019).

A search's SQL depends on its shape (which parameters, modifiers and prefixes, and which parts of
each value are given), not on its values. Building the SQLAlchemy expression afresh for every
request cost more than running it: 60 % of a partner's inbox search (4.3 ms of CPU a request).

So ``_conditions`` writes each value's condition against ``Col`` and the ``and_``/``or_``/``not_``
here, which give a small tree of tuples. From one tree ``flatten`` reads the shape (the key under
which ``storage.search_sql`` keeps the statement) and the values in a fixed order, and ``build``
turns it into SQLAlchemy, once per shape, with each value behind a bind parameter named for its
place in that order. Both walk the tree in the same order, so a name always carries the value in
its place. Nothing in a tree is baked into SQL except the operators and column names.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, and_, bindparam, false, not_, or_, true
from sqlalchemy.sql.base import ReadOnlyColumnCollection


class Term(NamedTuple):
    op: str  # eq, lt, le, gt, ge, like (an escaped pattern), in (a tuple), null (IS NULL)
    col: str  # the column's name in the index row (or resource) the condition is built against
    value: Any


class Junction(NamedTuple):
    op: str  # and, or, not
    parts: tuple[Spec, ...]


Spec = Term | Junction

FALSE = Junction("or", ())  # an OR of nothing matches nothing


class Col:
    """A column by name, with the comparisons the condition builders use (SQLAlchemy's spelling)."""

    __slots__ = ("name",)
    __hash__ = None  # type: ignore[assignment]  # == builds a Term, as on a SQLAlchemy column

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, value: object) -> Term:  # type: ignore[override]
        return Term("null", self.name, None) if value is None else Term("eq", self.name, value)

    def __lt__(self, value: Any) -> Term:
        return Term("lt", self.name, value)

    def __le__(self, value: Any) -> Term:
        return Term("le", self.name, value)

    def __gt__(self, value: Any) -> Term:
        return Term("gt", self.name, value)

    def __ge__(self, value: Any) -> Term:
        return Term("ge", self.name, value)

    def is_(self, _none: None) -> Term:
        return Term("null", self.name, None)

    def in_(self, values: list[Any] | tuple[Any, ...]) -> Term:
        return Term("in", self.name, tuple(values))

    def startswith(self, text: str) -> Term:
        return Term("like", self.name, like_escape(text) + "%")

    def contains(self, text: str) -> Term:
        return Term("like", self.name, "%" + like_escape(text) + "%")


def and_spec(*parts: Spec) -> Spec:
    return Junction("and", parts)


def or_spec(*parts: Spec) -> Spec:
    return Junction("or", parts)


def not_spec(part: Spec) -> Spec:
    return Junction("not", (part,))


ESCAPE = "/"


def like_escape(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern with ``ESCAPE '/'`` (SQLAlchemy's ``autoescape``)."""
    return text.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")


def flatten(spec: Spec, values: list[Any]) -> tuple[Any, ...]:
    """The tree's shape, hashable; appends its values to ``values`` in the order ``build`` binds them."""
    if isinstance(spec, Term):
        if spec.op == "in":
            values.extend(spec.value)
            return (spec.op, spec.col, len(spec.value))
        if spec.op != "null":
            values.append(spec.value)
        return (spec.op, spec.col)
    return (spec.op, *(flatten(part, values) for part in spec.parts))


Bind = Callable[[Any, Any], ColumnElement[Any]]
_COMPARE = {"eq": operator.eq, "lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge}


def build(spec: Spec, columns: ReadOnlyColumnCollection[str, Any], bind: Bind) -> ColumnElement[bool]:
    """The SQLAlchemy condition; ``bind(value, type)`` gives the next value's bind parameter."""
    if isinstance(spec, Term):
        col = columns[spec.col]
        match spec.op:
            case "null":
                return col.is_(None)  # type: ignore[no-any-return]
            case "in":
                if not spec.value:
                    return false()  # an IN of nothing, without the driver-side expansion Core uses
                return col.in_([bind(v, col.type) for v in spec.value])  # type: ignore[no-any-return]
            case "like":
                return col.like(bind(spec.value, col.type), escape=ESCAPE)  # type: ignore[no-any-return]
        return _COMPARE[spec.op](col, bind(spec.value, col.type))  # type: ignore[no-any-return]
    parts = [build(part, columns, bind) for part in spec.parts]
    if spec.op == "not":
        return not_(parts[0])
    if not parts:
        return false() if spec.op == "or" else true()
    return and_(*parts) if spec.op == "and" else or_(*parts)


def named(prefix: str, values: list[Any]) -> dict[str, Any]:
    """``flatten``'s values by the names ``Binder(prefix)`` gives them."""
    return {f"{prefix}{i}": v for i, v in enumerate(values)}


class Binder:
    """Names values ``<prefix>0``, ``<prefix>1``, … in the order they are bound (as ``named``)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.count = 0

    def __call__(self, value: Any, type_: Any) -> ColumnElement[Any]:
        name = f"{self.prefix}{self.count}"
        self.count += 1
        # The column's type, so its bind processor applies (UTC timestamps), as for a plain literal.
        return bindparam(name, value, type_=type_)
