"""``wraparound demo``: directory, clients and keys set up; the walkthrough's token step works for real."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fhir_profiles import CONSENT_MODEL_URL
from service.clients import list_clients
from service.demo import DemoSetup, setup_demo
from service.demo_client import DemoClientError, load_key, pick_path, request_token, set_path
from service.demo_walkthrough import NHS_NUMBER, script, walkthrough
from service.settings import get_settings
from service.storage.database import Database
from service.storage.resources import ResourceStore
from tests.support.clients import FhirClients

PARTNERS = ("Positive East", "Metro", "Positively UK", "Plushealth", "Sophia Forum", "NAZ Project")
BASE = "http://127.0.0.1:8000/fhir"


def _setup(db: Database, keys: Path, fhir_base: str = BASE) -> DemoSetup:
    return setup_demo(db, fhir_base=fhir_base, keys_dir=keys)


def _content(db: Database, ref: str) -> dict[str, Any]:
    rtype, _, rid = ref.partition("/")
    with db.transaction(write=False) as conn:
        stored = ResourceStore(conn).current(rtype, rid)
    assert stored is not None
    assert stored.content is not None
    return stored.content


def test_setup_loads_directory_and_registers_clients(clean_database: Database, tmp_path: Path) -> None:
    setup = _setup(clean_database, tmp_path / "demo-keys")

    names = {_content(clean_database, ref)["name"] for ref in setup.directory.by_slug.values()}
    assert set(PARTNERS) <= names
    assert len(setup.services) == 17
    for service in setup.services:
        extensions = _content(clean_database, f"HealthcareService/{service.id}").get("extension", [])
        assert [e["valueCode"] for e in extensions if e["url"] == CONSENT_MODEL_URL] == [
            service.consent_model
        ]
    assert {s.consent_model for s in setup.services} == {"opt-in", "opt-out"}

    with clean_database.transaction(write=False) as conn:
        registered = {row.client_id: (row.role, row.organization_id) for row in list_clients(conn)}
    partners = {c.organization_name: c for c in setup.clients_of("partner")}
    assert set(partners) == set(PARTNERS)
    assert registered["demo-positive-east"] == ("partner", partners["Positive East"].organization_id)
    assert [c.client_id for c in setup.clients_of("clinic")] == ["demo-clinic-north", "demo-clinic-south"]
    assert registered["demo-clinic-north"][0] == "clinic"
    assert registered["demo-admin"] == ("admin", "wraparound")


def test_private_keys_are_owner_only(clean_database: Database, tmp_path: Path) -> None:
    keys = tmp_path / "demo-keys"
    setup = _setup(clean_database, keys)
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert len(setup.clients) == 9
    for client in setup.clients:
        assert client.key_path == keys / f"{client.client_id}.jwk.json"
        assert stat.S_IMODE(client.key_path.stat().st_mode) == 0o600
        jwk = json.loads(client.key_path.read_text())
        assert (jwk["kty"], jwk["crv"], "d" in jwk) == ("EC", "P-384", True)


def test_rerun_replaces_keys_and_leaves_directory_unchanged(clean_database: Database, tmp_path: Path) -> None:
    keys = tmp_path / "demo-keys"
    first = _setup(clean_database, keys)
    key_file = first.clients[0].key_path
    key_file.chmod(0o644)
    old = json.loads(key_file.read_text())
    second = _setup(clean_database, keys)
    assert (second.directory.created, second.directory.unchanged) == (0, 25)
    assert second.directory.by_slug == first.directory.by_slug
    new = json.loads(key_file.read_text())
    assert new["d"] != old["d"]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    with clean_database.transaction(write=False) as conn:
        row = next(r for r in list_clients(conn) if r.client_id == first.clients[0].client_id)
    assert [k["x"] for k in row.jwks["keys"]] == [new["x"]]


def test_walkthrough_names_the_real_ids(clean_database: Database, tmp_path: Path) -> None:
    setup = _setup(clean_database, tmp_path / "demo-keys")
    text = walkthrough(setup, today="2025-01-02")
    clinic = setup.clients_of("clinic")[0]
    partner = next(c for c in setup.clients_of("partner") if c.organization_name == "Positive East")
    service = next(s for s in setup.services_of(partner.organization_id) if s.consent_model == "opt-in")
    assert f'"Organization/{clinic.organization_id}"' in text
    assert f'"reference": "Organization/{partner.organization_id}"' in text
    assert f"Task?owner=Organization/{partner.organization_id}&status=requested" in text
    assert f'"HealthcareService/{service.id}"' in text
    assert NHS_NUMBER in text
    assert "Task?focus=ServiceRequest/$REFERRAL_ID" in text
    assert 'If-Match: W/\\"$TASK_VERSION\\"' in text
    assert f"--key {clinic.key_path}" in text


def test_walkthrough_token_step_against_the_live_hub(fhir: FhirClients, tmp_path: Path) -> None:
    setup = _setup(fhir.db, tmp_path / "demo-keys", fhir_base=f"{fhir.base_url}/fhir")
    clinic = setup.clients_of("clinic")[0]
    partner = setup.clients_of("partner")[0]

    clinic_token = request_token(fhir.base_url, clinic.client_id, load_key(clinic.key_path))
    listed = fhir.http.get(
        "/fhir/HealthcareService",
        params={"organization": f"Organization/{partner.organization_id}"},
        headers={"Authorization": f"Bearer {clinic_token}"},
    )
    assert listed.status_code == 200, listed.text
    assert {e["resource"]["id"] for e in listed.json().get("entry", [])} == {
        s.id for s in setup.services_of(partner.organization_id)
    }

    # The partner asks for everything and is granted what its registration allows.
    partner_token = request_token(
        fhir.base_url, partner.client_id, load_key(partner.key_path), http=fhir.http
    )
    refused = fhir.http.post(
        "/fhir/Patient",
        json={"resourceType": "Patient"},
        headers={"Authorization": f"Bearer {partner_token}", "Content-Type": "application/fhir+json"},
    )
    assert refused.status_code == 403


def test_token_with_the_wrong_key_is_refused(fhir: FhirClients, tmp_path: Path) -> None:
    setup = _setup(fhir.db, tmp_path / "demo-keys", fhir_base=f"{fhir.base_url}/fhir")
    clinic, other = setup.clients_of("clinic")
    with pytest.raises(DemoClientError, match="token request refused"):
        request_token(fhir.base_url, clinic.client_id, load_key(other.key_path), http=fhir.http)


def test_pick_and_set_follow_dotted_paths() -> None:
    bundle = {"entry": [{"resource": {"id": "t1", "meta": {"versionId": "3"}, "status": "requested"}}]}
    assert pick_path(bundle, "entry.0.resource.meta.versionId") == "3"
    set_path(bundle, "entry.0.resource.status", "accepted")
    assert bundle["entry"][0]["resource"]["status"] == "accepted"
    with pytest.raises(DemoClientError, match="stopped at '1'"):
        pick_path(bundle, "entry.1.resource.id")


@pytest.fixture
def cli_env(clean_database: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Database]:
    monkeypatch.setenv("WRAPAROUND_DATABASE_URL", clean_database.url)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield clean_database
    get_settings.cache_clear()


def test_demo_command_prints_walkthrough_then_serves(
    cli_env: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from service.cli import app

    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda application, **kw: served.update(kw, app=application))
    result = CliRunner().invoke(app, ["demo", "--port", "8123", "--keys-dir", "my-keys"])
    assert result.exit_code == 0, result.output
    assert "export HUB=http://127.0.0.1:8123" in result.output
    assert "--key my-keys/demo-clinic-north.jwk.json" in result.output
    assert (served["host"], served["port"]) == ("127.0.0.1", 8123)
    assert Path("my-keys/demo-positive-east.jwk.json").is_file()


def test_walkthrough_script_closes_the_loop_over_http(
    fhir: FhirClients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The printed commands, run as printed by bash with curl, against the live hub."""
    monkeypatch.chdir(tmp_path)
    setup = _setup(fhir.db, Path("demo-keys"), fhir_base=f"{fhir.base_url}/fhir")
    commands = script(setup) + 'echo "IDS $PATIENT_ID $CONSENT_ID $REFERRAL_ID $TASK_ID"\n'
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        ["bash", "-c", commands], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "error" not in done.stderr, done.stderr
    lines = done.stdout.splitlines()
    # accept, complete, then the clinic sees the Task and the ServiceRequest completed
    assert lines[-5:-1] == ["accepted", "completed", "completed", "completed"], done.stdout
    _, patient, consent, referral, task = lines[-1].split(" ")
    assert all((patient, consent, referral, task)), done.stdout
    partner = next(c for c in setup.clients_of("partner") if c.organization_name == "Positive East")
    stored_task = _content(fhir.db, f"Task/{task}")
    assert stored_task["owner"]["reference"] == f"Organization/{partner.organization_id}"
    assert stored_task["focus"]["reference"] == f"ServiceRequest/{referral}"
    assert stored_task["status"] == "completed"
