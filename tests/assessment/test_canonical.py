"""Canonical resolution and local ValueSet expansion, against a real database (SQLite or PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

import fhir_profiles as fp
from service.assessment.canonical import ValueSetExpander, code_displays, resolve, split
from service.bootstrap import load_definitions
from service.search.extract import extract_index_rows
from service.storage.database import Database
from service.storage.resources import ResourceStore

URGENCY = fp.NEED_URGENCY_SYSTEM
VS = f"{fp.BASE}/ValueSet"


@pytest.fixture
def db(clean_database: Database) -> Database:
    load_definitions(clean_database)
    return clean_database


def _add(db: Database, *resources: dict[str, Any]) -> None:
    with db.transaction() as conn:
        store = ResourceStore(conn)
        for resource in resources:
            store.create(
                resource["resourceType"], resource, extract_index_rows(resource), now=datetime.now(UTC)
            )


def _questionnaire(version: str, status: str = "active") -> dict[str, Any]:
    return {
        "resourceType": "Questionnaire",
        "url": fp.ASSESSMENT_URL,
        "version": version,
        "status": status,
        "item": [{"linkId": "q", "type": "string"}],
    }


def _value_set(name: str, **compose: Any) -> dict[str, Any]:
    return {"resourceType": "ValueSet", "url": f"{VS}/{name}", "status": "active", "compose": compose}


def test_split() -> None:
    assert split("http://x/Q|1.0") == ("http://x/Q", "1.0")
    assert split("http://x/Q") == ("http://x/Q", None)
    assert split("http://x/Q|") == ("http://x/Q", None)


def test_exact_version_and_unknowns(db: Database) -> None:
    with db.transaction(write=False) as conn:
        found = resolve(conn, "Questionnaire", f"{fp.ASSESSMENT_URL}|{fp.ASSESSMENT_VERSION}")
        assert found is not None
        assert found.id == "wellbeing-needs-assessment-1-1-0"
        # The first published version stays resolvable by url|version; a bare url is the latest.
        first = resolve(conn, "Questionnaire", f"{fp.ASSESSMENT_URL}|1.0.0")
        assert first is not None
        assert first.id == "wellbeing-needs-assessment"
        latest = resolve(conn, "Questionnaire", fp.ASSESSMENT_URL)
        assert latest is not None
        assert latest.id == "wellbeing-needs-assessment-1-1-0"
        assert resolve(conn, "Questionnaire", f"{fp.ASSESSMENT_URL}|9.9.9") is None
        assert resolve(conn, "Questionnaire", f"{fp.BASE}/Questionnaire/nope") is None
        # The same url under another type is not a match.
        assert resolve(conn, "ValueSet", fp.ASSESSMENT_URL) is None


def test_bare_url_is_latest_active_version_numerically(db: Database) -> None:
    _add(db, _questionnaire("1.10.0"), _questionnaire("1.9.0"), _questionnaire("2.0.0", status="draft"))
    with db.transaction(write=False) as conn:
        latest = resolve(conn, "Questionnaire", fp.ASSESSMENT_URL)
        assert latest is not None
        assert latest.content is not None
        assert latest.content["version"] == "1.10.0"
        old = resolve(conn, "Questionnaire", f"{fp.ASSESSMENT_URL}|1.0.0")
        assert old is not None
        assert old.id == "wellbeing-needs-assessment"
        draft = resolve(conn, "Questionnaire", f"{fp.ASSESSMENT_URL}|2.0.0")
        assert draft is not None
        assert draft.content is not None
        assert draft.content["status"] == "draft"


def test_bare_url_falls_back_to_latest_draft_when_none_active(db: Database) -> None:
    url = f"{fp.BASE}/Questionnaire/draft-only"
    _add(
        db, {**_questionnaire("0.1.0", "draft"), "url": url}, {**_questionnaire("0.2.0", "draft"), "url": url}
    )
    with db.transaction(write=False) as conn:
        found = resolve(conn, "Questionnaire", url)
        assert found is not None
        assert found.content is not None
        assert found.content["version"] == "0.2.0"


def test_concept_map_resolves_without_a_url_index(db: Database) -> None:
    with db.transaction(write=False) as conn:
        found = resolve(conn, "ConceptMap", f"{fp.NEED_TO_SERVICE_CATEGORY_URL}|1.0.0")
        assert found is not None
        assert found.id == "need-to-service-category"
        assert resolve(conn, "ConceptMap", f"{fp.NEED_TO_SERVICE_CATEGORY_URL}|0.0.1") is None


def test_whole_local_code_system_expands(db: Database) -> None:
    with db.transaction(write=False) as conn:
        codes = ValueSetExpander(conn)(f"{VS}/need-urgency")
    assert codes == {(URGENCY, "now"), (URGENCY, "soon"), (URGENCY, "not-urgent")}


def test_listed_concepts_of_an_external_system_expand(db: Database) -> None:
    with db.transaction(write=False) as conn:
        codes = ValueSetExpander(conn)(f"{VS}/phq-frequency|1.0.0")
    assert codes == {("http://loinc.org", c) for c in ("LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9")}


def test_imports_excludes_filters_and_cycles(db: Database) -> None:
    _add(
        db,
        _value_set(
            "urgent-only",
            include=[{"valueSet": [f"{VS}/need-urgency"]}],
            exclude=[{"system": URGENCY, "concept": [{"code": "not-urgent"}]}],
        ),
        _value_set(
            "filtered", include=[{"system": URGENCY, "filter": [{"property": "x", "op": "=", "value": "y"}]}]
        ),
        _value_set("external-whole", include=[{"system": "http://snomed.info/sct"}]),
        _value_set("loop-a", include=[{"valueSet": [f"{VS}/loop-b"]}]),
        _value_set("loop-b", include=[{"valueSet": [f"{VS}/loop-a"]}]),
        {
            **_value_set("expanded"),
            "expansion": {
                "timestamp": "2026-01-01T00:00:00Z",
                "contains": [{"system": "s", "code": "a"}, {"system": "s", "code": "b"}],
            },
        },
    )
    with db.transaction(write=False) as conn:
        expand = ValueSetExpander(conn)
        assert expand(f"{VS}/urgent-only") == {(URGENCY, "now"), (URGENCY, "soon")}
        assert expand(f"{VS}/filtered") is None
        assert expand(f"{VS}/external-whole") is None
        assert expand(f"{VS}/loop-a") is None
        assert expand(f"{VS}/expanded") == {("s", "a"), ("s", "b")}
        assert expand(f"{VS}/not-there") is None


def test_code_displays(db: Database) -> None:
    with db.transaction(write=False) as conn:
        names = code_displays(conn, fp.SERVICE_CATEGORY_SYSTEM)
        assert names["housing"] == "Housing support"
        assert code_displays(conn, "http://example.org/unknown") == {}
