"""Per-client API rate limits: 429 with Retry-After, and other clients unaffected."""

from __future__ import annotations

import httpx

from service.bootstrap import load_definitions
from service.storage.database import Database
from tests.support.clients import FhirClients
from tests.support.live import LiveServer


def test_api_rate_limit_is_per_client(clean_database: Database) -> None:
    load_definitions(clean_database)
    with (
        LiveServer.start(clean_database, rate_limit="3/minute") as live,
        httpx.Client(base_url=live.base_url, timeout=30) as http,
    ):
        clients = FhirClients(http, clean_database, live.base_url)
        busy = clients.client("clinic", client_id="busy-clinic")
        calm = clients.client("clinic", client_id="calm-clinic")
        statuses = [busy.get("/fhir/Organization").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = busy.get("/fhir/Organization")
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) >= 1
        assert limited.json()["issue"][0]["code"] == "throttled"
        assert calm.get("/fhir/Organization").status_code == 200
