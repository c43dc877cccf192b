"""Request dependencies: the database, the caller's identity, the request body.

``get_caller`` is the one dependency that yields who is calling; every FHIR route
takes it, and domain code receives the resulting ``Caller``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from auth.tokens import AccessTokenClaims as TokenInfo
from auth.tokens import hash_token
from service.access.caller import Caller, Role
from service.api import ratelimit
from service.api.token_cache import TokenCache
from service.audit.writer import AuditWriter
from service.errors import PayloadTooLarge, Unauthenticated, UnsupportedMediaType
from service.fhir.jsonbody import parse_json
from service.rest import patch, unit
from service.rest.context import Context
from service.rest.patch import PatchDocument
from service.settings import Settings
from service.storage.database import Database, WriterBusy
from service.storage.tokens import find_token

T = TypeVar("T")


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def database_of(request: Request) -> Database:
    db: Database = request.app.state.database
    return db


def _unauthenticated(message: str) -> Unauthenticated:
    return Unauthenticated(
        message, headers={"WWW-Authenticate": 'Bearer realm="wraparound", error="invalid_token"'}
    )


# Declared as a security scheme so /docs offers "Authorize" for pasting an access token.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="SMART access token",
    description="An access token from POST /auth/token (SMART Backend Services client_credentials).",
)


async def get_caller(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme)
) -> Caller:
    return await authenticate(request, credentials.credentials if credentials else "")


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, as ``HTTPBearer`` reads it; else ""."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    return token if scheme.lower() == "bearer" else ""


async def authenticate(request: Request, token: str) -> Caller:
    """The caller an access token stands for (401 when missing, unknown or expired), rate-limited."""
    token = token.strip()
    if not token:
        raise Unauthenticated(
            "A bearer access token is required", headers={"WWW-Authenticate": 'Bearer realm="wraparound"'}
        )
    cache: TokenCache = request.app.state.token_cache
    # Keyed on the token itself: a hit costs a dict lookup, not a SHA-256 (the cache holds
    # tokens only in this process's memory, for at most TokenCache.TTL_SECONDS).
    info = cache.get(token)
    if info is None:
        info = await run_in_threadpool(_lookup_token, database_of(request), hash_token(token))
        if info is None:
            raise _unauthenticated("The access token is not valid")
        if info.expires_at <= datetime.now(UTC):
            raise _unauthenticated("The access token has expired")
        cache.put(token, info)
    caller = Caller(
        client_id=info.client_id,
        organization_id=info.organization_id,
        role=cast(Role, info.role),
        scopes=info.scopes,
        jti=info.jti,
        source=request.client.host if request.client else "",
    )
    ratelimit.check(settings_of(request).rate_limit, f"api:{caller.client_id}")
    request.state.caller = caller
    return caller


def _lookup_token(db: Database, token_hash: str) -> TokenInfo | None:
    with db.transaction(write=False) as conn:
        row = find_token(conn, token_hash)
    if row is None:
        return None
    return TokenInfo(
        client_id=row.client_id,
        organization_id=row.organization_id,
        role=row.role,
        scopes=row.scopes,
        jti=row.jti,
        expires_at=row.expires_at,
    )


async def json_body(request: Request) -> Any:
    """The parsed JSON body; 413 before parsing when too large, 415 for non-JSON."""
    content_type = request.headers.get("content-type", "application/fhir+json").split(";")[0].strip().lower()
    if content_type not in ("application/fhir+json", "application/json", "application/json+fhir", ""):
        raise UnsupportedMediaType(
            f"Content-Type '{content_type}' is not supported; send application/fhir+json"
        )
    return await _read_json(request)


async def patch_body(request: Request) -> PatchDocument:
    """A PATCH body: a JSON Patch (RFC 6902), or a JSON Merge Patch (fhirpy); 415 otherwise."""
    content_type = patch.check_media(request.headers.get("content-type", ""))
    return patch.document(content_type, await _read_json(request))


async def _read_json(request: Request) -> Any:
    settings = settings_of(request)
    limit = settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit} bytes")
        chunks.append(chunk)
    return parse_json(b"".join(chunks), max_depth=settings.max_json_depth, max_items=settings.max_json_items)


def run(request: Request, caller: Caller, work: Callable[[Context], T]) -> T:
    """One transaction per request: run ``work`` and commit, or roll back and audit the failure.

    A read-only interaction (read, vread, search, history: GET, or POST ``_search``) runs in a
    read transaction, which takes no write lock on SQLite and commits no data; its AuditEvents
    then go to the process's audit writer, and the result is returned only once they are
    committed (503 if they cannot be). A write records its audit in its own transaction.
    """
    events: list[dict[str, Any]] = []
    try:
        return transact(request, caller, work, events)
    finally:
        # No response before its AuditEvent is durable: this waits for the batch's commit (and
        # turns the answer, success or refusal, into a 503 if that commit fails).
        audit_writer_of(request).record(events)


async def run_async(request: Request, caller: Caller, work: Callable[[Context], T], *, inline: bool) -> T:
    """``run`` for the hot path (api/hotpath.py): the audit commit is awaited on the event loop
    instead of holding a threadpool thread, and with ``inline`` the transaction itself runs on
    the loop too (on SQLite: a read by id or a bounded search, a few hundred microseconds of CPU
    that the threadpool hop and the GIL hand-offs would cost as much again; a write, if the write
    lock is free this instant, else on a thread, where it waits for the lock as before, ADR 0020)."""
    events: list[dict[str, Any]] = []
    try:
        if inline:
            try:
                return transact(request, caller, work, events, kept=True)
            except WriterBusy:
                pass  # nothing was begun, and nothing was recorded
        return await run_in_threadpool(transact, request, caller, work, events)
    finally:
        await audit_writer_of(request).commit(events)


def transact(
    request: Request,
    caller: Caller,
    work: Callable[[Context], T],
    events: list[dict[str, Any]],
    *,
    kept: bool = False,
) -> T:
    """``work`` in one transaction (``rest.unit.transact``), read-only for GET and ``_search``;
    ``kept``: on the loop thread's kept connection (``Database.transaction``)."""
    settings = settings_of(request)
    return unit.transact(
        database_of(request),
        caller,
        work,
        events,
        base_url=settings.fhir_base(),
        allow_private_endpoints=settings.allow_private_endpoints,
        read_only=_is_read_only(request),
        action=lambda: _action_of(request),
        # Building the URL object was 2 % of a read by id, which has no query: only when there is one.
        query=(request.url.query or None) if request.scope.get("query_string") else None,
        kept=kept,
    )


def audit_writer_of(request: Request) -> AuditWriter:
    writer: AuditWriter = request.app.state.audit_writer
    return writer


def _is_read_only(request: Request) -> bool:
    return request.method in ("GET", "HEAD") or (
        request.method == "POST" and request.url.path.rstrip("/").endswith("/_search")
    )


def _action_of(request: Request) -> str:
    """The failed interaction's restful-interaction code, from the shape of the URL."""
    parts = [p for p in request.url.path.split("/") if p][1:]  # after "fhir"
    method = request.method
    if any(p.startswith("$") for p in parts):
        return "operation"
    if method == "POST" and not parts:
        return "transaction"  # a Bundle POSTed to the base (batch or transaction)
    if parts[-1:] == ["_search"]:
        return "search"
    if method == "GET":
        if "_history" in parts:
            return "history" if parts[-1] == "_history" else "vread"
        return "search" if len(parts) <= 1 else "read"
    return {"POST": "create", "PUT": "update", "DELETE": "delete", "PATCH": "update"}.get(method, "operation")
