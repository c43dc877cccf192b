"""Registering SMART Backend Services clients: who they are, what they may ask for, which keys they sign with.

SMART registration (out of band, by an operator): https://hl7.org/fhir/smart-app-launch/backend-services.html#registering-a-smart-backend-service-communicating-public-keys
A client belongs to one Organization and has one role; its scopes are the most a token may grant.
Keys are a static public JWKS or a JWKS URL, checked here so a bad key fails at registration,
not at the first token request.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from auth.jwks import validate_registration_jwks
from auth.netguard import check_public_url
from auth.scopes import normalise, parse_scopes
from service.errors import BadRequest
from service.storage import tokens as storage

ROLES = ("clinic", "partner", "admin")
# FHIR id: https://hl7.org/fhir/R4/datatypes.html#id
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
# A client_id travels as a JWT iss/sub and in audit; keep it printable and without spaces.
_CLIENT_ID = re.compile(r"^[\x21-\x7e]{1,200}$")


class InvalidRegistration(BadRequest):
    """A client registration that cannot be accepted; the message says what to fix."""


def parse_organization(reference: str) -> str:
    """``Organization/ID`` -> ``ID``."""
    prefix, _, ident = reference.partition("/")
    if prefix != "Organization" or not _FHIR_ID.match(ident):
        raise InvalidRegistration(f"organization must be a reference like Organization/ID, not {reference!r}")
    return ident


def _checked_scopes(scopes: str) -> str:
    try:
        parsed = parse_scopes(scopes)
    except ValueError as exc:
        raise InvalidRegistration(str(exc)) from exc
    if not parsed:
        raise InvalidRegistration("at least one system/ scope is required")
    return normalise(parsed)


def _checked_keys(
    jwks: dict[str, Any] | None, jwks_url: str | None, allow_private: bool
) -> tuple[dict[str, Any] | None, str | None]:
    if jwks is None and not jwks_url:
        raise InvalidRegistration("a client needs a JWKS or a JWKS URL")
    cleaned = None
    if jwks is not None:
        try:
            cleaned = validate_registration_jwks(jwks)
        except ValueError as exc:
            raise InvalidRegistration(f"JWKS refused: {exc}") from exc
    if jwks_url:
        try:
            check_public_url(jwks_url, allow_private=allow_private)
        except ValueError as exc:
            raise InvalidRegistration(f"JWKS URL refused: {exc}") from exc
    return cleaned, jwks_url or None


def register_client(
    conn: Connection,
    *,
    client_id: str,
    organization_id: str,
    role: str,
    scopes: str,
    jwks: dict[str, Any] | None,
    jwks_url: str | None,
    now: datetime,
    allow_private: bool = False,
) -> bool:
    """Create or replace a client registration; True when it was new. ``organization_id`` is
    ``Organization/ID``. ``allow_private`` (settings.allow_private_endpoints) permits loopback JWKS URLs."""
    if not _CLIENT_ID.match(client_id):
        raise InvalidRegistration("client id must be 1-200 printable characters without spaces")
    org = parse_organization(organization_id)
    if role not in ROLES:
        raise InvalidRegistration(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    cleaned, url = _checked_keys(jwks, jwks_url, allow_private)
    values = {
        "client_id": client_id,
        "organization_id": org,
        "role": role,
        "scopes": _checked_scopes(scopes),
        "jwks": cleaned,
        "jwks_url": url,
        "created_at": now,
    }
    return storage.upsert_client(conn, values)


def list_clients(conn: Connection) -> list[Any]:
    return storage.list_clients(conn)


def remove_client(conn: Connection, client_id: str) -> bool:
    """Delete a client and revoke its access tokens; False if there was no such client."""
    return storage.remove_client(conn, client_id)
