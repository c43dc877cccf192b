"""The hot interactions without FastAPI's routing and dependency solving (issue 11, ADR 0014).

Read, create, update and search by GET are most of the hub's traffic. FastAPI spends more of
such a request's Python time matching its routes and solving the dependency graph (bearer
scheme, header and path parameters, the format check, the caller) than the hub spends on the
FHIR work. This middleware answers those four shapes itself and hands everything else on.

It changes nothing a client can see: it calls the same route functions
(``resource_routes.read``, ``create``, ``update``, ``search_routes.search_get``) with what the
dependencies would have given them — the format check, the caller from the bearer token, the
JSON body, the ``Prefer``/``If-*`` headers — and errors go to the app's own exception handlers.
A request it is not sure of (an unknown type, an id FastAPI's pattern would refuse, another
method, a trailing path) goes to the app as before, so FastAPI keeps answering the odd cases
and the OpenAPI document stays the full description. The suite runs through this path.

It sits inside ``StripTrailingSlash`` and ``MethodGuard``: it sees the path as routed, and
only methods the document allows on it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api import resource_routes, search_routes
from service.api.deps import authenticate, bearer_token, database_of, json_body, run_async
from service.api.formats import check_format
from service.api.responses import FhirResponse
from service.rest import registry, search, validation

# The read route's id pattern (resource_routes.IdPath); anything else is FastAPI's to refuse.
_ID = re.compile(r"^[A-Za-z0-9\-\.]{1,64}$")
_TYPES = frozenset(registry.TYPES)

Handler = Callable[[Request, str, str], Awaitable[Response]]


class HotPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = _route(scope) if scope["type"] == "http" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        fn, rtype, rid = handler
        request = Request(scope, receive)
        try:
            response = await fn(request, rtype, rid)
        except Exception as exc:
            response = await _handle(request, exc)
        await response(scope, receive, send)


def _route(scope: Scope) -> tuple[Handler, str, str] | None:
    """The handler, type and id ("" at type level) of a hot request; None for the app to answer."""
    path: str = scope["path"]
    if not path.startswith("/fhir/"):
        return None
    parts = path[6:].split("/")
    method = scope["method"]
    if len(parts) == 1:
        rtype = parts[0]
        if rtype not in _TYPES:
            return None
        if method == "GET":
            return _search, rtype, ""
        if method == "POST":
            return _create, rtype, ""
        return None
    if len(parts) == 2:
        rtype, rid = parts
        if rtype not in _TYPES or _ID.match(rid) is None:
            return None
        if method == "GET":
            return _read, rtype, rid
        if method == "PUT":
            return _update, rtype, rid
    return None


async def _caller(request: Request) -> Any:
    # The router-level format check runs before the caller is worked out, as FastAPI orders them.
    await check_format(request)
    return await authenticate(request, bearer_token(request.headers.get("authorization")))


async def _read(request: Request, rtype: str, rid: str) -> Response:
    caller = await _caller(request)
    # On SQLite a read by id is a few hundred microseconds of CPU in one indexed lookup: run on the
    # loop, it skips the threadpool hop and the GIL hand-offs, which cost as much again. On
    # PostgreSQL the lookup waits on the network, so it keeps its thread.
    result = await run_async(
        request, caller, resource_routes.read_work(rtype, rid), inline=_on_sqlite(request)
    )
    return resource_routes.read_response(result, request.headers.get("if-none-match"))


async def _search(request: Request, rtype: str, _rid: str) -> Response:
    caller = await _caller(request)
    params = list(request.query_params.multi_items())
    work = search_routes.search_work(rtype, params, request.headers.get("prefer"))
    # As a read by id: on SQLite, a search bounded by its page (the partner's inbox, a referral's
    # Tasks) runs on the loop, without the threadpool's GIL hand-offs (1.5 against 4.5 ms of CPU an
    # inbox search in process; about 4 % more searches a second over HTTP). One that may scan, sort
    # or count the table keeps a thread, so the loop goes on while SQLite works without the GIL.
    inline = _on_sqlite(request) and search.bounded_by_page(rtype, params)
    return FhirResponse(await run_async(request, caller, work, inline=inline))


def _on_sqlite(request: Request) -> bool:
    return database_of(request).dialect == "sqlite"


async def _create(request: Request, rtype: str, _rid: str) -> Response:
    caller = await _caller(request)
    body = await json_body(request)
    criteria = resource_routes.create_criteria(request, request.headers.get("if-none-exist"))
    work = resource_routes.create_work(rtype, body, criteria)
    # A conditional create searches first, and its criteria may read every match: it keeps a thread.
    result = await run_async(request, caller, work, inline=_writes_inline(request, rtype) and not criteria)
    return resource_routes.write_response(result, request.headers.get("prefer"))


async def _update(request: Request, rtype: str, rid: str) -> Response:
    caller = await _caller(request)
    body = await json_body(request)
    work = resource_routes.update_work(rtype, rid, body, request.headers.get("if-match"))
    result = await run_async(request, caller, work, inline=_writes_inline(request, rtype))
    return resource_routes.write_response(result, request.headers.get("prefer"))


def _writes_inline(request: Request, rtype: str) -> bool:
    """On SQLite a create or update runs on the loop when the write lock is free (ADR 0020): SQLite
    takes one writer at a time anyway, and the threadpool hop with its GIL hand-offs at every sqlite3
    call cost about a quarter of a create over HTTP. Not a type whose rules wait on the network."""
    return _on_sqlite(request) and not validation.waits_on_network(rtype)


async def _handle(request: Request, exc: Exception) -> Response:
    """The app's exception handler for ``exc`` (the nearest class in its MRO), as Starlette picks it."""
    handlers: dict[Any, Any] = request.app.exception_handlers
    for cls in type(exc).__mro__:
        handler = handlers.get(cls)
        if handler is not None:
            response: Response = await handler(request, exc)
            return response
    raise exc
