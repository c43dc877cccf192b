"""The Standard Webhooks adapter against a real loopback receiver; every request it makes is checked
with the reference library's own verifier, as a partner would."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from adapters.base import Adapter, Delivery, MisconfiguredError, Receipt, RetryableError, Transport
from adapters.webhook import SigningSecret, WebhookAdapter, WebhookConfig, rotate
from tests.support.receiver import Receiver, RecordedRequest, Reply

TRANSPORT = Transport(allow_private=True, deadline_seconds=3.0, max_response_bytes=10_000)
BUNDLE = {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": {"resourceType": "Task"}}]}
HOUR = timedelta(hours=1)


@pytest.fixture
def rx() -> Iterator[Receiver]:
    with Receiver.start() as receiver:
        yield receiver


def make_delivery(rx: Receiver, **changes: Any) -> Delivery:
    delivery = Delivery(
        message_id="msg_2f1c0a",
        event="referral.created",
        attempt=1,
        address=rx.url("/hook"),
        recipient="Organization/partner",
        task="Task/t1",
        task_url="http://hub.test/fhir/Task/t1",
        collect_url="http://hub.test/collect/t1",
        hub_base="http://hub.test/fhir",
        occurred_at=datetime(2025, 3, 1, 12, 30, tzinfo=UTC),
        task_status="requested",
        bundle=BUNDLE,
    )
    return replace(delivery, **changes)


def configured(**fields: Any) -> tuple[WebhookConfig, str]:
    return rotate(WebhookConfig(**fields), now=datetime.now(UTC), overlap=HOUR)


def deliver(delivery: Delivery, config: WebhookConfig) -> Receipt:
    return asyncio.run(WebhookAdapter().deliver(delivery, config, TRANSPORT))


def verify(secret: str, request: RecordedRequest) -> Any:
    return Webhook(secret).verify(request.body, request.headers)


def test_it_is_an_adapter() -> None:
    adapter = WebhookAdapter()
    assert isinstance(adapter, Adapter)
    assert (adapter.slug, str(adapter.connection_type)) == (
        "webhook",
        "https://wraparound.org.uk/fhir/CodeSystem/endpoint-connection-type#webhook",
    )
    assert adapter.wants_bundle(WebhookConfig())
    assert not adapter.wants_bundle(WebhookConfig(payload="event"))


def test_a_delivery_is_signed_and_shaped_as_standard_webhooks(rx: Receiver) -> None:
    config, secret = configured()
    rx.script(Reply(204))
    assert deliver(make_delivery(rx), config).status_code == 204
    [request] = rx.requests
    assert verify(secret, request) == {
        "type": "referral.created",
        "timestamp": "2025-03-01T12:30:00Z",
        "data": {"task": "http://hub.test/fhir/Task/t1", "taskStatus": "requested", "bundle": BUNDLE},
    }
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == "msg_2f1c0a"
    assert b": " not in request.body  # compact JSON
    assert abs(int(request.headers["webhook-timestamp"]) - datetime.now(UTC).timestamp()) < 5


def test_a_wrong_secret_does_not_verify(rx: Receiver) -> None:
    config, _ = configured()
    _, other = configured()
    deliver(make_delivery(rx), config)
    with pytest.raises(WebhookVerificationError):
        verify(other, rx.requests[0])


def test_retries_keep_the_webhook_id_and_the_body(rx: Receiver) -> None:
    config, secret = configured()
    rx.script(Reply(503, {"Retry-After": "30"}))
    with pytest.raises(RetryableError) as caught:
        deliver(make_delivery(rx, attempt=1), config)
    assert caught.value.retry_after == 30
    deliver(make_delivery(rx, attempt=2), config)
    first, second = rx.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "msg_2f1c0a"
    assert first.body == second.body
    verify(secret, first)
    verify(secret, second)


def test_both_secrets_sign_during_the_rotation_overlap(rx: Receiver) -> None:
    config, old = configured()
    config, new = rotate(config, now=datetime.now(UTC), overlap=HOUR)
    deliver(make_delivery(rx), config)
    [request] = rx.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    verify(old, request)
    verify(new, request)


def test_after_the_overlap_only_the_new_secret_signs(rx: Receiver) -> None:
    earlier = datetime.now(UTC) - 2 * HOUR
    config, old = rotate(WebhookConfig(), now=earlier, overlap=HOUR)
    config, new = rotate(config, now=earlier, overlap=HOUR)  # the old one expired an hour ago
    deliver(make_delivery(rx), config)
    [request] = rx.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    verify(new, request)
    with pytest.raises(WebhookVerificationError):
        verify(old, request)


def test_rotate_keeps_the_current_secret_for_the_overlap_and_drops_expired_ones() -> None:
    now = datetime(2025, 3, 1, tzinfo=UTC)
    config, first = rotate(WebhookConfig(payload="event"), now=now, overlap=HOUR)
    config, second = rotate(config, now=now, overlap=HOUR)
    config, third = rotate(config, now=now + 2 * HOUR, overlap=HOUR)
    assert third.startswith("whsec_")
    assert len({first, second, third}) == 3
    assert config.payload == "event"
    assert [(s.secret.get_secret_value(), s.not_after) for s in config.secrets] == [
        (third, None),
        (second, now + 3 * HOUR),
    ]


def test_payload_event_carries_no_bundle(rx: Receiver) -> None:
    config, secret = configured(payload="event")
    deliver(make_delivery(rx), config)
    data = verify(secret, rx.requests[0])["data"]
    assert data == {"task": "http://hub.test/fhir/Task/t1", "taskStatus": "requested"}


def test_a_notice_without_a_bundle_has_none_even_in_bundle_mode(rx: Receiver) -> None:
    config, secret = configured()
    deliver(make_delivery(rx, event="consent.withdrawn", bundle=None, task_status=None), config)
    payload = verify(secret, rx.requests[0])
    assert payload["type"] == "consent.withdrawn"
    assert payload["data"] == {"task": "http://hub.test/fhir/Task/t1"}


@pytest.mark.parametrize("expired", [False, True])
def test_no_usable_secret_is_misconfigured(rx: Receiver, expired: bool) -> None:
    config = WebhookConfig()
    if expired:
        config, _ = rotate(config, now=datetime.now(UTC) - 2 * HOUR, overlap=HOUR)
        config, _ = rotate(config, now=datetime.now(UTC) - 2 * HOUR, overlap=HOUR)
        config = config.model_copy(update={"secrets": config.secrets[1:]})  # only the expired one
    with pytest.raises(MisconfiguredError, match=r"no signing secret: POST Endpoint/\{id\}/\$rotate-secret"):
        deliver(make_delivery(rx), config)
    assert rx.connections == 0


def test_endpoint_headers_are_sent(rx: Receiver) -> None:
    config, secret = configured()
    deliver(make_delivery(rx, headers=("Authorization: Bearer partner-token", "X-Partner:  a:b ")), config)
    [request] = rx.requests
    assert request.headers["authorization"] == "Bearer partner-token"
    assert request.headers["x-partner"] == "a:b"
    verify(secret, request)


@pytest.mark.parametrize(
    "line",
    [
        "webhook-signature: v1,forged",
        "Webhook-Id: msg_other",
        "webhook-timestamp: 1",
        "Content-Type: text/plain",
        "Content-Length: 0",
        "Host: elsewhere.test",
        "X-Token: secret-value\r\nwebhook-id: msg_other",
        "X-Token: secret-value\nX-Other: 1",
        "X-Bad Name: secret-value",
        "no colon at all",
    ],
)
def test_header_injection_is_refused(rx: Receiver, line: str) -> None:
    config, _ = configured()
    with pytest.raises(MisconfiguredError, match=r"Endpoint\.header") as caught:
        deliver(make_delivery(rx, headers=("X-Fine: 1", line)), config)
    assert "secret-value" not in caught.value.message
    assert rx.connections == 0


def test_config_is_strict_and_never_echoes_a_secret() -> None:
    with pytest.raises(pydantic.ValidationError):
        WebhookConfig.model_validate({"payload": "bundle", "extra": 1})
    with pytest.raises(pydantic.ValidationError) as caught:
        WebhookConfig.model_validate({"secrets": [{"secret": "whsec_!!not-base64-but-secret!!"}]})
    assert "not-base64-but-secret" not in str(caught.value)
    with pytest.raises(pydantic.ValidationError, match="24 to 64 bytes"):
        SigningSecret.model_validate({"secret": "whsec_" + base64.b64encode(b"short").decode()})
    with pytest.raises(pydantic.ValidationError):  # a naive not_after would break comparisons later
        SigningSecret.model_validate({"secret": "whsec_" + "A" * 44, "not_after": "2025-01-01T00:00:00"})


def test_config_round_trips_through_json_when_secrets_are_revealed() -> None:
    # model_dump masks SecretStr: whoever stores the config (encrypted) must reveal the secrets.
    config, _ = configured()
    config, _ = rotate(config, now=datetime.now(UTC), overlap=HOUR)
    secrets = [
        {"secret": s.secret.get_secret_value(), "not_after": s.not_after and s.not_after.isoformat()}
        for s in config.secrets
    ]
    stored = json.dumps({"payload": config.payload, "secrets": secrets})
    assert WebhookConfig.model_validate_json(stored) == config
