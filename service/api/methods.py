"""405 Method Not Allowed, with an ``Allow`` header, for every path the OpenAPI document describes.

The routes dispatch every type through ``/fhir/{resource_type}/{resource_id}``, so without this a
method a path does not support lands in whichever generic route has that method: ``PUT
/fhir/metadata`` reached the conditional update (400 for its empty body), ``PUT
/fhir/Patient/_history`` the update (400), and Starlette's own 405s listed the methods of one
route, not of the path (``OPTIONS /fhir/Patient/{id}`` said ``Allow: GET``).

So the methods each path supports are taken from the document itself (``openapi_doc.path_methods``,
built from the same registry as the routes), and a request whose path is described but whose
method is not is answered here, before routing and before authentication (the methods a path
supports are public: they are in the CapabilityStatement): 405, ``Allow`` listing exactly that
path's methods (RFC 9110 §15.5.6), and an OperationOutcome. Paths the document does not describe
(an unknown type, a malformed id) go on to the router, which answers 404 or 400.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.responses import FhirResponse
from service.errors import Issue, operation_outcome

# A path parameter is a FHIR id (http://hl7.org/fhir/R4/datatypes.html#id); versionId is one too.
# So `_history`, `_search` and `$operation` segments never match one.
_ID = re.compile(r"^[A-Za-z0-9\-\.]{1,64}$")
_ORDER = ("GET", "POST", "PUT", "PATCH", "DELETE")

Template = tuple[str | None, ...]  # literal segments, None for a parameter


class _Table:
    """Templates indexed by length and their first two segments (``fhir``, the type), so a request
    is compared with the handful of templates that could match, not the whole document."""

    def __init__(self, paths: Mapping[str, frozenset[str]]) -> None:
        self._index: dict[tuple[int, str | None, str | None], list[tuple[Template, frozenset[str]]]] = {}
        for path, methods in paths.items():
            template = tuple(None if s.startswith("{") else s for s in path.split("/"))
            key = (len(template), *_head(template))
            self._index.setdefault(key, []).append((template, methods))

    def allowed(self, path: str) -> frozenset[str] | None:
        segments = path.split("/")
        first, second = _head(segments)
        for key in {(len(segments), first, second), (len(segments), first, None)}:
            for template, methods in self._index.get(key, ()):
                if all(
                    s == t if t is not None else _ID.match(s) is not None
                    for t, s in zip(template, segments, strict=True)
                ):
                    return methods
        return None


def _head(segments: Sequence[str | None]) -> tuple[str | None, str | None]:
    # segments[0] is the empty string before the leading slash.
    return (segments[1] if len(segments) > 1 else None, segments[2] if len(segments) > 2 else None)


def allow_header(methods: frozenset[str]) -> str:
    return ", ".join(m for m in _ORDER if m in methods)


class MethodGuard:
    """ASGI middleware; ``paths`` returns {path template: methods}, read once on the first request."""

    def __init__(self, app: ASGIApp, paths: Callable[[], Mapping[str, frozenset[str]]]) -> None:
        self.app = app
        self._paths = paths
        self._table: _Table | None = None
        self._lock = threading.Lock()

    def _allowed(self, path: str) -> frozenset[str] | None:
        if self._table is None:
            with self._lock:
                if self._table is None:
                    self._table = _Table(self._paths())
        return self._table.allowed(path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            allowed = self._allowed(scope["path"])
            method = scope["method"]
            if allowed is not None and method not in allowed:
                await _not_allowed(method, allowed)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _not_allowed(method: str, allowed: frozenset[str]) -> FhirResponse:
    header = allow_header(allowed)
    outcome = operation_outcome(
        [
            Issue(
                code="not-supported", diagnostics=f"{method} is not supported here; this path allows {header}"
            )
        ]
    )
    headers: dict[str, Any] = {"Allow": header}
    return FhirResponse(outcome, status_code=405, headers=headers)
