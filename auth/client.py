"""The client side of SMART Backend Services: signing a client assertion (RFC 7523).

https://hl7.org/fhir/smart-app-launch/backend-services.html#request-access-token
Used by the demo client, the benchmark and the tests, so they all sign the way an
integration following the spec would.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
LIFETIME_SECONDS = 240  # the spec allows at most five minutes


def sign_client_assertion(
    client_id: str, token_url: str, key: ECKey | RSAKey, *, alg: str = "ES384", **claims: Any
) -> str:
    """A signed assertion with ``iss`` = ``sub`` = client id, ``aud`` the token URL and a fresh ``jti``;
    ``claims`` override or add claims (tests use this to break one rule at a time)."""
    payload: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "exp": int(time.time()) + LIFETIME_SECONDS,
        "jti": uuid.uuid4().hex,
        **claims,
    }
    return jwt.encode({"alg": alg, "typ": "JWT", "kid": key.kid}, payload, key, algorithms=[alg])
