"""Compiled searches run against real databases: SQLite in memory, and PostgreSQL when reachable."""

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, insert, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import aliased
from sqlmodel import SQLModel

from service.search.compile import compile_filters, sort_clauses, sort_expression
from service.search.extract import extract_index_rows
from service.search.parse import parse_search
from service.storage.index_rows import row_table, row_values
from service.storage.tables import Resource

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
PG_URL = os.environ.get("WRAPAROUND_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BASE = "https://hub.example/fhir"
NOW = datetime(2024, 3, 6, tzinfo=UTC)
RESOURCE: Any = SQLModel.metadata.tables["resource"]


def _sr(id_: str, **fields: Any) -> dict[str, Any]:
    return {"resourceType": "ServiceRequest", "id": id_, "intent": "order", **fields}


def _resources() -> list[tuple[dict[str, Any], datetime]]:
    example = json.loads((FIXTURES / "fhir-r4-core" / "ServiceRequest-example.json").read_text())
    return [
        (example, datetime(2023, 1, 1, tzinfo=UTC)),
        (
            _sr(
                "sr2",
                status="active",
                authoredOn="2024-03-05T10:00:00Z",
                subject={"reference": f"{BASE}/Patient/p2"},
                requester={"reference": "Organization/clinic"},
                performer=[{"reference": "HealthcareService/hs1"}],
                identifier=[{"system": "https://w.org/id", "value": "A-1"}],
                supportingInfo=[{"reference": "QuestionnaireResponse/qr1"}],
            ),
            datetime(2024, 3, 5, 12, tzinfo=UTC),
        ),
        (
            _sr(
                "sr3",
                status="active",
                authoredOn="2024-04",
                subject={"reference": "Patient/p1"},
                identifier=[{"value": "B-2"}],
                category=[{"text": "Housing support"}],
            ),
            datetime(2024, 5, 1, tzinfo=UTC),
        ),
        (
            {"resourceType": "Patient", "id": "p1", "name": [{"family": "Núñez", "given": ["Zoë"]}]},
            datetime(2024, 1, 1, tzinfo=UTC),
        ),
        (
            {"resourceType": "Patient", "id": "p2", "name": [{"family": "50%_off", "given": ["Peter"]}]},
            datetime(2024, 1, 1, tzinfo=UTC),
        ),
        (
            {
                "resourceType": "Observation",
                "id": "o1",
                "status": "final",
                "code": {"text": "score"},
                "valueQuantity": {"value": 12, "system": "http://unitsofmeasure.org", "code": "{score}"},
            },
            datetime(2024, 1, 1, tzinfo=UTC),
        ),
        (
            {
                "resourceType": "Observation",
                "id": "o2",
                "status": "final",
                "code": {"text": "dose"},
                "valueQuantity": {
                    "value": 5.4,
                    "system": "http://unitsofmeasure.org",
                    "code": "mg",
                    "unit": "mg",
                },
            },
            datetime(2024, 1, 1, tzinfo=UTC),
        ),
        (
            {
                "resourceType": "QuestionnaireResponse",
                "id": "qr1",
                "status": "completed",
                "questionnaire": "https://wraparound.org.uk/fhir/Questionnaire/needs|1.0",
            },
            datetime(2024, 1, 1, tzinfo=UTC),
        ),
        (
            {
                "resourceType": "QuestionnaireResponse",
                "id": "qr2",
                "status": "completed",
                "questionnaire": "https://wraparound.org.uk/fhir/Questionnaire/needs|2.0",
            },
            datetime(2024, 1, 1, tzinfo=UTC),
        ),
        (
            {
                "resourceType": "Questionnaire",
                "id": "q1",
                "status": "active",
                "url": "https://wraparound.org.uk/fhir/Questionnaire/needs",
            },
            datetime(2024, 1, 1, tzinfo=UTC),
        ),
        (
            {
                "resourceType": "Questionnaire",
                "id": "q2",
                "status": "active",
                "url": "https://other.org/fhir/Questionnaire/x",
            },
            datetime(2024, 1, 1, tzinfo=UTC),
        ),
    ]


def _load(engine: Engine) -> None:
    SQLModel.metadata.create_all(engine)
    with engine.begin() as conn:
        for resource, updated in _resources():
            rtype = resource["resourceType"]
            result = conn.execute(
                insert(RESOURCE).values(
                    resource_type=rtype,
                    id=resource["id"],
                    version_id=1,
                    last_updated=updated,
                    deleted=False,
                    content=resource,
                )
            )
            assert result.inserted_primary_key is not None
            rid = result.inserted_primary_key[0]
            for row in extract_index_rows(resource):
                conn.execute(insert(row_table(row).__table__).values(**row_values(row, rid, rtype)))  # type: ignore[attr-defined]


def _postgres() -> Iterator[Engine]:
    schema = f"test_search_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL, connect_args={"connect_timeout": 3})
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError:
        admin.dispose()
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    engine = create_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        _load(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if request.param == "postgresql":
        yield from _postgres()
        return
    engine = create_engine("sqlite://")
    _load(engine)
    yield engine
    engine.dispose()


def _search(
    engine: Engine, rtype: str, params: list[tuple[str, str]], base_url: str | None = None
) -> set[str]:
    query = parse_search(rtype, params)
    assert query.unknown == []
    res: Any = aliased(Resource)  # an alias must work as well as the table
    conds = compile_filters(query, res, base_url=base_url, now=NOW)
    stmt = select(res.id).where(res.resource_type == rtype, *conds)
    with engine.connect() as conn:
        return set(conn.scalars(stmt))


CASES: list[tuple[str, str, str, set[str]]] = [
    # dates: sr2 authored at one second on 2024-03-05, sr3 the whole of April 2024, example none
    ("ServiceRequest", "authored", "2024-03", {"sr2"}),
    ("ServiceRequest", "authored", "2024", {"sr2", "sr3"}),
    ("ServiceRequest", "authored", "2024-04-10", set()),
    ("ServiceRequest", "authored", "ne2024-03", {"sr3"}),
    ("ServiceRequest", "authored", "gt2024-03-05", {"sr3"}),
    ("ServiceRequest", "authored", "gt2024-03-04", {"sr2", "sr3"}),
    ("ServiceRequest", "authored", "lt2024-04-10", {"sr2", "sr3"}),
    ("ServiceRequest", "authored", "lt2024-03-05T10:00:00Z", set()),
    ("ServiceRequest", "authored", "ge2024-04", {"sr3"}),
    ("ServiceRequest", "authored", "le2024-03-05", {"sr2"}),
    ("ServiceRequest", "authored", "sa2024-03-31", {"sr3"}),
    ("ServiceRequest", "authored", "eb2024-04-01", {"sr2"}),
    ("ServiceRequest", "authored", "ap2024-03-06", {"sr2"}),
    ("ServiceRequest", "authored:missing", "true", {"example"}),
    ("ServiceRequest", "authored:missing", "false", {"sr2", "sr3"}),
    ("ServiceRequest", "_lastUpdated", "gt2024-04", {"sr3"}),
    ("ServiceRequest", "_lastUpdated", "le2024-03-05", {"example", "sr2"}),
    ("ServiceRequest", "_lastUpdated", "2024-03-05", {"sr2"}),
    # tokens
    ("ServiceRequest", "status", "active", {"sr2", "sr3"}),
    ("ServiceRequest", "status", "completed,active", {"example", "sr2", "sr3"}),
    ("ServiceRequest", "status:not", "active", {"example"}),
    ("ServiceRequest", "code", "303653007", {"example"}),
    ("ServiceRequest", "code", "http://snomed.info/sct|303653007", {"example"}),
    ("ServiceRequest", "code", "http://loinc.org|303653007", set()),
    ("ServiceRequest", "code", "http://snomed.info/sct|", {"example"}),
    ("ServiceRequest", "identifier", "|B-2", {"sr3"}),
    ("ServiceRequest", "identifier", "|A-1", set()),
    ("ServiceRequest", "identifier", "A-1", {"sr2"}),
    ("ServiceRequest", "category:text", "housing", {"sr3"}),
    ("ServiceRequest", "category:text", "procedure", {"example"}),
    ("ServiceRequest", "category:text", "ocedure", set()),
    ("ServiceRequest", "_id", "sr2,sr3", {"sr2", "sr3"}),
    ("ServiceRequest", "_id:not", "sr2", {"example", "sr3"}),
    # references
    ("ServiceRequest", "subject", "Patient/example", {"example"}),
    ("ServiceRequest", "subject", "example", {"example"}),
    ("ServiceRequest", "subject:Patient", "example", {"example"}),
    ("ServiceRequest", "patient", "Patient/p2", {"sr2"}),
    ("ServiceRequest", "subject", f"{BASE}/Patient/p2", {"sr2"}),
    ("ServiceRequest", "subject", f"{BASE}/Patient/p1", set()),  # no base_url: absolute only matches absolute
    ("ServiceRequest", "performer", "HealthcareService/hs1", {"sr2"}),
    ("ServiceRequest", "performer", "Organization/hs1", set()),
    ("ServiceRequest", "performer:missing", "true", {"example", "sr3"}),
    ("ServiceRequest", "supporting-info", "QuestionnaireResponse/qr1", {"sr2"}),
    (
        "QuestionnaireResponse",
        "questionnaire",
        "https://wraparound.org.uk/fhir/Questionnaire/needs",
        {"qr1", "qr2"},
    ),
    (
        "QuestionnaireResponse",
        "questionnaire",
        "https://wraparound.org.uk/fhir/Questionnaire/needs|1.0",
        {"qr1"},
    ),
    # strings: starts-with on normalised values, with LIKE wildcards escaped
    ("Patient", "family", "nun", {"p1"}),
    ("Patient", "family", "NÚÑ", {"p1"}),
    ("Patient", "name", "zo", {"p1"}),
    ("Patient", "family:exact", "Núñez", {"p1"}),
    ("Patient", "family:exact", "nunez", set()),
    ("Patient", "family:contains", "ÑE", {"p1"}),
    ("Patient", "family", "50%_", {"p2"}),
    ("Patient", "family", "%", set()),
    ("Patient", "family:contains", "_", {"p2"}),
    # quantities
    ("Observation", "value-quantity", "12", {"o1"}),
    ("Observation", "value-quantity", "gt10", {"o1"}),
    ("Observation", "value-quantity", "lt10", {"o2"}),
    ("Observation", "value-quantity", "ge12", {"o1"}),
    ("Observation", "value-quantity", "le5.4", {"o2"}),
    ("Observation", "value-quantity", "ne12", {"o2"}),
    ("Observation", "value-quantity", "ap11", {"o1"}),
    ("Observation", "value-quantity", "sa5.4", {"o1"}),
    ("Observation", "value-quantity", "eb12", {"o2"}),
    ("Observation", "value-quantity", "5.4|http://unitsofmeasure.org|mg", {"o2"}),
    ("Observation", "value-quantity", "5.4||mg", {"o2"}),
    ("Observation", "value-quantity", "12||mg", set()),
    # uris
    ("Questionnaire", "url", "https://wraparound.org.uk/fhir/Questionnaire/needs", {"q1"}),
    ("Questionnaire", "url", "https://wraparound.org.uk/fhir", set()),
    ("Questionnaire", "url:below", "https://wraparound.org.uk/fhir", {"q1"}),
    ("Questionnaire", "url:above", "https://wraparound.org.uk/fhir/Questionnaire/needs/x", {"q1"}),
]


@pytest.mark.parametrize(("rtype", "key", "value", "expected"), CASES, ids=[f"{c[1]}={c[2]}" for c in CASES])
def test_search(engine: Engine, rtype: str, key: str, value: str, expected: set[str]) -> None:
    assert _search(engine, rtype, [(key, value)]) == expected


def test_filters_are_anded(engine: Engine) -> None:
    assert _search(engine, "ServiceRequest", [("status", "active"), ("authored", "2024-04")]) == {"sr3"}


def test_absolute_reference_to_this_server_matches_relative(engine: Engine) -> None:
    assert _search(engine, "ServiceRequest", [("subject", f"{BASE}/Patient/p1")], base_url=BASE) == {"sr3"}
    assert _search(engine, "ServiceRequest", [("subject", f"{BASE}/Patient/p2")], base_url=BASE) == {"sr2"}


def _sorted(engine: Engine, rtype: str, sort: str) -> list[str]:
    query = parse_search(rtype, [("_sort", sort)])
    stmt = (
        select(RESOURCE.c.id)
        .where(RESOURCE.c.resource_type == rtype)
        .order_by(*sort_clauses(query, Resource))
    )
    with engine.connect() as conn:
        return list(conn.scalars(stmt))


def test_sort(engine: Engine) -> None:
    assert _sorted(engine, "ServiceRequest", "-authored") == ["sr3", "sr2", "example"]
    assert _sorted(engine, "ServiceRequest", "authored") == ["sr2", "sr3", "example"]
    assert _sorted(engine, "ServiceRequest", "status,-_id") == ["sr3", "sr2", "example"]  # active < completed
    assert _sorted(engine, "ServiceRequest", "-_lastUpdated") == ["sr3", "sr2", "example"]
    assert _sorted(engine, "Patient", "family") == ["p2", "p1"]
    assert _sorted(engine, "Observation", "-value-quantity") == ["o1", "o2"]


def test_sort_expression_for_references_is_type_slash_id(engine: Engine) -> None:
    expr = sort_expression("subject", "ServiceRequest", False, Resource)
    stmt = select(RESOURCE.c.id, expr).where(RESOURCE.c.resource_type == "ServiceRequest")
    with engine.connect() as conn:
        values = {row[0]: row[1] for row in conn.execute(stmt)}
    assert values == {"example": "Patient/example", "sr2": "Patient/p2", "sr3": "Patient/p1"}


def test_filters_on_one_table_take_different_shared_aliases(engine: Engine) -> None:
    # Each filter's subquery needs its own alias of the index table (two token filters must not
    # share one), and the aliases are made once, not per search.
    from service.search.compile import compile_filters
    from service.search.parse import parse_search
    from service.storage.resources import R

    query = parse_search("Patient", [("gender", "female"), ("active", "true"), ("family", "ada")])

    def froms(conditions: list[Any]) -> list[Any]:
        return [c.right.element.columns_clause_froms[0] for c in conditions]

    first, again = froms(compile_filters(query, R)), froms(compile_filters(query, R))
    assert len({id(a) for a in first}) == 3
    assert [id(a) for a in first] == [id(a) for a in again]
    # Two token filters in one search, each through its own alias: the intersection, either way round.
    status, intent = ("status", "active"), ("intent", "order")
    both = _search(engine, "ServiceRequest", [status, intent])
    assert both == _search(engine, "ServiceRequest", [status]) & _search(engine, "ServiceRequest", [intent])
    assert both == _search(engine, "ServiceRequest", [intent, status])
    assert both
