"""Choose the one key that may verify a client assertion.

SMART Backend Services, "Signature verification":
https://hl7.org/fhir/smart-app-launch/backend-services.html#signature-verification
The key comes only from what the client registered: its static JWKS, or its registered JWKS URL
(also when the assertion names that same URL in ``jku``). Any other ``jku``, and embedded
``jwk``/``x5u``/``x5c`` headers, are never used as key material or fetched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from auth.jwks import check_public_jwk
from auth.jwks_fetcher import JwksSource

# JWA (RFC 7518 §3.1) signature algorithms and the key each one needs.
_RSA_ALGS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_CURVE_FOR_ALG = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


class KeyProblem(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ClientKeys:
    """What a registered client offers for verification: a static JWKS, a JWKS URL, or both."""

    client_id: str
    jwks: dict[str, Any] | None = None
    jwks_url: str | None = None


def _with_kid(jwks: dict[str, Any] | None, kid: str) -> list[Any]:
    keys = (jwks or {}).get("keys")
    if not isinstance(keys, list):
        return []
    return [k for k in keys if isinstance(k, dict) and k.get("kid") == kid]


def _fetch(fetcher: JwksSource, url: str, *, force_refresh: bool) -> dict[str, Any]:
    try:
        return fetcher.get(url, force_refresh=force_refresh)
    except ValueError as exc:  # JwksFetchError and SSRF refusals are ValueErrors
        raise KeyProblem("jwks-unavailable") from exc


def _candidates(
    header: dict[str, Any], client: ClientKeys, kid: str, fetcher: JwksSource | None
) -> list[Any]:
    jku = header.get("jku")
    if jku is not None and (client.jwks_url is None or jku != client.jwks_url):
        raise KeyProblem("jku-mismatch")
    use_url = jku is not None or client.jwks is None
    if not use_url:
        return _with_kid(client.jwks, kid)
    if client.jwks_url is None:
        raise KeyProblem("kid-unknown")
    if fetcher is None:
        raise KeyProblem("jwks-unavailable")
    found = _with_kid(_fetch(fetcher, client.jwks_url, force_refresh=False), kid)
    if not found:
        # Unknown kid: the client may have rotated keys since we cached its set. Refresh once.
        found = _with_kid(_fetch(fetcher, client.jwks_url, force_refresh=True), kid)
    return found


def _check_alg_matches(jwk: dict[str, Any], alg: str) -> None:
    if "alg" in jwk and jwk["alg"] != alg:
        raise KeyProblem("alg-key-mismatch")
    if alg in _RSA_ALGS:
        if jwk["kty"] != "RSA":
            raise KeyProblem("alg-key-mismatch")
    elif alg in _EC_CURVE_FOR_ALG:
        if jwk["kty"] != "EC" or jwk.get("crv") != _EC_CURVE_FOR_ALG[alg]:
            raise KeyProblem("alg-key-mismatch")
    else:
        raise KeyProblem("alg-key-mismatch")


def select_key(
    header: dict[str, Any], client: ClientKeys, kid: str, alg: str, fetcher: JwksSource | None
) -> RSAKey | ECKey:
    """Return the single registered key named by ``kid`` that fits ``alg``, or raise KeyProblem."""
    found = _candidates(header, client, kid, fetcher)
    if not found:
        raise KeyProblem("kid-unknown")
    if len(found) > 1:
        raise KeyProblem("kid-ambiguous")
    try:
        # Fetched sets were never registration-checked: the same rules apply to the chosen key.
        jwk = check_public_jwk(found[0])
    except ValueError as exc:
        raise KeyProblem("key-unacceptable") from exc
    _check_alg_matches(jwk, alg)
    try:
        return RSAKey.import_key(jwk) if jwk["kty"] == "RSA" else ECKey.import_key(jwk)
    except (JoseError, ValueError, TypeError) as exc:
        raise KeyProblem("key-unacceptable") from exc
