"""Registering real SMART clients with freshly generated keys and getting real tokens."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from joserfc.jwk import ECKey

from auth.client import ASSERTION_TYPE, sign_client_assertion
from service.clients import register_client
from service.storage.database import Database
from tests.support.logscan import SECRETS

FHIR_JSON = {"Content-Type": "application/fhir+json"}

_KEY_CACHE: list[ECKey] = []


def _key() -> ECKey:
    # Generating P-384 keys is cheap, but reuse one per process to keep tests quick.
    if not _KEY_CACHE:
        _KEY_CACHE.append(ECKey.generate_key("P-384", parameters={"kid": "test-key"}, private=True))
    return _KEY_CACHE[0]


def signing_jwk() -> dict[str, Any]:
    """The registered clients' private key as a JWK, for a client that signs its own assertions."""
    return dict(_key().as_dict(private=True))


def assertion(client_id: str, token_url: str, key: ECKey | None = None, **claims: Any) -> str:
    return sign_client_assertion(client_id, token_url, key or _key(), **claims)


@dataclass
class Client:
    """An authenticated caller: an httpx-like facade adding the bearer token."""

    http: httpx.Client
    token: str
    organization_id: str
    role: str
    headers: dict[str, str] = field(default_factory=dict)
    client_id: str = ""

    def _h(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **FHIR_JSON, **(extra or {})}

    def get(self, url: str, headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        return self.http.get(url, headers=self._h(headers), **kw)

    def post(
        self, url: str, json: Any = None, headers: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        return self.http.post(url, json=json, headers=self._h(headers), **kw)

    def put(
        self, url: str, json: Any = None, headers: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        return self.http.put(url, json=json, headers=self._h(headers), **kw)

    def delete(self, url: str, headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        return self.http.delete(url, headers=self._h(headers), **kw)

    @property
    def org_ref(self) -> str:
        return f"Organization/{self.organization_id}"


class FhirClients:
    def __init__(self, http: httpx.Client, db: Database, base_url: str) -> None:
        self.http = http
        self.db = db
        self.base_url = base_url
        self.token_url = f"{base_url}/auth/token"

    def register(
        self, client_id: str, organization_id: str, role: str, scopes: str = "system/*.cruds"
    ) -> None:
        jwks = {"keys": [_key().as_dict(private=False)]}
        with self.db.transaction() as conn:
            register_client(
                conn,
                client_id=client_id,
                organization_id=f"Organization/{organization_id}",
                role=role,
                scopes=scopes,
                jwks=jwks,
                jwks_url=None,
                now=datetime.now(UTC),
            )

    def token(self, client_id: str, scope: str = "system/*.cruds") -> str:
        response = self.http.post(
            "/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion(client_id, self.token_url),
                "scope": scope,
            },
        )
        assert response.status_code == 200, response.text
        token = str(response.json()["access_token"])
        SECRETS.append(token)
        return token

    def client(
        self,
        role: str,
        organization_id: str | None = None,
        *,
        scopes: str = "system/*.cruds",
        client_id: str | None = None,
    ) -> Client:
        org = organization_id or f"{role}-{uuid.uuid4().hex[:8]}"
        cid = client_id or f"{org}-{role}-client"
        self.register(cid, org, role, scopes)
        return Client(self.http, self.token(cid, scopes), org, role, client_id=cid)

    def anonymous(self) -> httpx.Client:
        return self.http
