"""Issue access tokens to SMART Backend Services clients that prove themselves with a signed assertion.

SMART App Launch 2.x Backend Services, "Obtaining an access token":
https://hl7.org/fhir/smart-app-launch/backend-services.html#obtain-access-token
Request: client_credentials grant (RFC 6749 §4.4) with a JWT client assertion (RFC 7523 §2.2).
Errors: RFC 6749 §5.2. The caller runs ``issue_token`` in one write transaction (the jti, the token
and the success audit commit together) and ``audit_failure`` in a fresh one after a rollback.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import json
import logging
import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from auth.assertion import (
    DEFAULT_ALGS,
    MAX_ASSERTION_BYTES,
    AssertionRejected,
    ClientKeys,
    verify_client_assertion,
)
from auth.client import ASSERTION_TYPE
from auth.jwks_fetcher import JwksFetcher, JwksFetchError
from auth.scopes import grant, supported
from auth.tokens import new_access_token
from service.access.caller import Caller
from service.audit import record
from service.rest import registry
from service.settings import Settings
from service.storage import tokens as storage

log = logging.getLogger("wraparound.token")

GRANT_TYPE = "client_credentials"
# DICOM "User Authenticated": the BALP subtype for authentication events.
AUTH_SUBTYPE = {
    "system": "http://dicom.nema.org/resources/ontology/DCM",
    "code": "110114",
    "display": "User Authenticated",
}
UNKNOWN_CLIENT = "unknown"


class OAuthError(Exception):
    """An RFC 6749 §5.2 error. ``description`` goes to the client; ``reason`` only to audit and logs."""

    def __init__(
        self,
        error: str,
        description: str,
        status: int = 400,
        *,
        reason: str | None = None,
        client: Caller | None = None,
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.reason = reason or error
        self.client = client  # set only once the client has authenticated

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


_fetchers: dict[bool, JwksFetcher] = {}
_fetchers_lock = threading.Lock()


def jwks_fetcher(*, allow_private: bool) -> JwksFetcher:
    """The process-wide JWKS cache (one per SSRF policy, so tests with private URLs do not leak)."""
    with _fetchers_lock:
        fetcher = _fetchers.get(allow_private)
        if fetcher is None:
            fetcher = _fetchers[allow_private] = JwksFetcher(allow_private=allow_private)
        return fetcher


def token_url(settings: Settings) -> str:
    """The absolute URL of ``POST /auth/token``: the ``aud`` every assertion must carry."""
    return settings.fhir_base().removesuffix("/fhir") + "/auth/token"


def allowed_algs(settings: Settings) -> frozenset[str]:
    return DEFAULT_ALGS | {"RS512"} if settings.allow_rs512 else DEFAULT_ALGS


def claimed_client_id(form: dict[str, str]) -> str | None:
    """The unverified ``iss`` of the assertion, for rate limiting and audit only; never trusted."""
    assertion = form.get("client_assertion", "")
    if len(assertion) > MAX_ASSERTION_BYTES:  # refused unread (verify_client_assertion says why)
        return None
    parts = assertion.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    iss = claims.get("iss") if isinstance(claims, dict) else None
    return iss[:200] if isinstance(iss, str) and iss else None


class _DbJtiStore:
    """Assertion ids recorded in the request's transaction; the primary key settles replay races."""

    def __init__(self, conn: Connection, now: datetime) -> None:
        self._conn = conn
        self._now = now

    def remember(self, client_id: str, jti: str, expires_at: datetime) -> bool:
        return storage.remember_jti(self._conn, client_id, jti, expires_at, self._now)


def _check_form(form: dict[str, str]) -> str:
    grant_type = form.get("grant_type")
    if not grant_type:
        raise OAuthError("invalid_request", "grant_type is required")
    if grant_type != GRANT_TYPE:
        raise OAuthError("unsupported_grant_type", f"only grant_type={GRANT_TYPE} is supported")
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise OAuthError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}")
    if not form.get("client_assertion"):
        raise OAuthError("invalid_request", "client_assertion is required")
    # RFC 6749 §3.3: no default scope here, so an absent scope fails as invalid_scope.
    scope = form.get("scope", "").strip()
    if not scope:
        raise OAuthError("invalid_scope", "scope is required")
    return scope


def _verify(conn: Connection, form: dict[str, str], url: str, settings: Settings, now: datetime) -> Any:
    rows: dict[str, Any] = {}

    def lookup(client_id: str) -> ClientKeys | None:
        row = storage.get_client(conn, client_id)
        if row is None:
            return None
        rows[client_id] = row
        return ClientKeys(client_id=row.client_id, jwks=row.jwks, jwks_url=row.jwks_url)

    try:
        verified = verify_client_assertion(
            form["client_assertion"],
            token_url=url,
            lookup_client=lookup,
            jti_store=_DbJtiStore(conn, now),
            now=now,
            allowed_algs=allowed_algs(settings),
            fetcher=jwks_fetcher(allow_private=settings.allow_private_endpoints),
            leeway_seconds=settings.assertion_leeway_seconds,
        )
    except AssertionRejected as exc:
        raise OAuthError(exc.error, exc.description, 401, reason=exc.reason) from exc
    except Exception as exc:
        # Never a 500 from authentication: whatever broke, this client is not authenticated.
        log.warning("client assertion verification failed unexpectedly: %s", type(exc).__name__)
        raise OAuthError(
            "invalid_client", "client assertion rejected (other)", 401, reason=f"error:{type(exc).__name__}"
        ) from exc
    return rows[verified.client_id]


def jwks_url_of_claimed_client(conn: Connection, form: dict[str, str]) -> str | None:
    """The registered JWKS URL of the client the assertion claims to be, if it has one."""
    client_id = claimed_client_id(form)
    row = storage.get_client(conn, client_id) if client_id else None
    return str(row.jwks_url) if row is not None and row.jwks_url else None


def warm_jwks(url: str, settings: Settings) -> None:
    """Fetch a client's JWKS into the process cache *before* the token transaction opens.

    A slow JWKS host must not hold a database transaction (on SQLite, the one writer lock)
    for the fetch deadline; failures are left for verification to report.
    """
    with contextlib.suppress(JwksFetchError):  # verification will try again and report it
        jwks_fetcher(allow_private=settings.allow_private_endpoints).get(url)


def issue_token(
    conn: Connection,
    *,
    form: dict[str, str],
    token_url: str,
    settings: Settings,
    now: datetime,
    source: str,
) -> dict[str, Any]:
    """Authenticate the client and return the RFC 6749 §5.1 access token response, or raise OAuthError."""
    requested = _check_form(form)
    row = _verify(conn, form, token_url, settings, now)
    client = Caller(row.client_id, row.organization_id, row.role, scopes="", jti="", source=source)
    # RFC 7521 §4.2: a client_id parameter, when sent, must name the client the assertion authenticated.
    if form.get("client_id") not in (None, row.client_id):
        raise OAuthError(
            "invalid_client",
            "client_id does not match the assertion",
            401,
            reason="client_id-mismatch",
            client=client,
        )
    # Scopes this server cannot grant are dropped, not refused (RFC 6749 §3.3; auth.scopes.supported),
    # and so are types it does not serve, on either side of the intersection.
    wanted = supported(requested, registry.TYPES)
    if not wanted:
        raise OAuthError(
            "invalid_scope",
            "no requested scope is supported; request system/<Type>.<cruds> scopes",
            reason="scope-malformed",
            client=client,
        )
    try:
        granted = supported(grant(wanted, row.scopes), registry.TYPES)
    except ValueError as exc:
        # The registration itself is malformed (an operator error): grant nothing.
        raise OAuthError(
            "invalid_scope", "scope is malformed", reason="scope-malformed", client=client
        ) from exc
    if not granted:
        raise OAuthError(
            "invalid_scope", "no requested scope is permitted", reason="scope-not-permitted", client=client
        )

    token, token_hash = new_access_token()
    jti = uuid.uuid4().hex
    lifetime = settings.access_token_lifetime
    storage.store_token(
        conn,
        {
            "token_hash": token_hash,
            "client_id": row.client_id,
            "organization_id": row.organization_id,
            "role": row.role,
            "scopes": granted,
            "jti": jti,
            "expires_at": now + timedelta(seconds=lifetime),
        },
    )
    holder = dataclasses.replace(client, scopes=granted, jti=jti)
    event = record.build_event(
        caller=holder,
        action="token",
        now=now,
        status=200,
        description=f"granted {granted}",
        subtype=AUTH_SUBTYPE,
    )
    record.write_event(conn, event, now)
    log.info("access token issued to %s (jti %s)", row.client_id, jti)
    return {"access_token": token, "token_type": "bearer", "expires_in": lifetime, "scope": granted}


def audit_failure(
    conn: Connection, *, error: OAuthError, form: dict[str, str], now: datetime, source: str
) -> None:
    """Record a refused token request (in its own transaction: the request's was rolled back)."""
    caller = error.client or Caller(
        client_id=UNKNOWN_CLIENT, organization_id="", role="partner", scopes="", jti="", source=source
    )
    description = error.reason
    claimed = claimed_client_id(form)
    if error.client is None and claimed is not None:
        # Worth knowing who an attacker pretended to be; marked as a claim, never as the agent.
        description = f"{description} (claimed client {claimed!r})"
    event = record.build_event(
        caller=caller,
        action="token",
        now=now,
        status=error.status,
        description=description,
        subtype=AUTH_SUBTYPE,
    )
    if error.client is None:
        event["agent"][0]["role"] = [{"text": UNKNOWN_CLIENT}]
    record.write_event(conn, event, now)
    log.info("token request refused: %s (%s)", error.error, description)
