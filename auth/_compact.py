"""Read the parts of a JWS compact serialisation *without* verifying it.

Only used to pick the client and key before verification (RFC 7515 §7.1); nothing read here is
trusted until the signature has been checked.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

# A client assertion is a few hundred bytes to a couple of KiB (more with an x5c chain);
# anything over 8 KiB is refused before a byte of it is decoded (issue 10: parsing costs).
MAX_ASSERTION_BYTES = 8 * 1024


class MalformedJws(ValueError):
    pass


def _json_segment(segment: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise MalformedJws("segment is not base64url JSON") from exc
    if not isinstance(value, dict):
        raise MalformedJws("segment is not a JSON object")
    return value


def unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (header, claims) of a compact JWS, raising MalformedJws if it is not one."""
    if not isinstance(token, str) or len(token) > MAX_ASSERTION_BYTES:
        raise MalformedJws("not a compact JWS of acceptable size")
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        # Five parts would be a JWE; empty payload a detached JWS: neither is a client assertion.
        raise MalformedJws("not a three-part compact JWS")
    return _json_segment(parts[0]), _json_segment(parts[1])
