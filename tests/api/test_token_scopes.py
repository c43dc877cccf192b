"""The token endpoint grants the supported subset of the requested scopes and drops the rest
(RFC 6749 §3.3), never a scope for a resource type the server does not serve."""

from __future__ import annotations

import uuid

import httpx
import pytest

from auth.client import ASSERTION_TYPE
from auth.scopes import permits
from tests.support.clients import FhirClients, assertion
from tests.support.logscan import SECRETS


def _request(fhir: FhirClients, client_id: str, scope: str) -> httpx.Response:
    return fhir.http.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(client_id, fhir.token_url),
            "scope": scope,
        },
    )


def _client(fhir: FhirClients, scopes: str = "system/*.cruds") -> str:
    client_id = f"scopes-{uuid.uuid4().hex[:8]}"
    fhir.register(client_id, f"org-{client_id}", "clinic", scopes)
    return client_id


@pytest.mark.parametrize(
    ("requested", "granted"),
    [
        # fhirclient's default request, and OpenID Connect's openid/fhirUser.
        ("launch/patient system/Patient.rs openid fhirUser", "system/Patient.rs"),
        ("openid system/*.rs", "system/*.rs"),
        # patient/ and user/ scopes, v2 granular scopes and malformed letters are dropped.
        (
            "patient/*.read user/Task.rs system/Task.rs?status=ready system/Task.sr system/Task.r",
            "system/Task.r",
        ),
        # A type the server does not serve is never granted.
        ("system/Foo.rs system/Patient.r", "system/Patient.r"),
        ("system/Foo.rs system/*.s", "system/*.s"),
    ],
)
def test_supported_subset_is_granted_and_reported(fhir: FhirClients, requested: str, granted: str) -> None:
    response = _request(fhir, _client(fhir), requested)
    assert response.status_code == 200, response.text
    body = response.json()
    SECRETS.append(body["access_token"])
    assert body["scope"] == granted
    # The token carries exactly the reported scope.
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    read_patients = permits(granted, "Patient", "s")
    search = fhir.http.get("/fhir/Patient", headers=headers)
    assert search.status_code == (200 if read_patients else 403), search.text


def test_registered_scope_for_an_unknown_type_is_not_granted(fhir: FhirClients) -> None:
    client_id = _client(fhir, "system/Foo.cruds system/Task.rs")
    response = _request(fhir, client_id, "system/*.rs")
    assert response.status_code == 200, response.text
    SECRETS.append(response.json()["access_token"])
    assert response.json()["scope"] == "system/Task.rs"
    refused = _request(fhir, client_id, "system/Foo.rs")
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_scope"


@pytest.mark.parametrize("requested", ["launch/patient openid", "system/Foo.rs", "patient/*.read"])
def test_nothing_grantable_is_invalid_scope(fhir: FhirClients, requested: str) -> None:
    response = _request(fhir, _client(fhir), requested)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_scope"
    assert "access_token" not in response.json()
