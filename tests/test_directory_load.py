"""Loading directory Bundles: idempotent by identifier, references resolved, non-directory types refused."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from fhir_profiles import DIRECTORY_IDENTIFIER_SYSTEM, load_demo_directory
from service.cli.directory import directory_app
from service.directory import DirectoryRefused, load_directory
from service.settings import get_settings
from service.storage.database import Database
from service.storage.resources import ResourceStore

BASE = "http://hub.test/fhir"
runner = CliRunner()


def _current(db: Database, ref: str) -> Any:
    rtype, _, rid = ref.partition("/")
    with db.transaction(write=False) as conn:
        return ResourceStore(conn).current(rtype, rid)


def _count(db: Database, resource_type: str) -> int:
    with db.transaction(write=False) as conn:
        sql = "SELECT COUNT(*) FROM resource WHERE resource_type = :t"
        return int(conn.execute(text(sql), {"t": resource_type}).scalar_one())


def _small_bundle() -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "urn:uuid:svc",
                "resource": {
                    "resourceType": "HealthcareService",
                    "identifier": [{"system": DIRECTORY_IDENTIFIER_SYSTEM, "value": "acme-food"}],
                    "providedBy": {"reference": "urn:uuid:org"},
                    "name": "Acme food bank",
                },
            },
            {
                "fullUrl": "urn:uuid:org",
                "resource": {
                    "resourceType": "Organization",
                    "identifier": [{"system": DIRECTORY_IDENTIFIER_SYSTEM, "value": "acme"}],
                    "name": "Acme",
                },
            },
        ],
    }


def test_demo_directory_loads_once_and_again_unchanged(clean_database: Database) -> None:
    first = load_directory(clean_database, load_demo_directory(), base_url=BASE)
    assert (first.created, first.updated, first.unchanged) == (25, 0, 0)
    org = _current(clean_database, first.by_slug["positive-east"])
    assert org.content["name"] == "Positive East"

    second = load_directory(clean_database, load_demo_directory(), base_url=BASE)
    assert (second.created, second.updated, second.unchanged) == (0, 0, 25)
    assert second.by_slug == first.by_slug
    assert _current(clean_database, first.by_slug["positive-east"]).version_id == 1
    assert _count(clean_database, "Organization") == 8


def test_urn_references_become_hub_ids(clean_database: Database) -> None:
    report = load_directory(clean_database, load_demo_directory(), base_url=BASE)
    service = _current(clean_database, report.by_slug["metro-peer-support"])
    assert service.content["providedBy"]["reference"] == report.by_slug["metro"]
    assert "id" not in load_demo_directory()["entry"][0]["resource"]


def test_changed_entry_is_updated_in_place(clean_database: Database) -> None:
    load_directory(clean_database, load_demo_directory(), base_url=BASE)
    bundle = load_demo_directory()
    bundle["entry"][0]["resource"]["name"] = "Positive East (renamed)"
    report = load_directory(clean_database, bundle, base_url=BASE)
    assert (report.created, report.updated, report.unchanged) == (0, 1, 24)
    org = _current(clean_database, report.by_slug["positive-east"])
    assert (org.content["name"], org.version_id) == ("Positive East (renamed)", 2)


def test_entries_are_ordered_by_their_references(clean_database: Database) -> None:
    # The service comes first in the file but refers to the organisation after it.
    report = load_directory(clean_database, _small_bundle(), base_url=BASE)
    assert report.created == 2
    service = _current(clean_database, report.by_slug["acme-food"])
    assert service.content["providedBy"]["reference"] == report.by_slug["acme"]


def test_dangling_urn_reference_is_refused(clean_database: Database) -> None:
    bundle = _small_bundle()
    del bundle["entry"][1]
    with pytest.raises(DirectoryRefused, match=r"urn:uuid:org, which is not an entry"):
        load_directory(clean_database, bundle, base_url=BASE)
    assert _count(clean_database, "HealthcareService") == 0


def test_non_directory_types_are_refused_and_nothing_is_stored(clean_database: Database) -> None:
    bundle = load_demo_directory()
    patient = {"resourceType": "Patient", "identifier": [{"system": "urn:x", "value": "1"}]}
    bundle["entry"].append(
        {"resource": patient, "request": {"method": "PUT", "url": "Patient?identifier=urn:x|1"}}
    )
    with pytest.raises(DirectoryRefused, match=r"entry\[25\]: Patient is not a directory resource"):
        load_directory(clean_database, bundle, base_url=BASE)
    assert _count(clean_database, "Organization") == 0


def test_entry_without_identifier_is_refused(clean_database: Database) -> None:
    bundle = _small_bundle()
    del bundle["entry"][1]["resource"]["identifier"]
    with pytest.raises(DirectoryRefused, match="cannot be loaded idempotently"):
        load_directory(clean_database, bundle, base_url=BASE)


@pytest.fixture
def cli_env(clean_database: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    monkeypatch.setenv("WRAPAROUND_DATABASE_URL", clean_database.url)
    get_settings.cache_clear()
    yield clean_database
    get_settings.cache_clear()


def test_cli_load_reports_counts(cli_env: Database, tmp_path: Path) -> None:
    path = tmp_path / "directory.json"
    path.write_text(json.dumps(load_demo_directory()))
    first = runner.invoke(directory_app, ["load", str(path)])
    assert first.exit_code == 0, first.output
    assert "25 created, 0 updated, 0 unchanged" in first.output
    again = runner.invoke(directory_app, ["load", str(path)])
    assert "0 created, 0 updated, 25 unchanged" in again.output


def test_cli_refuses_other_types_with_exit_code_2(cli_env: Database, tmp_path: Path) -> None:
    bundle = copy.deepcopy(_small_bundle())
    bundle["entry"][0]["resource"] = {
        "resourceType": "ServiceRequest",
        "identifier": [{"system": "a", "value": "b"}],
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bundle))
    result = runner.invoke(directory_app, ["load", str(path)])
    assert result.exit_code == 2
    assert "ServiceRequest is not a directory resource" in result.output
    assert _count(cli_env, "Organization") == 0


def test_cli_refuses_a_file_that_is_not_json(cli_env: Database, tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    path.write_text("not json")
    result = runner.invoke(directory_app, ["load", str(path)])
    assert (result.exit_code, "is not JSON" in result.output) == (2, True)
