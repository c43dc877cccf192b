"""The hub schemathesis tests: the real server as a subprocess, a seeded directory, two identities.

The server is ``wraparound serve --no-worker`` (the installed console script, as an operator runs
it) on a fresh SQLite file in a temporary folder and a free loopback port. The directory and the
clinical data are written through the API by real SMART clients, with the OpenAPI document's own
worked examples (``service.api.examples``), so every type that schemathesis searches has rows and
the ids it is given exist.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.servers import free_port, wait_ready
from service.api import examples
from service.delivery.secrets import generate_key
from service.storage.database import Database
from tests.support.clients import Client, FhirClients

ROOT = Path(__file__).resolve().parents[2]
# Least privilege as `wraparound demo` grants it: the partner reads, and updates its Tasks only.
SCOPES = {"clinic": "system/*.cruds", "partner": "system/*.rs system/Task.u"}


@dataclass(frozen=True)
class Identity:
    name: str  # clinic | partner
    token: str


@dataclass
class World:
    base_url: str
    ids: dict[str, str] = field(default_factory=dict)  # the placeholders of service.api.examples
    identities: list[Identity] = field(default_factory=list)


def _env(database_url: str, base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WRAPAROUND_")}
    env.update(
        {
            "WRAPAROUND_DATABASE_URL": database_url,
            "WRAPAROUND_BASE_URL": base_url,
            "WRAPAROUND_SECRET_KEY": generate_key(),
            # The fuzzer is one client sending thousands of requests: production limits would
            # answer 429 to most of them and test nothing else.
            "WRAPAROUND_RATE_LIMIT": "1000000/minute",
            "WRAPAROUND_TOKEN_RATE_LIMIT": "100000/minute",
            # One token per identity lasts the whole run.
            "WRAPAROUND_ACCESS_TOKEN_LIFETIME": "3600",
            "WRAPAROUND_ALLOW_PRIVATE_ENDPOINTS": "1",
            "WRAPAROUND_LOG_LEVEL": "WARNING",
        }
    )
    return env


def _command() -> list[str]:
    # The console script of the environment running this file (CI's fresh venv, or .venv).
    script = Path(sys.executable).with_name("wraparound")
    return [str(script) if script.exists() else "wraparound", "serve", "--no-worker"]


@contextmanager
def serve(database_url: str, log: Path) -> Iterator[str]:
    """The hub on a free loopback port until the block ends; yields its base URL."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = _env(database_url, base_url) | {"WRAPAROUND_PORT": str(port), "WRAPAROUND_HOST": "127.0.0.1"}
    with log.open("wb") as out:
        proc = subprocess.Popen(_command(), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            # /readyz, not /healthz: the fuzzer needs the migrated database, not just a live process.
            wait_ready(base_url, proc, path="/readyz")
            yield base_url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# -- seeding ---------------------------------------------------------------------------------------


def _filled(resource_type: str, ids: dict[str, str]) -> Any:
    body = examples.create_example(resource_type)
    assert body is not None, resource_type
    text = json.dumps(body)
    for placeholder, value in ids.items():
        text = text.replace(placeholder, value)
    return json.loads(text)


def _create(caller: Client, resource_type: str, ids: dict[str, str]) -> str:
    response = caller.post(f"/fhir/{resource_type}", json=_filled(resource_type, ids))
    if response.status_code != 201:
        raise RuntimeError(f"seeding {resource_type}: {response.status_code} {response.text}")
    return str(response.json()["id"])


def _first(caller: Client, query: str) -> str:
    bundle = caller.get(f"/fhir/{query}").json()
    return str(bundle["entry"][0]["resource"]["id"])


def seed(base_url: str, database_url: str) -> World:
    """A clinic and a partner Organization, the partner's service, and one referral with its Task."""
    db = Database(database_url)
    try:
        with httpx.Client(base_url=base_url, timeout=30) as http:
            return _seed(FhirClients(http, db, base_url))
    finally:
        db.dispose()


def _seed(fhir: FhirClients) -> World:
    admin = fhir.client("admin", "hub")
    ids: dict[str, str] = {}
    ids["PARTNER_ORG_ID"] = _create(admin, "Organization", ids)
    ids["CLINIC_ORG_ID"] = _create(admin, "Organization", ids)
    # Opt-out, so the referral needs no more than the seeded Consent (which permits it anyway).
    ids["SERVICE_ID"] = _create(admin, "HealthcareService", ids)
    for name in ("Location", "Endpoint", "Practitioner", "PractitionerRole", "Questionnaire"):
        ids[f"{name.upper()}_ID"] = _create(admin, name, ids)
    clinic = fhir.client("clinic", ids["CLINIC_ORG_ID"], scopes=SCOPES["clinic"])
    ids["PATIENT_ID"] = _create(clinic, "Patient", ids)
    ids["CONSENT_ID"] = _create(clinic, "Consent", ids)
    ids["SERVICE_REQUEST_ID"] = _create(clinic, "ServiceRequest", ids)
    ids["TASK_ID"] = _first(clinic, f"Task?focus=ServiceRequest/{ids['SERVICE_REQUEST_ID']}")
    ids["QUESTIONNAIRE_RESPONSE_ID"] = _create(clinic, "QuestionnaireResponse", ids)
    partner = fhir.client("partner", ids["PARTNER_ORG_ID"], scopes=SCOPES["partner"])
    world = World(fhir.base_url, ids)
    for caller in (clinic, partner):
        world.identities.append(Identity(caller.role, caller.token))
    return world
