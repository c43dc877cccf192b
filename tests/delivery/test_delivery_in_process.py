"""`wraparound serve` runs a delivery worker in the same process: a referral goes out by itself."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from adapters.fake import RECORDER
from service.storage.database import Database
from tests.conftest import empty_database
from tests.delivery._delivery_world import add_endpoint, refer_with_consent
from tests.referrals._workflow_hub import Hub
from tests.support.clients import FhirClients
from tests.support.live import LiveServer


@pytest.fixture
def serving(database: Database) -> Iterator[FhirClients]:
    from service.bootstrap import load_definitions

    empty_database(database)
    with LiveServer.start(database, worker=True, delivery_poll_seconds=0.05) as live:
        load_definitions(database)
        with httpx.Client(base_url=live.base_url, timeout=30) as http:
            yield FhirClients(http, database, live.base_url)
    empty_database(database)


def test_serve_delivers_without_a_separate_worker(serving: FhirClients) -> None:
    hub = Hub.build(serving)
    channel = f"in-process-{time.monotonic_ns()}"
    endpoint = add_endpoint(hub.admin, hub.partner.organization_id, "fake", "http://127.0.0.1:9/fake")
    with serving.db.transaction() as conn:
        from datetime import UTC, datetime

        from service.delivery.operators import configure
        from service.delivery.secrets import box_for
        from service.settings import Settings
        from tests.support.live import TEST_SECRET_KEY

        configure(
            conn,
            endpoint,
            {"channel": channel},
            box_for(Settings(secret_key=TEST_SECRET_KEY)),
            datetime.now(UTC),
        )
    referral = refer_with_consent(hub)
    deadline = time.monotonic() + 10
    while not RECORDER.of(channel) and time.monotonic() < deadline:
        time.sleep(0.05)
    [delivery] = RECORDER.of(channel)
    assert delivery.event == "referral.created"
    assert delivery.task == f"Task/{referral.task['id']}"
    bundle: Any = delivery.bundle
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} == {
        "Patient",
        "Consent",
        "ServiceRequest",
        "Task",
    }
