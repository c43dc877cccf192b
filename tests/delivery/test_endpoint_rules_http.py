"""Endpoints are checked when they are written (issue 8), over real HTTP with real admin tokens.

A second live hub runs with ``allow_private_endpoints=False`` (production settings) beside the
session's development hub (``fhir``, which allows loopback so delivery tests can reach local peers).
Every hostile address is refused with 422 naming ``Endpoint.address`` and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from adapters.base import HL7_CONNECTION_TYPE, WRAPAROUND_CONNECTION_TYPE
from service.directory import load_directory
from service.errors import Unprocessable
from service.storage.database import Database
from tests.support.clients import Client, FhirClients
from tests.support.live import LiveServer

FHIR_REST = {"system": HL7_CONNECTION_TYPE, "code": "hl7-fhir-rest"}
WEBHOOK = {"system": WRAPAROUND_CONNECTION_TYPE, "code": "webhook"}
SECURE_EMAIL = {"system": HL7_CONNECTION_TYPE, "code": "secure-email"}

HOSTILE_URLS = [
    "http://169.254.169.254/latest/meta-data",
    "https://169.254.169.254/latest/meta-data",
    "http://localhost:5432/",
    "https://localhost:5432/",
    "https://localhost./",
    "http://[::1]/",
    "https://[::1]/",
    "http://0x7f.1/",
    "https://0x7f.1/",
    "http://2130706433/",
    "https://2130706433/",
    "https://0x7f000001/",
    "https://0177.0.0.1/",
    "https://017700000001/",
    "https://127.1/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:7f00:1]/",
    "https://[fc00::1]/",
    "https://[fe80::1]/",
    "https://[64:ff9b::a00:1]/",
    "https://[2002:7f00:1::]/",
    "https://100.64.0.1/",
    "http://10.0.0.5/",
    "https://10.0.0.5/",
    "https://0.0.0.0/",
    "http://93.184.216.34/fhir",  # public, but http is for development only
    "file:///etc/passwd",
    "gopher://x/",
    "ftp://93.184.216.34/",
    "https://user:secret@93.184.216.34/fhir",
    "https://93.184.216.34/fhir#fragment",
    "https://nowhere.invalid/fhir",  # does not resolve: 422, not 500
    "https://93.184.216.34/fhir\r\nX-Injected: 1",  # urlsplit would silently drop the CR/LF
    "https://10.0.0.5\t/fhir",
]

HOSTILE_MAILTOS = [
    "mailto:partner@example.org?cc=attacker@example.net",
    "mailto:partner@example.org?body=hello",
    "mailto:partner@example.org%0d%0aBcc:attacker@example.net",
    "mailto:partner@example.org%0ABcc:attacker@example.net",
    "mailto:partner@example.org\r\nBcc: attacker@example.net",
    "mailto:partner@example.org,attacker@example.net",
    "mailto:partner@[10.0.0.5]",
    "mailto:partner@127.0.0.1",
    "mailto:Partner <partner@example.org>",
    "mailto:not-an-address",
    "https://93.184.216.34/fhir",
]


@pytest.fixture(scope="module")
def strict_server(database: Database) -> Iterator[LiveServer]:
    with LiveServer.start(database, allow_private_endpoints=False) as live:
        yield live


@pytest.fixture
def strict_admin(strict_server: LiveServer, clean_database: Database) -> Iterator[Client]:
    from service.bootstrap import load_definitions

    load_definitions(clean_database)
    with httpx.Client(base_url=strict_server.base_url, timeout=30) as http:
        yield FhirClients(http, clean_database, strict_server.base_url).client("admin", "hub")


@pytest.fixture
def dev_admin(fhir: FhirClients) -> Client:
    return fhir.client("admin", "hub")


def _endpoint(address: str, connection_type: dict[str, str] = FHIR_REST, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Endpoint",
        "status": "active",
        "connectionType": connection_type,
        "payloadType": [{"text": "FHIR transaction"}],
        "address": address,
        **extra,
    }


def _refused(response: httpx.Response, expression: str = "Endpoint.address") -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    named = [i for i in outcome["issue"] if expression in i.get("expression", [])]
    assert named, outcome
    assert all(i["severity"] == "error" for i in named)
    return named


def _stored_addresses(admin: Client) -> list[str]:
    bundle = admin.get("/fhir/Endpoint", params={"_count": "100"}).json()
    return [e["resource"]["address"] for e in bundle.get("entry", [])]


def test_every_hostile_address_is_refused_and_nothing_stored(strict_admin: Client) -> None:
    for address in HOSTILE_URLS:
        for connection_type in (FHIR_REST, WEBHOOK):
            response = strict_admin.post("/fhir/Endpoint", json=_endpoint(address, connection_type))
            assert response.status_code == 422, f"{address} ({connection_type['code']}): {response.text}"
            _refused(response)
    assert _stored_addresses(strict_admin) == []


def test_refusals_say_why(strict_admin: Client) -> None:
    metadata = _refused(strict_admin.post("/fhir/Endpoint", json=_endpoint("https://169.254.169.254/")))
    assert metadata[0]["code"] == "security"
    assert "non-public" in metadata[0]["diagnostics"]
    unresolved = _refused(strict_admin.post("/fhir/Endpoint", json=_endpoint("https://nowhere.invalid/")))
    assert "cannot resolve" in unresolved[0]["diagnostics"]
    scheme = _refused(strict_admin.post("/fhir/Endpoint", json=_endpoint("file:///etc/passwd")))
    assert "scheme" in scheme[0]["diagnostics"]


def test_public_https_literal_is_accepted(strict_admin: Client) -> None:
    response = strict_admin.post("/fhir/Endpoint", json=_endpoint("https://93.184.216.34/fhir"))
    assert response.status_code == 201, response.text
    webhook = strict_admin.post("/fhir/Endpoint", json=_endpoint("https://93.184.216.34:8443/hook", WEBHOOK))
    assert webhook.status_code == 201, webhook.text
    assert sorted(_stored_addresses(strict_admin)) == [
        "https://93.184.216.34/fhir",
        "https://93.184.216.34:8443/hook",
    ]


def test_secure_email_needs_one_plain_mailto(strict_admin: Client) -> None:
    good = strict_admin.post(
        "/fhir/Endpoint", json=_endpoint("mailto:referrals@partner.example.org", SECURE_EMAIL)
    )
    assert good.status_code == 201, good.text
    for address in HOSTILE_MAILTOS:
        response = strict_admin.post("/fhir/Endpoint", json=_endpoint(address, SECURE_EMAIL))
        assert response.status_code == 422, f"{address}: {response.text}"
        _refused(response)
    assert _stored_addresses(strict_admin) == ["mailto:referrals@partner.example.org"]


def test_unknown_connection_type_lists_the_supported_ones(strict_admin: Client) -> None:
    unknown = {"system": HL7_CONNECTION_TYPE, "code": "ihe-xcpd"}
    response = strict_admin.post("/fhir/Endpoint", json=_endpoint("https://93.184.216.34/fhir", unknown))
    issues = _refused(response, "Endpoint.connectionType")
    assert f"{HL7_CONNECTION_TYPE}#hl7-fhir-rest" in issues[0]["diagnostics"]
    assert f"{WRAPAROUND_CONNECTION_TYPE}#webhook" in issues[0]["diagnostics"]
    assert _stored_addresses(strict_admin) == []


def test_update_to_a_hostile_address_is_refused_and_changes_nothing(strict_admin: Client) -> None:
    created = strict_admin.post("/fhir/Endpoint", json=_endpoint("https://93.184.216.34/fhir"))
    assert created.status_code == 201, created.text
    endpoint = created.json()
    path = f"/fhir/Endpoint/{endpoint['id']}"
    for address in ("https://[::ffff:169.254.169.254]/", "https://0xa.0.0.5/", "http://93.184.216.34/fhir"):
        _refused(strict_admin.put(path, json={**endpoint, "address": address}))
    current = strict_admin.get(path).json()
    assert current["address"] == "https://93.184.216.34/fhir"
    assert current["meta"]["versionId"] == endpoint["meta"]["versionId"]
    # A harmless update still goes through the same rule and passes.
    moved = strict_admin.put(path, json={**endpoint, "address": "https://93.184.216.35/fhir"})
    assert moved.status_code == 200, moved.text


def test_directory_loads_are_checked_too(strict_server: LiveServer, clean_database: Database) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": _endpoint(
                    "https://10.0.0.5/fhir", identifier=[{"system": "https://example.org/ep", "value": "x"}]
                )
            }
        ],
    }
    with pytest.raises(Unprocessable) as info:
        load_directory(clean_database, bundle, base_url=f"{strict_server.base_url}/fhir")
    assert any("Endpoint.address" in issue.expression for issue in info.value.issues)


def test_development_hub_allows_loopback_http_but_no_other_scheme(dev_admin: Client) -> None:
    local = dev_admin.post("/fhir/Endpoint", json=_endpoint("http://127.0.0.1:9/"))
    assert local.status_code == 201, local.text
    for address in ("file:///etc/passwd", "gopher://x/", "https://user:pw@127.0.0.1/"):
        _refused(dev_admin.post("/fhir/Endpoint", json=_endpoint(address)))
    assert _stored_addresses(dev_admin) == ["http://127.0.0.1:9/"]


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("X-Key: a\r\nX-Injected: 1", 422),
        ("X-Key: a\nb", 422),
        ("X-Key: caf\u00e9", 422),
        ("X-Key: a\x00", 400),  # refused already as malformed FHIR (a string may not hold NUL)
    ],
)
def test_an_endpoint_header_that_could_forge_another_is_refused(
    fhir: FhirClients, header: str, status: int
) -> None:
    admin = fhir.client("admin", "hub")
    body = {
        "resourceType": "Endpoint",
        "status": "active",
        "connectionType": {"system": WRAPAROUND_CONNECTION_TYPE, "code": "webhook"},
        "payloadType": [{"text": "event"}],
        "address": "http://127.0.0.1:9/hook",
        "header": ["X-Partner: ok", header],
    }
    response = admin.post("/fhir/Endpoint", json=body)
    assert response.status_code == status, response.text
    assert "Endpoint.header[1]" in response.text
    assert admin.get("/fhir/Endpoint").json().get("entry", []) == []
