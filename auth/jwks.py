"""Client JSON Web Key Sets: validation at registration, and checks on each key before use.

SMART Backend Services registration: https://hl7.org/fhir/smart-app-launch/backend-services.html#registering-a-smart-backend-service-communicating-public-keys
JWK parameters: RFC 7517 §4, RFC 7518 §6. Only public RSA and EC signing keys are acceptable;
fetching a JWKS URL lives in ``auth.jwks_fetcher``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

# Private-key members (RFC 7518 §6.3.2, §6.2.2, §6.4.1); any of these means a secret was pasted.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "k", "oth"})
ALLOWED_CURVES = frozenset({"P-256", "P-384", "P-521"})
MIN_RSA_BITS = 2048

# Members kept in the cleaned JWKS; everything else (x5u, x5c, vendor extras) is dropped so that
# nothing downstream can be tempted to follow or trust it.
_KEPT_MEMBERS = ("kty", "kid", "use", "key_ops", "alg", "n", "e", "crv", "x", "y")


def _b64url_int(value: object, name: str) -> int:
    if not isinstance(value, str) or not value:
        raise ValueError(f"key member {name!r} must be a non-empty base64url string")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"key member {name!r} is not base64url") from exc
    return int.from_bytes(raw, "big")


def check_public_jwk(jwk: Mapping[str, Any]) -> dict[str, Any]:
    """Check one JWK is an acceptable public signing key; return it with only the kept members."""
    if not isinstance(jwk, Mapping):
        raise ValueError("each key must be a JSON object")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid:
        raise ValueError("every key needs a non-empty string 'kid'")
    kty = jwk.get("kty")
    if kty == "oct":
        raise ValueError(f"key {kid!r}: symmetric ('oct') keys are not accepted")
    secret = sorted(PRIVATE_MEMBERS & jwk.keys())
    if secret:
        members = ", ".join(secret)
        raise ValueError(f"key {kid!r} contains private key material ({members}); send public keys only")
    if "use" in jwk and jwk["use"] != "sig":
        raise ValueError(f"key {kid!r}: 'use' must be 'sig'")
    if "key_ops" in jwk and (not isinstance(jwk["key_ops"], list) or "verify" not in jwk["key_ops"]):
        raise ValueError(f"key {kid!r}: 'key_ops' must include 'verify'")
    if "alg" in jwk and not isinstance(jwk["alg"], str):
        raise ValueError(f"key {kid!r}: 'alg' must be a string")
    cleaned = {name: jwk[name] for name in _KEPT_MEMBERS if name in jwk}
    if kty == "RSA":
        bits = _b64url_int(jwk.get("n"), "n").bit_length()
        _b64url_int(jwk.get("e"), "e")
        if bits < MIN_RSA_BITS:
            raise ValueError(f"key {kid!r}: RSA key of {bits} bits is too small (minimum {MIN_RSA_BITS})")
        key_class: type[RSAKey] | type[ECKey] = RSAKey
    elif kty == "EC":
        if jwk.get("crv") not in ALLOWED_CURVES:
            raise ValueError(f"key {kid!r}: EC curve must be one of {', '.join(sorted(ALLOWED_CURVES))}")
        key_class = ECKey
    else:
        raise ValueError(f"key {kid!r}: key type {kty!r} not supported (use RSA or EC)")
    try:
        # Let the JOSE library prove the numbers form a usable public key (e.g. EC point on curve).
        key_class.import_key(cleaned)
    except (JoseError, ValueError, TypeError) as exc:
        raise ValueError(f"key {kid!r} is not a valid {kty} public key") from exc
    return cleaned


def validate_registration_jwks(jwks: dict[str, Any]) -> dict[str, Any]:
    """Validate a JWKS offered at client registration; return the cleaned public JWKS.

    Raises ValueError with an operator-readable message on the first problem found.
    """
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise ValueError('a JWKS must be a JSON object of the form {"keys": [...]}')
    keys: list[Any] = jwks["keys"]
    if not keys:
        raise ValueError("the JWKS has no keys")
    cleaned: list[dict[str, Any]] = []
    seen: set[str] = set()
    for jwk in keys:
        key = check_public_jwk(jwk)
        if key["kid"] in seen:
            raise ValueError(f"duplicate kid {key['kid']!r}: each key needs a distinct kid")
        seen.add(key["kid"])
        cleaned.append(key)
    return {"keys": cleaned}
