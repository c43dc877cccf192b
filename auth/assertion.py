"""Verify a SMART Backend Services client assertion (RFC 7523 private_key_jwt).

SMART App Launch 2.x Backend Services, "Authenticating to the token endpoint":
https://hl7.org/fhir/smart-app-launch/backend-services.html#request-access-token
Client assertion rules: RFC 7523 §3; token endpoint errors: RFC 6749 §5.2.

Every problem raises ``AssertionRejected`` with error ``invalid_client``, a deliberately vague
description for the caller, and a precise ``reason`` for audit and tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from joserfc import jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jws import JWSRegistry

from auth._compact import MAX_ASSERTION_BYTES, MalformedJws, unverified_parts
from auth._keys import ClientKeys, KeyProblem, select_key
from auth.jwks_fetcher import JwksSource

__all__ = [
    "DEFAULT_ALGS",
    "MAX_ASSERTION_BYTES",
    "AssertionRejected",
    "ClientKeys",
    "JtiStore",
    "VerifiedClient",
    "verify_client_assertion",
]

DEFAULT_ALGS = frozenset({"RS384", "ES384"})
# SMART: "exp ... no more than five minutes in the future".
MAX_LIFETIME_SECONDS = 300
MAX_JTI_LENGTH = 255

# reason -> the category a caller may see. Kept coarse so a failure does not coach an attacker.
_CATEGORY = {
    "malformed": "malformed",
    "too-large": "malformed",
    "alg-not-allowed": "header",
    "typ": "header",
    "alg-key-mismatch": "key",
    "kid-missing": "key",
    "kid-unknown": "key",
    "kid-ambiguous": "key",
    "jku-mismatch": "key",
    "jwks-unavailable": "key",
    "key-unacceptable": "key",
    "iss-sub": "client",
    "unknown-client": "client",
    "signature": "signature",
    "aud": "claims",
    "exp-missing": "claims",
    "exp-past": "claims",
    "exp-too-far": "claims",
    "nbf-future": "claims",
    "iat-future": "claims",
    "jti-missing": "claims",
    "jti-invalid": "claims",
    "jti-replay": "replay",
}


class AssertionRejected(Exception):
    """The client assertion failed; ``error``/``description`` go in the RFC 6749 §5.2 response."""

    def __init__(self, error: str, description: str, *, reason: str) -> None:
        super().__init__(f"{error}: {description} [{reason}]")
        self.error = error
        self.description = description
        self.reason = reason


def _reject(reason: str) -> AssertionRejected:
    return AssertionRejected(
        "invalid_client", f"client assertion rejected ({_CATEGORY.get(reason, 'other')})", reason=reason
    )


class JtiStore(Protocol):
    """Remembers assertion ids until they expire. The service backs it with a primary key so
    concurrent replays race on the insert and exactly one wins."""

    def remember(self, client_id: str, jti: str, expires_at: datetime) -> bool:
        """Record ``jti`` for ``client_id``; False if it was already recorded (a replay)."""
        ...


@dataclass(frozen=True)
class VerifiedClient:
    client_id: str
    jti: str
    expires_at: datetime


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _reject("malformed")
    return float(value)


def _check_header(header: dict[str, Any], allowed_algs: frozenset[str]) -> tuple[str, str]:
    alg = header.get("alg")
    # "none" and HMAC are refused even if a caller misconfigures the allow-list: an HMAC "key"
    # would be the public key text (the classic RS/HS confusion).
    if not isinstance(alg, str) or alg not in allowed_algs or alg.lower() == "none" or alg.startswith("HS"):
        raise _reject("alg-not-allowed")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() != "jwt":
        raise _reject("typ")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _reject("kid-missing")
    return alg, kid


def _check_times(claims: dict[str, Any], now: float, leeway: int) -> float:
    exp = _number(claims, "exp")
    if exp is None:
        raise _reject("exp-missing")
    if exp + leeway < now:
        raise _reject("exp-past")
    # The leeway forgives a clock that is behind, never a longer lifetime: exp is at most
    # five minutes after now as this server sees it (SMART Backend Services; the contract).
    if exp > now + MAX_LIFETIME_SECONDS:
        raise _reject("exp-too-far")
    nbf = _number(claims, "nbf")
    if nbf is not None and nbf > now + leeway:
        raise _reject("nbf-future")
    iat = _number(claims, "iat")
    if iat is not None and iat > now + leeway:
        raise _reject("iat-future")
    return exp


def _verify_signature(assertion: str, key: Any, alg: str) -> dict[str, Any]:
    # Unknown header parameters are legal (RFC 7515 §4); "crit" is still enforced by joserfc.
    registry = JWSRegistry(algorithms=[alg], strict_check_header=False)
    registry.max_header_length = 4096  # room for an (ignored) x5c chain
    try:
        return jwt.decode(assertion, key, registry=registry).claims
    except BadSignatureError as exc:
        raise _reject("signature") from exc
    except (JoseError, ValueError, TypeError) as exc:
        raise _reject("malformed") from exc


def verify_client_assertion(
    assertion: str,
    *,
    token_url: str,
    lookup_client: Callable[[str], ClientKeys | None],
    jti_store: JtiStore,
    now: datetime,
    allowed_algs: frozenset[str] = DEFAULT_ALGS,
    fetcher: JwksSource | None = None,
    leeway_seconds: int = 60,
) -> VerifiedClient:
    """Authenticate a client by its signed assertion, or raise AssertionRejected."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    # Refused before any decoding: an oversized assertion costs nothing to turn away. The length
    # in characters bounds the work of measuring it in bytes.
    size = len(assertion)
    if size > MAX_ASSERTION_BYTES or len(assertion.encode("utf-8", "surrogatepass")) > MAX_ASSERTION_BYTES:
        raise _reject("too-large")
    try:
        header, unverified = unverified_parts(assertion)
    except MalformedJws as exc:
        raise _reject("malformed") from exc
    alg, kid = _check_header(header, allowed_algs)

    # The unverified iss only tells us whose keys to try; it is re-read from verified claims below.
    iss = unverified.get("iss")
    if not isinstance(iss, str) or not iss or unverified.get("sub") != iss:
        raise _reject("iss-sub")
    client = lookup_client(iss)
    if client is None or client.client_id != iss:
        raise _reject("unknown-client")
    try:
        key = select_key(header, client, kid, alg, fetcher)
    except KeyProblem as exc:
        raise _reject(exc.reason) from exc

    claims = _verify_signature(assertion, key, alg)
    if claims.get("iss") != client.client_id or claims.get("sub") != client.client_id:
        raise _reject("iss-sub")
    aud = claims.get("aud")
    if not (aud == token_url or (isinstance(aud, list) and aud == [token_url])):
        raise _reject("aud")
    exp = _check_times(claims, now.timestamp(), leeway_seconds)
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise _reject("jti-missing")
    if len(jti) > MAX_JTI_LENGTH:
        raise _reject("jti-invalid")

    expires_at = datetime.fromtimestamp(exp, UTC)
    # Remember the jti for as long as the assertion could still be accepted (exp plus leeway).
    if not jti_store.remember(client.client_id, jti, expires_at + timedelta(seconds=leeway_seconds)):
        raise _reject("jti-replay")
    return VerifiedClient(client.client_id, jti, expires_at)
