"""``POST /auth/token``: the SMART Backend Services token endpoint.

https://hl7.org/fhir/smart-app-launch/backend-services.html#obtain-access-token
Responses follow OAuth, not FHIR: RFC 6749 §5.1 on success, §5.2 JSON errors otherwise, always
``Cache-Control: no-store``. The assertion, the token and key sets are never logged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from service import tokens
from service.api import ratelimit
from service.api.deps import database_of, settings_of
from service.errors import TooManyRequests
from service.settings import Settings
from service.storage.database import Database

router = APIRouter(tags=["Authentication"])

# A token request is a handful of short fields and one assertion (at most 8 KiB, see auth._compact).
MAX_FORM_BYTES = 32 * 1024
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _json(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={**_NO_STORE, **(headers or {})})


async def _read_form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise tokens.OAuthError("invalid_request", "send the request as application/x-www-form-urlencoded")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_FORM_BYTES:
            raise tokens.OAuthError("invalid_request", "request body too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=32)
    except (UnicodeDecodeError, ValueError) as exc:
        raise tokens.OAuthError("invalid_request", "malformed form body") from exc
    form: dict[str, str] = {}
    for name, value in pairs:
        # RFC 6749 §3.2: request parameters must not be included more than once.
        if name in form:
            raise tokens.OAuthError("invalid_request", f"parameter {name!r} repeated")
        form[name] = value
    return form


def _issue(db: Database, settings: Settings, form: dict[str, str], source: str) -> dict[str, Any]:
    with db.transaction(write=False) as conn:
        jwks_url = tokens.jwks_url_of_claimed_client(conn, form)
    if jwks_url:
        tokens.warm_jwks(jwks_url, settings)
    now = datetime.now(UTC)
    with db.transaction(write=True) as conn:
        return tokens.issue_token(
            conn, form=form, token_url=tokens.token_url(settings), settings=settings, now=now, source=source
        )


def _audit(db: Database, error: tokens.OAuthError, form: dict[str, str], source: str) -> None:
    with db.transaction(write=True) as conn:
        tokens.audit_failure(conn, error=error, form=form, now=datetime.now(UTC), source=source)


@router.post(
    "/auth/token",
    summary="Exchange a signed client assertion for an access token (SMART Backend Services)",
    responses={400: {"description": "OAuth error"}, 401: {"description": "invalid_client"}, 429: {}},
)
async def token(request: Request) -> JSONResponse:
    settings = settings_of(request)
    db = database_of(request)
    source = request.client.host if request.client else ""
    form: dict[str, str] = {}
    try:
        form = await _read_form(request)
        # Keyed on the unverified iss *and* the caller's address: one client's retries cannot
        # starve others, and junk assertions naming a client from elsewhere cannot use up that
        # client's allowance.
        key = f"{tokens.claimed_client_id(form) or '-'}@{source}"
        ratelimit.check(settings.token_rate_limit, f"token:{key}")
        answer = await run_in_threadpool(_issue, db, settings, form, source)
    except TooManyRequests as exc:
        # Not audited: a flood of refusals must not become a flood of audit writes.
        body = {"error": "temporarily_unavailable", "error_description": "too many token requests"}
        return _json(body, 429, exc.headers)
    except tokens.OAuthError as exc:
        await run_in_threadpool(_audit, db, exc, form, source)
        headers = {"WWW-Authenticate": 'Bearer realm="wraparound"'} if exc.status == 401 else None
        return _json(exc.body(), exc.status, headers)
    return _json(answer, 200)
