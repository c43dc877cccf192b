"""A referral world wired for delivery: a partner reached through an Endpoint, and a worker to run."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from adapters.base import HL7_CONNECTION_TYPE, WRAPAROUND_CONNECTION_TYPE
from service.delivery.worker import Worker
from service.settings import Settings
from service.storage import outbox as outbox_sql
from service.storage.outbox import OutboxRow
from tests.referrals._workflow_hub import Hub, ok, permit
from tests.support.clients import Client

CONNECTION = {
    "webhook": (WRAPAROUND_CONNECTION_TYPE, "webhook"),
    "hl7-fhir-rest": (HL7_CONNECTION_TYPE, "hl7-fhir-rest"),
    "secure-email": (HL7_CONNECTION_TYPE, "secure-email"),
    "fake": (WRAPAROUND_CONNECTION_TYPE, "fake"),
}


def endpoint_body(kind: str, address: str, **extra: Any) -> dict[str, Any]:
    system, code = CONNECTION[kind]
    return {
        "resourceType": "Endpoint",
        "status": "active",
        "connectionType": {"system": system, "code": code},
        "payloadType": [{"text": "FHIR transaction Bundle"}],
        "address": address,
        **extra,
    }


def add_endpoint(admin: Client, organization_id: str, kind: str, address: str) -> str:
    """Create an Endpoint and make it the Organization's delivery route; returns its id."""
    endpoint_id = str(ok(admin.post("/fhir/Endpoint", json=endpoint_body(kind, address)), 201)["id"])
    organization = ok(admin.get(f"/fhir/Organization/{organization_id}"))
    organization["endpoint"] = [{"reference": f"Endpoint/{endpoint_id}"}]
    ok(admin.put(f"/fhir/Organization/{organization_id}", json=organization))
    return endpoint_id


def rotate_secret(admin: Client, endpoint_id: str) -> str:
    body = ok(admin.post(f"/fhir/Endpoint/{endpoint_id}/$rotate-secret"))
    return str(next(p["valueString"] for p in body["parameter"] if p["name"] == "secret"))


@dataclass
class Referral:
    patient: str
    consent: str
    request_id: str
    task: dict[str, Any]


def refer_with_consent(hub: Hub) -> Referral:
    patient = hub.patient()
    consent = hub.consent(patient, permit(hub.partner.org_ref), dateTime="2026-11-30T10:00:00Z")
    request_id, task = hub.referred(patient, hub.opt_in, supportingInfo=[{"reference": consent}])
    return Referral(patient, consent, request_id, task)


def drain(db: Any, settings: Settings, **overrides: Any) -> Worker:
    """Run one worker until nothing is due, as `wraparound worker --once` does."""
    worker = Worker(db, settings.model_copy(update=overrides))
    asyncio.run(worker.run_until_idle(timeout=30))
    return worker


def rows(db: Any, task_id: str) -> list[OutboxRow]:
    with db.transaction(write=False) as conn:
        return sorted(outbox_sql.listing(conn, focus=f"Task/{task_id}"), key=lambda r: r.id)


def cli(args: list[str], **env: str) -> Any:
    """Run a `wraparound` command in-process with these settings (the settings cache is per process)."""
    from typer.testing import CliRunner

    from service.cli import app
    from service.settings import get_settings

    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, args, env=env)
    finally:
        get_settings.cache_clear()
