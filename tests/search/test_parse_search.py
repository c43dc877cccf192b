from datetime import UTC, datetime
from decimal import Decimal

import pytest

from service.errors import BadRequest
from service.search.parse import (
    MAX_COUNT,
    NO_SYSTEM,
    DateValue,
    Include,
    NumberValue,
    Prefix,
    ReferenceValue,
    SearchQuery,
    StringValue,
    TokenValue,
    UriValue,
    parse_search,
)


def _one(resource_type: str, key: str, value: str) -> SearchQuery:
    return parse_search(resource_type, [(key, value)])


def test_repeated_parameters_are_and_commas_are_or() -> None:
    q = parse_search("ServiceRequest", [("status", "active,on-hold"), ("status", "active")])
    assert [f.values for f in q.filters] == [
        (TokenValue(None, "active"), TokenValue(None, "on-hold")),
        (TokenValue(None, "active"),),
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("active", TokenValue(None, "active")),
        ("http://snomed.info/sct|303653007", TokenValue("http://snomed.info/sct", "303653007")),
        ("|abc", TokenValue(NO_SYSTEM, "abc")),
        ("http://snomed.info/sct|", TokenValue("http://snomed.info/sct", None)),
        (r"urn:x|a\|b", TokenValue("urn:x", "a|b")),
        (r"a\,b", TokenValue(None, "a,b")),
    ],
)
def test_token_forms(raw: str, expected: TokenValue) -> None:
    assert _one("ServiceRequest", "code", raw).filters[0].values == (expected,)


def test_token_modifiers() -> None:
    assert _one("ServiceRequest", "code:text", "Computed Tomógraphy").filters[0].values == (
        TokenValue(None, None, "computed tomography"),
    )
    f = _one("ServiceRequest", "status:not", "completed").filters[0]
    assert (f.modifier, f.values) == ("not", (TokenValue(None, "completed"),))


def test_missing_modifier() -> None:
    f = _one("Task", "owner:missing", "true").filters[0]
    assert (f.modifier, f.missing, f.values) == ("missing", True, ())
    assert _one("Task", "owner:missing", "false").filters[0].missing is False
    with pytest.raises(BadRequest, match="owner:missing"):
        _one("Task", "owner:missing", "yes")


@pytest.mark.parametrize("modifier", ["exact", "contains"])
def test_string_modifiers(modifier: str) -> None:
    f = _one("Patient", f"family:{modifier}", "Núñez").filters[0]
    assert (f.modifier, f.values) == (modifier, (StringValue("Núñez", "nunez"),))


@pytest.mark.parametrize("prefix", ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"])
def test_date_prefixes(prefix: Prefix) -> None:
    (value,) = _one("ServiceRequest", "authored", f"{prefix}2024-03").filters[0].values
    assert value == DateValue(
        prefix,
        datetime(2024, 3, 1, tzinfo=UTC),
        datetime(2024, 3, 31, 23, 59, 59, 999999, tzinfo=UTC),
    )


def test_date_without_prefix_is_eq() -> None:
    (value,) = _one("Task", "_lastUpdated", "2024-03-05T10:00:00Z").filters[0].values
    assert isinstance(value, DateValue)
    assert value.prefix == "eq"


@pytest.mark.parametrize("raw", ["xx2024", "2024-13-01", "gt", "ge2024-03-05T10", "March", "eq2024-02-30"])
def test_malformed_dates_are_400_naming_the_parameter(raw: str) -> None:
    with pytest.raises(BadRequest, match="'authored'") as err:
        _one("ServiceRequest", "authored", raw)
    assert err.value.status == 400
    assert err.value.outcome()["issue"][0]["code"] == "invalid"


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("subject", "Patient/123", ReferenceValue("Patient", "123")),
        ("subject", "123", ReferenceValue(None, "123")),
        ("subject:Patient", "123", ReferenceValue("Patient", "123")),
        ("subject", "Patient/123/_history/2", ReferenceValue("Patient", "123")),
        (
            "subject",
            "https://hub.example/fhir/Patient/123",
            ReferenceValue("Patient", "123", "https://hub.example/fhir/Patient/123"),
        ),
    ],
)
def test_reference_forms(key: str, raw: str, expected: ReferenceValue) -> None:
    assert _one("ServiceRequest", key, raw).filters[0].values == (expected,)


def test_canonical_reference_with_version() -> None:
    (value,) = (
        _one("QuestionnaireResponse", "questionnaire", "https://w.org/Questionnaire/q|1.0").filters[0].values
    )
    assert value == ReferenceValue("Questionnaire", "q", "https://w.org/Questionnaire/q", "1.0")


def test_bad_references() -> None:
    with pytest.raises(BadRequest, match="subject"):
        _one("ServiceRequest", "subject", "a/b/c")
    with pytest.raises(BadRequest, match="contradicts"):
        _one("ServiceRequest", "subject:Patient", "Group/1")


def test_type_modifier_must_be_a_target() -> None:
    q = _one("ServiceRequest", "subject:Organization", "1")
    assert q.filters == []
    assert q.unknown == ["subject:Organization"]


@pytest.mark.parametrize("prefix", ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"])
def test_quantity_prefixes_and_units(prefix: Prefix) -> None:
    (value,) = (
        _one("Observation", "value-quantity", f"{prefix}5.4|http://unitsofmeasure.org|mg").filters[0].values
    )
    assert value == NumberValue(
        prefix,
        Decimal("5.4"),
        Decimal("5.35"),
        Decimal("5.45"),
        "http://unitsofmeasure.org",
        "mg",
    )


def test_quantity_code_only_and_plain_number() -> None:
    (v1,) = _one("Observation", "value-quantity", "100||mg").filters[0].values
    assert v1 == NumberValue("eq", Decimal(100), Decimal("99.5"), Decimal("100.5"), None, "mg")
    (v2,) = _one("Observation", "value-quantity", "gt1e2").filters[0].values
    assert isinstance(v2, NumberValue)
    assert (v2.prefix, v2.value, v2.low, v2.high) == ("gt", Decimal(100), Decimal(50), Decimal(150))


@pytest.mark.parametrize("raw", ["abc", "zz5", "5|x", "1.2.3", "5|a|b|c", "NaN"])
def test_malformed_numbers(raw: str) -> None:
    with pytest.raises(BadRequest, match="value-quantity"):
        _one("Observation", "value-quantity", raw)


@pytest.mark.parametrize("modifier", ["below", "above"])
def test_uri_modifiers(modifier: str) -> None:
    f = _one("Questionnaire", f"url:{modifier}", "https://w.org/fhir").filters[0]
    assert (f.modifier, f.values) == (modifier, (UriValue("https://w.org/fhir"),))


def test_unknown_parameters_and_modifiers_are_collected() -> None:
    q = parse_search(
        "ServiceRequest",
        [
            ("foo", "1"),
            ("status:in", "x"),
            ("subject.name", "x"),
            ("authored:exact", "2024"),
            ("_has", "x"),
            ("subject:identifier", "x|y"),
            ("_lastUpdated:missing", "true"),
            ("_id:missing", "true"),
            ("_format", "json"),
            ("_pretty", "true"),
        ],
    )
    assert q.filters == []
    assert q.unknown == [
        "foo",
        "status:in",
        "subject.name",
        "authored:exact",
        "_has",
        "subject:identifier",
        "_lastUpdated:missing",
        "_id:missing",
    ]


def test_empty_values_are_ignored() -> None:
    assert parse_search("Task", [("status", ""), ("status", ",")]).filters == []


def test_count_offset_cursor_total_summary_elements() -> None:
    q = parse_search(
        "Task",
        [
            ("_count", "50"),
            ("_offset", "100"),
            ("_cursor", "opaque=="),
            ("_total", "accurate"),
            ("_summary", "count"),
            ("_elements", "status,owner"),
        ],
    )
    assert (q.count, q.offset, q.cursor, q.total, q.summary, q.elements) == (
        50,
        100,
        "opaque==",
        "accurate",
        "count",
        ["status", "owner"],
    )
    assert parse_search("Task", []).count == 20
    assert parse_search("Task", [("_count", "100000")]).count == MAX_COUNT


@pytest.mark.parametrize(
    ("key", "raw"),
    [("_count", "-1"), ("_count", "ten"), ("_offset", "1.5"), ("_total", "all"), ("_summary", "yes")],
)
def test_bad_controls(key: str, raw: str) -> None:
    with pytest.raises(BadRequest, match=key):
        parse_search("Task", [(key, raw)])


def test_sort() -> None:
    q = parse_search("ServiceRequest", [("_sort", "-authored,_id,nope, status")])
    assert q.sort == [("authored", True), ("_id", False), ("status", False)]
    assert q.unknown == ["_sort=nope"]


def test_includes_and_revincludes() -> None:
    q = parse_search(
        "ServiceRequest",
        [
            ("_include", "ServiceRequest:patient"),
            ("_include", "ServiceRequest:performer:HealthcareService"),
            ("_include:iterate", "HealthcareService:endpoint"),
            ("_revinclude", "Task:focus"),
            ("_include", "ServiceRequest:status"),
            ("_include", "Task:owner"),
            ("_include", "ServiceRequest"),
        ],
    )
    assert q.includes == [
        Include("ServiceRequest", "patient", None, False),
        Include("ServiceRequest", "performer", "HealthcareService", False),
        Include("HealthcareService", "endpoint", None, True),
    ]
    assert q.revincludes == [Include("Task", "focus", None, False)]
    assert q.unknown == ["_include=ServiceRequest:status", "_include=Task:owner", "_include=ServiceRequest"]


def test_include_wildcard_expands_to_reference_parameters() -> None:
    q = parse_search("Endpoint", [("_include", "Endpoint:*")])
    assert q.includes == [Include("Endpoint", "organization", None, False)]


def test_id_and_unknown_types() -> None:
    f = parse_search("Basic", [("_id", "a,b")]).filters[0]
    assert (f.param.name, f.values) == ("_id", (TokenValue(None, "a"), TokenValue(None, "b")))
    assert parse_search("Basic", [("code", "x")]).unknown == ["code"]
