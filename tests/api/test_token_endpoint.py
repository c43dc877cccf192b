"""POST /auth/token end to end: real app, real SQLite database, real signed assertions."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from httpx import Response
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from sqlalchemy import func, select

from auth.client import ASSERTION_TYPE
from auth.tokens import hash_token
from service.app import create_app
from service.clients import register_client
from service.settings import Settings
from service.storage.database import Database
from service.storage.tables import AccessToken, Resource
from service.storage.tokens import find_token
from tests.support.live import TEST_SECRET_KEY

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 for its test client; httpx (installed) still works.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`", UserWarning)
    from fastapi.testclient import TestClient

TOKEN_URL = "http://testserver/auth/token"
ORG = "Organization/clinic-org"
R = Resource.__table__  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def rsa() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})


@pytest.fixture(scope="module")
def ec() -> ECKey:
    return ECKey.generate_key("P-384", parameters={"kid": "ec-1"})


def _settings(database: Database, **overrides: Any) -> Settings:
    return Settings(
        database_url=database.url,
        base_url="http://testserver",
        allow_private_endpoints=True,
        secret_key=TEST_SECRET_KEY,
        **overrides,
    )


def _app(database: Database, **overrides: Any) -> TestClient:
    # The conftest's database: SQLite by default, PostgreSQL with WRAPAROUND_TEST_DATABASE_URL.
    return TestClient(create_app(_settings(database, **overrides), database=database))


@pytest.fixture
def api(clean_database: Database) -> Iterator[TestClient]:
    with _app(clean_database) as client:
        yield client


def _db(client: TestClient) -> Database:
    db: Database = client.app.state.database  # type: ignore[attr-defined]
    return db


def _register(
    client: TestClient,
    *keys: RSAKey | ECKey,
    scopes: str = "system/Organization.rs system/Task.cruds",
    jwks_url: str | None = None,
    role: str = "clinic",
) -> str:
    client_id = f"client-{uuid.uuid4().hex[:8]}"  # fresh per test: the rate limiter is process-wide
    jwks = {"keys": [dict(k.as_dict(private=False)) for k in keys]} if keys else None
    with _db(client).transaction() as conn:
        register_client(
            conn,
            client_id=client_id,
            organization_id=ORG,
            role=role,
            scopes=scopes,
            jwks=jwks,
            jwks_url=jwks_url,
            now=datetime.now(UTC),
            allow_private=True,
        )
    return client_id


def _assertion(key: RSAKey | ECKey, alg: str, client_id: str, **claims: Any) -> str:
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "exp": now + 240,
        "jti": uuid.uuid4().hex,
    }
    body.update(claims)
    header = {"alg": alg, "typ": "JWT", "kid": key.kid}
    return jwt.encode(header, body, key, algorithms=[alg])


def _form(assertion: str, scope: str = "system/Task.rs", **extra: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
        "scope": scope,
        **extra,
    }


def _post(client: TestClient, form: dict[str, str]) -> Response:
    response: Response = client.post("/auth/token", data=form)
    return response


def _audits(client: TestClient) -> list[dict[str, Any]]:
    with _db(client).transaction(write=False) as conn:
        rows = conn.execute(
            select(R.c.content).where(R.c.resource_type == "AuditEvent").order_by(R.c.rid)
        ).all()
    return [row[0] for row in rows if row[0] and row[0]["subtype"][0]["code"] == "110114"]


def _assert_error(response: Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == error
    assert isinstance(body["error_description"], str)
    assert response.headers["cache-control"] == "no-store"
    return body


@pytest.mark.parametrize(("alg", "key_name"), [("RS384", "rsa"), ("ES384", "ec")])
def test_signed_assertion_gets_a_working_token(
    api: TestClient, request: pytest.FixtureRequest, alg: str, key_name: str
) -> None:
    key = request.getfixturevalue(key_name)
    client_id = _register(api, key)
    response = _post(api, _form(_assertion(key, alg, client_id), scope="system/*.rs"))

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 300
    # Requested system/*.rs, held Organization.rs and Task.cruds: granted the intersection.
    assert set(body["scope"].split()) == {"system/Organization.rs", "system/Task.rs"}

    with _db(api).transaction(write=False) as conn:
        row = find_token(conn, hash_token(body["access_token"]))
    assert row is not None
    assert (row.client_id, row.organization_id, row.role) == (client_id, "clinic-org", "clinic")
    assert len(row.jti) == 32

    found = api.get("/fhir/Organization", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert found.status_code == 200, found.text
    unknown = api.get("/fhir/Organization", headers={"Authorization": "Bearer not-a-token"})
    assert unknown.status_code == 401

    [event] = _audits(api)
    assert event["outcome"] == "0"
    assert event["agent"][0]["who"]["identifier"]["value"] == client_id
    assert event["agent"][0]["policy"] == [f"urn:jti:{row.jti}"]
    assert body["access_token"] not in json.dumps(event)


def test_rs512_only_when_enabled(clean_database: Database, rsa: RSAKey) -> None:
    for allow, status in ((False, 401), (True, 200)):
        with _app(clean_database, allow_rs512=allow) as client:
            client_id = _register(client, rsa)
            assert _post(client, _form(_assertion(rsa, "RS512", client_id))).status_code == status


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"grant_type": "authorization_code"}, "unsupported_grant_type"),
        ({"grant_type": ""}, "invalid_request"),
        (
            {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"},
            "invalid_request",
        ),
        ({"client_assertion": ""}, "invalid_request"),
        ({"scope": ""}, "invalid_scope"),
    ],
)
def test_malformed_requests(api: TestClient, rsa: RSAKey, change: dict[str, str], error: str) -> None:
    client_id = _register(api, rsa)
    form = {**_form(_assertion(rsa, "RS384", client_id)), **change}
    _assert_error(_post(api, form), 400, error)
    [event] = _audits(api)
    assert event["outcome"] == "4"
    assert event["outcomeDesc"].startswith(error)


def test_wrong_content_type_and_repeated_parameter(api: TestClient, rsa: RSAKey) -> None:
    client_id = _register(api, rsa)
    form = _form(_assertion(rsa, "RS384", client_id))
    _assert_error(api.post("/auth/token", json=form), 400, "invalid_request")
    repeated = "&".join(f"{k}={v}" for k, v in form.items()) + "&scope=system/Task.r"
    response = api.post(
        "/auth/token", content=repeated, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert "repeated" in _assert_error(response, 400, "invalid_request")["error_description"]


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "nobody", "sub": "nobody"}, "unknown-client"),
        ({"aud": "http://elsewhere.example/auth/token"}, "aud"),
        # "exp_in": seconds from when the test runs (not from collection, which may be minutes earlier).
        ({"exp_in": -600}, "exp-past"),
        ({"exp_in": 3600}, "exp-too-far"),
        # The clock leeway forgives the past only: 5 minutes ahead is the horizon (issue 10).
        ({"exp_in": 330}, "exp-too-far"),
        ({"exp_in": 360}, "exp-too-far"),
        # Over 8 KiB: refused on its size, before it is decoded.
        ({"padding": "x" * 8192}, "too-large"),
    ],
)
def test_invalid_client_claims(api: TestClient, rsa: RSAKey, claims: dict[str, Any], reason: str) -> None:
    if "exp_in" in claims:
        claims = {"exp": int(time.time()) + claims["exp_in"]}
    client_id = _register(api, rsa)
    body = _assert_error(
        _post(api, _form(_assertion(rsa, "RS384", client_id, **claims))), 401, "invalid_client"
    )
    assert reason not in body["error_description"]  # the precise reason is for the audit only
    [event] = _audits(api)
    assert event["outcomeDesc"].startswith(reason)
    assert event["agent"][0]["who"]["identifier"]["value"] == "unknown"
    with _db(api).transaction(write=False) as conn:
        assert conn.execute(select(func.count()).select_from(AccessToken)).scalar_one() == 0


def test_exp_just_inside_five_minutes_is_accepted(api: TestClient, ec: ECKey) -> None:
    client_id = _register(api, ec)
    assertion = _assertion(ec, "ES384", client_id, exp=int(time.time()) + 295)
    assert _post(api, _form(assertion)).status_code == 200


def test_bad_signature(api: TestClient, rsa: RSAKey) -> None:
    client_id = _register(api, rsa)
    impostor = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
    _assert_error(_post(api, _form(_assertion(impostor, "RS384", client_id))), 401, "invalid_client")
    [event] = _audits(api)
    assert event["outcomeDesc"] == f"signature (claimed client {client_id!r})"


def test_replayed_assertion_is_refused(api: TestClient, ec: ECKey) -> None:
    client_id = _register(api, ec)
    form = _form(_assertion(ec, "ES384", client_id))
    assert _post(api, form).status_code == 200
    _assert_error(_post(api, form), 401, "invalid_client")
    assert [e["outcomeDesc"].split(" ")[0] for e in _audits(api)] == ["granted", "jti-replay"]


def test_scope_outside_registration_is_invalid_scope(api: TestClient, rsa: RSAKey) -> None:
    client_id = _register(api, rsa, scopes="system/Task.rs")
    assertion = _assertion(rsa, "RS384", client_id)
    _assert_error(_post(api, _form(assertion, scope="system/Patient.r")), 400, "invalid_scope")
    _assert_error(
        _post(api, _form(_assertion(rsa, "RS384", client_id), scope="patient/*.read")), 400, "invalid_scope"
    )
    events = _audits(api)
    assert [e["outcomeDesc"] for e in events] == ["scope-not-permitted", "scope-malformed"]
    # The client authenticated, so the refusal is attributed to it.
    assert events[0]["agent"][0]["who"]["identifier"]["value"] == client_id
    # A refused request rolls back, so the same assertion still works with an acceptable scope.
    assert _post(api, _form(assertion, scope="system/Task.r")).status_code == 200


def test_client_id_parameter_must_match(api: TestClient, rsa: RSAKey) -> None:
    client_id = _register(api, rsa)
    form = _form(_assertion(rsa, "RS384", client_id), client_id="someone-else")
    _assert_error(_post(api, form), 401, "invalid_client")


def test_rate_limit_per_client(clean_database: Database, rsa: RSAKey) -> None:
    with _app(clean_database, token_rate_limit="3/minute") as client:
        client_id = _register(client, rsa)
        other = _register(client, rsa)
        statuses = [_post(client, _form(_assertion(rsa, "RS384", client_id))).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = _post(client, _form(_assertion(rsa, "RS384", client_id)))
        _assert_error(limited, 429, "temporarily_unavailable")
        assert int(limited.headers["retry-after"]) >= 1
        assert _post(client, _form(_assertion(rsa, "RS384", other))).status_code == 200


def test_concurrent_replay_yields_one_token(api: TestClient, ec: ECKey) -> None:
    client_id = _register(api, ec)
    form = _form(_assertion(ec, "ES384", client_id))
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def post() -> None:
        barrier.wait()
        statuses.append(_post(api, form).status_code)

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 401]


class _JwksHandler(BaseHTTPRequestHandler):
    jwks: bytes = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.jwks)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


def test_jwks_url_client_over_loopback(api: TestClient, ec: ECKey) -> None:
    handler = type(
        "Handler", (_JwksHandler,), {"jwks": json.dumps({"keys": [ec.as_dict(private=False)]}).encode()}
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
        client_id = _register(api, jwks_url=url)
        response = _post(api, _form(_assertion(ec, "ES384", client_id)))
        assert response.status_code == 200, response.text
    finally:
        server.shutdown()
        server.server_close()


def test_logs_hold_no_assertion_or_token(
    api: TestClient, rsa: RSAKey, caplog: pytest.LogCaptureFixture
) -> None:
    client_id = _register(api, rsa)
    caplog.set_level(logging.DEBUG)
    assertion = _assertion(rsa, "RS384", client_id)
    token = _post(api, _form(assertion)).json()["access_token"]
    _post(api, _form(assertion))  # replay: refused and logged
    assert "token request refused" in caplog.text
    assert assertion not in caplog.text
    assert assertion.split(".")[1] not in caplog.text
    assert token not in caplog.text
