"""hl7-fhir-rest against a real partner FHIR server on loopback (tests/support/fhir_receiver.py)."""

from __future__ import annotations

import asyncio
import copy
import importlib
import json
import time
import tomllib
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, RSAKey
from pydantic import ValidationError

from adapters._smart import TOKENS
from adapters.base import (
    Adapter,
    Delivery,
    MisconfiguredError,
    PermanentError,
    Receipt,
    RetryableError,
    Transport,
)
from adapters.fhir_rest import HUB_IDENTIFIER, FhirRestAdapter, FhirRestConfig
from tests.support.fhir_receiver import FhirReceiver, TokenEndpoint
from tests.support.receiver import Reply

pytestmark = pytest.mark.anyio

TRANSPORT = Transport(allow_private=True, deadline_seconds=5.0, max_response_bytes=1_000_000)
HUB = "https://hub.example/fhir"
ADAPTER = FhirRestAdapter()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _empty_token_cache() -> Iterator[None]:
    TOKENS.clear()
    yield
    TOKENS.clear()


def _conditional(rtype: str, rid: str) -> dict[str, str]:
    return {"method": "POST", "url": rtype, "ifNoneExist": f"identifier={HUB_IDENTIFIER}|{rtype}/{rid}"}


def _entry(resource: dict[str, Any], *, conditional: bool = True) -> dict[str, Any]:
    rtype, rid = resource["resourceType"], resource["id"]
    entry: dict[str, Any] = {"fullUrl": f"{HUB}/{rtype}/{rid}", "resource": resource}
    if conditional:  # as the hub's builder writes them
        resource["identifier"] = [{"system": HUB_IDENTIFIER, "value": f"{rtype}/{rid}"}]
        entry["request"] = _conditional(rtype, rid)
    return entry


def referral_bundle() -> dict[str, Any]:
    patient = {
        "resourceType": "Patient",
        "id": "pat1",
        "name": [{"family": "Example", "given": ["Alex"]}],
        "telecom": [{"system": "phone", "value": "07700900123"}],
        "birthDate": "1980-02-03",
    }
    task_ref = {"reference": f"{HUB}/ServiceRequest/sr1"}
    patient_ref = {"reference": f"{HUB}/Patient/pat1"}
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            _entry(patient),
            _entry({"resourceType": "Consent", "id": "c1", "status": "active", "patient": patient_ref}),
            _entry({"resourceType": "ServiceRequest", "id": "sr1", "status": "active", "intent": "order",
                    "subject": patient_ref}),
            # The builder forgot this one: no identifier, no request. The adapter must make it conditional.
            _entry({"resourceType": "QuestionnaireResponse", "id": "qr1", "status": "completed",
                    "subject": patient_ref}, conditional=False),
            _entry({"resourceType": "Task", "id": "t1", "status": "requested", "intent": "order",
                    "focus": task_ref, "for": patient_ref}),
        ],
    }  # fmt: skip


def delivery(address: str, bundle: dict[str, Any] | None, **changes: Any) -> Delivery:
    values: dict[str, Any] = {
        "message_id": "msg_0001",
        "event": "referral.created",
        "attempt": 1,
        "address": address,
        "recipient": "Organization/partner",
        "task": "Task/t1",
        "task_url": f"{HUB}/Task/t1",
        "collect_url": "https://hub.example/collect/t1",
        "hub_base": HUB,
        "occurred_at": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        "bundle": bundle,
        **changes,
    }
    return Delivery(**values)


def smart_config(fhir: FhirReceiver, key: ECKey | RSAKey, **extra: Any) -> FhirRestConfig:
    smart = {
        "token_url": fhir.token_url,
        "client_id": "wraparound-hub",
        "private_jwk": json.dumps(key.as_dict(private=True)),
        "kid": key.kid,
    }
    return FhirRestConfig.model_validate({"smart": smart, **extra})


def ec_key(kid: str = "hub-es384") -> ECKey:
    return ECKey.import_key({**ECKey.generate_key("P-384", private=True).as_dict(private=True), "kid": kid})


def rsa_key(kid: str = "hub-rs384") -> RSAKey:
    return RSAKey.import_key({**RSAKey.generate_key(2048, private=True).as_dict(private=True), "kid": kid})


def short_rsa_key() -> dict[str, Any]:
    with warnings.catch_warnings():  # joserfc warns about the short key it is asked to make
        warnings.simplefilter("ignore", SecurityWarning)
        return RSAKey.generate_key(1024, private=True).as_dict(private=True)


def endpoint_for(key: ECKey | RSAKey, **kwargs: Any) -> TokenEndpoint:
    return TokenEndpoint(client_id="wraparound-hub", public_jwk=key.as_dict(private=False), **kwargs)


async def test_registered_and_satisfies_the_contract() -> None:
    assert isinstance(ADAPTER, Adapter)
    # The entry point pyproject declares (the installed metadata may predate it until a reinstall).
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    target = pyproject["project"]["entry-points"]["wraparound.adapters"][FhirRestAdapter.slug]
    module, _, name = target.partition(":")
    assert getattr(importlib.import_module(module), name) is FhirRestAdapter
    assert ADAPTER.wants_bundle(FhirRestConfig())


async def test_transaction_arrives_as_conditional_creates_and_input_is_untouched() -> None:
    bundle = referral_bundle()
    before = copy.deepcopy(bundle)
    with FhirReceiver.start() as fhir:
        receipt = await ADAPTER.deliver(
            delivery(fhir.base_url, bundle, headers=("X-Partner-Route: hiv-support",)),
            FhirRestConfig(),
            TRANSPORT,
        )
        [request] = fhir.rx.requests
        sent = fhir.transactions[0]
        assert request.path == "/fhir"
        assert request.header("content-type") == "application/fhir+json"
        assert request.header("accept") == "application/fhir+json"
        assert request.header("x-partner-route") == "hiv-support"
        assert request.header("authorization") is None
        for entry in sent["entry"]:
            rtype, rid = entry["resource"]["resourceType"], entry["resource"]["id"]
            assert entry["request"] == _conditional(rtype, rid)
            identifiers = entry["resource"]["identifier"]  # QuestionnaireResponse has room for one
            hub = {"system": HUB_IDENTIFIER, "value": f"{rtype}/{rid}"}
            assert hub == identifiers if rtype == "QuestionnaireResponse" else hub in identifiers
        assert {t: fhir.count(t) for t in fhir.stored} == dict.fromkeys(
            ["Patient", "Consent", "ServiceRequest", "QuestionnaireResponse", "Task"], 1
        )
        # References between entries resolved to the partner's own ids.
        [task] = fhir.resources("Task")
        assert task["for"]["reference"] == f"Patient/{fhir.resources('Patient')[0]['id']}"
    assert receipt == Receipt(200, "transaction-response, 5 entries (5 created, 0 existing)")
    assert bundle == before


async def test_redelivery_leaves_one_copy_of_each_resource() -> None:
    with FhirReceiver.start() as fhir:
        first = await ADAPTER.deliver(delivery(fhir.base_url, referral_bundle()), FhirRestConfig(), TRANSPORT)
        again = await ADAPTER.deliver(
            delivery(fhir.base_url, referral_bundle(), attempt=2), FhirRestConfig(), TRANSPORT
        )
        assert sum(len(by_id) for by_id in fhir.stored.values()) == 5
        assert all(fhir.count(t) == 1 for t in fhir.stored)
    assert first.detail.endswith("(5 created, 0 existing)")
    assert again.detail == "transaction-response, 5 entries (0 created, 5 existing)"


async def test_drop_elements_removes_telecom_from_what_is_sent_only() -> None:
    bundle = referral_bundle()
    config = FhirRestConfig(drop_elements=["Patient.telecom"])
    with FhirReceiver.start() as fhir:
        await ADAPTER.deliver(delivery(fhir.base_url, bundle), config, TRANSPORT)
        sent_patient = fhir.transactions[0]["entry"][0]["resource"]
        [stored] = fhir.resources("Patient")
    assert "telecom" not in sent_patient
    assert "telecom" not in stored
    assert sent_patient["birthDate"] == "1980-02-03"
    assert bundle["entry"][0]["resource"]["telecom"] == [{"system": "phone", "value": "07700900123"}]


@pytest.mark.parametrize(
    "settings",
    [
        {"drop_elements": ["Patient.identifier"]},
        {"drop_elements": ["ServiceRequest.subject"]},
        {"drop_elements": ["telecom"]},
        {"unknown": True},
    ],
)
async def test_config_refuses_required_elements_and_unknown_fields(settings: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        FhirRestConfig.model_validate(settings)


@pytest.mark.parametrize(
    "jwk",
    [
        ECKey.generate_key("P-384", private=True).as_dict(private=False),  # no private part
        ECKey.generate_key("P-256", private=True).as_dict(private=True),  # SMART wants ES384
        short_rsa_key(),
        {**ECKey.generate_key("P-384", private=True).as_dict(private=True), "kid": "other"},
    ],
)
async def test_smart_config_refuses_unusable_keys_without_echoing_them(jwk: dict[str, Any]) -> None:
    smart = {
        "token_url": "https://p.example/token",
        "client_id": "c",
        "private_jwk": json.dumps(jwk),
        "kid": "k1",
    }
    with pytest.raises(ValidationError) as caught:
        FhirRestConfig.model_validate({"smart": smart})
    shown = f"{caught.value} {caught.value!r}"
    assert (jwk.get("d") or jwk["x"]) not in shown
    assert json.dumps(jwk) not in shown


async def test_smart_token_is_fetched_once_verified_and_reused() -> None:
    key = ec_key()
    with FhirReceiver.start(smart=endpoint_for(key)) as fhir:
        config = smart_config(fhir, key)
        await ADAPTER.deliver(delivery(fhir.base_url, referral_bundle()), config, TRANSPORT)
        await ADAPTER.deliver(delivery(fhir.base_url, referral_bundle()), config, TRANSPORT)
        assert fhir.refusals == []
        assert fhir.token_requests == 1
        [assertion] = fhir.assertions
        assert assertion.header["kid"] == "hub-es384"
        assert assertion.header["alg"] == "ES384"
        assert assertion.claims["aud"] == fhir.token_url
        assert assertion.claims["iss"] == assertion.claims["sub"] == "wraparound-hub"
        assert assertion.claims["exp"] <= assertion.received_at + 300
        fhir_posts = [r for r in fhir.rx.requests if r.path == "/fhir"]
        assert len(fhir_posts) == 2
        assert fhir_posts[0].header("authorization") == fhir_posts[1].header("authorization")
        assert (fhir_posts[0].header("authorization") or "").startswith("Bearer ")


async def test_a_401_drops_the_token_and_the_next_attempt_signs_a_new_assertion() -> None:
    key = rsa_key()
    with FhirReceiver.start(smart=endpoint_for(key)) as fhir:
        config = smart_config(fhir, key)
        await ADAPTER.deliver(delivery(fhir.base_url, referral_bundle()), config, TRANSPORT)
        fhir.revoke_tokens()
        with pytest.raises(RetryableError) as caught:
            await ADAPTER.deliver(delivery(fhir.base_url, referral_bundle()), config, TRANSPORT)
        assert caught.value.status_code == 401
        receipt = await ADAPTER.deliver(delivery(fhir.base_url, referral_bundle()), config, TRANSPORT)
        assert receipt.status_code == 200
        assert fhir.token_requests == 2
        assert [a.header["alg"] for a in fhir.assertions] == ["RS384", "RS384"]
        assert len(set(fhir.jtis)) == 2
        assert fhir.count("Patient") == 1


async def test_an_expiring_token_is_fetched_again_with_fresh_jtis() -> None:
    key = ec_key()
    with FhirReceiver.start(smart=endpoint_for(key, expires_in=1)) as fhir:
        config = smart_config(fhir, key)
        await ADAPTER.deliver(delivery(fhir.base_url, referral_bundle()), config, TRANSPORT)
        await ADAPTER.deliver(delivery(fhir.base_url, referral_bundle()), config, TRANSPORT)
        assert fhir.token_requests == 1
        await asyncio.sleep(1.0)  # the 1 s token (minus its 0.1 s margin) has lapsed
        await ADAPTER.deliver(delivery(fhir.base_url, referral_bundle()), config, TRANSPORT)
        assert fhir.token_requests == 2
        assert len(set(fhir.jtis)) == len(fhir.jtis) == 2


async def test_concurrent_deliveries_share_one_token_request() -> None:
    key = ec_key()
    with FhirReceiver.start(smart=endpoint_for(key)) as fhir:
        config = smart_config(fhir, key)
        sends = [
            ADAPTER.deliver(delivery(fhir.base_url, referral_bundle()), config, TRANSPORT) for _ in range(4)
        ]
        receipts = await asyncio.gather(*sends)
        assert {r.status_code for r in receipts} == {200}
        assert fhir.token_requests == 1


async def test_token_endpoint_refusal_is_misconfigured() -> None:
    registered, used = ec_key(), ec_key()  # the partner holds a different public key
    with FhirReceiver.start(smart=endpoint_for(registered)) as fhir:
        with pytest.raises(MisconfiguredError) as caught:
            await ADAPTER.deliver(
                delivery(fhir.base_url, referral_bundle()), smart_config(fhir, used), TRANSPORT
            )
        assert fhir.refusals == ["signature"]
        assert [r.path for r in fhir.rx.requests] == ["/token"]
    assert caught.value.status_code == 401
    assert "invalid_client" in caught.value.message


async def test_token_endpoint_outage_is_retryable_with_retry_after() -> None:
    key = ec_key()
    with FhirReceiver.start(smart=endpoint_for(key)) as fhir:
        fhir.fail_token(Reply(503, {"Retry-After": "11"}))
        with pytest.raises(RetryableError) as caught:
            await ADAPTER.deliver(
                delivery(fhir.base_url, referral_bundle()), smart_config(fhir, key), TRANSPORT
            )
    assert (caught.value.status_code, caught.value.retry_after) == (503, 11.0)


async def test_one_deadline_covers_the_token_request_and_the_post() -> None:
    key = ec_key()
    quick = Transport(allow_private=True, deadline_seconds=0.6, max_response_bytes=1_000_000)
    with FhirReceiver.start(smart=endpoint_for(key)) as fhir:
        fhir.token_delay = 0.4  # each request alone is inside the deadline...
        fhir.fail_fhir(Reply.delayed(0.4))
        started = time.monotonic()
        with pytest.raises(RetryableError):
            await ADAPTER.deliver(delivery(fhir.base_url, referral_bundle()), smart_config(fhir, key), quick)
        assert time.monotonic() - started < 0.9  # ...but not both
        assert fhir.token_requests == 1


async def test_partner_503_is_retryable_with_retry_after() -> None:
    with FhirReceiver.start() as fhir:
        fhir.fail_fhir(Reply(503, {"Retry-After": "7"}))
        with pytest.raises(RetryableError) as caught:
            await ADAPTER.deliver(delivery(fhir.base_url, referral_bundle()), FhirRestConfig(), TRANSPORT)
        assert fhir.count("Patient") == 0
    assert (caught.value.status_code, caught.value.retry_after) == (503, 7.0)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (
            Reply(400, {"Content-Type": "application/fhir+json"}, b'{"resourceType":"OperationOutcome"}'),
            PermanentError,
        ),
        (Reply(500), RetryableError),
        (Reply(401), MisconfiguredError),  # the partner wants a token and none is configured
        (Reply(200, {"Content-Type": "text/html"}, b"<html>welcome</html>"), MisconfiguredError),
        (Reply(200, {}, b'{"resourceType":"Bundle","type":"searchset"}'), MisconfiguredError),
    ],
)
async def test_partner_failures_map_to_typed_errors(reply: Reply, error: type[Exception]) -> None:
    with FhirReceiver.start() as fhir:
        fhir.fail_fhir(reply)
        with pytest.raises(error):
            await ADAPTER.deliver(delivery(fhir.base_url, referral_bundle()), FhirRestConfig(), TRANSPORT)


async def test_a_notice_without_a_bundle_is_one_communication_with_ids_only() -> None:
    with FhirReceiver.start() as fhir:
        notice = delivery(fhir.base_url, None, event="consent.withdrawn", message_id="msg_stop")
        await ADAPTER.deliver(notice, FhirRestConfig(), TRANSPORT)
        await ADAPTER.deliver(notice, FhirRestConfig(), TRANSPORT)
        [communication] = fhir.resources("Communication")
    assert list(fhir.stored) == ["Communication"]
    assert communication["about"] == [{"reference": f"{HUB}/Task/t1"}]
    assert communication["category"] == [{"text": "consent.withdrawn"}]
    assert "Alex" not in json.dumps(communication)


async def test_endpoint_header_may_not_override_the_adapter() -> None:
    with pytest.raises(MisconfiguredError):
        await ADAPTER.deliver(
            delivery("http://127.0.0.1:9/fhir", referral_bundle(), headers=("Content-Type: text/plain",)),
            FhirRestConfig(),
            TRANSPORT,
        )
