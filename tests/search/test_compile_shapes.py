"""A compiled query's shape (search/compile.py, search/_spec.py): what its SQL depends on, and nothing
else. Equal shapes share one kept statement (storage/search_sql.py), so two queries whose SQL differs
must never have the same shape, and the values must be all that differs between equal ones."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.search._spec import Col, like_escape
from service.search.compile import compile_query
from service.search.parse import parse_search
from service.storage.resources import R

NOW = datetime(2026, 12, 1, tzinfo=UTC)
BASE = "https://hub.example/fhir"


def _compiled(rtype: str, params: list[tuple[str, str]]) -> tuple[object, dict[str, object], str]:
    filters = compile_query(parse_search(rtype, params), base_url=BASE, now=NOW)
    sql = " AND ".join(str(c) for c in filters.conditions(R))
    return filters.shape, filters.values, sql


SAME = [
    (
        "Task",
        [("owner", "Organization/a"), ("status", "requested")],
        [("owner", "Organization/b"), ("status", "accepted")],
    ),
    ("Patient", [("identifier", "http://a|1")], [("identifier", "http://b|2")]),
    ("Patient", [("family", "zo")], [("family", "o'brien%")]),
    ("Patient", [("birthdate", "ge1988")], [("birthdate", "ge2001-02-03T04:05:06Z")]),
    ("Patient", [("birthdate", "ap1988")], [("birthdate", "ap2020")]),
    ("Patient", [("_id", "a,b")], [("_id", "c,d")]),
    ("Task", [("focus", f"{BASE}/ServiceRequest/x")], [("focus", f"{BASE}/ServiceRequest/y")]),
]

DIFFERENT = [
    ("Patient", [("identifier", "http://a|1")], [("identifier", "1")]),
    ("Patient", [("identifier", "|1")], [("identifier", "http://a|1")]),
    ("Patient", [("birthdate", "ge1988")], [("birthdate", "lt1988")]),
    ("Patient", [("_id", "a,b")], [("_id", "a")]),
    ("Patient", [("gender", "male")], [("gender:not", "male")]),
    ("Patient", [("family", "zo")], [("family:exact", "zo")]),
    ("Patient", [("family", "zo")], [("given", "zo")]),
    ("Task", [("owner", "Organization/a")], [("requester", "Organization/a")]),
    (
        "Task",
        [("focus", f"{BASE}/ServiceRequest/x")],
        [("focus", "https://elsewhere.example/ServiceRequest/x")],
    ),
    ("Task", [("owner:missing", "true")], [("owner:missing", "false")]),
    ("Patient", [("gender", "male,female")], [("gender", "male")]),
]


@pytest.mark.parametrize(("rtype", "one", "other"), SAME)
def test_queries_that_differ_in_values_alone_share_a_shape_and_their_sql(
    rtype: str, one: list[tuple[str, str]], other: list[tuple[str, str]]
) -> None:
    shape_a, values_a, sql_a = _compiled(rtype, one)
    shape_b, values_b, sql_b = _compiled(rtype, other)
    assert shape_a == shape_b
    assert sql_a == sql_b
    assert values_a.keys() == values_b.keys()
    assert values_a != values_b


@pytest.mark.parametrize(("rtype", "one", "other"), DIFFERENT)
def test_queries_whose_sql_differs_have_different_shapes(
    rtype: str, one: list[tuple[str, str]], other: list[tuple[str, str]]
) -> None:
    assert _compiled(rtype, one)[0] != _compiled(rtype, other)[0]


def test_like_patterns_escape_the_wildcards_of_the_value() -> None:
    assert like_escape("50%_/x") == "50/%/_//x"
    assert Col("value").startswith("a_b").value == "a/_b%"
    assert Col("value").contains("%").value == "%/%%"
