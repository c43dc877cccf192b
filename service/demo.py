"""``wraparound demo``: a ready-to-try hub with the London demo directory and demo clients.

Everything here is fictional demonstration data (tagged ``data-origin#demo`` in the directory).
Each demo organisation gets one SMART Backend Services client with a freshly generated ES384 key;
the private JWK is written to a local folder (files 0600) so a newcomer can sign client assertions.
Re-running replaces every demo key, so old key files stop working: keys are never reused.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey

from fhir_profiles import CONSENT_MODEL_URL, load_demo_directory
from service.access.caller import SYSTEM
from service.clients import register_client
from service.delivery.secrets import SecretBox
from service.directory import LoadReport, load_bundle
from service.rest.context import Context
from service.storage.database import Database
from service.storage.resources import ResourceStore
from service.web.accounts import Enrolment, save_user

DEFAULT_KEYS_DIR = Path("demo-keys")
ADMIN_CLIENT_ID = "demo-admin"
# Least privilege per role: partners only read and update Tasks; the role checks still apply on top.
SCOPES = {
    "clinic": "system/*.cruds",
    "partner": "system/*.rs system/Task.u",
    "admin": "system/*.cruds",
}
# http://terminology.hl7.org/CodeSystem/organization-type: "prov" marks the demo clinics.
_CLINIC_TYPE = ("http://terminology.hl7.org/CodeSystem/organization-type", "prov")


@dataclass(frozen=True)
class DemoClient:
    client_id: str
    role: str
    organization_id: str  # bare id of the client's Organization
    organization_name: str
    key_path: Path
    scopes: str


@dataclass(frozen=True)
class DemoService:
    id: str
    name: str
    organization_id: str
    consent_model: str  # opt-in (the default) or opt-out


@dataclass(frozen=True)
class DemoPerson:
    """A demo account for the web app (/app/): its password and second factor are new on every run."""

    enrolment: Enrolment
    password: str
    organization_name: str

    @property
    def totp_secret(self) -> str:
        return self.enrolment.otpauth_uri.split("secret=", 1)[1].split("&", 1)[0]


@dataclass
class DemoSetup:
    fhir_base: str
    directory: LoadReport
    clients: list[DemoClient] = field(default_factory=list)
    services: list[DemoService] = field(default_factory=list)
    people: list[DemoPerson] = field(default_factory=list)

    @property
    def hub_url(self) -> str:
        return self.fhir_base.removesuffix("/fhir")

    def clients_of(self, role: str) -> list[DemoClient]:
        return [c for c in self.clients if c.role == role]

    def services_of(self, organization_id: str) -> list[DemoService]:
        return [s for s in self.services if s.organization_id == organization_id]


def _is_clinic(org: dict[str, Any]) -> bool:
    codings = [c for t in org.get("type") or [] for c in t.get("coding") or []]
    return any((c.get("system"), c.get("code")) == _CLINIC_TYPE for c in codings)


def _consent_model(service: dict[str, Any]) -> str:
    for ext in service.get("extension") or []:
        if ext.get("url") == CONSENT_MODEL_URL and isinstance(ext.get("valueCode"), str):
            return str(ext["valueCode"])
    return "opt-in"


def _client_id(slug: str) -> str:
    return slug if slug.startswith("demo-") else f"demo-{slug}"


def _read_directory(
    store: ResourceStore, report: LoadReport
) -> tuple[list[tuple[str, dict[str, Any]]], list[DemoService]]:
    orgs: list[tuple[str, dict[str, Any]]] = []
    services: list[DemoService] = []
    for slug, ref in report.by_slug.items():
        rtype, _, rid = ref.partition("/")
        stored = store.current(rtype, rid)
        content = stored.content if stored is not None else None
        if content is None:
            continue
        if rtype == "Organization":
            orgs.append((slug, content))
        elif rtype == "HealthcareService":
            provider = str((content.get("providedBy") or {}).get("reference", ""))
            services.append(
                DemoService(
                    id=rid,
                    name=str(content.get("name", rid)),
                    organization_id=provider.removeprefix("Organization/"),
                    consent_model=_consent_model(content),
                )
            )
    return orgs, services


def write_private_key(path: Path, key: ECKey) -> None:
    """Write the private JWK readable by its owner only (0600, also when the file already exists)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(key.as_dict(private=True), handle, indent=2)
        handle.write("\n")


def _new_key(client_id: str, now: datetime) -> ECKey:
    kid = f"{client_id}-{now.strftime('%Y%m%dT%H%M%S')}"
    return ECKey.generate_key("P-384", parameters={"kid": kid, "alg": "ES384", "use": "sig"}, private=True)


def _register(conn: Any, client: DemoClient, key: ECKey, now: datetime) -> None:
    register_client(
        conn,
        client_id=client.client_id,
        organization_id=f"Organization/{client.organization_id}",
        role=client.role,
        scopes=client.scopes,
        jwks={"keys": [key.as_dict(private=False)]},
        jwks_url=None,
        now=now,
    )


def setup_demo(
    db: Database,
    *,
    fhir_base: str,
    keys_dir: Path = DEFAULT_KEYS_DIR,
    now: datetime | None = None,
    box: SecretBox | None = None,
) -> DemoSetup:
    """Load the demo directory and (re)register the demo clients with new keys, in one transaction;
    with ``box`` (which seals TOTP secrets) also one web app person at a partner and one at a clinic.

    The key files are written inside the transaction, so a failure to write them registers nothing."""
    now = now or datetime.now(UTC)
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with db.transaction(write=True) as conn:
        ctx = Context(conn=conn, caller=SYSTEM, base_url=fhir_base, now=now)
        report = load_bundle(ctx, load_demo_directory())
        orgs, services = _read_directory(ctx.store, report)
        setup = DemoSetup(fhir_base=fhir_base, directory=report, services=services)
        providers = {s.organization_id for s in services}
        for slug, org in orgs:
            role = "clinic" if _is_clinic(org) else "partner" if org["id"] in providers else None
            if role is None:
                continue
            cid = _client_id(slug)
            setup.clients.append(
                DemoClient(
                    cid,
                    role,
                    org["id"],
                    str(org.get("name", slug)),
                    keys_dir / f"{cid}.jwk.json",
                    SCOPES[role],
                )
            )
        setup.clients.append(
            DemoClient(
                ADMIN_CLIENT_ID,
                "admin",
                SYSTEM.organization_id,
                "Wraparound hub (operator)",
                keys_dir / f"{ADMIN_CLIENT_ID}.jwk.json",
                SCOPES["admin"],
            )
        )
        for client in setup.clients:
            key = _new_key(client.client_id, now)
            _register(conn, client, key, now)
            write_private_key(client.key_path, key)
        if box is not None:
            setup.people = [_person(conn, box, setup, role, now) for role in ("partner", "clinic")]
    return setup


def _person(conn: Any, box: SecretBox, setup: DemoSetup, role: str, now: datetime) -> DemoPerson:
    """The first demo organisation of the role gets ``demo.<role>@example.org``, a fresh random password."""
    client = setup.clients_of(role)[0]
    password = secrets.token_urlsafe(12)
    enrolment = save_user(
        conn,
        box,
        email=f"demo.{role}@example.org",
        organization=f"Organization/{client.organization_id}",
        role=role,
        password=password,
        now=now,
    )
    return DemoPerson(enrolment, password, client.organization_name)


def people_text(setup: DemoSetup) -> str:
    """How to sign in to the web app as each demo person (printed by ``wraparound demo``)."""
    lines = [f"Web app for people: {setup.hub_url}/app/ (sign in with email, password and one-time code)"]
    for person in setup.people:
        lines += [
            f"  {person.enrolment.role:<8} {person.organization_name}",
            f"           email     {person.enrolment.email}",
            f"           password  {person.password}",
            f"           enrol an authenticator app with {person.enrolment.otpauth_uri}",
            "           or print the current code: "
            f"python -c \"import pyotp; print(pyotp.TOTP('{person.totp_secret}').now())\"",
            f"           one-time recovery code: {person.enrolment.recovery_codes[0]}",
        ]
    return "\n".join(lines)
