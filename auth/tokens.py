"""Opaque bearer access tokens (RFC 6750). Only the SHA-256 of a token is ever stored, so a
database leak does not hand out working tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_access_token() -> tuple[str, str]:
    """Return (token to hand to the client, hash to store)."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


@dataclass(frozen=True)
class AccessTokenClaims:
    """What an access token stands for, as stored against its hash."""

    client_id: str
    organization_id: str
    role: str
    scopes: str
    jti: str
    expires_at: datetime
