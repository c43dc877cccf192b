"""The hub as a SMART Backend Services *client*: an access token for a partner's FHIR server.

https://hl7.org/fhir/smart-app-launch/backend-services.html#obtaining-an-access-token
The hub posts ``grant_type=client_credentials`` with a ``private_key_jwt`` client assertion
(RFC 7523 §2.2, signed by :func:`auth.client.sign_client_assertion`: ``iss`` = ``sub`` = client id,
``aud`` = token URL, ``exp`` four minutes ahead, a fresh random ``jti``, ``kid`` in the header) and
caches the bearer token until shortly before ``expires_in``.

Why not authlib: its httpx integration is deprecated in favour of the separate ``httpx2`` package
(importing it warns), so it cannot take our SSRF-pinned httpx transport; its ``PrivateKeyJWT`` signs
assertions valid for an hour (SMART allows five minutes) and reuses one ``jti`` when given fixed
claims. What remains is ten lines of joserfc, which ``auth/`` already uses.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import time
import weakref
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from adapters import _http
from adapters.base import MisconfiguredError, RetryableError, Transport
from auth.client import ASSERTION_TYPE, sign_client_assertion

# An expires_in is RECOMMENDED, not required (RFC 6749 §5.1); without one, assume a short life.
DEFAULT_LIFETIME_SECONDS = 60.0
# Refresh this long before expiry (at most 30 s, at most a tenth of the lifetime for short tokens).
MAX_MARGIN_SECONDS = 30.0
_OAUTH_ERROR = re.compile(r"[a-z_]{1,40}")  # an RFC 6749 §5.2 error code, safe to show operators


def _modulus_bits(n: object) -> int:
    if not isinstance(n, str):
        return 0
    try:
        return int.from_bytes(base64.urlsafe_b64decode(n + "=" * (-len(n) % 4)), "big").bit_length()
    except ValueError:
        return 0


def load_private_key(private_jwk: str, kid: str) -> tuple[RSAKey | ECKey, str]:
    """The signing key and its algorithm: RS384 for an RSA key, ES384 for a P-384 key (the two
    algorithms SMART servers must support). Errors never quote key material."""
    try:
        jwk = json.loads(private_jwk)
    except ValueError:
        raise ValueError("private_jwk is not JSON") from None
    if not isinstance(jwk, dict) or "d" not in jwk:
        raise ValueError("private_jwk must be a JWK object with its private parts")
    if jwk.get("kid", kid) != kid:
        raise ValueError("private_jwk has a different kid from the configured one")
    jwk = {**jwk, "kid": kid}
    rsa = jwk.get("kty") == "RSA"
    if not rsa and (jwk.get("kty"), jwk.get("crv")) != ("EC", "P-384"):
        raise ValueError("private_jwk must be an RSA key or an EC P-384 key")
    # Measured before import: joserfc only warns about a short key.
    if rsa and _modulus_bits(jwk.get("n")) < 2048:
        raise ValueError("an RSA private_jwk needs at least 2048 bits")
    alg = "RS384" if rsa else "ES384"
    try:
        key: RSAKey | ECKey = RSAKey.import_key(jwk) if rsa else ECKey.import_key(jwk)
    except (JoseError, ValueError, TypeError, KeyError):
        raise ValueError("private_jwk is not a usable key") from None
    if jwk.get("alg", alg) != alg:
        raise ValueError(f"private_jwk is for {jwk['alg']}; this key type signs with {alg}")
    return key, alg


class SmartClientConfig(BaseModel):
    """How the hub authenticates to one partner's FHIR server (its registration there)."""

    # hide_input_in_errors: a validation error must never echo the private key back.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    token_url: str = Field(pattern=r"^https?://", max_length=2048)
    client_id: str = Field(min_length=1, max_length=256)
    private_jwk: SecretStr  # a JSON JWK with its private parts; the partner holds the public half
    kid: str = Field(min_length=1, max_length=256)
    # SMART v1 spelling, the one partners' servers most often accept (v2 would be system/*.cu).
    scope: str = Field(default="system/*.write", min_length=1, max_length=1024)

    @model_validator(mode="after")
    def _key_fits(self) -> SmartClientConfig:
        load_private_key(self.private_jwk.get_secret_value(), self.kid)
        return self


@dataclass(frozen=True)
class _Token:
    value: str
    fresh_until: float  # time.monotonic() after which it is fetched again


_CacheKey = tuple[str, str, str]  # (token_url, client_id, scope)


class TokenCache:
    """Bearer tokens shared by every attempt in the process, one per (token URL, client, scope).

    One lock per key and event loop makes concurrent deliveries to one partner wait for a single
    token request (asyncio locks belong to one loop; a second loop, e.g. a test's, gets its own).
    """

    def __init__(self) -> None:
        self._tokens: dict[_CacheKey, _Token] = {}
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_CacheKey, asyncio.Lock]]
        self._locks = weakref.WeakKeyDictionary()

    def _lock(self, key: _CacheKey) -> asyncio.Lock:
        per_loop = self._locks.setdefault(asyncio.get_running_loop(), {})
        return per_loop.setdefault(key, asyncio.Lock())

    async def bearer(self, config: SmartClientConfig, http: httpx.AsyncClient, transport: Transport) -> str:
        key = (config.token_url, config.client_id, config.scope)
        async with self._lock(key):
            token = self._tokens.get(key)
            if token is None or time.monotonic() >= token.fresh_until:
                token = await _fetch(config, http, transport)
                self._tokens[key] = token
            return token.value

    def drop(self, config: SmartClientConfig, value: str) -> None:
        """Forget a token the partner refused (401), unless another attempt already replaced it."""
        key = (config.token_url, config.client_id, config.scope)
        if (token := self._tokens.get(key)) is not None and token.value == value:
            del self._tokens[key]

    def clear(self) -> None:
        self._tokens.clear()


TOKENS = TokenCache()


def _oauth_error(body: bytes) -> str:
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return "no error code"
    return error if isinstance(error, str) and _OAUTH_ERROR.fullmatch(error) else "no error code"


def _token_from(body: bytes) -> _Token:
    try:
        reply: Any = json.loads(body)
    except ValueError:
        raise MisconfiguredError("token endpoint: the reply is not JSON") from None
    if not isinstance(reply, dict):
        raise MisconfiguredError("token endpoint: the reply is not a token response")
    value, token_type = reply.get("access_token"), reply.get("token_type")
    if not isinstance(value, str) or not value or not isinstance(token_type, str):
        raise MisconfiguredError("token endpoint: no access_token in the reply")
    if token_type.lower() != "bearer":
        raise MisconfiguredError("token endpoint: the token is not a bearer token")
    lifetime = reply.get("expires_in", DEFAULT_LIFETIME_SECONDS)
    if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or not math.isfinite(lifetime):
        lifetime = DEFAULT_LIFETIME_SECONDS
    lifetime = max(float(lifetime), 0.0)
    margin = min(MAX_MARGIN_SECONDS, lifetime / 10)
    return _Token(value, time.monotonic() + lifetime - margin)


async def _fetch(config: SmartClientConfig, http: httpx.AsyncClient, transport: Transport) -> _Token:
    key, alg = load_private_key(config.private_jwk.get_secret_value(), config.kid)
    # A new assertion (and so a new jti) for every token request: servers refuse a replayed jti.
    assertion = sign_client_assertion(config.client_id, config.token_url, key, alg=alg)
    form = urlencode(
        {
            "grant_type": "client_credentials",
            "scope": config.scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        }
    ).encode()
    headers = {"content-type": "application/x-www-form-urlencoded", "accept": "application/json"}
    # The caller's pinned client (adapters/_http.py): SSRF-checked, no redirects, the total deadline.
    reply = await _http.post(http, config.token_url, content=form, headers=headers, transport=transport)
    status = reply.status_code
    if 200 <= status < 300:
        return _token_from(reply.body)
    if status in (408, 429) or 500 <= status < 600:
        try:
            _http.receipt_or_raise(reply)
        except RetryableError as exc:
            raise RetryableError(
                f"token endpoint answered {status}", status_code=status, retry_after=exc.retry_after
            ) from None
    # 400 invalid_client / invalid_grant / invalid_scope, 401, 403, a wrong URL: the operator's to fix.
    raise MisconfiguredError(
        f"token endpoint answered {status} ({_oauth_error(reply.body)})", status_code=status
    )
