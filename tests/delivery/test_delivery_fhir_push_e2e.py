"""A partner with a FHIR server receives its referral as a transaction, authenticated with SMART
Backend Services credentials the operator configured (stored encrypted, never shown again)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey
from sqlalchemy import select, update

from service.storage.outbox import OUTBOX
from service.storage.tables import EndpointConfig
from tests.delivery._delivery_world import add_endpoint, cli, drain, refer_with_consent, rows
from tests.referrals._workflow_hub import Hub, ok
from tests.support.clients import FhirClients
from tests.support.fhir_receiver import FhirReceiver, TokenEndpoint
from tests.support.live import TEST_SECRET_KEY


@pytest.fixture
def hub(fhir: FhirClients) -> Hub:
    return Hub.build(fhir)


def _configure(hub: Hub, endpoint: str, config: dict[str, Any], tmp_path: Path) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    result = cli(
        ["endpoints", "configure", "--endpoint-id", endpoint, "--config", str(path)],
        WRAPAROUND_DATABASE_URL=hub.fhir.db.url,
        WRAPAROUND_SECRET_KEY=TEST_SECRET_KEY,
    )
    assert result.exit_code == 0, result.output
    return str(result.output)


def test_referral_arrives_once_at_a_smart_protected_fhir_server(
    hub: Hub, settings: Any, tmp_path: Path
) -> None:
    key = ECKey.import_key(
        {**ECKey.generate_key("P-384", private=True).as_dict(private=True), "kid": "hub-1"}
    )
    private = json.dumps(key.as_dict(private=True))
    smart = TokenEndpoint(client_id="wraparound-hub", public_jwk=key.as_dict(private=False))
    with FhirReceiver.start(smart=smart) as partner:
        endpoint = add_endpoint(hub.admin, hub.partner.organization_id, "hl7-fhir-rest", partner.base_url)
        shown = _configure(
            hub,
            endpoint,
            {
                "drop_elements": ["Patient.telecom"],
                "smart": {
                    "token_url": partner.token_url,
                    "client_id": "wraparound-hub",
                    "private_jwk": private,
                    "kid": "hub-1",
                },
            },
            tmp_path,
        )
        referral = refer_with_consent(hub)
        drain(hub.fhir.db, settings)
        assert [(r.kind, r.state) for r in rows(hub.fhir.db, referral.task["id"])] == [
            ("referral.created", "delivered")
        ]
        counts = {t: partner.count(t) for t in ("Patient", "Consent", "ServiceRequest", "Task")}
        assert counts == {"Patient": 1, "Consent": 1, "ServiceRequest": 1, "Task": 1}
        # The partner moves nothing here; the clinic revokes: the partner's copy of the Task follows.
        request = ok(hub.clinic.get(f"/fhir/ServiceRequest/{referral.request_id}"))
        ok(
            hub.clinic.put(
                f"/fhir/ServiceRequest/{referral.request_id}", json={**request, "status": "revoked"}
            )
        )
        drain(hub.fhir.db, settings)
        [task] = partner.resources("Task")
        assert task["status"] == "cancelled"
        assert partner.count("Task") == 1
        assert partner.token_requests == 1  # the token was cached between the two deliveries
    # The secret never shows: masked by the CLI, encrypted in the database, absent from the Endpoint.
    assert private not in shown
    assert "**********" in shown
    with hub.fhir.db.transaction(write=False) as conn:
        [ciphertext] = conn.execute(select(EndpointConfig.__table__.c.ciphertext)).scalars().all()  # type: ignore[attr-defined]
    secret_part = str(key.as_dict(private=True)["d"])
    assert secret_part not in ciphertext
    assert "hub-1" not in ciphertext
    endpoint_json = hub.admin.get(f"/fhir/Endpoint/{endpoint}").text
    assert secret_part not in endpoint_json


def test_a_redelivered_referral_makes_no_duplicate_at_the_partner(hub: Hub, settings: Any) -> None:
    with FhirReceiver.start() as partner:
        add_endpoint(hub.admin, hub.partner.organization_id, "hl7-fhir-rest", partner.base_url)
        referral = refer_with_consent(hub)
        drain(hub.fhir.db, settings)
        [row] = rows(hub.fhir.db, referral.task["id"])
        # An operator replays it (as after a crash between the partner's 2xx and the hub's ack).
        with hub.fhir.db.transaction() as conn:
            conn.execute(
                update(OUTBOX).where(OUTBOX.c.id == row.id).values(state="pending", finished_at=None)
            )
        drain(hub.fhir.db, settings)
        assert len(partner.transactions) == 2
        assert {t: partner.count(t) for t in ("Patient", "ServiceRequest", "Task")} == {
            "Patient": 1,
            "ServiceRequest": 1,
            "Task": 1,
        }
